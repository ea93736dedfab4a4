"""The execution engine: build a notebook's parameters, check its data, run it with papermill, write its manifest.

No argument parsing here (that is :mod:`beyond_backprop.cli`, as papermill splits ``cli.py`` from
``execute.py``); :mod:`beyond_backprop.distributed` runs the same :func:`execute` on Dask workers.
"""

from __future__ import annotations

import ast
import json
import os
import platform
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from tqdm import tqdm

from .catalogue import CATALOGUE, Entry, entry
from .data.sources import DOWNLOAD_ENV, DataCorrupt, DataMissing, resolve
from .executed_notebook import tidy_executed
from .experiments import run_cache
from .results import FAILED
from .runtime import device_name, environment_manifest, project_root, resolve_device

if TYPE_CHECKING:
    import torch

NOTEBOOKS = project_root(Path(__file__).resolve().parent) / "notebooks"
COMMON_PARAMETERS = ("profile", "device", "seed", "data_dir", "output_dir")
KERNEL = "python3"
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # read by torch when a kernel imports it


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


@dataclass(frozen=True)
class Job:
    """One notebook to execute: where it comes from, where it goes, with what parameters and data.

    ``parameters`` are the notebook's own plus ``profile``, ``device`` and ``seed``; ``data_dir`` and the
    ``output`` folder are injected by :func:`execute`. ``fingerprint`` is what the outputs depend on
    (parameters, device kind, data checksums); ``--resume`` compares it with an earlier run's manifest.
    """

    entry: Entry
    source: Path
    output: Path
    parameters: dict[str, Any]
    progress: bool
    data_dir: str = ""
    download: bool = False
    fingerprint: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How one notebook ended: ``complete`` or ``failed``, its minutes and a one-line message."""

    id: str
    status: str
    minutes: float
    message: str = ""


def notebook_path(e: Entry) -> Path:
    """The committed notebook of a catalogue entry."""
    return NOTEBOOKS / e.notebook


def is_ready(e: Entry) -> bool:
    """Whether the entry's notebook exists (else it is only planned)."""
    return notebook_path(e).is_file()


def executed_name(notebook_id: str) -> str:
    """File name of the executed copy in a notebook's output folder: ``<id>.ipynb``."""
    return f"{notebook_id}.ipynb"


def declared_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The ``parameters`` cell of a notebook, as papermill reads it."""
    import papermill

    return papermill.inspect_notebook(str(path))


_CHECKS = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
           "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
           "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
           "list": lambda v: isinstance(v, list), "tuple": lambda v: isinstance(v, (list, tuple)),
           "dict": lambda v: isinstance(v, dict)}


def convert_parameter(name: str, value: Any, declared: dict[str, Any], where: str) -> Any:
    """Convert/check ``value`` against the type declared in the notebook's parameters cell.

    A bad value raises :class:`UsageError` quoting what was typed: ``expects int, got 'abc'``.
    """
    kind = (declared.get("inferred_type_name") or "None").replace("typing.", "")
    base = kind.split("[")[0]
    typed = value
    if isinstance(value, str) and kind != "str":
        try:
            value = {"true": True, "false": False}.get(value.lower()) if kind == "bool" else ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = None
    if value is None or not _CHECKS.get(base, lambda v: True)(value):
        raise UsageError(f"{where}: parameter {name!r} expects {kind}, got {typed!r}")
    return float(value) if base == "float" else value


def build_parameters(e: Entry, profile: str, common: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Catalogue profile parameters, then the user's ``-p`` overrides, checked against the notebook.

    ``common`` holds ``profile``, ``device`` and ``seed``; the path parameters come from the job.
    """
    declared = declared_parameters(notebook_path(e))
    params: dict[str, Any] = {}
    for source, values in (("catalogue " + e.id + " " + profile, e.parameters(profile)), ("-p", overrides)):
        for name, value in values.items():
            if name not in declared:
                raise UsageError(f"{source}: {e.id} has no parameter {name!r}; "
                                 f"it takes {', '.join(declared)}")
            params[name] = convert_parameter(name, value, declared[name], f"{e.id}")
    missing = [n for n in COMMON_PARAMETERS if n not in declared]
    if missing:
        raise UsageError(f"notebook {e.notebook} lacks the common parameters {', '.join(missing)}")
    return {**params, **common}


