"""Any full-batch solver stepped on a random mini-batch of training rows: the practitioner's Adam and SGD."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..problem import Problem, Split
from .solver import Solver


@dataclass(frozen=True)
class MinibatchRun:
    """The inner solver's state and the generator of the rows of the next mini-batch (CPU)."""

    inner: Any
    rows: torch.Generator

    @property
    def k(self) -> int:
        """Steps taken."""
        return self.inner.k


class Minibatch:
    """Steps ``inner`` on ``batch`` training rows drawn uniformly with replacement, fresh at every step.

    ``inner`` sees a problem whose training split is the mini-batch, so a full-batch solver (e.g.
    :class:`~beyond_backprop.optim.gradient.TorchOptimizer` with Adam) becomes its mini-batch form. A training
    set of at most ``batch`` rows is used whole. Only for MLP problems (a training split without ``index``).
    The row generator is seeded from the seed of the generator given to :meth:`init` plus 2.
    """

    def __init__(self, inner: Solver, batch: int) -> None:
        if batch < 1:
            raise ValueError(f"invalid batch {batch!r}; expected >= 1")
        self.inner, self.batch = inner, batch

    def init(self, problem: Problem, generator: torch.Generator) -> MinibatchRun:
        """The inner solver's initial state, and the row generator."""
        if problem.train.index is not None:
            raise ValueError("Minibatch needs an MLP problem (training split without index); a graph model "
                             "sees every node at every step")
        rows = torch.Generator().manual_seed(generator.initial_seed() + 2)
        return MinibatchRun(self.inner.init(problem, generator), rows)

    def step(self, state: MinibatchRun, problem: Problem) -> MinibatchRun:
        """One step of the inner solver on a fresh mini-batch; ``state.rows`` is left as it was."""
        rows = torch.Generator()
        rows.set_state(state.rows.get_state())
        batch = problem
        if problem.x.shape[0] > self.batch:
            picked = torch.randint(0, problem.x.shape[0], (self.batch,), generator=rows).to(problem.device)
            batch = Problem(Split(problem.x[picked], problem.y[picked]), classes=problem.classes)
        return MinibatchRun(self.inner.step(state.inner, batch), rows)

    def metrics(self, state: MinibatchRun, problem: Problem) -> dict[str, torch.Tensor]:
        """The inner solver's metrics."""
        return self.inner.metrics(state.inner, problem)

    def logits(self, state: MinibatchRun, problem: Problem, split: Split) -> torch.Tensor:
        """The inner solver's logits."""
        return self.inner.logits(state.inner, problem, split)
