"""Gradient baselines through the solver contract: full-batch steps of any ``torch.optim`` optimizer."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from ..models import init_normal_, mlp
from ..problem import Problem, Split

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "gd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "adam": torch.optim.Adam,
}


@dataclass
class GradientState:
    """The model and its optimizer, and the steps taken."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    k: int = 0


@dataclass(frozen=True)
class MLPBuilder:
    """Builds ``models.mlp(widths)`` for any problem: a ``build`` for :class:`TorchOptimizer` with a stable
    description (a lambda has none), so the run cache can key and reuse its runs."""

    widths: tuple[int, ...]

    def __call__(self, problem: Problem) -> nn.Sequential:
        """A fresh, uninitialised MLP of ``widths``."""
        return mlp(list(self.widths))


ModelState = TypeVar("ModelState")


def copy_model_state(state: ModelState) -> ModelState:
    """A deep copy of a state that holds a ``model`` (and its optimizer, generators, ...), for a pure ``step``.

    Parameters, persistent buffers, optimizer state and generators are copied (the optimizer then
    updates the copied parameters); the model's non-persistent buffers, constants such as a GCN's
    adjacency, are shared. Gradients are not copied.
    """
    model = state.model
    persistent = {id(tensor) for tensor in model.state_dict(keep_vars=True).values()}
    constants = {id(buffer): buffer for buffer in model.buffers() if id(buffer) not in persistent}
    return copy.deepcopy(state, memo=constants)


class TorchOptimizer:
    """Full-batch training of ``build(problem)`` by one step of a ``torch.optim`` optimizer per iteration.

    Args:
        build: makes the (uninitialised) model for a problem, e.g. ``lambda p: models.mlp([...])``;
            it sees every node's features for a graph model, whose logits ``split.index`` then selects.
        optimizer: a name in :data:`OPTIMIZERS` or an optimizer class; ``lr`` and ``hyper`` go to it.
        reduction: ``mean`` or ``sum`` of the cross-entropy over training rows.
        init_std: parameters start at N(0, init_std²) (:func:`~beyond_backprop.models.init_normal_`).
    """

    def __init__(self, build: Callable[[Problem], nn.Module], optimizer: str | type[torch.optim.Optimizer], *,
                 lr: float, reduction: str = "mean", init_std: float = 0.1, **hyper: float) -> None:
        if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
            raise ValueError(f"invalid optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"invalid reduction {reduction!r}; expected 'mean' or 'sum'")
        if lr <= 0:
            raise ValueError(f"invalid lr {lr!r}; expected > 0")
        self.build, self.reduction, self.init_std, self.lr, self.hyper = build, reduction, init_std, lr, hyper
        self.optimizer = OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer

    def init(self, problem: Problem, generator: torch.Generator) -> GradientState:
        """A fresh model on the problem's device, N(0, std²) from ``generator``, and a fresh optimizer."""
        model = init_normal_(self.build(problem).to(problem.device), generator, self.init_std)
        return GradientState(model, self.optimizer(model.parameters(), lr=self.lr, **self.hyper))

    def step(self, state: GradientState, problem: Problem) -> GradientState:
        """One full-batch gradient step on the training split, taken on a copy of ``state`` (pure)."""
        state = copy_model_state(state)
        state.model.train()
        state.optimizer.zero_grad(set_to_none=True)
        logits = self.logits(state, problem, problem.train)
        torch.nn.functional.cross_entropy(logits, problem.y, reduction=self.reduction).backward()
        state.optimizer.step()
        state.k += 1
        return state

    def metrics(self, state: GradientState, problem: Problem) -> dict[str, torch.Tensor]:
        """None beyond the shared columns."""
        return {}

    @staticmethod
    def logits(state: GradientState, problem: Problem, split: Split) -> torch.Tensor:
        """The model's logits on the scored rows of ``split``."""
        out = state.model(split.inputs)
        return out if split.index is None else out[split.index]
