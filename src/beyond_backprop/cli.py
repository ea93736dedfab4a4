"""``reproduce.py``: parse the command line, check everything a run needs, hand the jobs to the engine, report.

Exit codes: 0 when every notebook ran (whatever the verdicts), 1 when a notebook failed, ``--check`` found a
changed verdict or ``--shape-check`` a crash, 2 for bad usage (bad input, missing or corrupt data, an output
folder held by another run), 130 on Ctrl-C. The engine is :mod:`beyond_backprop.pipeline`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from . import pipeline
from .catalogue import CATALOGUE, PROFILES, Entry
from .data.sources import DATA_ENV, make_environment_absolute
from .executed_notebook import strip_machine_paths
from .output_lock import OutputLocked, output_lock
from .pipeline import COMMON_PARAMETERS, KERNEL, Job, Outcome, UsageError, build_parameters, check_data, select
from .report import notebook_state, update_readme, verdict_counts, write_report
from .results import DEMONSTRATED, FAILED, VERDICTS
from .resume import fingerprint, is_complete
from .runtime import DeviceUnavailable, project_root, resolve_device

ROOT = project_root(Path(__file__).resolve().parent)


def print_catalogue() -> None:
    """The catalogue as a table: id, whether its notebook exists, GPU wish, expected minutes, title."""
    print(f"{'id':<4} {'status':<8} {'gpu':<4} {'min (smoke/quick/full)':<23} title")
    for e in CATALOGUE:
        minutes = "/".join(f"{e.minutes[p]:g}" for p in PROFILES)
        print(f"{e.id:<4} {'ready' if pipeline.is_ready(e) else 'planned':<8} {'yes' if e.wants_gpu else '-':<4} "
              f"{minutes:<23} {e.title}")


def print_summary(outcomes: list[Outcome], output: Path, show_verdicts: bool = True) -> None:
    """One line per notebook run (status, minutes, verdict counts), then every error message on stderr."""
    print(f"\n{'id':<4} {'status':<9} {'minutes':>7}  {'verdicts' if show_verdicts else ''}")
    for o in outcomes:
        counts = verdict_counts({o.id: notebook_state(output, o.id)})
        text = ", ".join(f"{counts[v]} {v}" for v in (*VERDICTS, DEMONSTRATED) if counts[v]) or "-"
        print(f"{o.id:<4} {o.status:<9} {o.minutes:>7.2f}  {text if show_verdicts else ''}".rstrip())
    for o in outcomes:
        if o.message:
            print(f"error: {o.message}", file=sys.stderr)


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


def refresh_notebooks(entries: list[Entry], data_dir: str) -> list[Outcome]:
    """Execute the committed notebooks in place at their smoke defaults (for nbval)."""
    import nbformat
    import papermill

    if data_dir:
        os.environ[DATA_ENV] = str(Path(data_dir).resolve())
    outcomes = []
    for e in tqdm(entries, desc="refresh", unit="nb"):
        start = time.perf_counter()
        path = pipeline.notebook_path(e)
        try:
            papermill.execute_notebook(str(path), str(path), kernel_name=KERNEL, cwd=str(path.parent),
                                       progress_bar=False, log_output=False)
            nb = nbformat.read(path, as_version=4)
            strip_machine_paths(nb)
            nbformat.write(nb, path)
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
    """The command line of ``reproduce.py``."""
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
    rerun = p.add_mutually_exclusive_group()
    rerun.add_argument("--resume", action="store_true",
                       help="skip notebooks whose outputs are complete and were made with the same parameters, "
                            "seed, device kind and data checksums; run the rest and rewrite the report")
    rerun.add_argument("--force", action="store_true", help="rerun every selected notebook (the default)")
    p.add_argument("--check", action="store_true",
                   help="rerun into a temporary folder and compare verdicts with outputs/<profile>/")
    p.add_argument("--shape-check", action="store_true",
                   help="run at full data sizes, widths and task lists with loop lengths capped, into a "
                        "temporary folder; catches full-only crashes in minutes (no verdicts reported)")
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
    if args.shape_check and (args.check or args.resume or args.output or args.profile != "quick"):
        raise UsageError("--shape-check runs the full profile, capped, into a temporary folder; "
                         "give it without --profile, --output, --check or --resume")
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


def _device_kind(args: argparse.Namespace) -> str:
    """The device kind the run's fingerprint records: resolved here, or as asked on a cluster."""
    try:
        return resolve_device(args.device).type
    except DeviceUnavailable:  # --scheduler: a worker's device
        return args.device.split(":")[0]