@contextmanager
def download_permission(allowed: bool) -> Iterator[None]:
    """Let the kernels started inside this block download missing data, or not (restored afterwards)."""
    before = os.environ.pop(DOWNLOAD_ENV, None)
    if allowed:
        os.environ[DOWNLOAD_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(DOWNLOAD_ENV, None)
        if before is not None:
            os.environ[DOWNLOAD_ENV] = before


def clear_folder(folder: Path) -> None:
    """Create ``folder`` empty: an earlier run's files never pass for this one's."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.is_file():
            stale.unlink()
        else:
            shutil.rmtree(stale)


def execute(job: Job) -> Outcome:
    """Run one notebook with papermill into ``job.output`` and write its manifest."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    clear_folder(job.output)
    executed = job.output / executed_name(job.entry.id)
    start = time.perf_counter()
    status, message = "complete", ""
    try:
        with download_permission(job.download):
            papermill.execute_notebook(
                str(job.source), str(executed),
                parameters={**job.parameters, "data_dir": job.data_dir, "output_dir": str(job.output)},
                kernel_name=KERNEL, cwd=str(job.source.parent), log_output=False,
                progress_bar={"desc": job.entry.id, "leave": False} if job.progress else False,
            )
    except PapermillExecutionError as error:
        status = FAILED
        message = f"{job.entry.id} failed at cell {error.exec_count}: {error.ename}: {error.evalue}"
        log_text = "".join(error.traceback)
    except Exception as error:  # kernel death, missing kernel, ...: the notebook did not finish
        status = FAILED
        message = f"{job.entry.id} failed: {type(error).__name__}: {error}"
        log_text = traceback.format_exc()
    minutes = (time.perf_counter() - start) / 60
    if executed.is_file():
        tidy_executed(executed)
    if status == FAILED:
        logs = job.output.parent / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{job.entry.id}.log").write_text(message + "\n\n" + log_text)
        (job.output / "claims.json").unlink(missing_ok=True)
    device = resolve_device(job.parameters["device"])
    manifest = environment_manifest(device, job.parameters["seed"], device_name=kernel_device_name(device),
                                    notebook=job.entry.id, status=status, minutes=round(minutes, 3),
                                    message=message, parameters=job.parameters, fingerprint=job.fingerprint,
                                    shared_runs=run_cache.read_log(job.output))
    (job.output / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return Outcome(job.entry.id, status, minutes, message)


def select(names: Sequence[str], run_all: bool) -> list[Entry]:
    """The entries named (ids or notebook names), or every ready one with ``--all``."""
    if run_all and names:
        raise UsageError("give notebook ids or --all, not both")
    if not run_all and not names:
        raise UsageError("nothing to run: give notebook ids (see --list) or --all")
    if run_all:
        return [e for e in CATALOGUE if is_ready(e)]
    chosen = []
    for name in names:
        try:
            e = entry(name)
        except KeyError as error:
            raise UsageError(error.args[0]) from None
        if not is_ready(e):
            raise UsageError(f"{e.id} is planned but its notebook {e.notebook} does not exist yet")
        if e not in chosen:
            chosen.append(e)
    return chosen


def _datasets_parameter(e: Entry, parameters: dict[str, Any]) -> list[str] | None:
    """The ``datasets`` a run uses: the injected value, else the notebook's default; None without one."""
    if "datasets" in parameters:
        return parameters["datasets"]
    if not is_ready(e):
        return None
    declared = declared_parameters(notebook_path(e)).get("datasets")
    return ast.literal_eval(declared["default"]) if declared else None


def _checked(e: Entry, dataset: str, data_dir: str, download: bool) -> dict[str, str]:
    """The checksums of one dataset an entry needs; a corrupt file is a :class:`UsageError` (one line)."""
    try:
        return resolve(dataset, data_dir or None, download).checksums()
    except DataCorrupt as error:
        raise UsageError(f"{e.id} needs {dataset}, but {error}") from None


def check_data(entries: list[Entry], data_dir: str, download: bool,
               parameters: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, str]]:
    """Every dataset an entry requires, and one of those it can run on, must resolve and match its checksums
    before anything runs; the checksums of the files each entry's run will read, by entry id.

    ``parameters`` (the run's, by entry id) narrow an entry's ``any_datasets`` to its ``datasets`` parameter;
    without them the notebook's default is used.
    """
    checksums: dict[str, dict[str, str]] = {}
    for e in entries:
        found = checksums.setdefault(e.id, {})
        for dataset in e.datasets:
            try:
                found.update(_checked(e, dataset, data_dir, download))
            except DataMissing as error:
                raise UsageError(f"{e.id} needs {error}") from None
        if not e.any_datasets:
            continue
        chosen = _datasets_parameter(e, (parameters or {}).get(e.id, {})) or e.any_datasets
        wanted = [d for d in e.any_datasets if d in chosen]
        if not wanted:
            raise UsageError(f"{e.id} runs on {', '.join(e.any_datasets)}; its datasets parameter names none of them")
        missing = []
        for dataset in wanted:
            try:
                found.update(_checked(e, dataset, data_dir, download))
            except DataMissing as error:
                missing.append(error)
        if len(missing) == len(wanted):
            raise UsageError(f"{e.id} needs one of {', '.join(wanted)}; none was found: {missing[0]}")
    return checksums


def run_jobs(jobs: list[Job], workers: int) -> tuple[list[Outcome], bool]:
    """Run the jobs; the outcomes of those that finished, and whether Ctrl-C stopped the run."""
    outcomes: list[Outcome] = []
    interrupted = False
    with tqdm(total=len(jobs), desc="notebooks", unit="nb") as bar:
        try:
            if workers == 1:
                for job in jobs:
                    bar.set_postfix_str(job.entry.id)
                    outcomes.append(execute(job))
                    bar.update()
            else:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    futures = [pool.submit(execute, job) for job in jobs]
                    try:
                        for future in as_completed(futures):
                            outcomes.append(future.result())
                            bar.set_postfix_str(outcomes[-1].id)
                            bar.update()
                    except KeyboardInterrupt:
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise
        except KeyboardInterrupt:
            interrupted = True
    order = {job.entry.id: i for i, job in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[o.id]), interrupted


def kernel_threads() -> int | None:
    """The torch threads a kernel started now is given by the thread variables (torch reads ``OMP_NUM_THREADS``
    first), or None when neither is set (torch's default, this process's count)."""
    for name in THREAD_ENVS:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def kernel_device_name(device: torch.device) -> str:
    """:func:`~beyond_backprop.runtime.device_name` as the kernel saw it: on the CPU, with the thread count the
    thread variables gave the kernel (this process may have more)."""
    threads = kernel_threads()
    if device.type != "cpu" or threads is None:
        return device_name(device)
    return f"CPU ({platform.machine()}, {threads} threads)"


def thread_environment(workers: int) -> None:
    """Parallel workers: one torch thread per kernel, unless the user set a thread variable.

    Both variables are left alone when either is set: torch follows ``MKL_NUM_THREADS`` when only that is set.
    """
    if workers > 1 and not any(os.environ.get(name) for name in THREAD_ENVS):
        for name in THREAD_ENVS:
            os.environ[name] = "1"
