"""The reproduce CLI: selection, bad input, failures and the report, on tiny fixture notebooks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from beyond_backprop import catalogue, cli, output_lock, pipeline, report
from beyond_backprop.catalogue import Entry
from beyond_backprop.data import DataMissing

PARAMETERS = '''profile: str = "smoke"
device: str = "auto"
seed: int = 0
data_dir: str = ""
output_dir: str = ""
scale: float = 1.0  # a parameter of this notebook
'''

CLAIMS = '''from beyond_backprop import claims, results, runtime
out = runtime.prepare_output_dir("Z1", output_dir)
ledger = claims.ClaimLedger("Z1", profile=profile, device=device)
ledger.add(results.Claim("Z1.1", paper="A", statement="scale is at least one", paper_value="1",
                         measured=scale, rule=results.AtLeast(1.0)))
ledger.save(out)
'''


def make_notebook(path: Path, body: str, with_parameters: bool = True, extra_parameters: str = "") -> None:
    cells = []
    if with_parameters:
        cell = nbformat.v4.new_code_cell(PARAMETERS + extra_parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(autouse=True)
def environment_restored():
    """``reproduce.py`` sets variables for its kernels (one thread per parallel worker, absolute data paths); run
    in-process here, it must not leave them to later tests, whose kernels (nbval's too) would inherit them."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture
def fixture_catalogue(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    make_notebook(notebooks / "Z1_ok.ipynb", CLAIMS)
    make_notebook(notebooks / "Z2_broken.ipynb", "raise RuntimeError('shape mismatch')")
    make_notebook(notebooks / "Z3_no_parameters.ipynb", "print(1)", with_parameters=False)
    make_notebook(notebooks / "Z7_graphs.ipynb", "print(datasets)",
                  extra_parameters='datasets: list = ["cora", "pubmed"]  # graphs to run\n')
    entries = (
        Entry("Z1", "ok", "Z1_ok.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1},
              profiles={"quick": {"scale": 2.0}}),
        Entry("Z2", "broken", "Z2_broken.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1}),
        Entry("Z3", "no parameters", "Z3_no_parameters.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1}),
        Entry("Z4", "planned", "Z4_planned.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1}),
        Entry("Z5", "needs data", "Z1_ok.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1},
              datasets=("pubmed",)),
        Entry("Z6", "second ok", "Z1_ok.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1}),
        Entry("Z7", "graphs", "Z7_graphs.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1},
              any_datasets=("cora", "citeseer", "pubmed")),
    )
    for module in (pipeline, report, catalogue, cli):
        monkeypatch.setattr(module, "CATALOGUE", entries)
    monkeypatch.setattr(pipeline, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setenv("BEYOND_BACKPROP_DATA", str(tmp_path / "nodata"))
    return tmp_path


def run(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv, message", [
    (["Z9"], "unknown notebook 'Z9'"),
    (["Z4"], "planned"),
    ([], "nothing to run"),
    (["Z1", "--all"], "not both"),
    (["Z1", "--profile", "huge"], "invalid choice"),
    (["Z1", "--data-dir", "/nonexistent/folder"], "does not exist"),
    (["Z1", "-p", "scale=abc"], "expects float, got 'abc'"),
    (["Z1", "-p", "speed=2"], "no parameter 'speed'"),
    (["Z1", "-p", "scale"], "expected NAME=VALUE"),
    (["Z1", "--jobs", "0"], "invalid --jobs"),
    (["Z3"], "lacks the common parameters"),
    (["Z5"], "Z5 needs dataset 'pubmed'"),
])
def test_bad_input_is_one_line_and_exit_2(fixture_catalogue, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_cuda_without_a_gpu(fixture_catalogue, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, err = run(capsys, "Z1", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err


def test_parameters_are_merged_and_checked(fixture_catalogue, capsys, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(pipeline, "execute",
                        lambda job: seen.append(job) or pipeline.Outcome(job.entry.id, "complete", 0.0))
    code, _, _ = run(capsys, "Z1", "--output", str(tmp_path / "out"), "--seed", "3")
    assert code == 0
    params = seen[0].parameters
    assert params["scale"] == 2.0 and params["profile"] == "quick" and params["seed"] == 3
    assert seen[0].output.name == "Z1" and "output_dir" not in params and "data_dir" not in params
    code, _, _ = run(capsys, "z1_ok", "--output", str(tmp_path / "out"), "-p", "scale=3", "--profile", "smoke")
    assert seen[1].parameters["scale"] == 3.0 and seen[1].parameters["profile"] == "smoke"


def test_run_ok_and_broken_notebooks_end_to_end(fixture_catalogue, capsys):
    output = fixture_catalogue / "out"
    code, out, err = run(capsys, "Z1", "Z2", "--output", str(output), "--profile", "smoke")
    assert code == 1
    assert "Z2 failed at cell" in err and "RuntimeError: shape mismatch" in err
    claims = json.loads((output / "Z1" / "claims.json").read_text())
    assert claims["claims"][0]["verdict"] == "reproduced"
    assert not (output / "Z2" / "claims.json").exists()
    assert (output / "Z2" / "Z2.ipynb").exists(), "the executed copy of a failed notebook is kept"
    assert "shape mismatch" in (output / "Z2" / "Z2.ipynb").read_text(), "with its error"
    assert "shape mismatch" in (output / "logs" / "Z2.log").read_text()
    text = (output / "REPORT.md").read_text()
    assert "INCOMPLETE" in text and "| Z2 | broken | failed |" in text
    assert "Z1.1" in text and "**reproduced**" in text
    manifest = json.loads((output / "Z1" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["parameters"]["profile"] == "smoke"


def test_check_reports_a_changed_verdict(fixture_catalogue, capsys, monkeypatch):
    reference = fixture_catalogue / "outputs" / "quick"
    code, _, _ = run(capsys, "Z1", "--output", str(reference))
    assert code == 0
    code, out, _ = run(capsys, "Z1", "--check")
    assert code == 0 and "verdicts unchanged" in out
    code, out, _ = run(capsys, "Z1", "--check", "-p", "scale=0.5")
    assert code == 1 and "Z1.1: reproduced -> not reproduced" in out


def test_readme_table_is_generated_between_markers(fixture_catalogue, tmp_path):
    output = tmp_path / "o"
    (output / "Z1").mkdir(parents=True)
    (output / "Z1" / "manifest.json").write_text(json.dumps({"status": "complete"}))
    (output / "Z1" / "claims.json").write_text(json.dumps({"claims": [
        {"id": "Z1.1", "statement": "s", "paper_value": "1", "measured": 2.0, "unit": "", "verdict": "reproduced"}]}))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nend\n")
    assert report.update_readme(readme, output, "quick")
    text = readme.read_text()
    assert "| Z1.1 | paper | s | - | 1 | 2 | reproduced |" in text and "old" not in text and text.endswith("end\n")


def test_real_catalogue_entries_match_their_notebooks():
    """Every ready notebook declares the common parameters and accepts its profile overrides."""
    for entry in catalogue.CATALOGUE:
        if not pipeline.is_ready(entry):
            continue
        for profile in ("quick", "full"):
            common = {"profile": profile, "device": "cpu", "seed": 0}
            pipeline.build_parameters(entry, profile, common, {})
        assert entry.loops, f"{entry.id} names no loop-length parameter for --shape-check"
        pipeline.build_parameters(entry, "full", {"profile": "full", "device": "cpu", "seed": 0},
                                  {k: str(v) for k, v in entry.loops.items()})  # every cap names a parameter


def fake_execute(job: pipeline.Job) -> pipeline.Outcome:
    """What a successful notebook leaves behind: a manifest and one reproduced claim."""
    job.output.mkdir(parents=True, exist_ok=True)
    (job.output / "manifest.json").write_text(json.dumps({"status": "complete", "minutes": 0.0}))
    (job.output / "claims.json").write_text(json.dumps({"claims": [
        {"id": f"{job.entry.id}.1", "statement": "s", "paper_value": "1", "measured": 1.0, "unit": "",
         "rule": ">= 1", "reason": "1 >= 1", "verdict": "reproduced"}]}))
    return pipeline.Outcome(job.entry.id, "complete", 0.0)


def test_relative_paths_are_read_from_the_folder_where_the_command_was_typed(fixture_catalogue, capsys, monkeypatch):
    typed_in = fixture_catalogue / "elsewhere" / "deeper"
    typed_in.mkdir(parents=True)
    (fixture_catalogue / "elsewhere" / "mydata").mkdir()
    monkeypatch.chdir(typed_in)
    monkeypatch.setenv("BEYOND_BACKPROP_DATA", "../mydata")
    seen = []
    monkeypatch.setattr(pipeline, "execute", lambda job: seen.append(job) or fake_execute(job))
    code, _, _ = run(capsys, "Z1", "--data-dir", "../mydata", "--output", "out")
    assert code == 0
    mydata = str(fixture_catalogue / "elsewhere" / "mydata")
    assert os.environ["BEYOND_BACKPROP_DATA"] == mydata, "kernels inherit the absolute data root"
    assert seen[0].data_dir == mydata
    assert seen[0].output == typed_in / "out" / "Z1"
    assert (typed_in / "out" / "REPORT.md").is_file()


def test_an_output_folder_that_cannot_be_written_is_one_line_and_exit_2(fixture_catalogue, capsys, monkeypatch):
    blocker = fixture_catalogue / "somefile"
    blocker.write_text("a file, not a folder")
    monkeypatch.setattr(pipeline, "execute", lambda job: pytest.fail("no notebook may start"))
    code, out, err = run(capsys, "Z1", "--output", str(blocker / "sub"))
    assert code == 2 and "cannot write to the output folder" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


def test_ctrl_c_writes_an_incomplete_report_and_a_rerun_completes(fixture_catalogue, capsys, monkeypatch):
    output = fixture_catalogue / "out"
    monkeypatch.setattr(pipeline, "execute", fake_execute)
    assert run(capsys, "Z1", "Z6", "--output", str(output))[0] == 0
    calls = []

    def interrupted_at_second(job):
        calls.append(job.entry.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fake_execute(job)

    monkeypatch.setattr(pipeline, "execute", interrupted_at_second)
    code, _, err = run(capsys, "Z1", "Z6", "--output", str(output))
    assert code == 130 and "Z6 did not finish" in err
    text = (output / "REPORT.md").read_text()
    assert text.splitlines()[2].startswith("**INCOMPLETE: interrupted; 1 notebook(s) did not finish (Z6)")
    assert "| Z6 | second ok | did not finish |" in text and "Z6.1" not in text, "an earlier run's claims do not count"
    monkeypatch.setattr(pipeline, "execute", fake_execute)
    assert run(capsys, "Z1", "Z6", "--output", str(output))[0] == 0
    text = (output / "REPORT.md").read_text()
    assert "INCOMPLETE" not in text and "Z6.1" in text


@pytest.mark.parametrize("present, argv, message", [
    (set(), [], "Z7 needs one of cora, pubmed; none was found: dataset 'cora'"),
    ({"citeseer"}, [], "Z7 needs one of cora, pubmed; none was found"),
    ({"cora"}, ["-p", "datasets=['citeseer']"], "Z7 needs one of citeseer; none was found: dataset 'citeseer'"),
    ({"cora"}, ["-p", "datasets=['mnist']"], "its datasets parameter names none of them"),
])
def test_a_graph_notebook_without_any_of_its_graphs_is_one_line_and_exit_2(
        fixture_catalogue, capsys, monkeypatch, present, argv, message):
    monkeypatch.setattr(pipeline, "resolve", fake_resolve(present))
    monkeypatch.setattr(pipeline, "execute", lambda job: pytest.fail("no notebook may start"))
    code, out, err = run(capsys, "Z7", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("present", [{"cora"}, {"pubmed"}, {"cora", "citeseer", "pubmed"}])
def test_a_graph_notebook_runs_on_the_graphs_it_finds(fixture_catalogue, capsys, monkeypatch, present):
    monkeypatch.setattr(pipeline, "resolve", fake_resolve(present))
    monkeypatch.setattr(pipeline, "execute", fake_execute)
    assert run(capsys, "Z7", "--output", str(fixture_catalogue / "out"))[0] == 0


def fake_resolve(present: set[str]):
    def resolve(name, data_dir=None, download=False):
        if name not in present:
            raise DataMissing(f"dataset {name!r} ({name}) not found. Looked in $BEYOND_BACKPROP_DATA: /x/{name}")
        return FakeResolved(name)
    return resolve


class FakeResolved:
    """A found dataset whose single file sums to its name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def checksums(self) -> dict[str, str]:
        return {f"{self.name}/file": self.name}


THREADS = '''import torch
from beyond_backprop import claims, results, runtime
out = runtime.prepare_output_dir("Z8", output_dir)
ledger = claims.ClaimLedger("Z8", profile=profile, device=device)
ledger.add(results.Claim("Z8.1", paper="A", statement="torch threads in this kernel", paper_value="1",
                         measured=torch.get_num_threads(), rule=results.AtMost(1)))
ledger.save(out)
'''


@pytest.mark.parametrize("user_threads, expected", [(None, 1), ("2", 2)])
def test_kernels_of_parallel_workers_see_one_torch_thread_unless_the_user_chose(
        fixture_catalogue, capsys, monkeypatch, user_threads, expected):
    make_notebook(fixture_catalogue / "notebooks" / "Z8_threads.ipynb", THREADS)
    entries = tuple(Entry(i, "threads", "Z8_threads.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1})
                    for i in ("Z8", "Z9"))
    for module in (pipeline, report, catalogue, cli):
        monkeypatch.setattr(module, "CATALOGUE", entries)
    for name in pipeline.THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)
    if user_threads:
        monkeypatch.setenv("OMP_NUM_THREADS", user_threads)
    output = fixture_catalogue / "out"
    assert run(capsys, "Z8", "Z9", "--jobs", "2", "--output", str(output), "--device", "cpu")[0] == 0
    for notebook_id in ("Z8", "Z9"):
        assert json.loads((output / notebook_id / "claims.json").read_text())["claims"][0]["measured"] == expected
        manifest = json.loads((output / notebook_id / "manifest.json").read_text())
        assert manifest["device_name"].endswith(f", {expected} threads)")  # the kernel's threads, not the runner's


def test_parallel_workers_get_one_thread_unless_the_user_chose(fixture_catalogue, capsys, monkeypatch):
    for name in pipeline.THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)
    pipeline.thread_environment(1)
    assert all(name not in os.environ for name in pipeline.THREAD_ENVS)
    pipeline.thread_environment(2)
    assert all(os.environ[name] == "1" for name in pipeline.THREAD_ENVS)
    for name in pipeline.THREAD_ENVS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    pipeline.thread_environment(2)
    assert os.environ["OMP_NUM_THREADS"] == "2" and "MKL_NUM_THREADS" not in os.environ


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_a_corrupt_data_file_is_one_line_and_exit_2_before_any_notebook_starts(fixture_catalogue, capsys, monkeypatch):
    source = SHARED_DATA / "planetoid"
    if not (source / "ind.cora.x").is_file():
        pytest.skip("needs ../shared/data/planetoid")
    copy = fixture_catalogue / "data" / "planetoid"
    copy.mkdir(parents=True)
    for path in source.glob("ind.cora.*"):
        (copy / path.name).write_bytes(path.read_bytes())
    corrupt = bytearray((copy / "ind.cora.x").read_bytes())
    corrupt[len(corrupt) // 2] ^= 0x01
    (copy / "ind.cora.x").write_bytes(bytes(corrupt))
    monkeypatch.setenv("BEYOND_BACKPROP_DATA", str(fixture_catalogue / "data"))
    monkeypatch.setattr(pipeline, "execute", lambda job: pytest.fail("no notebook may start"))
    code, out, err = run(capsys, "Z7", "--output", str(fixture_catalogue / "out"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in out + err
    assert err.startswith("error: Z7 needs cora, but planetoid/ind.cora.x has sha256 ")
    assert "replace the file with a good copy" in err


def test_a_second_run_into_a_held_output_folder_is_one_line_and_exit_2(fixture_catalogue, capsys, monkeypatch):
    output = fixture_catalogue / "out"
    output.mkdir()
    monkeypatch.setattr(pipeline, "execute", lambda job: pytest.fail("no notebook may start"))
    with output_lock.output_lock(output):
        code, out, err = run(capsys, "Z1", "--output", str(output))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"in use by another reproduce.py run (pid {os.getpid()})" in err


def test_a_lock_left_by_a_dead_run_is_taken_over(fixture_catalogue, capsys, monkeypatch):
    output = fixture_catalogue / "out"
    output.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (output / output_lock.LOCK_NAME).write_text(dead.stdout)
    monkeypatch.setattr(pipeline, "execute", fake_execute)
    assert run(capsys, "Z1", "--output", str(output))[0] == 0
    with output_lock.output_lock(output):  # released at the end of the run
        pass


def test_the_lock_holds_across_processes(tmp_path):
    """flock conflicts between processes, and dies with its holder."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom beyond_backprop.output_lock import output_lock\n"
                               f"with output_lock({str(tmp_path)!r}):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(output_lock.OutputLocked, match=f"pid {holder.pid}"):
            with output_lock.output_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with output_lock.output_lock(tmp_path):  # the dead holder's lock is taken over
        pass


def fingerprinted_execute(calls: list[str]):
    """A fast stand-in for papermill that leaves what a real run leaves: manifest (status, fingerprint), claims."""
    def execute(job):
        calls.append(job.entry.id)
        pipeline.clear_folder(job.output)
        status = "failed" if job.entry.id == "Z2" else "complete"
        (job.output / "manifest.json").write_text(json.dumps(
            {"status": status, "minutes": 0.0, "git_revision": "abc1234", "fingerprint": job.fingerprint}))
        if status == "complete":
            (job.output / "claims.json").write_text(json.dumps({"claims": []}))
        return pipeline.Outcome(job.entry.id, status, 0.0)
    return execute


def test_resume_skips_complete_notebooks_and_reruns_the_rest(fixture_catalogue, capsys, monkeypatch):
    output = str(fixture_catalogue / "out")
    calls: list[str] = []
    monkeypatch.setattr(pipeline, "execute", fingerprinted_execute(calls))
    assert run(capsys, "Z1", "Z2", "Z6", "--output", output)[0] == 1
    assert calls == ["Z1", "Z2", "Z6"]
    calls.clear()
    code, out, _ = run(capsys, "Z1", "Z2", "Z6", "--output", output, "--resume")
    assert calls == ["Z2"], "complete ones are skipped, a failed one is rerun"
    assert "skipped: Z1, Z6" in out and code == 1
    assert "| Z1 | ok | complete |" in (fixture_catalogue / "out" / "REPORT.md").read_text(), "the report covers all"
    calls.clear()
    (fixture_catalogue / "out" / "Z6" / "claims.json").unlink()
    run(capsys, "Z1", "Z6", "--output", output, "--resume")
    assert calls == ["Z6"], "a missing claims.json is rerun"
    calls.clear()
    run(capsys, "Z1", "Z6", "--output", output, "--resume", "-p", "scale=3")
    assert calls == ["Z1", "Z6"], "a changed parameter reruns"
    calls.clear()
    run(capsys, "Z1", "Z6", "--output", output, "--resume", "-p", "scale=3", "--seed", "1")
    assert calls == ["Z1", "Z6"], "a changed seed reruns"
    calls.clear()
    run(capsys, "Z1", "Z6", "--output", output, "--force", "-p", "scale=3", "--seed", "1")
    assert calls == ["Z1", "Z6"], "--force reruns regardless"


def test_resume_reruns_when_the_data_or_the_device_kind_changed(fixture_catalogue, capsys, monkeypatch):
    output = str(fixture_catalogue / "out")
    calls: list[str] = []
    monkeypatch.setattr(pipeline, "execute", fingerprinted_execute(calls))
    monkeypatch.setattr(pipeline, "resolve", fake_resolve({"cora"}))
    run(capsys, "Z7", "--output", output)
    run(capsys, "Z7", "--output", output, "--resume")
    assert calls == ["Z7"]
    monkeypatch.setattr(FakeResolved, "checksums", lambda self: {f"{self.name}/file": "changed"})
    run(capsys, "Z7", "--output", output, "--resume")
    assert calls == ["Z7", "Z7"], "a changed data checksum reruns"
    monkeypatch.setattr(cli, "_device_kind", lambda args: "cuda")
    run(capsys, "Z7", "--output", output, "--resume")
    assert calls == ["Z7", "Z7", "Z7"], "another device kind reruns"


def test_an_interrupted_resumable_run_loses_only_the_notebook_in_flight(fixture_catalogue, capsys, monkeypatch):
    output = str(fixture_catalogue / "out")
    calls: list[str] = []
    complete = fingerprinted_execute(calls)

    def interrupted_at_z6(job):
        if job.entry.id == "Z6":
            pipeline.clear_folder(job.output)  # as execute does before papermill starts
            raise KeyboardInterrupt
        return complete(job)

    monkeypatch.setattr(pipeline, "execute", interrupted_at_z6)
    assert run(capsys, "Z1", "Z6", "--output", output)[0] == 130
    monkeypatch.setattr(pipeline, "execute", complete)
    calls.clear()
    assert run(capsys, "Z1", "Z6", "--output", output, "--resume")[0] == 0
    assert calls == ["Z6"]


def test_resume_skips_a_notebook_that_papermill_really_ran(fixture_catalogue, capsys, monkeypatch):
    """The manifest a real run writes (JSON: tuples as lists, floats) compares equal to the next run's plan."""
    output = fixture_catalogue / "out"
    assert run(capsys, "Z1", "--output", str(output), "--profile", "smoke")[0] == 0
    monkeypatch.setattr(pipeline, "execute", lambda job: pytest.fail(f"{job.entry.id} is complete"))
    code, out, _ = run(capsys, "Z1", "--output", str(output), "--profile", "smoke", "--resume")
    assert code == 0 and "skipped: Z1" in out


def test_the_report_lists_the_revisions_when_outputs_come_from_several(fixture_catalogue, tmp_path):
    for notebook_id, revision in (("Z1", "aaa1111"), ("Z6", "bbb2222"), ("Z7", "aaa1111")):
        (tmp_path / notebook_id).mkdir()
        (tmp_path / notebook_id / "manifest.json").write_text(
            json.dumps({"status": "complete", "git_revision": revision}))
    text = report.render_report(tmp_path, "full")
    assert "**Revisions: these outputs come from 2 git revisions: `aaa1111` (Z1, Z7); `bbb2222` (Z6).**" in text
    (tmp_path / "Z6" / "manifest.json").write_text(json.dumps({"status": "complete", "git_revision": "aaa1111"}))
    assert "Revisions" not in report.render_report(tmp_path, "full")


def test_shape_check_runs_the_full_profile_with_capped_loops_into_a_temporary_folder(
        fixture_catalogue, capsys, monkeypatch):
    capped = Entry("Z1", "ok", "Z1_ok.ipynb", minutes={"smoke": 0.1, "quick": 0.1, "full": 0.1},
                   profiles={"full": {"scale": 50.0}}, loops={"scale": 1.5})
    entries = (capped, *[e for e in catalogue.CATALOGUE if e.id != "Z1"])
    for module in (pipeline, report, catalogue, cli):
        monkeypatch.setattr(module, "CATALOGUE", entries)
    seen = []
    monkeypatch.setattr(pipeline, "execute", lambda job: seen.append(job) or fake_execute(job))
    code, out, _ = run(capsys, "Z1", "Z6", "--shape-check")
    assert code == 0 and "shape check: 2 notebooks ran" in out
    assert seen[0].parameters["scale"] == 1.5 and seen[0].parameters["profile"] == "full"
    assert "reproduced" not in out, "a shape run's verdicts are not results"
    assert not (fixture_catalogue / "outputs").exists(), "nothing is written under outputs/"
    assert seen[0].output.parent.name.startswith("reproduce-shape-")


def test_shape_check_fails_on_a_crash_and_refuses_an_output_folder(fixture_catalogue, capsys):
    code, out, err = run(capsys, "Z1", "Z2", "--shape-check")
    assert code == 1 and "shape check: 2 notebooks ran" in out and "1 failed" in out
    assert "Z2 failed at cell" in err
    code, _, err = run(capsys, "Z1", "--shape-check", "--output", str(fixture_catalogue / "outputs" / "full"))
    assert code == 2 and "temporary folder" in err
