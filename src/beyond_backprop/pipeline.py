"""Decide what to run, run it with papermill, and gather the report.

``reproduce.py`` is a thin wrapper over :func:`main`. Exit codes: 0 when every
notebook ran (whatever the verdicts), 1 when a notebook failed or ``--check``
found a changed verdict, 2 for bad usage, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .catalogue import CATALOGUE, PROFILES, Entry, entry
from .data.sources import DATA_ENV, DOWNLOAD_ENV, DataMissing, make_environment_absolute, resolve
from .experiments import run_cache
from .report import update_readme, verdict_counts, notebook_state, write_report
from .results import FAILED, VERDICTS
from .runtime import DeviceUnavailable, environment_manifest, project_root, resolve_device

ROOT = project_root(Path(__file__).resolve().parent)
NOTEBOOKS = ROOT / "notebooks"
COMMON_PARAMETERS = ("profile", "device", "seed", "data_dir", "output_dir")
KERNEL = "python3"
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # read by torch when a kernel imports it


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


@dataclass(frozen=True)
class Job:
    """One notebook to execute: where it comes from, where it goes, with what parameters."""

    entry: Entry
    source: Path
    output: Path
    parameters: dict[str, Any]
    progress: bool


@dataclass(frozen=True)
class Outcome:
    id: str
    status: str
    minutes: float
    message: str = ""


def notebook_path(e: Entry) -> Path:
    return NOTEBOOKS / e.notebook


def is_ready(e: Entry) -> bool:
    return notebook_path(e).is_file()


def declared_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The ``parameters`` cell of a notebook, as papermill reads it."""
    import papermill

    return papermill.inspect_notebook(str(path))


def _convert(name: str, value: Any, declared: dict[str, Any], where: str) -> Any:
    """Convert/check ``value`` against the type declared in the notebook's parameters cell."""
    kind = (declared.get("inferred_type_name") or "None").replace("typing.", "")
    if isinstance(value, str) and kind != "str":
        try:
            value = {"true": True, "false": False}.get(value.lower(), None) if kind == "bool" \
                else ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = None
    checks = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str)}
    base = kind.split("[")[0]
    check = checks.get(base) or {"list": lambda v: isinstance(v, list), "tuple": lambda v: isinstance(v, (list, tuple)),
                                 "dict": lambda v: isinstance(v, dict)}.get(base, lambda v: True)
    if value is None or not check(value):
        raise UsageError(f"{where}: parameter {name!r} expects {kind}, got {value!r}")
    return float(value) if base == "float" else value


