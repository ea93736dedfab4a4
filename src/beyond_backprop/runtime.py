"""Device choice, seeding, timers, peak-memory meters and the environment manifest."""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


class PeakMemory:
    """Peak tensor memory allocated inside a block, above the level at entry, in bytes.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``,
    minus ``memory_allocated`` at entry.

    CPU (the stated method): torch's profiler with ``profile_memory=True``
    records every allocation and free of the CPU allocator. The running total,
    in time order, with each operator's own allocations counted at its start
    and its own frees at its end (so the figure errs high, never low), has its
    maximum reported. Only tensor storage is counted, not Python objects or
    the interpreter; tensors alive before the block are not counted.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.bytes = 0

    @property
    def mib(self) -> float:
        return self.bytes / 2**20

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._entry = torch.cuda.memory_allocated(self.device)
        else:
            self._profiler = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
            )
            self._profiler.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._entry
            return
        self._profiler.__exit__(*exc)
        changes = sorted(
            (event.time_range.start if event.self_cpu_memory_usage > 0 else event.time_range.end,
             event.self_cpu_memory_usage)
            for event in self._profiler.events()
            if event.self_cpu_memory_usage
        )
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


def prepare_output_dir(notebook_id: str, output_dir: str | os.PathLike = "") -> Path:
    """Create and return the folder for one notebook's outputs.

    An empty ``output_dir`` means ``$BEYOND_BACKPROP_OUTPUT/<id>`` when that
    variable is set, else ``<project>/outputs/interactive/<id>``.
    """
    if str(output_dir):
        path = Path(output_dir)
    elif os.environ.get(OUTPUT_ENV):
        path = Path(os.environ[OUTPUT_ENV]) / notebook_id
    else:
        path = project_root() / "outputs" / "interactive" / notebook_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def git_revision(root: Path | None = None, exclude: tuple[str, ...] = ()) -> str:
    """The checked-out commit (with ``+dirty`` when the tree, outside the paths ``exclude``, has
    changes), or ``unknown``."""
    root = root or project_root()
    pathspec = ["--", ".", *(f":(exclude){path}" for path in exclude)] if exclude else []
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", *pathspec], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def device_name(device: torch.device | str) -> str:
    """A human name for the device: the GPU model, or the CPU and its thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"


def environment_manifest(device: torch.device | str, seed: int, **extra: Any) -> dict[str, Any]:
    """Versions, device, seed, git revision and time: what a result depends on."""
    import pandas
    import scipy

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
        "git_revision": git_revision(),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.update(extra)
    return manifest


def write_manifest(output_dir: Path, device: torch.device | str, seed: int, **extra: Any) -> Path:
    """Write :func:`environment_manifest` to ``output_dir/manifest.json``."""
    path = Path(output_dir) / "manifest.json"
    path.write_text(json.dumps(environment_manifest(device, seed, **extra), indent=2) + "\n")
    return path
