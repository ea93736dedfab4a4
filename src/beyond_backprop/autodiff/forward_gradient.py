"""Projected forward gradients: ``phi = <grad f, u> u`` from forward-mode AD (one JVP), no tape.

For ``u ~ N(0, I_d)``: ``E phi = grad f`` and ``E ||phi||^2 = (d + 2) ||grad f||^2``; for Rademacher
``u``: ``E ||phi||^2 = d ||grad f||^2``. Averaging ``m`` independent directions divides the variance
``E ||phi - grad f||^2`` by ``m`` (Baydin et al. 2022; Rostami & Kia, arXiv 2403.12511).
"""

from __future__ import annotations

import math
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
Fold = Callable[[torch.Tensor | None, float], torch.Tensor]  # (d, rho) -> (1 - rho) d + rho phi, in d's storage
PIECE_ROWS = 64  # rows of a tensor's tangents drawn at a time (rounded to a multiple of 16 entries)
ROW_CHUNK = 128  # batch rows per piece of a layer applied in place (fewer: slower matrix products)
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid)  # the activations applied in place (those of models.mlp)


def drawn_rows(p: torch.Tensor, count: int, kind: str,
               generator: torch.Generator) -> Iterator[tuple[int, slice, torch.Tensor]]:
    """The draw of ``_draw(p, (count, *p.shape))`` piece by piece: ``(j, rows, u_j[rows])`` in stream order.

    On the CPU, ``normal_`` turns uniforms into normals 16 at a time and redraws the last 16 of a size that 16
    does not divide, so consecutive draws whose sizes are multiples of 16 give the very numbers of one whole
    draw; each piece here is a whole number of rows of ``p`` and a multiple of 16 entries (``p.numel()`` a
    multiple of 16). Elsewhere (CUDA's counter-based generator) or otherwise the draw is whole, then sliced.
    """
    rows, per_piece = p.shape[0] if p.dim() else 1, _rows_per_piece(p, generator)
    if per_piece is None:
        u = _draw(p, (count, *p.shape), kind, generator)
        for j in range(count):
            yield j, slice(0, rows), u[j]
        return
    for j in range(count):
        for first in range(0, rows, per_piece):
            piece = slice(first, min(rows, first + per_piece))
            yield j, piece, _draw(p, (piece.stop - first, *p.shape[1:]), kind, generator)


