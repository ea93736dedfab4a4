"""Device choice, seeding, timers and the CPU peak-memory meter."""

import pytest
import torch

from beyond_backprop import runtime


def test_auto_device_and_bad_names():
    assert runtime.resolve_device("auto").type in ("cpu", "cuda")
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError):
        runtime.resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_says_what_to_do():
    with pytest.raises(runtime.DeviceUnavailable, match="--device cpu"):
        runtime.resolve_device("cuda")


def test_seeding_replays_random_numbers():
    runtime.seed_everything(3)
    first = torch.randn(5)
    generator = runtime.seed_everything(3)
    assert torch.equal(first, torch.randn(5))
    assert torch.equal(torch.randn(3, generator=generator), torch.randn(3, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError):
        runtime.seed_everything(-1)


def test_timer_measures_a_sleep():
    import time

    with runtime.Timer("cpu") as timer:
        time.sleep(0.05)
    assert 0.04 < timer.seconds < 1.0


def test_cpu_peak_memory_counts_live_tensors_not_freed_ones():
    n = 1_000_000  # 4 MB of float32 per tensor

    def two_alive():
        a = torch.ones(n)
        b = a * 2
        return a.sum() + b.sum()

    def one_at_a_time():
        for _ in range(3):
            a = torch.ones(n)
            del a

    with runtime.PeakMemory("cpu") as both:
        two_alive()
    with runtime.PeakMemory("cpu") as single:
        one_at_a_time()
    assert 2 * 4 * n <= both.bytes < 3 * 4 * n
    assert 4 * n <= single.bytes < 2 * 4 * n


def test_cpu_peak_frees_in_time_inside_a_record_function_scope():
    """Optimizer.step runs inside one: temporaries freed one by one must not add up."""
    n = 250_000
    x = torch.randn(n)
    with runtime.PeakMemory("cpu") as meter, torch.profiler.record_function("scope"):
        for _ in range(8):
            y = x.abs()
            del y
    assert 4 * n <= meter.bytes < 2 * 4 * n


def test_backprop_peak_exceeds_no_grad_forward():
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1))
    x = torch.randn(2048, 256)
    with runtime.PeakMemory("cpu") as backprop:
        model(x).sum().backward()
    with runtime.PeakMemory("cpu") as forward, torch.no_grad():
        model(x).sum()
    assert backprop.bytes > forward.bytes >= 2048 * 256 * 4


def test_output_dir_default_and_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.OUTPUT_ENV, str(tmp_path))
    out = runtime.prepare_output_dir("Z9")
    assert out == tmp_path / "Z9" and out.is_dir()
    path = runtime.write_manifest(out, device="cpu", seed=1, profile="smoke")
    text = path.read_text()
    for key in ("torch", "device_name", "git_revision", "seed", "profile"):
        assert f'"{key}"' in text