def build_parameters(e: Entry, profile: str, common: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Catalogue profile parameters, then the user's ``-p`` overrides, checked against the notebook."""
    declared = declared_parameters(notebook_path(e))
    params: dict[str, Any] = {}
    for source, values in (("catalogue " + e.id + " " + profile, e.parameters(profile)), ("-p", overrides)):
        for name, value in values.items():
            if name not in declared:
                raise UsageError(f"{source}: {e.id} has no parameter {name!r}; "
                                 f"it takes {', '.join(declared)}")
            params[name] = _convert(name, value, declared[name], f"{e.id}")
    missing = [n for n in COMMON_PARAMETERS if n not in declared]
    if missing:
        raise UsageError(f"notebook {e.notebook} lacks the common parameters {', '.join(missing)}")
    return {**params, **common}


def execute(job: Job) -> Outcome:
    """Run one notebook with papermill into ``job.output`` and write its manifest."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    job.output.mkdir(parents=True, exist_ok=True)
    for stale in job.output.iterdir():  # never let an earlier run's files pass for this one
        if stale.is_file():
            stale.unlink()
        else:
            shutil.rmtree(stale)
    start = time.perf_counter()
    status, message = "complete", ""
    try:
        papermill.execute_notebook(
            str(job.source), str(job.output / job.source.name), parameters=job.parameters,
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
    if status == FAILED:
        logs = job.output.parent / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{job.entry.id}.log").write_text(message + "\n\n" + log_text)
        claims = job.output / "claims.json"
        if claims.exists():
            claims.unlink()
    device = job.parameters["device"]
    shown = {k: v for k, v in job.parameters.items() if k not in ("output_dir", "data_dir")}
    manifest = environment_manifest(resolve_device(device), job.parameters["seed"], notebook=job.entry.id,
                                    status=status, minutes=round(minutes, 3), message=message, parameters=shown,
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


def check_data(entries: list[Entry], data_dir: str, download: bool,
               parameters: dict[str, dict[str, Any]] | None = None) -> None:
    """Every dataset an entry requires, and one of those it can run on, must resolve before anything runs.

    ``parameters`` (the run's, by entry id) narrow an entry's ``any_datasets`` to its ``datasets`` parameter;
    without them the notebook's default is used.
    """
    for e in entries:
        for dataset in e.datasets:
            try:
                resolve(dataset, data_dir or None, download)
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
                resolve(dataset, data_dir or None, download)
                break
            except DataMissing as error:
                missing.append(error)
        else:
            raise UsageError(f"{e.id} needs one of {', '.join(wanted)}; none was found: {missing[0]}")


def print_catalogue(profile: str) -> None:
    print(f"{'id':<4} {'status':<8} {'gpu':<4} {'min (smoke/quick/full)':<23} title")
    for e in CATALOGUE:
        minutes = "/".join(f"{e.minutes[p]:g}" for p in PROFILES)
        print(f"{e.id:<4} {'ready' if is_ready(e) else 'planned':<8} {'yes' if e.wants_gpu else '-':<4} "
              f"{minutes:<23} {e.title}")


def print_summary(outcomes: list[Outcome], output: Path) -> None:
    print(f"\n{'id':<4} {'status':<9} {'minutes':>7}  verdicts")
    for o in outcomes:
        counts = verdict_counts({o.id: notebook_state(output, o.id)})
        text = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v]) or "-"
        print(f"{o.id:<4} {o.status:<9} {o.minutes:>7.2f}  {text}")
    for o in outcomes:
        if o.message:
            print(f"error: {o.message}", file=sys.stderr)


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


def thread_environment(workers: int) -> None:
    """Parallel workers: one torch thread per kernel, unless the user set a thread variable.

    Both variables are left alone when either is set: torch follows ``MKL_NUM_THREADS`` when only that is set.
    """
    if workers > 1 and not any(os.environ.get(name) for name in THREAD_ENVS):
        for name in THREAD_ENVS:
            os.environ[name] = "1"


def compare_verdicts(reference: Path, fresh: Path, ids: list[str]) -> list[str]:
    """Differences in verdicts between two output folders, one line each."""
    changes = []
    for notebook_id in ids:
        old = {c["id"]: c["verdict"] for c in notebook_state(reference, notebook_id)["claims"]}
        new = {c["id"]: c["verdict"] for c in notebook_state(fresh, notebook_id)["claims"]}
        for claim_id in sorted(set(old) | set(new)):
            if old.get(claim_id) != new.get(claim_id):
                changes.append(f"{claim_id}: {old.get(claim_id, 'absent')} -> {new.get(claim_id, 'absent')}")
    return changes


def _strip_machine_paths(path: Path) -> None:
    """Drop papermill's absolute input/output paths from a committed notebook's metadata."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for key in ("input_path", "output_path"):
        nb.metadata.get("papermill", {}).pop(key, None)
    nbformat.write(nb, path)


def refresh_notebooks(entries: list[Entry], data_dir: str) -> list[Outcome]:
    """Execute the committed notebooks in place at their smoke defaults (for nbval)."""
    import papermill

    if data_dir:
        os.environ[DATA_ENV] = str(Path(data_dir).resolve())
    outcomes = []
    for e in tqdm(entries, desc="refresh", unit="nb"):
        start = time.perf_counter()
        path = notebook_path(e)
        try:
            papermill.execute_notebook(str(path), str(path), kernel_name=KERNEL, cwd=str(NOTEBOOKS),
                                       progress_bar=False, log_output=False)
            _strip_machine_paths(path)
            outcomes.append(Outcome(e.id, "complete", (time.perf_counter() - start) / 60))
        except Exception as error:  # report every failure, keep refreshing the others
            detail = f"{error.ename}: {error.evalue}" if hasattr(error, "ename") else f"{type(error).__name__}: {error}"
            outcomes.append(Outcome(e.id, FAILED, (time.perf_counter() - start) / 60,
                                    f"{e.id} failed: {detail.strip().splitlines()[0]}"))
    return outcomes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="reproduce.py", description="Regenerate the figures and the claims report of the four papers.")
    p.add_argument("notebooks", nargs="*", help="ids (A1) or notebook names to run")
    p.add_argument("--all", action="store_true", help="run every notebook that exists")
    p.add_argument("--list", action="store_true", help="show the catalogue and exit")
    p.add_argument("--profile", default="quick", choices=PROFILES, help="smoke, quick (default) or full")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--data-dir", default="", help=f"data root (default: ${DATA_ENV}, then ./data)")
    p.add_argument("--download", action="store_true", help="allow downloading missing datasets")
    p.add_argument("--output", default="", help="output folder (default outputs/<profile>/)")
    p.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel (default 1)")
    p.add_argument("--scheduler", default="", metavar="ADDRESS",
                   help="run on a Dask cluster: tcp://HOST:PORT, or local:N for N local workers")
    p.add_argument("--check", action="store_true",
                   help="rerun into a temporary folder and compare verdicts with outputs/<profile>/")
    p.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="override a notebook parameter (repeatable)")
    p.add_argument("--refresh-notebooks", action="store_true",
                   help="execute notebooks/ in place at smoke defaults (the outputs nbval checks)")
    return p


