"""Device choice, seeding, timers, peak-memory meters and the environment manifest."""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda")
OUTPUT_ENV = "BEYOND_BACKPROP_OUTPUT"


class DeviceUnavailable(RuntimeError):
    """The requested device cannot be used on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` (or ``cuda:N``) into a usable ``torch.device``.

    ``auto`` picks CUDA when it is available. Asking for CUDA without it raises
    :class:`DeviceUnavailable` with what to do instead.
    """
    if not isinstance(name, str) or (name not in DEVICES and not name.startswith("cuda:")):
        raise ValueError(f"invalid device {name!r}; expected one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"device {name!r} requested but CUDA is not available on this machine; "
            "use --device cpu or --device auto"
        )
    return torch.device(name)


def device_or_exit(parser: argparse.ArgumentParser, name: str) -> torch.device:
    """:func:`resolve_device` for a command-line tool: on a bad or unavailable device, the parser's one-line
    error and exit status 2."""
    try:
        return resolve_device(name)
    except (ValueError, DeviceUnavailable) as error:
        parser.exit(2, f"error: {error}\n")


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed python, numpy and torch; optionally make torch deterministic.

    Returns a CPU ``torch.Generator`` seeded with ``seed`` for code that takes
    explicit randomness.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"invalid seed {seed!r}; expected a non-negative integer")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def synchronize(device: torch.device | str) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Wall-clock timer that synchronises CUDA on entry and exit.

    >>> with Timer("cpu") as t:
    ...     _ = sum(range(10))
    >>> t.seconds >= 0
    True
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.seconds = float("nan")

    def __enter__(self) -> "Timer":
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to the null device for the block.

    Torch's profiler (kineto) writes ``USDT: ... profiler_start`` / ``profiler_stop`` lines to the process's
    stderr from C++ when it starts and stops, whatever the log level, and the CPU allocator warns there (once per
    process) when a block allocated before profiling is freed inside it; a notebook that measures memory in a
    loop printed hundreds of such lines. :class:`PeakMemory` runs its profiled block inside this one.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class PeakMemory:
    """Peak tensor memory allocated inside a block, above the level at entry, in bytes.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``,
    minus ``memory_allocated`` at entry.

    CPU (the stated method): torch's profiler with ``profile_memory=True``
    records every allocation and free of the CPU allocator with its time. The
    running total of these records, in time order, has its maximum reported. Only tensor storage is
    counted, not Python objects or the interpreter; tensors alive before the block are not counted.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.bytes = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._entry = torch.cuda.memory_allocated(self.device)
        else:
            self._profiler = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
            )
            self._quiet = _quiet_stderr()  # the profiler's C++ lines, from its start to its stop
            self._quiet.__enter__()
            self._profiler.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._entry
            return
        try:
            self._profiler.__exit__(*exc)
        finally:
            self._quiet.__exit__(None, None, None)
        # the allocator's own records, in time order: attributing frees to operators would move every
        # free inside a record_function scope (e.g. Optimizer.step) to the end of that scope
        changes = sorted((event.start_ns(), event.nbytes())
                         for event in self._profiler.profiler.kineto_results.events()
                         if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU)
        running = peak = 0
        for _, change in changes:
            running += change
            peak = max(peak, running)
        self.bytes = int(peak)


def project_root(start: Path | None = None) -> Path:
    """The nearest folder above ``start`` (default: cwd) holding ``pyproject.toml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def user_path(path: str | os.PathLike) -> Path:
    """``path`` made absolute; a relative path is read from the folder where the user typed the command.

    That folder is ``$PWD`` when set, else the working folder. Both agree in a shell; a kernel that
    JupyterLab starts runs in the notebook's folder but inherits ``PWD`` from the shell that started
    ``jupyter lab``. ``reproduce.py`` and the pytest configuration turn paths absolute before any kernel
    starts, so kernels they start never need this fallback.
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    typed_in = os.environ.get("PWD", "")
    return (Path(typed_in) if typed_in and Path(typed_in).is_dir() else Path.cwd()) / path


def prepare_output_dir(notebook_id: str, output_dir: str | os.PathLike = "") -> Path:
    """Create and return the folder for one notebook's outputs.

    An empty ``output_dir`` means ``$BEYOND_BACKPROP_OUTPUT/<id>`` when that
    variable is set, else ``<project>/outputs/interactive/<id>``. Relative
    paths are read by :func:`user_path`.
    """
    if str(output_dir):
        path = user_path(output_dir)
    elif os.environ.get(OUTPUT_ENV):
        path = user_path(os.environ[OUTPUT_ENV]) / notebook_id
    else:
        path = project_root() / "outputs" / "interactive" / notebook_id
    path.mkdir(parents=True, exist_ok=True)
    return path


CODE_PATHS = ("src", "notebooks", "reproduce.py", "pyproject.toml")


def git_state(root: Path | None = None) -> tuple[str, list[str]]:
    """The checked-out commit and the uncommitted files under :data:`CODE_PATHS`.

    The revision reads ``<commit>+dirty`` when such files exist. Files a run writes itself
    (``outputs/``, the README's results block) are outside these paths and never make it dirty.
    Outside a git checkout: ``("unknown", [])``.
    """
    root = root or project_root()
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *CODE_PATHS],
                                cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", []
    dirty = sorted(line[3:].split(" -> ")[-1].strip('"') for line in status.splitlines() if line.strip())
    return rev + ("+dirty" if dirty else ""), dirty


def git_revision(root: Path | None = None) -> str:
    """The checked-out commit, with ``+dirty`` for uncommitted code (see :func:`git_state`)."""
    return git_state(root)[0]


def device_name(device: torch.device | str) -> str:
    """A human name for the device: the GPU model, or the CPU and its thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"


def environment_manifest(device: torch.device | str, seed: int, **extra: Any) -> dict[str, Any]:
    """Versions, device, seed, git revision (and uncommitted code files) and time: what a result depends on."""
    import pandas
    import scipy

    revision, dirty_files = git_state()
    manifest: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "platform": platform.platform(),
        "device": str(torch.device(device)),
        "device_name": device_name(device),
        "cuda": torch.version.cuda,
        "seed": seed,
        "git_revision": revision,
        "dirty_files": dirty_files,
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.update(extra)
    return manifest
