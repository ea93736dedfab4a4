"""Paper A's training methods as contract solvers: one mini-batch update per step.

Three methods share one class, :class:`MinibatchMLP`, and differ in two choices:

- the gradient estimate: ``backprop`` (the mini-batch gradient, reverse mode) or ``forward`` (the
  projected forward gradient ``phi = (1/m) sum_j <grad f, u_j> u_j``, ``m`` directions ``u_j ~ N(0, I)``
  (one by default), forward mode layer by layer:
  :func:`~beyond_backprop.autodiff.forward_gradient.layerwise_directional_derivatives`);
- the update: ``frank-wolfe`` (SFW's rule under a K-sparse polytope per tensor: momentum 0.9 as the
  averaging, constant step ``lr / diameter``; spec E3 [R]) or ``sgd`` (unconstrained plain SGD).

``backprop`` + ``frank-wolfe`` is FW with exact mini-batch gradients (spec baseline A'),
``forward`` + ``frank-wolfe`` is averaged PFG-FW (its Algorithm C with SFW's step), and ``forward`` +
``sgd`` is forward-gradient SGD. Paper A's own runs (A2, A3) add plain PFG-FW (``averaging=False``),
the theory step rule (``schedule="nonconvex"``), torch's default initialisation
(``init="torch-default"``) and the exact FW gap as a metric (``gap_samples``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import models
from ..autodiff.forward_gradient import (
    layerwise_directional_derivatives,
    layerwise_forward_gradient,
    redrawn_folds,
)
from ..problem import Problem
from .constraints import initialization_constraints
from .construction import check_widths
from .frank_wolfe import FrankWolfe
from .gradient import TorchOptimizer, copy_model_state

GRADIENTS = ("backprop", "forward")
UPDATES = ("frank-wolfe", "sgd")
INITS = ("normal", "torch-default")
SCHEDULES = ("sfw", "nonconvex")
BATCH = 1024  # spec E3 [R]: mini-batch 1024 (the paper gives none)
SFW_LEARNING_RATE = 0.1  # spec E3 [R]: SFW with momentum 0.9, lr 0.1 with diameter rescaling
DIAMETER_FACTOR = 10.0  # spec E2 [R]: K-sparse polytope in SFW's initialization mode, w = 10
K_FRACTION = 0.05  # spec E2/E3 [R]: K = 5% of each tensor


def estimate_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, forward: bool,
                      generator: torch.Generator, directions: int = 1) -> torch.Tensor:
    """Write a gradient estimate of the mean cross-entropy on ``(x, y)`` into ``.grad``; return the loss.

    ``forward=False``: the exact mini-batch gradient by backprop. ``forward=True``: the projected
    forward gradient averaged over ``directions`` Gaussian directions from ``generator``, without an
    activation tape.
    """
    loss_fn = nn.functional.cross_entropy
    if not forward:
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss.detach()
    return layerwise_forward_gradient(model, loss_fn, x, y, generator=generator, directions=directions)


def forward_frank_wolfe_step(model: nn.Module, optimizer: FrankWolfe, x: torch.Tensor, y: torch.Tensor, *,
                             generator: torch.Generator, directions: int = 1) -> torch.Tensor:
    """One FW step along the projected forward gradient without a gradient buffer; returns the loss.

    The directional derivatives come first (:func:`layerwise_directional_derivatives`); then each tensor's
    tangents are drawn again and folded straight into its averaged direction, ``d <- (1 - rho) d + rho phi``
    (:meth:`FrankWolfe.step_with`), one tensor at a time. The same step, from the same draws, as
    :func:`estimate_gradient` followed by ``optimizer.step()``.
    """
    loss, slopes = layerwise_directional_derivatives(model, nn.functional.cross_entropy, x, y, generator=generator,
                                                     directions=directions)
    params = [group["params"][0] for group in optimizer.param_groups]
    optimizer.step_with(redrawn_folds(params, slopes, generator=generator))
    return loss


def sfw_optimizer(groups: list[dict], *, averaging: bool, schedule: str = "sfw",
                  learning_rate: float = 1.0) -> FrankWolfe:
    """FW over ``groups``; ``schedule="sfw"`` is SFW's rule: constant step ``learning_rate / D`` per tensor."""
    if schedule == "sfw":
        return FrankWolfe(groups, schedule="sfw", averaging=averaging, step_scale=learning_rate,
                          rescale="diameter")
    return FrankWolfe(groups, schedule=schedule, averaging=averaging)


