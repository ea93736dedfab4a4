"""Runs computed once: the same key is reused bit for bit, a change to anything that determines the run
recomputes it, and each notebook lists the runs it computed or reused."""

import json
import shutil
import threading
import time
from dataclasses import replace

import pandas as pd
import pytest
import torch
from test_pipeline import fixture_catalogue, make_notebook, run  # noqa: F401 (a fixture)

from beyond_backprop import catalogue, data, notebook, pipeline, report
from beyond_backprop.experiments import paper_d, run_cache
from beyond_backprop.optim.dladmm import PAPER
from beyond_backprop.optim.gradient import MLPBuilder

WIDTHS = [6, 5, 5, 3]


def _images(n: int = 30, seed: int = 0) -> data.ImageData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(3, 6, generator=g)[y] + 0.1 * torch.randn(n, 6, generator=g)
    return data.ImageData("fashion-mnist", x, y, x[:9], y[:9], "synthetic blobs")


@pytest.fixture
def counted(monkeypatch):
    """Activate a cache under a temporary output folder; count the runs really computed."""
    computed = []
    original = paper_d.run_history

    def counting(*args, **kwargs):
        computed.append(args[0].options)
        return original(*args, **kwargs)

    monkeypatch.setattr(paper_d, "run_history", counting)
    yield computed
    run_cache.deactivate()


def test_same_key_is_reused_bit_for_bit_and_named_in_the_log(tmp_path, counted):
    run_cache.activate(tmp_path / "D1", "D1")
    first = paper_d.run_dladmm(_images(), WIDTHS, iterations=4)
    run_cache.activate(tmp_path / "D5", "D5")
    second = paper_d.run_dladmm(_images(), WIDTHS, iterations=4)
    assert len(counted) == 1
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert len(list((tmp_path / ".runs").glob("*.json"))) == 1
    log = run_cache.read_log(tmp_path / "D5")
    assert [(r["status"], r["computed_by"]) for r in log] == [("reused", "D1")]
    assert run_cache.read_log(tmp_path / "D1")[0]["status"] == "computed"


@pytest.mark.parametrize("change", [
    {"options": replace(PAPER, rho=1.0)},  # one option
    {"widths": [6, 4, 4, 3]},
    {"images": _images(seed=1)},  # other data of the same shape
    {"images": _images(n=33)},
    {"seed": 1},
    {"iterations": 5},
    {"evaluate_every": 2},
])
def test_a_change_to_what_determines_the_run_recomputes_it(tmp_path, counted, change):
    run_cache.activate(tmp_path / "D1", "D1")
    base = {"images": _images(), "widths": WIDTHS, "options": PAPER, "iterations": 4, "seed": 0,
            "evaluate_every": 1}
    for arguments in (base, {**base, **change}):
        paper_d.run_dladmm(arguments["images"], arguments["widths"], arguments["options"],
                           iterations=arguments["iterations"], seed=arguments["seed"],
                           evaluate_every=arguments["evaluate_every"])
    assert len(counted) == 2
    assert len(list((tmp_path / ".runs").glob("*.json"))) == 2


