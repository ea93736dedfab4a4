"""Device choice, seeding, timers, the CPU peak-memory meter, user paths and provenance."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

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
    manifest = runtime.environment_manifest(device="cpu", seed=1, profile="smoke")
    for key in ("torch", "device_name", "git_revision", "seed", "profile"):
        assert key in manifest


def git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


def test_only_uncommitted_code_makes_the_revision_dirty(tmp_path):
    for name in ("src/pkg/a.py", "notebooks/A1.ipynb", "reproduce.py", "pyproject.toml", "README.md",
                 "outputs/quick/REPORT.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("v1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "one")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    assert runtime.git_state(tmp_path) == (head, [])
    (tmp_path / "outputs/quick/REPORT.md").write_text("written by a run\n")
    (tmp_path / "outputs/quick/A1").mkdir()
    (tmp_path / "outputs/quick/A1/manifest.json").write_text("{}\n")
    (tmp_path / "README.md").write_text("results block rewritten\n")
    assert runtime.git_state(tmp_path) == (head, []), "files a run writes never make the code dirty"
    (tmp_path / "src/pkg/a.py").write_text("v2\n")
    (tmp_path / "notebooks/B1.ipynb").write_text("new, not committed\n")
    assert runtime.git_state(tmp_path) == (head + "+dirty", ["notebooks/B1.ipynb", "src/pkg/a.py"])
    assert runtime.git_revision(tmp_path) == head + "+dirty"
    with tempfile.TemporaryDirectory() as outside:
        assert runtime.git_state(Path(outside)) == ("unknown", [])


def test_the_manifest_lists_dirty_files():
    manifest = runtime.environment_manifest("cpu", 0)
    assert isinstance(manifest["dirty_files"], list)
    assert manifest["git_revision"].endswith("+dirty") == bool(manifest["dirty_files"])


def test_a_relative_path_is_read_from_where_the_user_typed(tmp_path, monkeypatch):
    typed_in, kernel_cwd = tmp_path / "checkout", tmp_path / "checkout" / "notebooks"
    kernel_cwd.mkdir(parents=True)
    monkeypatch.chdir(kernel_cwd)
    monkeypatch.setenv("PWD", str(typed_in))  # a JupyterLab kernel: cwd is the notebook folder, PWD the shell's
    assert runtime.user_path("../shared/data") == typed_in / "../shared/data"
    assert runtime.user_path("/abs/path") == Path("/abs/path")
    monkeypatch.delenv("PWD")
    assert runtime.user_path("out") == kernel_cwd / "out"
    monkeypatch.setenv("PWD", str(tmp_path / "gone"))
    assert runtime.user_path("out") == kernel_cwd / "out", "a PWD that is no folder is ignored"
    monkeypatch.setenv("PWD", str(typed_in))
    assert runtime.prepare_output_dir("Z9", "my_outputs") == typed_in / "my_outputs"
    monkeypatch.setenv(runtime.OUTPUT_ENV, "runs")
    assert runtime.prepare_output_dir("Z9") == typed_in / "runs" / "Z9"


def test_environment_paths_become_absolute_once(tmp_path, monkeypatch):
    from beyond_backprop.data import sources

    monkeypatch.setenv(sources.DATA_ENV, "../shared/data")
    monkeypatch.setenv(runtime.OUTPUT_ENV, "/already/absolute")
    sources.make_environment_absolute(tmp_path / "checkout")
    assert os.environ[sources.DATA_ENV] == str(tmp_path / "shared" / "data")
    assert os.environ[runtime.OUTPUT_ENV] == "/already/absolute"


def test_peak_memory_on_cpu_prints_no_profiler_lines():
    """kineto writes ``USDT ... profiler_start/stop`` to fd 2 from C++, and the CPU allocator warns there when a
    block from before the profiler is freed inside it; PeakMemory keeps both off the terminal."""
    code = ("import torch\nfrom beyond_backprop.runtime import PeakMemory\nbefore = torch.ones(256, 256)\n"
            "with PeakMemory('cpu') as m:\n    torch.ones(64, 64) @ torch.ones(64, 64)\n    del before\n"
            "import sys\nprint('after', file=sys.stderr)\nprint(m.bytes)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 64 * 64 * 4
    assert "profiler_st" not in done.stderr and "USDT" not in done.stderr and "CPUAllocator" not in done.stderr
    assert done.stderr.strip() == "after", "stderr works again after the block"
