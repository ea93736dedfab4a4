"""reproduce.py --scheduler: Dask runs give the local run's files; faults give one line or an INCOMPLETE report.

Everything listens on 127.0.0.1. Cluster processes are started in their own
sessions and stopped by process id. The smoke notebooks used are the cheapest
(B4, B5, C3 about 10 s each, mostly kernel start; A1 about 20 s where a
notebook must still be running when a worker is killed or Ctrl-C arrives).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

import beyond_backprop
from beyond_backprop import cli

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("BEYOND_BACKPROP_DATA", str(ROOT.parent / "shared" / "data"))
RUN_TIMEOUT_S = 240  # one reproduce.py run of at most three smoke notebooks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(data: bool = True) -> dict[str, str]:
    """This checkout's package, one thread; without ``data``, no data root (a worker that has to be told)."""
    src = str(ROOT / "src")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                   "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    if data:
        return {**environment, "BEYOND_BACKPROP_DATA": DATA}
    environment.pop("BEYOND_BACKPROP_DATA", None)
    return environment


def _reproduce(*args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "reproduce.py", "--profile", "smoke", *args], cwd=ROOT,
                          env=_environment(), capture_output=True, text=True, timeout=timeout)


def _default_interrupt() -> None:
    """Ctrl-C's default in the child: a shell started in the background (``cmd &``, nohup) ignores SIGINT, and a
    child would inherit that, so the interrupt this file sends would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _reproduce_while(action: Callable[[subprocess.Popen], None], *args: str) -> tuple[int, str]:
    """Run reproduce.py at smoke, do ``action`` to it while it runs; its exit code and stderr."""
    process = subprocess.Popen([sys.executable, "reproduce.py", "--profile", "smoke", *args], cwd=ROOT,
                               env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_default_interrupt)
    try:
        action(process)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=_environment(data=False), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started by :func:`_start` and its children (its session), by process id."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the kernels and worker processes left in its session
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def _wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _manifest(folder: Path, notebook_id: str) -> dict:
    return json.loads((folder / notebook_id / "manifest.json").read_text())


class Cluster:
    """A ``dask scheduler`` and two ``dask worker --nthreads 1`` processes on 127.0.0.1.

    The workers have no data root of their own (``--data-dir`` tells them), and
    ``w2`` advertises a GPU (``--resources GPU=1``), as on a GPU machine.
    """

    def __init__(self, folder: Path) -> None:
        from distributed import Client

        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.scheduler = _start("-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                self.address.rsplit(":", 1)[1], "--no-dashboard", cwd=folder)
        self.workers = {name: _start("-m", "dask", "worker", self.address, "--nthreads", "1", "--name", name,
                                     "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder),
                                     *resources, cwd=folder)
                        for name, resources in (("w1", ()), ("w2", ("--resources", "GPU=1")))}
        self.client = Client(self.address, timeout=30)
        self.client.wait_for_workers(2, timeout=60)

    def worker_names(self) -> dict[str, str]:
        """Worker address -> name, for the workers alive now."""
        return {address: info["name"] for address, info in self.client.scheduler_info(n_workers=-1)["workers"].items()}

    def busy(self) -> list[str]:
        """Names of the workers processing a task now."""
        names = self.worker_names()
        return [names[address] for address, keys in self.client.processing().items() if keys and address in names]

    def address_of(self, name: str) -> str:
        return next(address for address, worker in self.worker_names().items() if worker == name)

    def kill(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGKILL)

    def close(self) -> None:
        self.client.close()
        for process in (*self.workers.values(), self.scheduler):
            _stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("distributed")
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: B4, B5 and C3 run locally, without Dask."""
    pytest.importorskip("distributed")
    output = tmp_path_factory.mktemp("local")
    result = _reproduce("B4", "B5", "C3", "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    return output


def _assert_same_layout(reference: Path, output: Path, ids: list[str]) -> None:
    expected = [p for p in _tree(reference) if p.split("/")[0] in ids or p in ("REPORT.md", ".reproduce.lock")]
    assert _tree(output) == expected
    report = (output / "REPORT.md").read_text()
    assert "INCOMPLETE" not in report
    for notebook_id in ids:
        manifest = _manifest(output, notebook_id)
        assert manifest["status"] == "complete"
        assert manifest["host"] == socket.gethostname() and manifest["worker"].startswith("tcp://127.0.0.1:")
        assert manifest["device"] == _manifest(reference, notebook_id)["device"]
        claims = json.loads((output / notebook_id / "claims.json").read_text())["claims"]
        reference_claims = json.loads((reference / notebook_id / "claims.json").read_text())["claims"]
        assert [c["id"] for c in claims] == [c["id"] for c in reference_claims]


def test_local_cluster_writes_the_files_of_a_local_run(local_run, tmp_path):
    result = _reproduce("B4", "B5", "--scheduler", "local:2", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_same_layout(local_run, tmp_path, ["B4", "B5"])
    assert "B4   complete" in result.stdout and "B5   complete" in result.stdout  # the local summary table


def test_scheduler_and_two_workers_write_the_files_of_a_local_run(cluster, local_run, tmp_path):
    result = _reproduce("B4", "B5", "C3", "--scheduler", cluster.address, "--data-dir", DATA,
                        "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_same_layout(local_run, tmp_path, ["B4", "B5", "C3"])
    workers = set(cluster.worker_names())
    assert {_manifest(tmp_path, i)["worker"] for i in ("B4", "B5", "C3")} <= workers


def test_worker_without_the_data_fails_the_notebook_with_the_data_missing_line(cluster, tmp_path):
    result = _reproduce("C3", "--scheduler", cluster.address, "--output", str(tmp_path))
    assert result.returncode == 1
    log = (tmp_path / "logs" / "C3.log").read_text()
    assert log.startswith("C3 needs one of cora") and "dataset 'cora'" in log
    assert "(on worker " in log and len(log.splitlines()) == 1
    assert "C3 needs one of cora" in result.stderr
    assert "INCOMPLETE" in (tmp_path / "REPORT.md").read_text()


def test_notebook_that_wants_a_gpu_goes_to_the_gpu_worker(cluster, tmp_path):
    """B1 wants a GPU: only w2 advertises one. Its CUDA is missing, so it fails there at once, naming the worker."""
    result = _reproduce("B1", "--device", "cuda", "--scheduler", cluster.address, "--output", str(tmp_path))
    assert result.returncode == 1
    manifest = _manifest(tmp_path, "B1")
    assert manifest["worker"] == cluster.address_of("w2")
    assert manifest["status"] == "failed" and "CUDA is not available" in manifest["message"]


def test_version_mismatch_is_one_line_and_exit_2(cluster, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(beyond_backprop, "__version__", "0.0.0+client")
    code = cli.main(["B4", "--profile", "smoke", "--scheduler", cluster.address, "--output", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1
    assert "0.0.0+client" in error and "beyond_backprop 0.1.0" in error
    assert not (tmp_path / "B4").exists()


def test_ctrl_c_cancels_the_tasks_and_leaves_an_incomplete_report(cluster, tmp_path):
    def interrupt(process: subprocess.Popen) -> None:
        _wait_for(cluster.busy, 60, "a notebook to start on a worker")
        time.sleep(1)
        process.send_signal(signal.SIGINT)

    # a million iterations: both notebooks are still running at Ctrl-C, however fast the machine (smoke A1 is 5 s)
    returncode, stderr = _reproduce_while(interrupt, "A1", "A2", "-p", "iterations=1000000",
                                          "--scheduler", cluster.address, "--output", str(tmp_path))
    assert returncode == 130, stderr[-2000:]
    assert "INCOMPLETE" in (tmp_path / "REPORT.md").read_text()
    assert "cancelled" in stderr
    assert _manifest(tmp_path, "A1")["status"] == "failed"
    _wait_for(lambda: cluster.client.run_on_scheduler(lambda dask_scheduler: not dask_scheduler.tasks), 20,
              "the scheduler to forget the cancelled tasks")


def test_killed_worker_is_retried_once_then_the_notebook_fails(cluster, tmp_path):
    """Runs last on the module's cluster: it kills both workers."""
    def kill_twice(process: subprocess.Popen) -> None:
        first = _wait_for(cluster.busy, 60, "A1 to start on a worker")[0]
        time.sleep(1)
        cluster.kill(first)
        second = _wait_for(lambda: [n for n in cluster.busy() if n != first], 30, "A1 to be retried")[0]
        time.sleep(1)
        cluster.kill(second)

    returncode, stderr = _reproduce_while(kill_twice, "A1", "--scheduler", cluster.address, "--output", str(tmp_path))
    assert returncode == 1, stderr[-2000:]
    assert "INCOMPLETE" in (tmp_path / "REPORT.md").read_text()
    assert _manifest(tmp_path, "A1")["status"] == "failed"
    assert "died twice" in (tmp_path / "logs" / "A1.log").read_text()
    assert "died twice" in stderr


def test_unreachable_scheduler_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    from beyond_backprop import distributed as runner

    monkeypatch.setattr(runner, "CONNECT_TIMEOUT_S", 2)
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    code = cli.main(["B4", "--profile", "smoke", "--scheduler", address, "--output", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and time.monotonic() - start < 20
    assert len(error.splitlines()) == 1 and error.startswith(f"error: cannot reach scheduler at {address}: ")


@pytest.mark.parametrize("address, expected", [
    ("local:2", 'pip install -e ".[distributed]"'),
    ("local:0", "local:N with N >= 1"),
    ("nowhere", "tcp://HOST:PORT or local:N"),
])
def test_missing_extra_or_bad_address_is_one_line_and_exit_2(address, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    code = cli.main(["B4", "--profile", "smoke", "--scheduler", address, "--output", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1 and expected in error
    assert not any(tmp_path.iterdir())
