"""Benchmark JSON records and the README performance table made from them."""

import json

import pytest
import torch

from beyond_backprop import benchmark_records

ROW = {"setting": "paper preset, 10,000 images", "seconds": 2.5, "beside": "GEMM floor", "beside_seconds": 2.0,
       "ratio": 1.25, "paper": "6.74 s"}


def test_record_holds_environment_and_rows(tmp_path):
    path = benchmark_records.write_record("x_cpu", "dlADMM iteration", [ROW], torch.device("cpu"), tmp_path,
                                          train_size=10000)
    record = json.loads(path.read_text())
    assert path.name == "x_cpu.json"
    assert record["rows"] == [ROW] and record["train_size"] == 10000
    assert record["threads"] == torch.get_num_threads() and record["torch"] == torch.__version__
    assert {"device", "device_name", "git_revision"} <= record.keys()


def test_row_without_a_field_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        benchmark_records.write_record("x", "b", [{"setting": "s", "seconds": 1.0}], torch.device("cpu"), tmp_path)
    assert not list(tmp_path.iterdir())


def test_readme_table_is_made_from_every_record(tmp_path):
    folder = tmp_path / "benchmarks"
    benchmark_records.write_record("a", "dlADMM iteration", [ROW], torch.device("cpu"), folder)
    benchmark_records.write_record("b", "mDLAM iteration", [{**ROW, "setting": "cora", "ratio": 0.5}, ROW],
                                   torch.device("cpu"), folder)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{benchmark_records.README_START}\nold\n{benchmark_records.README_END}\noutro\n")
    assert benchmark_records.update_readme(readme, folder)
    text = readme.read_text()
    lines = [line for line in text.splitlines() if line.startswith("| ") and "iteration" in line]
    assert len(lines) == 3 and lines[0].startswith("| dlADMM iteration | paper preset, 10,000 images | 2.5 |")
    assert "| 1.25 | 6.74 s |" in lines[0] and "| cora |" in lines[1] and "| 0.50 |" in lines[1]
    assert "old" not in text and text.startswith("intro\n") and text.endswith("outro\n")


def test_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    assert not benchmark_records.update_readme(readme, tmp_path)
    assert readme.read_text() == "no markers\n"


def test_readme_lists_the_profile_of_a_profiled_record(tmp_path):
    folder = tmp_path / "benchmarks"
    profile = {"share": {"gemm": 0.75, "elementwise": 0.25}, "costliest_elementwise": {"aten::where": 0.1},
               "large_allocations": 7, "backtracking_trials": [1, 2]}
    benchmark_records.write_record("a", "dlADMM iteration", [ROW], torch.device("cpu"), folder, profile=profile,
                                   peak_memory_bytes=3 * 2**20)
    benchmark_records.write_record("b", "mDLAM iteration", [ROW], torch.device("cpu"), folder)
    lines = benchmark_records.profile_lines(folder)
    assert lines == [("- dlADMM iteration, paper preset, 10,000 images: gemm 75%, elementwise 25%; costliest "
                     "elementwise: where; 7 allocations of at least 1 MiB; backtracking trials per block [1, 2]; "
                     "peak memory 3 MiB")]
