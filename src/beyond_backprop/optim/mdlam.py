r"""mDLAM: monotonic deep learning alternating minimisation (Wang, Li, Zhao, Neurocomputing 2022).

Problem 2 of the paper, with rows as samples (the paper stores samples as columns):

.. math::
    \min_{W,b,z,a}\; F = R(z_L; y) + \sum_l \tfrac{\mu}{2}\|W_l\|^2
        + \sum_l \tfrac{\rho}{2}\|z_l - a_{l-1} W_l^\top - b_l\|^2
    \quad\text{s.t.}\quad \mathrm{relu}(z_l) - \varepsilon \le a_l \le \mathrm{relu}(z_l) + \varepsilon

``R`` is the softmax cross-entropy summed over the training samples. One iteration (Alg. 1)::

    s_{k+1} = (1 + sqrt(1 + 4 s_k^2)) / 2;  w_k = (s_k - 1) / s_{k+1}      # s_0 = 0
    for l = 1..L:
        W_l <- Wstep(W_l^k + w_k (W_l^k - W_l^{k-1}))      # backtracking on theta; if F did not
                                                            # decrease, Wstep(W_l^k) instead
        b_l <- rowmean(z_l - a_{l-1} W_l^T)                 # exact
        z_l <- clip(a_{l-1} W_l^T + b_l, S(a_l))  (l < L)   # exact, eq (4)
        z_L <- argmin R(z) + rho/2 ||z - a_{L-1} W_L^T - b_L||^2 from the extrapolated z_L, safeguarded
        a_l <- Astep(a_l^k + w_k (a_l^k - a_l^{k-1}))  (l < L)   # projected step with backtracking,
                                                            # safeguarded like W
    eps <- max(eps / 2, eps_min)

The safeguard compares the block-local terms of ``F`` after the candidate update with those at the
previous iterate ``X^k``; the indicator of the ε-band is left out (every z- and a-step is feasible by
construction).

.. note::
    ``official_code=True`` reproduces the published ``mDLAM.py``: its extrapolation adds zero and its
    safeguard recomputes from the same point, so it runs plain alternating minimisation; the weight
    decay is linearised in the W-step; the layer-2 bias is never updated; ``z_L`` starts at ``2y - 1``.
    The code's monitored objective counts the decay twice (``mu ||W||^2``); :meth:`MDLAM.objective` counts
    it once in both modes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import pandas as pd
import torch

from ..runtime import Timer
from .dladmm import forward

BACKTRACKING_TESTS = 11  # theta = 1, 2, ..., 1024 as in the official code
Block = Callable[[torch.Tensor], torch.Tensor]


def nesterov_weight(s: float) -> tuple[float, float]:
    """``(w_k, s_{k+1})`` of the FISTA sequence from ``s_k``."""
    s_next = (1.0 + math.sqrt(1.0 + 4.0 * s * s)) / 2.0
    return (s - 1.0) / s_next, s_next


def penalty(z: torch.Tensor, a_prev: torch.Tensor, w: torch.Tensor, b: torch.Tensor, rho: float) -> torch.Tensor:
    """``phi = rho/2 ||z - a_prev W^T - b||^2``."""
    return 0.5 * rho * (z - a_prev @ w.T - b).square().sum()


def cross_entropy_sum(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of logits ``z`` against one-hot ``y``, summed over rows."""
    return -(y * torch.log_softmax(z, dim=1)).sum()


def _first_passing(passed: torch.Tensor, values: torch.Tensor, fallback: float) -> torch.Tensor:
    """The entry of ``values`` at the first true entry of ``passed`` (``fallback`` if none), without a host sync."""
    first = passed.to(torch.int8).argmax()
    return torch.where(passed.any(), values[first], torch.full_like(values[0], fallback))


