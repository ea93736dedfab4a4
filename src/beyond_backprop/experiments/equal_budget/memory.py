"""What a method's training step costs in memory: its peak above the level before it, and the tensors it keeps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import torch

from ...optim.solver import Solver
from ...problem import Problem
from ...runtime import PeakMemory


def tensor_bytes(value: Any, seen: set[int] | None = None) -> int:
    """Bytes of every distinct tensor storage reachable from ``value`` (dataclasses, modules, optimizers,
    containers): what a method keeps between steps."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        total = 0
        storage = value.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return total + (tensor_bytes(value.grad, seen) if value.grad is not None else 0)
    if isinstance(value, Mapping):
        return sum(tensor_bytes(k, seen) + tensor_bytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return sum(tensor_bytes(v, seen) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return sum(tensor_bytes(getattr(value, f.name), seen) for f in fields(value))
    if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
        return sum(tensor_bytes(v, seen) for v in vars(value).values())
    return 0


def step_cost(solver: Solver, state: Any, problem: Problem) -> tuple[Any, dict[str, float]]:
    """One more step of a run already under way (so every buffer exists, as A3 warms up first): its peak
    memory above what was allocated before it (A3's ``peak_bytes``), and ``state_bytes``, the tensors the
    method keeps between steps. Not part of any history.

    A solver that offers ``step_in_place`` (paper A's :class:`~beyond_backprop.optim.stochastic.MinibatchMLP`,
    as A3 measures it) is measured with it; any other step is pure, and its peak includes the copy of the
    state it makes. A peak of 0 bytes is the CPU profiler missing the step's allocations, not a
    measurement: it is NaN.
    """
    step = getattr(solver, "step_in_place", solver.step)
    with PeakMemory(problem.device) as meter:
        state = step(state, problem)
    peak = float(meter.bytes) if meter.bytes > 0 else float("nan")
    return state, {"peak_bytes": peak, "state_bytes": float(tensor_bytes(state))}
