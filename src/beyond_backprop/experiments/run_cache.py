"""Runs computed once: a solver's history kept under the output folder and reused by every notebook that
runs the same configuration (D1, D2 and D5 share dlADMM runs at the papers' size).

A run is keyed on everything that determines it: the solver's class and settings, the problem's data
(a checksum of every tensor, with its dtype and shape), the seed, the iteration count, the evaluation
period, the device kind, torch's version and a checksum of the code the run depends on: the modules
defining the solver's class and the classes of its settings, ``models``, ``problem`` and ``optim.solver``
(the run loop), with every package module these import, transitively (imports inside functions too).
Editing another module (Frank-Wolfe's, for a dlADMM run) keeps the stored runs. The history goes to
``<output>/.runs/<key>.json``; each notebook lists the runs it computed or reused in
``<output>/<id>/runs.json``, which the pipeline copies into the notebook's manifest. Notebooks running side
by side (``--jobs``) compute a run once too: the first to reach it holds ``<key>.lock`` (``flock``, released by
the kernel if its process dies) and the others wait for its history. A solver whose
settings hold an object without a stable description (a function, say) is never cached: its runs are
always computed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..module_graph import PACKAGE, imported_modules, package_modules
from ..optim.solver import Solver
from ..problem import Problem

FOLDER = ".runs"  # under the output folder, beside the notebooks' folders
LOG = "runs.json"  # in a notebook's output folder: the runs it computed or reused


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the source the code checksum reads
ALWAYS = (f"{PACKAGE}.models", f"{PACKAGE}.problem", f"{PACKAGE}.optim.solver")  # every run's code


def dependencies(modules: tuple[str, ...], root: Path) -> list[str]:
    """``modules`` and :data:`ALWAYS`, and every package module they import, transitively, sorted."""
    table = package_modules(root)
    done, todo = set(), [m for m in (*modules, *ALWAYS) if m in table]
    while todo:
        name = todo.pop()
        if name not in done:
            done.add(name)
            todo.extend(imported_modules(name, table[name], set(table)) - done)
    return sorted(done)


def solver_modules(solver: Solver) -> tuple[str, ...]:
    """The package modules defining the solver's class and the class of every setting, at any depth."""
    found, seen, todo = set(), set(), [solver]
    while todo:
        value = todo.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if type(value).__module__.startswith(f"{PACKAGE}."):
            found.add(type(value).__module__)
        if isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            todo.extend(value)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            todo.extend(vars(value).values())
    return tuple(sorted(found))


@cache
def code_checksum(modules: tuple[str, ...]) -> str:
    """SHA-256 over the source of :func:`dependencies` of ``modules``, each with its name."""
    table = package_modules(PACKAGE_DIR)
    digest = hashlib.sha256()
    for name in dependencies(modules, PACKAGE_DIR):
        digest.update(name.encode() + b"\0" + table[name].read_bytes())
    return digest.hexdigest()


def data_checksum(problem: Problem) -> str:
    """SHA-256 over every tensor of ``problem`` (splits in order, then the adjacency), with dtype and shape."""
    digest = hashlib.sha256()
    tensors = [t for split in problem.splits.values() for t in (split.inputs, split.labels, split.index)]
    for tensor in tensors + [problem.adjacency]:
        if tensor is None:
            digest.update(b"none")
            continue
        dense = tensor.to_dense() if tensor.layout != torch.strided else tensor
        dense = dense.detach().contiguous().cpu()
        digest.update(f"{dense.dtype}{tuple(dense.shape)}".encode())
        digest.update(dense.view(torch.uint8).numpy().tobytes() if dense.numel() else b"")
    return digest.hexdigest()


def solver_description(solver: Solver) -> str | None:
    """The solver's class and settings as text; ``None`` when a setting has no stable description."""
    text = f"{type(solver).__module__}.{type(solver).__qualname__}{vars(solver)!r}"
    return None if " at 0x" in text else text


def run_key(solver: Solver, problem: Problem, *, iterations: int, seed: int, evaluate_every: int
            ) -> dict[str, Any] | None:
    """Everything that determines a run, or ``None`` when the solver cannot be described."""
    description = solver_description(solver)
    if description is None:
        return None
    return {"solver": description, "data": data_checksum(problem), "iterations": iterations, "seed": seed,
            "evaluate_every": evaluate_every, "device": problem.device.type, "torch": torch.__version__,
            "code": code_checksum(solver_modules(solver))}


def key_name(key: dict[str, Any]) -> str:
    """A file name for ``key``: the SHA-256 of its canonical JSON, shortened."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


@dataclass
class RunCache:
    """Histories under ``folder``; the runs this notebook used are listed in ``log`` (its ``runs.json``)."""

    folder: Path
    log: Path
    notebook: str
    used: list[dict[str, Any]] = field(default_factory=list)

    def history(self, key: dict[str, Any], compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The stored history of ``key``, else ``compute()``'s, stored; while another notebook computes the
        same run, wait for it."""
        name = key_name(key)
        path = self.folder / f"{name}.json"
        if path.exists():
            return self._reuse(name, key, path)
        self.folder.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.folder / f"{name}.lock", name):
            if path.exists():  # computed by the notebook this one waited for
                return self._reuse(name, key, path)
            return self._compute(name, key, path, compute)

    def _reuse(self, name: str, key: dict[str, Any], path: Path) -> pd.DataFrame:
        stored = json.loads(path.read_text())
        self._note(name, key, "reused", stored["computed_by"])
        return pd.DataFrame(stored["history"], columns=stored["columns"])

    def _compute(self, name: str, key: dict[str, Any], path: Path, compute: Callable[[], pd.DataFrame]
                 ) -> pd.DataFrame:
        frame = compute()
        record = {"key": key, "computed_by": self.notebook, "columns": list(frame.columns),
                  "history": frame.to_dict("list")}
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(record))  # floats as repr: they read back bit for bit
        partial.replace(path)  # atomic: a notebook running beside this one never reads half a file
        self._note(name, key, "computed", self.notebook)
        return frame

    def _note(self, name: str, key: dict[str, Any], status: str, computed_by: str) -> None:
        self.used.append({"run": name, "status": status, "computed_by": computed_by,
                          "solver": key["solver"], "iterations": key["iterations"], "seed": key["seed"]})
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text(json.dumps(self.used, indent=2) + "\n")


@contextmanager
def _exclusive(path: Path, name: str) -> Iterator[None]:
    """Hold ``flock`` on ``path`` for the block, waiting (and saying so) while another process holds it."""
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"run {name}: another notebook is computing it; waiting for its history", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


_active: RunCache | None = None


def activate(output: Path, notebook: str) -> RunCache:
    """Cache runs under ``output.parent / FOLDER`` for the notebook whose outputs go to ``output``."""
    global _active
    _active = RunCache(Path(output).parent / FOLDER, Path(output) / LOG, notebook)
    return _active


def deactivate() -> None:
    """Compute every run from now on (no cache)."""
    global _active
    _active = None


def cached_history(solver: Solver, problem: Problem, *, iterations: int, seed: int, evaluate_every: int,
                   compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``compute()``'s history, or the active cache's copy of the same run (see the module docstring)."""
    if _active is None:
        return compute()
    key = run_key(solver, problem, iterations=iterations, seed=seed, evaluate_every=evaluate_every)
    return compute() if key is None else _active.history(key, compute)


def read_log(output: Path) -> list[dict[str, Any]]:
    """The runs a notebook computed or reused (its ``runs.json``); empty when it used none."""
    path = Path(output) / LOG
    return json.loads(path.read_text()) if path.exists() else []
