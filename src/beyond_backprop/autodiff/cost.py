"""Cost of automatic differentiation: derivative programs and how long they take.

The derivative programs (for ``f: R^p -> R``, or ``R^p -> R^q`` for JVPs/VJPs):

- ``jvp``: one directional derivative J(x) v, forward mode;
- ``vjp``: one vector-Jacobian product wᵀ J(x), backward mode;
- ``directional_derivatives``: J(x) V for the columns of V, looped or batched with ``vmap``;
- ``gradient_backward``: ∇f(x) by one backward pass;
- ``gradient_forward``: ∇f(x) by p forward passes, one per basis vector.

Timings are interleaved (every program once per round), so that ratios between
programs taken within a round hold on a noisy, shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.func import grad, jvp as func_jvp, vjp as func_vjp, vmap

from ..runtime import PeakMemory, Timer

Function = Callable[[torch.Tensor], torch.Tensor]


def jvp(f: Function, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Forward mode: J_f(x) v."""
    return func_jvp(f, (x,), (v,))[1]


def vjp(f: Function, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Backward mode: wᵀ J_f(x)."""
    _, pullback = func_vjp(f, x)
    return pullback(w)[0]


def directional_derivatives(f: Function, x: torch.Tensor, directions: torch.Tensor, batched: bool) -> torch.Tensor:
    """J_f(x) v_k for every row v_k of ``directions`` (k, *x.shape); one JVP each.

    ``batched=True`` evaluates all of them at once with ``vmap`` (one pass whose
    linear layers become matrix products), otherwise one JVP per direction.
    """
    if directions.shape[1:] != x.shape:
        expected = ", ".join(map(str, x.shape))
        raise ValueError(f"invalid directions shape {tuple(directions.shape)}; expected (k, {expected})")
    if batched:
        return vmap(lambda v: jvp(f, x, v))(directions)
    return torch.stack([jvp(f, x, v) for v in directions])


def gradient_backward(f: Function, x: torch.Tensor) -> torch.Tensor:
    """∇f(x) of a scalar ``f`` by one backward pass."""
    return grad(f)(x)


def gradient_forward(f: Function, x: torch.Tensor, batched: bool) -> torch.Tensor:
    """∇f(x) of a scalar ``f`` by p forward passes, one per basis vector e_i."""
    basis = torch.eye(x.numel(), dtype=x.dtype, device=x.device).reshape(x.numel(), *x.shape)
    return directional_derivatives(f, x, basis, batched).reshape(x.shape)


def parameter_gradient(model: nn.Module, loss: Callable[[torch.Tensor], torch.Tensor],
                       x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gradient of ``loss(model(x))`` with respect to every parameter (the training setting)."""
    return torch.autograd.grad(loss(model(x)), tuple(model.parameters()))


def interleaved_times(programs: Mapping[str, Callable[[], Any]], device: torch.device | str,
                      repeats: int = 20, warmup: int = 3) -> dict[str, list[float]]:
    """Wall time in seconds of each program in every timed round, run interleaved.

    for r in 1..warmup+repeats: for each program P: time P (:func:`elapsed`)
    return {P: its last ``repeats`` times, in round order}

    Times of one round were taken moments apart, so a ratio between two programs within a round
    cancels most of a shared machine's drift; the spread of those ratios over rounds is the noise.
    """
    if repeats < 1:
        raise ValueError(f"invalid repeats {repeats!r}; expected >= 1")
    if warmup < 0:
        raise ValueError(f"invalid warmup {warmup!r}; expected >= 0")
    times: dict[str, list[float]] = {name: [] for name in programs}
    for round_ in range(warmup + repeats):
        for name, program in programs.items():
            seconds = elapsed(program, device)
            if round_ >= warmup:
                times[name].append(seconds)
    return times


def elapsed(program: Callable[[], Any], device: torch.device | str) -> float:
    """Seconds one call of ``program`` costs: CUDA-synchronised wall time on a GPU; on a CPU the process's
    CPU time, which time slices given to other processes do not inflate (with several torch threads it
    is the work of all of them together)."""
    if torch.device(device).type == "cuda":
        with Timer(device) as timer:
            program()
        return timer.seconds
    start = time.process_time()
    program()
    return time.process_time() - start


def peak_memory(program: Callable[[], Any], device: torch.device | str) -> int:
    """Peak bytes allocated while ``program`` runs, above the level at entry (``runtime.PeakMemory``)."""
    with PeakMemory(device) as meter:
        program()
    return meter.bytes
