"""Projected forward gradients: ``phi = <grad f, u> u`` from forward-mode AD (one JVP), no tape.

For ``u ~ N(0, I_d)``: ``E phi = grad f`` and ``E ||phi||^2 = (d + 2) ||grad f||^2``; for Rademacher
``u``: ``E ||phi||^2 = d ||grad f||^2``. Averaging ``m`` independent directions divides the variance
``E ||phi - grad f||^2`` by ``m`` (Baydin et al. 2022; Rostami & Kia, arXiv 2403.12511).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

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


def forward_gradient_of_known(gradient: torch.Tensor, *, directions: int = 1, kind: str = "gaussian",
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """``phi = (1/m) sum_j <g, u_j> u_j`` for a function whose gradient ``g`` is already known.

    The directional derivative that a JVP returns is ``<g, u>``; with ``g`` in hand it costs O(m d)
    instead of m forward passes. Same draws from ``generator`` and same ``phi`` as
    :func:`projected_forward_gradient` (to round-off): for experiments that study the estimator's noise on
    a problem whose gradient is cheap, not a way to train without gradients.
    """
    if directions < 1:
        raise ValueError(f"invalid directions {directions!r}; expected >= 1")
    if kind not in DIRECTIONS:
        raise ValueError(f"invalid direction kind {kind!r}; expected one of {', '.join(DIRECTIONS)}")
    tangents = _draw(gradient, (directions, *gradient.shape), kind, generator)
    slopes = tangents.reshape(directions, -1) @ gradient.reshape(-1)
    if directions == 1:
        return tangents[0].mul_(slopes[0])
    return torch.tensordot(slopes, tangents, dims=1).div_(directions)


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> mean loss


def layerwise_directional_derivatives(model: nn.Sequential, loss: Loss, inputs: torch.Tensor, targets: torch.Tensor, *,
                                      generator: torch.Generator, directions: int = 1,
                                      kind: str = "gaussian") -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, slopes)``: the loss and its ``directions`` derivatives ``<grad f, u_j>`` along random tangents.

    Forward mode by hand through an ``nn.Sequential`` of ``Linear`` layers and elementwise activations, without
    a tape: the primal activation and its ``m`` tangents go through layer by layer, and a layer's tangents
    (``m`` per tensor, drawn together as :func:`sample_directions` draws them) are drawn when the layer is
    reached and dropped after it. The generator is left where it started, so that :func:`redrawn_estimates`
    draws the same tangents again.
    """
    if kind not in DIRECTIONS:
        raise ValueError(f"invalid direction kind {kind!r}; expected one of {', '.join(DIRECTIONS)}")
    if directions < 1:
        raise ValueError(f"invalid directions {directions!r}; expected >= 1")
    start = generator.get_state()
    with torch.no_grad():
        primal, tangent = inputs, None  # tangent: (m, batch, features)
        for layer in model:
            if isinstance(layer, nn.Linear):  # rebinding at once frees each old buffer: 3 alive at most
                if tangent is not None:
                    tangent = torch.matmul(tangent, layer.weight.t())
                u = _draw(layer.weight, (directions, *layer.weight.shape), kind, generator)
                # plus d(x W^T)/dW along u, i.e. x u^T
                tangent = torch.matmul(primal, u.transpose(1, 2)) if tangent is None \
                    else tangent.baddbmm_(primal.expand(directions, *primal.shape), u.transpose(1, 2))
                del u
                if layer.bias is not None:
                    tangent.add_(_draw(layer.bias, (directions, 1, *layer.bias.shape), kind, generator))
                primal = torch.nn.functional.linear(primal, layer.weight, layer.bias)
            elif isinstance(layer, nn.ReLU):
                tangent.masked_fill_(primal <= 0, 0.0)
                primal = primal.relu_() if primal is not inputs else primal.relu()
            elif tangent is None:
                primal = layer(primal)
            else:
                tangent = torch.stack([jvp(layer, (primal,), (t,))[1] for t in tangent])
                primal = layer(primal)
        pairs = [jvp(lambda z: loss(z, targets), (primal,), (t,)) for t in tangent]
    generator.set_state(start)
    return pairs[0][0], torch.stack([slope for _, slope in pairs])


def redrawn_estimates(params: Iterable[torch.Tensor], slopes: torch.Tensor, *, generator: torch.Generator,
                      kind: str = "gaussian") -> Iterator[torch.Tensor]:
    """``phi_p = (1/m) sum_j slopes_j u_jp`` for each tensor ``p`` in turn, its ``m`` tangents drawn again from
    ``generator`` (where :func:`layerwise_directional_derivatives` left it): made when asked, so a consumer
    that uses each before asking for the next holds one parameter-sized estimate at a time."""
    m = len(slopes)
    for p in params:
        u = _draw(p, (m, *p.shape), kind, generator)
        yield u[0].mul_(slopes[0]) if m == 1 else torch.tensordot(slopes, u, dims=1).div_(m)


def layerwise_forward_gradient(model: nn.Sequential, loss: Loss, inputs: torch.Tensor, targets: torch.Tensor, *,
                               generator: torch.Generator, directions: int = 1, kind: str = "gaussian") -> torch.Tensor:
    """Write ``phi = (1/m) sum_j <grad f, u_j> u_j`` into every parameter's ``.grad``; return the loss.

    The same ``phi`` as :func:`projected_forward_gradient` with the same ``generator`` and ``directions``
    (same draws, in ``model.named_parameters()`` order), with less memory:
    :func:`layerwise_directional_derivatives`, then :func:`redrawn_estimates` straight into ``.grad``.
    """
    value, slopes = layerwise_directional_derivatives(model, loss, inputs, targets, generator=generator,
                                                      directions=directions, kind=kind)
    params = list(model.parameters())
    for p, estimate in zip(params, redrawn_estimates(params, slopes, generator=generator, kind=kind)):
        p.grad = estimate
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