def exact_fw_gap(model: nn.Module, optimizer: FrankWolfe, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The FW gap sum over tensors of <grad f, theta - LMO(grad f)>, with the full-batch gradient of the mean
    cross-entropy on ``(x, y)`` (0-d tensor; ``.grad`` is left alone)."""
    params = [group["params"][0] for group in optimizer.param_groups]
    with torch.enable_grad():
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), params)
    with torch.no_grad():
        return sum(torch.sum(g * (p - group["constraint"].lmo(g)))
                   for g, p, group in zip(grads, params, optimizer.param_groups))


@dataclass
class MinibatchState:
    """The model and its optimizer, the generators of mini-batches and directions, and the steps taken."""

    model: nn.Sequential
    optimizer: torch.optim.Optimizer
    batches: torch.Generator
    directions: torch.Generator
    k: int = 0


class MinibatchMLP:
    """One mini-batch update of the ReLU MLP ``widths`` per step (see the module docstring).

    Args:
        widths: ``[n_0, ..., n_L]``; ``n_0`` must match the problem's inputs, ``n_L`` its classes.
        gradient: ``backprop`` or ``forward``. update: ``frank-wolfe`` or ``sgd``.
        lr: SFW's learning rate (``frank-wolfe``, default 0.1) or the SGD step (``sgd``, required).
        batch: rows per step, drawn with replacement; a training set of at most ``batch`` rows is
            used whole at every step.
        diameter_factor, k_fraction: the K-sparse polytope of each tensor (``frank-wolfe`` only).
        averaging: ``frank-wolfe`` only: average the gradient estimates (momentum 0.9 under SFW's rule,
            the theory weights under ``nonconvex``); ``False`` is plain PFG-FW.
        schedule: ``frank-wolfe`` only: ``sfw`` (constant step ``lr / diameter``) or ``nonconvex`` (the
            theory rule, step 1/(k+1) and averaging weight (k+1)^(-2/3); ``lr`` unused).
        init: ``normal``: parameters start at N(0, init_std²) (:func:`~beyond_backprop.models.init_normal_`);
            ``torch-default``: ``nn.Linear``'s own initialisation
            (:func:`~beyond_backprop.models.init_linear_default_`). FW then rescales them into their sets.
        gap_samples: ``frank-wolfe`` only: report the exact FW gap on the first ``gap_samples`` training
            rows as the metric ``fw_gap`` (0: no metric).
        directions: ``forward`` only: the estimate averages ``<grad f, u_j> u_j`` over this many directions.

    With ``forward`` + ``frank-wolfe`` a step keeps no gradient buffer: each tensor's estimate is folded
    straight into the FW direction (:func:`forward_frank_wolfe_step`).

    The mini-batch generator (CPU) and the direction generator (problem's device) of a run are seeded
    with the seed of the generator given to :meth:`init` and that seed + 1, as in the spec's scripts [R].
    """

    def __init__(self, widths: list[int], *, gradient: str, update: str, lr: float | None = None,
                 batch: int = BATCH, diameter_factor: float = DIAMETER_FACTOR, k_fraction: float = K_FRACTION,
                 init_std: float = models.INIT_STD, averaging: bool = True, schedule: str = "sfw",
                 init: str = "normal", gap_samples: int = 0, directions: int = 1) -> None:
        if gradient not in GRADIENTS:
            raise ValueError(f"invalid gradient {gradient!r}; expected one of {', '.join(GRADIENTS)}")
        if update not in UPDATES:
            raise ValueError(f"invalid update {update!r}; expected one of {', '.join(UPDATES)}")
        if init not in INITS or schedule not in SCHEDULES:
            raise ValueError(f"invalid init {init!r} or schedule {schedule!r}; expected init in {', '.join(INITS)}"
                             f" and schedule in {', '.join(SCHEDULES)}")
        if update == "sgd" and (not averaging or schedule != "sfw" or gap_samples):
            raise ValueError("averaging=False, schedule and gap_samples apply to update 'frank-wolfe' only")
        if lr is None:
            if update == "sgd":
                raise ValueError("update 'sgd' needs a learning rate lr")
            lr = SFW_LEARNING_RATE
        if lr <= 0 or batch < 1:
            raise ValueError(f"invalid lr {lr!r} or batch {batch!r}; expected lr > 0 and batch >= 1")
        if directions < 1 or (directions > 1 and gradient != "forward"):
            raise ValueError(f"invalid directions {directions!r}; expected >= 1, and 1 with gradient 'backprop'")
        self.widths, self.gradient, self.update, self.lr, self.batch = list(widths), gradient, update, lr, batch
        self.diameter_factor, self.k_fraction, self.init_std = diameter_factor, k_fraction, init_std
        self.averaging, self.schedule, self.init_kind, self.gap_samples = averaging, schedule, init, gap_samples
        self.directions = directions

    def init(self, problem: Problem, generator: torch.Generator) -> MinibatchState:
        """Initial weights from ``generator`` (inside their sets for FW), and the step's own generators."""
        check_widths(self.widths, problem)
        model = models.mlp(self.widths).to(problem.device)
        if self.init_kind == "normal":
            models.init_normal_(model, generator, self.init_std)
        else:
            models.init_linear_default_(model, generator)
        if self.update == "frank-wolfe":
            groups = initialization_constraints(model, "k-sparse", self.diameter_factor, k_fraction=self.k_fraction)
            optimizer = sfw_optimizer(groups, averaging=self.averaging, schedule=self.schedule, learning_rate=self.lr)
        else:
            optimizer = torch.optim.SGD(model.parameters(), lr=self.lr)
        seed = generator.initial_seed()
        return MinibatchState(model, optimizer, torch.Generator().manual_seed(seed),
                              torch.Generator(device=problem.device).manual_seed(seed + 1))

    def step(self, state: MinibatchState, problem: Problem) -> MinibatchState:
        """:meth:`step_in_place` on a copy of ``state`` (pure, as the solver contract asks)."""
        return self.step_in_place(copy_model_state(state), problem)

    def step_in_place(self, state: MinibatchState, problem: Problem) -> MinibatchState:
        """Draw a mini-batch, estimate the gradient on it, update the weights of ``state`` itself."""
        x, y = problem.x, problem.y
        if x.shape[0] > self.batch:
            rows = torch.randint(0, x.shape[0], (self.batch,), generator=state.batches).to(problem.device)
            x, y = x[rows], y[rows]
        if self.gradient == "forward" and self.update == "frank-wolfe":
            forward_frank_wolfe_step(state.model, state.optimizer, x, y, generator=state.directions,
                                     directions=self.directions)
        else:
            estimate_gradient(state.model, x, y, forward=self.gradient == "forward", generator=state.directions,
                              directions=self.directions)
            state.optimizer.step()
            state.model.zero_grad(set_to_none=True)
        state.k += 1
        return state

    def metrics(self, state: MinibatchState, problem: Problem) -> dict[str, torch.Tensor]:
        """``fw_gap`` on the first ``gap_samples`` training rows, when asked for; nothing otherwise."""
        if not self.gap_samples:
            return {}
        rows = slice(0, self.gap_samples)
        return {"fw_gap": exact_fw_gap(state.model, state.optimizer, problem.x[rows], problem.y[rows])}

    logits = staticmethod(TorchOptimizer.logits)  # the model's logits on the scored rows of a split