def update_w(
    w_bar: torch.Tensor, a_prev: torch.Tensor, z: torch.Tensor, b: torch.Tensor, *,
    rho: float, mu: float, linearize_decay: bool = False,
) -> torch.Tensor:
    """Eq (3): minimise the quadratic surrogate of ``phi`` at ``W̄`` plus ``mu/2 ||W||^2``, backtracking on theta.

    ``W = (theta W̄ - grad phi(W̄)) / (theta + mu)``, theta = 1, 2, 4, ..., 1024, the first with
    ``phi(W) <= phi(W̄) + <grad, W - W̄> + theta/2 ||W - W̄||^2``; ``W̄`` if none passes.
    With ``linearize_decay`` the decay joins the linearised part (the official code): ``W = W̄ - G/theta``.

    Every candidate is ``W̄ - c D`` for one direction ``D``, so the tests of all theta reduce to a few
    inner products, evaluated together without a host sync.
    """
    residual = a_prev @ w_bar.T + b - z
    grad = rho * residual.T @ a_prev
    thetas = 2.0 ** torch.arange(BACKTRACKING_TESTS, dtype=w_bar.dtype, device=w_bar.device)
    direction = grad + mu * w_bar
    c = 1.0 / thetas if linearize_decay else 1.0 / (thetas + mu)
    q = a_prev @ direction.T
    r_q, q_q, d_d = (residual * q).sum(), q.square().sum(), direction.square().sum()
    # phi(W̄ - cD) - phi(W̄), its linear model <G, -cD> and the proximal term, for every theta
    increase = 0.5 * rho * (c * c * q_q - 2 * c * r_q)
    slope = grad if not linearize_decay else direction
    model = -c * (slope * direction).sum() + 0.5 * thetas * c * c * d_d
    if linearize_decay:
        increase = increase + 0.5 * mu * (c * c * d_d - 2 * c * (w_bar * direction).sum())
    return w_bar - _first_passing(increase <= model, c, 0.0) * direction