def plan_jobs(args: argparse.Namespace, entries: list[Entry], output: Path,
              overrides: dict[str, str]) -> list[Job]:
    """One job per entry, with its parameters checked and, without a cluster, its data checked and summed."""
    profile = "full" if args.shape_check else args.profile
    parameters = {}
    for e in entries:
        common = {"profile": profile, "device": args.device, "seed": args.seed}
        caps = {k: str(v) for k, v in e.loops.items()} if args.shape_check else {}
        parameters[e.id] = build_parameters(e, profile, common, {**caps, **overrides})
    checksums = {} if args.scheduler else check_data(entries, args.data_dir, args.download, parameters)
    kind = _device_kind(args)
    return [Job(e, pipeline.notebook_path(e), output / e.id, parameters[e.id], progress=args.jobs == 1,
                data_dir=args.data_dir, download=args.download,
                fingerprint=fingerprint(parameters[e.id], kind, checksums.get(e.id, {}))) for e in entries]


def _run(jobs: list[Job], args: argparse.Namespace, output: Path) -> tuple[list[Outcome], bool]:
    """The jobs' outcomes, on the cluster or locally, and whether Ctrl-C stopped a local run."""
    if args.scheduler:
        from .distributed import run_on_cluster

        return run_on_cluster(jobs, args.scheduler, output, args.profile), False
    return pipeline.run_jobs(jobs, args.jobs)


def _output_folder(args: argparse.Namespace) -> Path:
    if args.check or args.shape_check:
        return Path(tempfile.mkdtemp(prefix="reproduce-shape-" if args.shape_check else "reproduce-check-"))
    return Path(args.output) if args.output else ROOT / "outputs" / args.profile


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``reproduce.py`` with ``argv``; the exit code (see the module docstring)."""
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
            print_catalogue()
            return 0
        overrides = _validate(args)
        entries = select(args.notebooks, args.all)
        if args.refresh_notebooks:
            outcomes = refresh_notebooks(entries, args.data_dir)
            for o in outcomes:
                print(f"{o.id:<4} {o.status:<9} {o.minutes:>6.2f} min {o.message}")
            return 1 if any(o.status == FAILED for o in outcomes) else 0
        output = _output_folder(args)
        jobs = plan_jobs(args, entries, output, overrides)
        check_writable(output)
        with output_lock(output):
            return _run_locked(args, jobs, output)
    except (UsageError, OutputLocked) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run_locked(args: argparse.Namespace, jobs: list[Job], output: Path) -> int:
    """Everything after the checks, while this run holds the output folder."""
    skipped = [job for job in jobs if args.resume and is_complete(job.output, job.fingerprint)]
    if skipped:
        print(f"resume: {len(skipped)} notebook(s) complete with the same settings, skipped: "
              f"{', '.join(job.entry.id for job in skipped)}")
    todo = [job for job in jobs if job not in skipped]
    pipeline.thread_environment(args.jobs)
    try:
        outcomes, interrupted = _run(todo, args, output)
    except KeyboardInterrupt:  # the cluster runner has already cancelled its tasks and written the report
        return 130
    failed = any(o.status == FAILED for o in outcomes)
    if args.shape_check:
        print_summary(outcomes, output, show_verdicts=False)
        print(f"shape check: {len(outcomes)} notebooks ran at full sizes with capped loops"
              f"{', ' + str(sum(o.status == FAILED for o in outcomes)) + ' failed' if failed else ''} ({output})")
        return 1 if failed or interrupted else 0
    finished = {o.id for o in outcomes}
    unfinished = [job.entry.id for job in todo if job.entry.id not in finished]
    report = write_report(output, args.profile, unfinished)
    print_summary(outcomes, output)
    print(f"report: {report}")
    if interrupted:
        print(f"interrupted: {', '.join(unfinished)} did not finish; the report is headed INCOMPLETE", file=sys.stderr)
        return 130
    if args.check:
        reference = ROOT / "outputs" / args.profile
        changes = compare_verdicts(reference, output, [job.entry.id for job in jobs])
        for line in changes:
            print(f"changed: {line}")
        print("check: verdicts unchanged" if not changes else f"check: {len(changes)} verdict(s) changed")
        return 1 if changes or failed else 0
    if output.resolve() == (ROOT / "outputs" / "quick").resolve() and not failed:
        update_readme(ROOT / "README.md", output, args.profile)
    return 1 if failed else 0
