"""Run the catalogue on a Dask cluster: ``reproduce.py --scheduler ADDRESS``.

Each notebook is one Dask task. A worker runs it with :func:`pipeline.execute`
in a temporary folder and sends every file back as bytes; the client writes
them under its output folder exactly as a local run lays them out, so workers
need no shared filesystem. A worker needs the package (same version, same
torch) and the data; ``--data-dir`` is a path on the workers.

Faults: a notebook whose worker dies is retried once on another worker, then
marked failed; Ctrl-C cancels the outstanding tasks and leaves an INCOMPLETE
report; an unreachable scheduler or a version mismatch is one line, exit 2.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm import tqdm

import beyond_backprop

from .pipeline import Job, Outcome, UsageError, check_data, execute
from .report import write_report
from .results import FAILED
from .runtime import DeviceUnavailable, resolve_device

CONNECT_TIMEOUT_S = 10
INSTALL = 'pip install -e ".[distributed]"'
LOCAL = "local:"
#: Worker deaths after which a notebook is marked failed (the scheduler's allowed-failures):
#: the first death retries it once on another worker.
ALLOWED_FAILURES = 1

Files = dict[str, bytes]  # path relative to the output folder -> content


def check_scheduler(address: str) -> None:
    """Fail fast, in one line, on a malformed ``--scheduler`` or a missing ``distributed`` extra."""
    if address.startswith(LOCAL):
        count = address[len(LOCAL):]
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"invalid --scheduler {address!r}; expected local:N with N >= 1 workers")
    elif "://" not in address and ":" not in address:
        raise UsageError(f"invalid --scheduler {address!r}; expected tcp://HOST:PORT or local:N")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(f"--scheduler needs Dask's distributed scheduler; install it with: {INSTALL}") from None


def versions() -> dict[str, str]:
    """What a worker must share with the client: the package and torch versions."""
    return {"beyond_backprop": beyond_backprop.__version__, "torch": torch.__version__}


def _mismatch(expected: dict[str, str], found: dict[str, str], where: str) -> str:
    """One line naming both versions of the first package that differs, or ``""``."""
    for name, version in expected.items():
        if found.get(name) != version:
            return (f"{where} runs {name} {found.get(name)} but the client runs {name} {version}; "
                    "install the same on both")
    return ""


def failure_files(job: Job, message: str, where: dict[str, str], minutes: float = 0.0) -> Files:
    """The manifest and log of a notebook that failed without producing its own."""
    manifest = {"notebook": job.entry.id, "status": FAILED, "minutes": round(minutes, 3), "message": message,
                "seed": job.parameters["seed"], "parameters": job.parameters, "fingerprint": job.fingerprint,
                **where}
    return {f"{job.entry.id}/manifest.json": (json.dumps(manifest, indent=2) + "\n").encode(),
            f"logs/{job.entry.id}.log": (message + "\n").encode()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _read_tree(root: Path) -> Files:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_notebook(job: Job, notebook: bytes, client_versions: dict[str, str]) -> tuple[Outcome, Files]:
    """Worker side: run one notebook in a temporary folder; return its outcome and files.

    ``job.data_dir`` is a path on this worker; ``job.output`` is replaced by the temporary folder.
    """
    from distributed import get_worker

    where = {"host": socket.gethostname(), "worker": get_worker().address}
    with tempfile.TemporaryDirectory(prefix="beyond-backprop-") as folder:
        root = Path(folder)
        source = root / "notebooks" / job.source.name
        source.parent.mkdir()
        source.write_bytes(notebook)
        output = root / "output"
        job = replace(job, source=source, output=output / job.entry.id, progress=False)
        message = _mismatch(client_versions, versions(), f"worker {where['host']}")
        try:
            resolve_device(job.parameters["device"])
            check_data([job.entry], job.data_dir, job.download, {job.entry.id: job.parameters})
        except DeviceUnavailable as error:
            message = message or f"{job.entry.id} on worker {where['host']}: {error}"
        except UsageError as error:  # "<id> needs <dataset> ...", the DataMissing line
            message = message or f"{error} (on worker {where['host']})"
        if message:
            return Outcome(job.entry.id, FAILED, 0.0, message), failure_files(job, message, where)
        outcome = execute(job)
        manifest_path = job.output / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest_path.write_text(json.dumps({**manifest, **where}, indent=2, default=str) + "\n")
        return outcome, _read_tree(output)


def write_files(output: Path, notebook_id: str, files: Files) -> None:
    """Write one notebook's returned files under ``output``, replacing an earlier run's."""
    shutil.rmtree(output / notebook_id, ignore_errors=True)
    for relative, content in files.items():
        path = output / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


@contextmanager
def connect(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address``, or for a new ``LocalCluster`` with ``local:N``."""
    from distributed import Client, LocalCluster

    if address.startswith(LOCAL):
        with LocalCluster(n_workers=int(address[len(LOCAL):]), threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise UsageError(f"cannot reach scheduler at {address}: {_first_line(error)}") from None
    with client:
        yield client


def _set_allowed_failures(dask_scheduler: Any, count: int) -> None:
    dask_scheduler.allowed_failures = count


def check_workers(client: Any, address: str) -> bool:
    """Wait for a worker, check every worker's versions; True when some worker advertises a GPU."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise UsageError(f"no worker joined the scheduler at {address} within {CONNECT_TIMEOUT_S} s; "
                         f"start one with: dask worker {address} --nthreads 1") from None
    try:
        found = client.run(versions)
    except ImportError as error:
        raise UsageError(f"a worker cannot import beyond_backprop ({error}); install the package on every worker") \
            from None
    for worker, worker_versions in sorted(found.items()):
        message = _mismatch(versions(), worker_versions, f"worker {worker}")
        if message:
            raise UsageError(message)
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any(w.get("resources", {}).get("GPU") for w in workers)


def _failed(job: Job, error: BaseException, minutes: float) -> tuple[Outcome, Files]:
    """A task that raised on the client side: its worker died twice, or it raised twice."""
    from distributed import KilledWorker

    reason = "its worker died twice (once retried)" if isinstance(error, KilledWorker) else \
        f"{type(error).__name__}: {_first_line(error)}"
    message = f"{job.entry.id} failed: {reason}"
    return Outcome(job.entry.id, FAILED, minutes, message), failure_files(job, message, {}, minutes)


def run_on_cluster(jobs: list[Job], address: str, output: Path, profile: str) -> list[Outcome]:
    """Run ``jobs`` as Dask tasks and write their files under ``output``; outcomes in job order.

    Each job's ``data_dir`` is a path on the workers, and its ``download`` permission travels with it.
    On Ctrl-C the outstanding tasks are cancelled, marked failed, the report
    is written (INCOMPLETE) and ``KeyboardInterrupt`` propagates.
    """
    from distributed import as_completed

    outcomes: dict[str, Outcome] = {}
    futures: dict[Any, Job] = {}
    with connect(address) as client:
        try:
            client.run_on_scheduler(_set_allowed_failures, count=ALLOWED_FAILURES)
            gpus = check_workers(client, address)
            start = time.perf_counter()
            futures.update({client.submit(run_notebook, job, job.source.read_bytes(), versions(),
                                          key=f"notebook-{job.entry.id}-{uuid.uuid4().hex}",
                                          resources={"GPU": 1} if gpus and job.entry.wants_gpu else None,
                                          retries=1): job for job in jobs})
            with tqdm(total=len(jobs), desc="notebooks", unit="nb") as bar:
                for future in as_completed(futures):
                    job = futures[future]
                    try:
                        outcome, files = future.result()
                    except Exception as error:  # the worker died twice, or the task raised twice
                        outcome, files = _failed(job, error, (time.perf_counter() - start) / 60)
                    write_files(output, job.entry.id, files)
                    outcomes[job.entry.id] = outcome
                    bar.set_postfix_str(job.entry.id)
                    bar.update()
        except KeyboardInterrupt:
            client.cancel(list(futures))
            for job in jobs:
                if job.entry.id not in outcomes:
                    message = f"{job.entry.id} cancelled by Ctrl-C"
                    write_files(output, job.entry.id, failure_files(job, message, {}))
            write_report(output, profile)
            print(f"interrupted: cancelled {len(jobs) - len(outcomes)} notebook(s); "
                  f"the report {output / 'REPORT.md'} is INCOMPLETE", file=sys.stderr)
            raise
    return [outcomes[job.entry.id] for job in jobs]