def _rows_per_piece(p: torch.Tensor, generator: torch.Generator) -> int | None:
    """Rows of ``p`` per piece of :func:`drawn_rows`; None when the draw is whole."""
    if generator.device.type != "cpu" or p.numel() % 16:
        return None
    row_size = p[0].numel() if p.dim() else 1
    step = 16 // math.gcd(row_size, 16)  # rows per multiple of 16 entries
    return step * max(1, PIECE_ROWS // step)


def tangent_piece_entries(p: torch.Tensor, count: int, generator: torch.Generator) -> int:
    """Entries of the largest piece of tangents that :func:`drawn_rows` holds at once for ``p``."""
    per_piece = _rows_per_piece(p, generator)
    if per_piece is None:
        return count * p.numel()
    return min(per_piece, p.shape[0] if p.dim() else 1) * (p[0].numel() if p.dim() else 1)


def _row_pieces(rows: int) -> Iterator[slice]:
    return (slice(first, min(rows, first + ROW_CHUNK)) for first in range(0, rows, ROW_CHUNK))


def _first_linear(layer: nn.Linear, x: torch.Tensor, primal: torch.Tensor, tangent: torch.Tensor, kind: str,
                  generator: torch.Generator) -> None:
    """``primal = x W^T + b`` and ``tangent_j = x u_j^T + v_j`` (``x`` without tangent), written into the views."""
    for rows in _row_pieces(x.shape[0]):
        primal[rows] = nn.functional.linear(x[rows], layer.weight, layer.bias)
    for j, columns, u in drawn_rows(layer.weight, len(tangent), kind, generator):
        tangent[j][:, columns].addmm_(x, u.t(), beta=0)
        del u  # before the next piece is drawn


def _linear_in_place(layer: nn.Linear, primal: torch.Tensor, tangent: torch.Tensor, out: torch.Tensor,
                     out_tangent: torch.Tensor, kind: str, generator: torch.Generator) -> None:
    """``out = primal W^T + b`` and ``out_tangent_j = tangent_j W^T + primal u_j^T + v_j`` where the outputs may
    share the inputs' rows (row ``i`` of an output overlaps row ``i`` of its input at most): the tangent's
    ``W^T`` part row piece by row piece, then ``primal u_j^T`` added in column pieces while ``primal`` is
    intact (``u_j`` drawn in pieces of rows), then the primal row piece by row piece."""
    for rows in _row_pieces(primal.shape[0]):
        out_tangent[:, rows] = torch.matmul(tangent[:, rows], layer.weight.t())
    for j, columns, u in drawn_rows(layer.weight, len(tangent), kind, generator):
        out_tangent[j][:, columns].addmm_(primal, u.t())
        del u  # before the next piece is drawn
    for rows in _row_pieces(primal.shape[0]):
        out[rows] = nn.functional.linear(primal[rows], layer.weight, layer.bias)


def _activation_in_place(layer: nn.Module, primal: torch.Tensor, tangent: torch.Tensor) -> None:
    """An elementwise activation and its tangents, row piece by row piece, written back over their inputs."""
    for rows in _row_pieces(primal.shape[0]):
        if isinstance(layer, nn.ReLU):
            tangent[:, rows].masked_fill_(primal[rows] <= 0, 0.0)
            primal[rows].relu_()
        else:
            pairs = [jvp(layer, (primal[rows],), (t,)) for t in tangent[:, rows]]
            tangent[:, rows] = torch.stack([t for _, t in pairs])
            primal[rows] = pairs[0][0]


def layerwise_directional_derivatives(model: nn.Sequential, loss: Loss, inputs: torch.Tensor, targets: torch.Tensor, *,
                                      generator: torch.Generator, directions: int = 1,
                                      kind: str = "gaussian") -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, slopes)``: the loss and its ``directions`` derivatives ``<grad f, u_j>`` along random tangents.

    Forward mode by hand through an ``nn.Sequential`` of ``Linear`` layers and elementwise activations, without
    a tape, in two buffers: the primal activation (batch x widest ``Linear`` output) and its ``m`` tangents.
    Each layer writes its output over its input, a piece of rows at a time (row ``i`` of a layer's output
    depends on row ``i`` of its input only), each layer in a narrow view of the buffers. A layer's tangents
    (``m`` per tensor, drawn as :func:`sample_directions` draws them) are drawn when the layer is reached, a
    piece at a time (:func:`drawn_rows`). Other layers go through whole. The generator is left where it
    started, so that :func:`redrawn_folds` draws the same tangents again.
    """
    if kind not in DIRECTIONS:
        raise ValueError(f"invalid direction kind {kind!r}; expected one of {', '.join(DIRECTIONS)}")
    if directions < 1:
        raise ValueError(f"invalid directions {directions!r}; expected >= 1")
    start = generator.get_state()
    width = max((layer.out_features for layer in model if isinstance(layer, nn.Linear)), default=0)
    buffers: tuple[torch.Tensor, torch.Tensor] | None = None
    with torch.no_grad():
        primal, tangent = inputs, None  # tangent: (m, batch, features)
        for layer in model:
            owned = buffers is not None and primal.data_ptr() == buffers[0].data_ptr()
            if isinstance(layer, nn.Linear) and primal.dim() == 2:
                if buffers is None or len(buffers[0]) != len(primal):
                    buffers = (primal.new_empty(len(primal), width), primal.new_empty(directions, len(primal), width))
                out, out_tangent = buffers[0][:, :layer.out_features], buffers[1][:, :, :layer.out_features]
                if tangent is None:
                    _first_linear(layer, primal, out, out_tangent, kind, generator)
                else:
                    _linear_in_place(layer, primal, tangent, out, out_tangent, kind, generator)
                if layer.bias is not None:
                    out_tangent.add_(_draw(layer.bias, (directions, 1, *layer.bias.shape), kind, generator))
                primal, tangent = out, out_tangent
            elif tangent is None:
                primal = layer(primal)
            elif owned and isinstance(layer, ELEMENTWISE):
                _activation_in_place(layer, primal, tangent)
            else:
                tangent = torch.stack([jvp(layer, (primal,), (t,))[1] for t in tangent])
                primal = layer(primal)
        pairs = [jvp(lambda z: loss(z, targets), (primal,), (t,)) for t in tangent]
    generator.set_state(start)
    return pairs[0][0], torch.stack([slope for _, slope in pairs])


def redrawn_folds(params: Iterable[torch.Tensor], slopes: torch.Tensor, *, generator: torch.Generator,
                  kind: str = "gaussian") -> Iterator[Fold]:
    """For each tensor ``p`` in turn, the fold of its estimate ``phi_p = (1/m) sum_j slopes_j u_jp``: a function
    ``(d, rho) -> (1 - rho) d + rho phi_p`` written into ``d`` (``phi_p`` itself, new, when ``d`` is None).

    The ``m`` tangents are drawn again from ``generator`` (where :func:`layerwise_directional_derivatives` left
    it), a piece of rows at a time (:func:`drawn_rows`): ``phi_p`` is never made whole unless asked for. Call each
    fold before asking for the next (they draw in turn).
    """
    m = len(slopes)
    for p in params:
        def fold(d: torch.Tensor | None, rho: float, p: torch.Tensor = p) -> torch.Tensor:
            if d is None:
                target, weight = torch.zeros_like(p) if m > 1 else torch.empty_like(p), 1.0
            else:
                target, weight = d.mul_(1 - rho), rho
            for j, rows, u in drawn_rows(p, m, kind, generator):
                piece = target[rows] if p.dim() else target
                if d is None and m == 1:
                    piece.copy_(u.mul_(slopes[0]))
                elif m == 1:
                    piece.add_(u.mul_(slopes[0]), alpha=weight)
                else:
                    piece.add_(u.mul_(slopes[j] * (weight / m)))
                del u  # before the next piece is drawn
            return target
        yield fold


def layerwise_forward_gradient(model: nn.Sequential, loss: Loss, inputs: torch.Tensor, targets: torch.Tensor, *,
                               generator: torch.Generator, directions: int = 1, kind: str = "gaussian") -> torch.Tensor:
    """Write ``phi = (1/m) sum_j <grad f, u_j> u_j`` into every parameter's ``.grad``; return the loss.

    The same ``phi`` as :func:`projected_forward_gradient` with the same ``generator`` and ``directions``
    (same draws, in ``model.named_parameters()`` order), with less memory:
    :func:`layerwise_directional_derivatives`, then :func:`redrawn_folds` straight into ``.grad``.
    """
    value, slopes = layerwise_directional_derivatives(model, loss, inputs, targets, generator=generator,
                                                      directions=directions, kind=kind)
    params = list(model.parameters())
    for p, fold in zip(params, redrawn_folds(params, slopes, generator=generator, kind=kind)):
        p.grad = fold(None, 1.0)
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