def check_writable(output: Path) -> None:
    """Create ``output`` and write a probe file into it, or raise :class:`UsageError`."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write to the output folder {str(output)!r} ({error.strerror}); "
                         "pass --output with a folder you can write") from None


def _validate(args: argparse.Namespace) -> dict[str, str]:
    if args.jobs < 1:
        raise UsageError(f"invalid --jobs {args.jobs}; expected >= 1")
    if args.scheduler:
        if args.jobs != 1:
            raise UsageError("give --jobs or --scheduler, not both (the cluster's workers set the parallelism)")
        from .distributed import check_scheduler

        check_scheduler(args.scheduler)
    if args.seed < 0:
        raise UsageError(f"invalid --seed {args.seed}; expected >= 0")
    try:
        resolve_device(args.device)
    except DeviceUnavailable as error:
        if not args.scheduler:  # on a cluster, the workers' devices count
            raise UsageError(str(error)) from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.data_dir and not args.scheduler and not Path(args.data_dir).is_dir():  # --scheduler: a worker path
        raise UsageError(f"--data-dir {args.data_dir!r} does not exist; pass a folder laid out like ../shared/data")
    overrides = {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"invalid -p {item!r}; expected NAME=VALUE")
        if name in COMMON_PARAMETERS:
            raise UsageError(f"-p {name} is set by its own option (--{name.replace('_', '-')})")
        overrides[name] = value
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed as one line
        return int(stop.code or 0)
    make_environment_absolute(Path.cwd())  # kernels run elsewhere: read the user's paths from here, once
    if not args.scheduler:  # with --scheduler, --data-dir is a path on the workers
        args.data_dir = os.path.abspath(args.data_dir) if args.data_dir else ""
    args.output = os.path.abspath(args.output) if args.output else ""
    try:
        if args.list:
            print_catalogue(args.profile)
            return 0
        overrides = _validate(args)
        entries = select(args.notebooks, args.all)
        if args.refresh_notebooks:
            outcomes = refresh_notebooks(entries, args.data_dir)
            for o in outcomes:
                print(f"{o.id:<4} {o.status:<9} {o.minutes:>6.2f} min {o.message}")
            return 1 if any(o.status == FAILED for o in outcomes) else 0
        reference = ROOT / "outputs" / args.profile
        output = Path(tempfile.mkdtemp(prefix="reproduce-check-")) if args.check else \
            Path(args.output) if args.output else reference
        jobs = []
        for e in entries:
            common = {"profile": args.profile, "device": args.device, "seed": args.seed,
                      "data_dir": args.data_dir, "output_dir": str(output / e.id)}
            jobs.append(Job(e, notebook_path(e), output / e.id,
                            build_parameters(e, args.profile, common, overrides), progress=args.jobs == 1))
        if not args.scheduler:  # on a cluster, each worker checks its own data
            check_data(entries, args.data_dir, args.download, {job.entry.id: job.parameters for job in jobs})
        check_writable(output)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.download:
        os.environ[DOWNLOAD_ENV] = "1"
    thread_environment(args.jobs)
    try:
        if args.scheduler:
            from .distributed import run_on_cluster

            outcomes = run_on_cluster(jobs, args.scheduler, output, args.profile, args.data_dir)
            interrupted = False
        else:
            outcomes, interrupted = run_jobs(jobs, args.jobs)
    except UsageError as error:  # from the cluster: unreachable, no worker, version mismatch
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the cluster runner has already cancelled its tasks and written the report
        return 130
    finished = {o.id for o in outcomes}
    unfinished = [job.entry.id for job in jobs if job.entry.id not in finished]
    report = write_report(output, args.profile, unfinished)
    print_summary(outcomes, output)
    failed = any(o.status == FAILED for o in outcomes)
    print(f"report: {report}")
    if interrupted:
        print(f"interrupted: {', '.join(unfinished)} did not finish; the report is headed INCOMPLETE", file=sys.stderr)
        return 130
    if args.check:
        changes = compare_verdicts(reference, output, [e.id for e in entries])
        for line in changes:
            print(f"changed: {line}")
        print("check: verdicts unchanged" if not changes else f"check: {len(changes)} verdict(s) changed")
        return 1 if changes or failed else 0
    if output.resolve() == (ROOT / "outputs" / "quick").resolve() and not failed:
        update_readme(ROOT / "README.md", output, args.profile)
    return 1 if failed else 0
