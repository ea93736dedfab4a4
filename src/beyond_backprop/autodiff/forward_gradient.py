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
    return {name: _draw(p, (count, *p.shape), kind, generator) for name, p in params.items()}


def _draw(p: torch.Tensor, shape: tuple[int, ...], kind: str, generator: torch.Generator | None) -> torch.Tensor:
    """One draw of tangents for ``p``, on the generator's device, then moved to ``p``'s."""
    u = torch.randn(shape, generator=generator, dtype=p.dtype,
                    device=generator.device if generator is not None else p.device)
    if kind == "rademacher":
        u = torch.where(u >= 0, 1.0, -1.0).to(p.dtype)
    return u.to(p.device)


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


def layerwise_forward_gradient(
    model: nn.Sequential,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    generator: torch.Generator,
    kind: str = "gaussian",
) -> torch.Tensor:
    """Write ``phi = <grad f, u> u`` into every parameter's ``.grad``, one layer's tangents at a time.

    The same ``phi`` as :func:`projected_forward_gradient` with one direction and the same
    ``generator`` (same draws, in ``model.named_parameters()`` order), with less memory: forward mode
    by hand through an ``nn.Sequential`` of ``Linear`` layers and elementwise activations. The primal
    activation and its tangent go through layer by layer; a layer's tangent ``u`` is drawn when the
    layer is reached and dropped after it. Once ``<grad f, u>`` is known, the generator is rewound and
    the same ``u`` is drawn again straight into ``.grad`` and scaled. Returns the loss.
    """
    if kind not in DIRECTIONS:
        raise ValueError(f"invalid direction kind {kind!r}; expected one of {', '.join(DIRECTIONS)}")
    start = generator.get_state()
    with torch.no_grad():
        primal, tangent = inputs, None
        for layer in model:
            if isinstance(layer, nn.Linear):  # rebinding at once frees each old buffer: 3 alive at most
                if tangent is not None:
                    tangent = torch.nn.functional.linear(tangent, layer.weight)
                u = _draw(layer.weight, tuple(layer.weight.shape), kind, generator)
                # plus d(x W^T)/dW along u, i.e. x u^T
                tangent = primal @ u.t() if tangent is None else tangent.addmm_(primal, u.t())
                del u
                if layer.bias is not None:
                    tangent.add_(_draw(layer.bias, tuple(layer.bias.shape), kind, generator))
                primal = torch.nn.functional.linear(primal, layer.weight, layer.bias)
            elif isinstance(layer, nn.ReLU):
                tangent.masked_fill_(primal <= 0, 0.0)
                primal = primal.relu_() if primal is not inputs else primal.relu()
            elif tangent is None:
                primal = layer(primal)
            else:
                primal, tangent = jvp(layer, (primal,), (tangent,))
        value, slope = jvp(lambda z: loss(z, targets), (primal,), (tangent,))
        del primal, tangent
        generator.set_state(start)
        for p in model.parameters():
            p.grad = _draw(p, tuple(p.shape), kind, generator).mul_(slope)
    return value


def module_loss(model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                inputs: torch.Tensor, targets: torch.Tensor) -> Callable[[Params], torch.Tensor]:
    """``params -> loss(model(inputs; params), targets)`` through ``functional_call`` (strict)."""

    def loss_of(params: Params) -> torch.Tensor:
        return loss(functional_call(model, params, (inputs,), strict=True), targets)

    return loss_of


def model_parameters(model: nn.Module) -> Params:
    """The model's parameters as a dict of detached tensors (shared storage, no grad)."""
    return {name: p.detach() for name, p in model.named_parameters()}
