"""One run at a time per output folder: an advisory lock on ``<output>/.reproduce.lock`` holding the pid."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".reproduce.lock"


class OutputLocked(RuntimeError):
    """Another run holds the output folder."""


@contextmanager
def output_lock(folder: Path) -> Iterator[None]:
    """Hold the lock of ``folder`` for the block, or raise :class:`OutputLocked` naming the holder's pid.

    The lock is ``flock`` on a file that holds the pid: the kernel releases it when its process dies,
    so a lock file left by a dead run is taken over. The file stays (empty of meaning once released).
    """
    path = Path(folder) / LOCK_NAME
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(handle)
        raise OutputLocked(f"the output folder {str(folder)!r} is in use by another reproduce.py run "
                           f"(pid {holder}); wait for it to finish or pass another --output") from None
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.ftruncate(handle, 0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)