def test_a_change_to_the_solver_code_changes_the_key(monkeypatch):
    problem = _images().problem(3)
    solver = paper_d.DLADMM(WIDTHS)
    key = run_cache.run_key(solver, problem, iterations=3, seed=0, evaluate_every=1)
    monkeypatch.setattr(run_cache, "code_checksum", lambda modules: "edited")
    assert run_cache.run_key(solver, problem, iterations=3, seed=0, evaluate_every=1) != key


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """The code checksum reads a copy of the package, which a test may edit."""
    copy = tmp_path / run_cache.PACKAGE
    shutil.copytree(run_cache.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(run_cache, "PACKAGE_DIR", copy)
    run_cache.code_checksum.cache_clear()
    yield copy
    run_cache.code_checksum.cache_clear()


def _code_key(solver) -> str:
    run_cache.code_checksum.cache_clear()
    return run_cache.run_key(solver, _images().problem(3), iterations=3, seed=0, evaluate_every=1)["code"]


def _edit(path, text: str = "\n# edited\n") -> None:
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize("module", [
    "optim/dladmm.py",  # the solver's class
    "optim/quadratic_blocks.py",  # imported by it
    "optim/fista.py",  # imported by optim/admm_blocks.py, which it imports
    "models.py", "problem.py", "optim/solver.py",  # every run's
])
def test_editing_a_module_the_solver_depends_on_changes_the_key(package_copy, module):
    solver = paper_d.DLADMM(WIDTHS)
    key = _code_key(solver)
    _edit(package_copy / module)
    assert _code_key(solver) != key


@pytest.mark.parametrize("module", ["optim/frank_wolfe.py", "optim/mdlam.py", "experiments/paper_a.py"])
def test_editing_a_module_the_solver_does_not_import_keeps_the_key(package_copy, module):
    solver = paper_d.DLADMM(WIDTHS)
    key = _code_key(solver)
    _edit(package_copy / module)
    assert _code_key(solver) == key


def test_an_import_inside_a_function_is_a_dependency(package_copy):
    solver = paper_d.DLADMM(WIDTHS)
    _edit(package_copy / "optim/dladmm.py", "\n\ndef _late():\n    from .frank_wolfe import anything\n")
    key = _code_key(solver)
    _edit(package_copy / "optim/frank_wolfe.py")
    assert _code_key(solver) != key


def test_without_an_active_cache_or_a_describable_solver_every_run_is_computed(tmp_path, counted):
    run_cache.deactivate()
    for _ in range(2):
        paper_d.run_dladmm(_images(), WIDTHS, iterations=2)
    assert len(counted) == 2
    assert run_cache.solver_description(paper_d.TorchOptimizer(lambda p: None, "adam", lr=1e-3)) is None


def test_the_gradient_baselines_of_d2_are_cached_like_its_admm_runs(tmp_path, monkeypatch):
    computed = []
    original = paper_d.run_history
    monkeypatch.setattr(paper_d, "run_history", lambda *a, **k: computed.append(a[0]) or original(*a, **k))
    run_cache.activate(tmp_path / "D2", "D2")
    try:
        first = paper_d.accuracy_comparison(_images(), WIDTHS, iterations=2)
        second = paper_d.accuracy_comparison(_images(), WIDTHS, iterations=2)
    finally:
        run_cache.deactivate()
    assert sorted(type(s).__name__ for s in computed) == ["DLADMM", "TaylorADMM"] + ["TorchOptimizer"] * 4
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert len(list((tmp_path / ".runs").glob("*.json"))) == 6


def test_an_mlp_builder_of_other_widths_is_another_run():
    problem = _images().problem(3)

    def key(widths):
        solver = paper_d.TorchOptimizer(MLPBuilder(widths), "adam", lr=1e-3)
        return run_cache.run_key(solver, problem, iterations=2, seed=0, evaluate_every=1)

    assert key((6, 5, 5, 3)) == key((6, 5, 5, 3))
    assert key((6, 5, 5, 3)) != key((6, 4, 4, 3))


def test_reuse_false_always_computes(tmp_path, counted):
    run_cache.activate(tmp_path / "D3", "D3")
    for _ in range(2):
        paper_d.run_dladmm(_images(), WIDTHS, iterations=2, reuse=False)
    assert len(counted) == 2
    assert not (tmp_path / ".runs").exists()


def test_notebooks_side_by_side_compute_a_run_once(tmp_path):
    """Two notebooks (threads here; processes under --jobs) reach the same run together: one computes it while
    the other waits on the run's lock, then reuses the stored history."""
    caches = [run_cache.RunCache(tmp_path / ".runs", tmp_path / name / run_cache.LOG, name) for name in ("D1", "D5")]
    key = {"solver": "a slow run", "iterations": 1, "seed": 0}
    started, computed = threading.Barrier(2), []

    def compute() -> pd.DataFrame:
        computed.append(threading.current_thread().name)
        time.sleep(0.5)  # long enough for the other thread to find the lock held
        return pd.DataFrame({"iteration": [1], "loss": [0.25]})

    def use(cache: run_cache.RunCache) -> None:
        started.wait()
        cache.history(key, compute)

    threads = [threading.Thread(target=use, args=(cache,), name=cache.notebook) for cache in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(computed) == 1
    statuses = sorted(run["status"] for cache in caches for run in cache.used)
    assert statuses == ["computed", "reused"]
    assert all(run["computed_by"] == computed[0] for cache in caches for run in cache.used)


def test_notebook_setup_shares_runs_beside_its_output(tmp_path):
    nb = notebook.setup("D5", profile="smoke", device="cpu", output_dir=str(tmp_path / "D5"))
    try:
        paper_d.run_dladmm(_images(), WIDTHS, iterations=2)
        assert len(list((tmp_path / ".runs").glob("*.json"))) == 1
        assert json.loads((nb.out / run_cache.LOG).read_text())[0]["status"] == "computed"
    finally:
        run_cache.deactivate()


SHARED_RUN = '''from beyond_backprop import catalogue, data, notebook, pipeline, report
from beyond_backprop.experiments import paper_d
import torch
nb = notebook.setup("{id}", profile=profile, device="cpu", seed=seed, output_dir=output_dir)
x = torch.eye(6)[torch.arange(30) % 6] + 0.01 * torch.arange(30.0)[:, None]
y = torch.arange(30) % 3
paper_d.run_dladmm(data.ImageData("fashion-mnist", x, y, x, y, "synthetic"), [6, 5, 5, 3], iterations=2)
'''


@pytest.mark.usefixtures("fixture_catalogue")
def test_the_manifest_names_a_run_reused_from_another_notebook(tmp_path, capsys, monkeypatch):
    notebooks = tmp_path / "notebooks"
    for notebook_id in ("Z1", "Z6"):
        make_notebook(notebooks / f"{notebook_id}_shared.ipynb", SHARED_RUN.format(id=notebook_id))
    entries = tuple(replace(e, notebook=f"{e.id}_shared.ipynb") for e in pipeline.CATALOGUE if e.id in ("Z1", "Z6"))
    for module in (pipeline, report, catalogue):
        monkeypatch.setattr(module, "CATALOGUE", entries)
    output = tmp_path / "out"
    run(capsys, "Z1", "Z6", "--output", str(output), "--profile", "smoke")
    manifests = {i: json.loads((output / i / "manifest.json").read_text()) for i in ("Z1", "Z6")}
    assert [r["status"] for r in manifests["Z1"]["shared_runs"]] == ["computed"]
    assert [(r["status"], r["computed_by"]) for r in manifests["Z6"]["shared_runs"]] == [("reused", "Z1")]