def update_b(z: torch.Tensor, a_prev: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact minimiser of ``phi`` in ``b``: the row mean of ``z - a_prev W^T``."""
    return (z - a_prev @ w.T).mean(dim=0)


def update_z_hidden(m: torch.Tensor, a: torch.Tensor, eps: float) -> torch.Tensor:
    """Eq (4): ``argmin_{z in S(a)} ||z - m||^2`` with ``S(a) = {z : relu(z) - eps <= a <= relu(z) + eps}``.

    ``S(a) = [a - eps, a + eps]`` where ``a - eps > 0`` and ``(-inf, a + eps]`` elsewhere.
    """
    z = torch.minimum(m, a + eps)
    return torch.where(a - eps > 0, torch.maximum(z, a - eps), z)


def update_z_last(z0: torch.Tensor, m: torch.Tensor, y: torch.Tensor, *, rho: float, steps: int) -> torch.Tensor:
    """Eq (5): ``argmin_z R(z; y) + rho/2 ||z - m||^2`` by ``steps`` gradient steps of size ``1/(1/2 + rho)`` from ``z0``.

    The summed cross-entropy has a row-wise Hessian bounded by 1/2, so each step does not increase the
    objective (descent lemma).
    """
    z = z0
    for _ in range(steps):
        z = z - (torch.softmax(z, dim=1) - y + rho * (z - m)) / (0.5 + rho)
    return z


def update_a(
    a_bar: torch.Tensor, z: torch.Tensor, w_next: torch.Tensor, b_next: torch.Tensor, z_next: torch.Tensor, *,
    rho: float, eps: float,
) -> torch.Tensor:
    """Eq (6): projected step on ``phi(a, W_{l+1}, z_{l+1})`` into the band ``relu(z) ± eps``, backtracking on tau.

    ``a = clamp(ā - grad/tau, relu(z) - eps, relu(z) + eps)``, tau = 1, 2, 4, ... until
    ``phi(a) <= phi(ā) + <grad, a - ā> + tau/2 ||a - ā||^2``; the projection of ``ā`` if none passes.
    """
    low, high = torch.relu(z) - eps, torch.relu(z) + eps
    residual = a_bar @ w_next.T + b_next - z_next
    grad = rho * residual @ w_next
    taus = 2.0 ** torch.arange(BACKTRACKING_TESTS, dtype=a_bar.dtype, device=a_bar.device)
    candidates = torch.clamp(a_bar - grad / taus[:, None, None], low, high)
    steps = candidates - a_bar
    phis = 0.5 * rho * (candidates @ w_next.T + b_next - z_next).square().sum(dim=(1, 2))
    model = (0.5 * rho * residual.square().sum() + (grad * steps).sum(dim=(1, 2))
             + 0.5 * taus * steps.square().sum(dim=(1, 2)))
    passed = phis <= model
    first = passed.to(torch.int8).argmax()
    return torch.where(passed.any(), candidates[first], torch.clamp(a_bar, low, high))


@dataclass(frozen=True)
class MDLAMState:
    """All blocks (``z`` and ``a`` indexed by layer; ``a[0]`` is the input), the previous iterate, and scalars."""

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    z: tuple[torch.Tensor, ...]
    a: tuple[torch.Tensor, ...]
    previous_weights: tuple[torch.Tensor, ...]
    previous_z_last: torch.Tensor
    previous_a: tuple[torch.Tensor, ...]
    eps: float
    s: float = 0.0
    k: int = 0
    fallbacks: int = 0  # safeguarded (non-extrapolated) steps taken in the last iteration


class MDLAM:
    """mDLAM for an MLP ``widths[0] → … → widths[-1]`` with ReLU hidden layers, full batch.

    Args:
        widths: layer sizes, e.g. ``[d, 100, 100, C]``.
        rho: penalty weight (Table 3: Cora 1e-3, Citeseer 5e-3).
        eps0: initial band half-width (100); halved after each iteration down to ``eps_min`` (1e-3).
        mu: weight decay of the official code (0.05).
        accelerate: Nesterov extrapolation with the monotone safeguard (the paper's mDLAM).
        official_code: reproduce the published code's behaviour (see the module note); implies no acceleration.
        z_steps: gradient steps of the ``z_L`` subproblem per iteration.
    """

    def __init__(self, widths: list[int], *, rho: float = 1e-3, eps0: float = 100.0, eps_min: float = 1e-3,
                 mu: float = 0.05, accelerate: bool = True, official_code: bool = False, z_steps: int = 50) -> None:
        if len(widths) < 3 or any(int(w) < 1 for w in widths):
            raise ValueError(f"invalid widths {widths!r}; expected at least three positive sizes")
        if rho <= 0:
            raise ValueError(f"invalid rho {rho!r}; expected > 0")
        if eps_min <= 0 or eps0 < eps_min:
            raise ValueError(f"invalid eps0 {eps0!r} and eps_min {eps_min!r}; expected eps0 >= eps_min > 0")
        if mu < 0:
            raise ValueError(f"invalid mu {mu!r}; expected >= 0")
        if z_steps < 1:
            raise ValueError(f"invalid z_steps {z_steps!r}; expected >= 1")
        if official_code and accelerate:
            raise ValueError("invalid accelerate=True with official_code=True; the official code never extrapolates")
        self.widths, self.rho, self.eps0, self.eps_min, self.mu = list(widths), rho, eps0, eps_min, mu
        self.accelerate, self.official_code, self.z_steps = accelerate, official_code, z_steps

    def init(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MDLAMState:
        """W, b ~ N(0, 0.1^2) (drawn on CPU); z, a from a forward pass; ``z_L = 2y - 1`` in official-code mode."""
        if x.shape[1] != self.widths[0] or y.shape[1] != self.widths[-1]:
            raise ValueError(f"invalid data shapes {tuple(x.shape)}, {tuple(y.shape)}; expected widths {self.widths}")
        pairs = list(zip(self.widths[:-1], self.widths[1:]))
        weights = tuple(0.1 * torch.randn(o, i, generator=generator).to(x.device) for i, o in pairs)
        biases = tuple(0.1 * torch.randn(o, generator=generator).to(x.device) for _, o in pairs)
        z, a = [], [x]
        for w, b in zip(weights, biases):
            z.append(a[-1] @ w.T + b)
            a.append(torch.relu(z[-1]))
        if self.official_code:
            z[-1] = 2 * y - 1
        a = tuple(a[:-1])
        return MDLAMState(weights, biases, tuple(z), a, weights, z[-1], a, eps=self.eps0)

    def objective(self, state: MDLAMState, y: torch.Tensor) -> torch.Tensor:
        """``F`` (without the band indicator) as a 0-d tensor."""
        terms = [cross_entropy_sum(state.z[-1], y)]
        for l, (w, b) in enumerate(zip(state.weights, state.biases)):
            terms.append(penalty(state.z[l], state.a[l], w, b, self.rho) + 0.5 * self.mu * w.square().sum())
        return torch.stack(terms).sum()

    @staticmethod
    def _safeguarded(bar: torch.Tensor, current: torch.Tensor, step: Block, local: Block,
                     check: bool) -> tuple[torch.Tensor, int]:
        """``step(X̄)``; when ``check`` and its local objective is not below that at ``X^k``, ``step(X^k)``."""
        candidate = step(bar)
        if not check or local(candidate) < local(current):
            return candidate, 0
        return step(current), 1

    def step(self, state: MDLAMState, x: torch.Tensor, y: torch.Tensor) -> MDLAMState:
        """One forward sweep ``W_l → b_l → z_l → a_l`` for l = 1..L, then halve eps."""
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"invalid batch: {x.shape[0]} inputs and {y.shape[0]} targets")
        omega, s_next = nesterov_weight(state.s) if self.accelerate else (0.0, state.s)
        omega = max(omega, 0.0)  # w_0 = -1 multiplies X^0 - X^{-1} = 0
        check = omega > 0  # the safeguard only matters when the point was extrapolated
        rho, mu, eps = self.rho, self.mu, state.eps
        weights, biases, z, a = list(state.weights), list(state.biases), list(state.z), [x, *state.a[1:]]
        last, fallbacks = len(weights) - 1, 0
        for l in range(last + 1):
            a_prev = a[l]

            def w_step(w_bar, l=l, a_prev=a_prev):
                return update_w(w_bar, a_prev, z[l], biases[l], rho=rho, mu=mu, linearize_decay=self.official_code)

            def w_local(w, l=l, a_prev=a_prev):
                return penalty(z[l], a_prev, w, biases[l], rho) + 0.5 * mu * w.square().sum()

            w_bar = weights[l] + omega * (weights[l] - state.previous_weights[l])
            weights[l], used = self._safeguarded(w_bar, weights[l], w_step, w_local, check)
            fallbacks += used
            if not (self.official_code and l == 1):
                biases[l] = update_b(z[l], a_prev, weights[l])
            m = a_prev @ weights[l].T + biases[l]
            if l < last:
                z[l] = update_z_hidden(m, a[l + 1], eps)
                a_bar = a[l + 1] + omega * (a[l + 1] - state.previous_a[l + 1])

                def a_step(start, l=l):
                    return update_a(start, z[l], weights[l + 1], biases[l + 1], z[l + 1], rho=rho, eps=eps)

                def a_local(value, l=l):
                    return penalty(z[l + 1], value, weights[l + 1], biases[l + 1], rho)

                a[l + 1], used = self._safeguarded(a_bar, a[l + 1], a_step, a_local, check)
                fallbacks += used
            else:
                z_bar = z[l] + omega * (z[l] - state.previous_z_last)

                def z_step(start, m=m):
                    return update_z_last(start, m, y, rho=rho, steps=self.z_steps)

                def z_local(value, m=m):
                    return cross_entropy_sum(value, y) + 0.5 * rho * (value - m).square().sum()

                z[l], used = self._safeguarded(z_bar, z[l], z_step, z_local, check)
                fallbacks += used
        return replace(
            state, weights=tuple(weights), biases=tuple(biases), z=tuple(z), a=tuple(a),
            previous_weights=state.weights, previous_z_last=state.z[-1], previous_a=state.a,
            eps=max(eps / 2.0, self.eps_min), s=s_next, k=state.k + 1, fallbacks=fallbacks,
        )

    @staticmethod
    def predict(state: MDLAMState, x: torch.Tensor) -> torch.Tensor:
        """Logits of the feed-forward network with the current weights and biases (dlADMM's ``forward``)."""
        return forward(state, x)

    def violation(self, state: MDLAMState) -> torch.Tensor:
        """``sum_l ||a_l - relu(z_l)||^2`` over the hidden layers."""
        return sum((a - torch.relu(z)).square().sum() for a, z in zip(state.a[1:], state.z[:-1]))

    def run(
        self, state: MDLAMState, x: torch.Tensor, y: torch.Tensor, iterations: int,
        evaluate: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[MDLAMState, pd.DataFrame]:
        """``iterations`` steps; one row each (metrics after the step, timing of the step only).

        Columns: ``iteration, seconds`` (cumulative), ``objective, violation``, ``eps`` (used in the step), ``fallbacks`` and
        ``<split>_accuracy`` for ``train`` and each ``evaluate`` split (inputs, integer labels).
        """
        if iterations < 1:
            raise ValueError(f"invalid iterations {iterations!r}; expected >= 1")
        splits = {"train": (x, y.argmax(dim=1)), **(evaluate or {})}
        records, metrics, elapsed = [], [], 0.0
        for _ in range(iterations):
            eps = state.eps
            with Timer(x.device) as timer:
                state = self.step(state, x, y)
            elapsed += timer.seconds
            accuracies = [(self.predict(state, inputs).argmax(dim=1) == labels).float().mean()
                          for inputs, labels in splits.values()]
            metrics.append(torch.stack([self.objective(state, y), self.violation(state), *accuracies]))
            records.append({"iteration": state.k, "seconds": elapsed, "eps": eps, "fallbacks": state.fallbacks})
        history = pd.DataFrame(records)
        table = torch.stack(metrics).cpu().numpy()
        for column, name in enumerate(["objective", "violation", *(f"{s}_accuracy" for s in splits)]):
            history[name] = table[:, column]
        return state, history
