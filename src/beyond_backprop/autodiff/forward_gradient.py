"""Projected forward gradients: ``phi = <grad f, u> u`` from forward-mode AD (one JVP), no tape.

For ``u ~ N(0, I_d)``: ``E phi = grad f`` and ``E ||phi||^2 = (d + 2) ||grad f||^2``; for Rademacher
``u``: ``E ||phi||^2 = d ||grad f||^2``. Averaging ``m`` independent directions divides the variance
``E ||phi - grad f||^2`` by ``m`` (Baydin et al. 2022; Rostami & Kia, arXiv 2403.12511).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, jvp, vmap

Params = dict[str, torch.Tensor]
DIRECTIONS = ("gaussian", "rademacher")


def sample_directions(params: Mapping[str, torch.Tensor], count: int = 1, kind: str = "gaussian",
                      generator: torch.Generator | None = None) -> Params:
    """``count`` random tangents per tensor, stacked on a leading axis; zero mean, unit variance."""
    if kind not in DIRECTIONS:
        raise ValueError(f"invalid direction kind {kind!r}; expected one of {', '.join(DIRECTIONS)}")
    tangents = {}
    for name, p in params.items():
        u = torch.randn((count, *p.shape), generator=generator, dtype=p.dtype,
                        device=generator.device if generator is not None else p.device)
        if kind == "rademacher":
            u = torch.where(u >= 0, 1.0, -1.0).to(p.dtype)
        tangents[name] = u.to(p.device)
    return tangents


def projected_forward_gradient(
    loss_fn: Callable[[Params], torch.Tensor],
    params: Mapping[str, torch.Tensor],
    *,
    directions: int = 1,
    kind: str = "gaussian",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, Params]:
    """``(loss, phi)`` with ``phi = (1/m) sum_j <grad f, u_j> u_j`` over ``m = directions`` tangents.

    The ``m`` directional derivatives are ``torch.func.jvp`` calls batched by ``vmap``, run under
    ``torch.no_grad()``: forward mode only, so no reverse graph or activation tape is kept.
    ``params`` is a dict of tensors (detached here). Randomness comes only from ``generator``.
    """
    if directions < 1:
        raise ValueError(f"invalid directions {directions!r}; expected >= 1")
    primals = {k: v.detach() for k, v in params.items()}
    tangents = sample_directions(primals, directions, kind, generator)
    with torch.no_grad():
        if directions == 1:  # phi = <grad f, u> u, written over u: no second parameter-sized buffer
            tangent = {k: u[0] for k, u in tangents.items()}
            loss, slope = jvp(loss_fn, (primals,), (tangent,))
            estimate = {k: u.mul_(slope) for k, u in tangent.items()}
        else:
            losses, slopes = vmap(lambda t: jvp(loss_fn, (primals,), (t,)))(tangents)
            loss = losses[0]
            estimate = {k: torch.tensordot(slopes, u, dims=1).div_(directions) for k, u in tangents.items()}
    return loss, estimate


def module_loss(model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                inputs: torch.Tensor, targets: torch.Tensor) -> Callable[[Params], torch.Tensor]:
    """``params -> loss(model(inputs; params), targets)`` through ``functional_call`` (strict)."""

    def loss_of(params: Params) -> torch.Tensor:
        return loss(functional_call(model, params, (inputs,), strict=True), targets)

    return loss_of


def model_parameters(model: nn.Module) -> Params:
    """The model's parameters as a dict of detached tensors (shared storage, no grad)."""
    return {name: p.detach() for name, p in model.named_parameters()}
