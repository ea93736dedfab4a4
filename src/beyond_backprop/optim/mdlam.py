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

Two presets of :class:`MDLAMOptions` name what a run does beyond its hyperparameters:

- :data:`PAPER`: Algorithm 1 as written (Nesterov extrapolation with the monotone safeguard), the
  closed-form W-step with the decay, every bias updated, ``z_L`` from the forward pass and solved by
  fixed-step gradient descent (monotone by the descent lemma).
- :data:`OFFICIAL`: the published ``mDLAM.py`` in full. Its extrapolation adds zero and its safeguard
  recomputes from the same point, so it runs plain alternating minimisation; the weight decay is
  linearised in the W-step; the layer-2 bias is never updated; ``z_L`` starts at ``2y - 1`` and is
  solved by the code's accelerated proximal-gradient loop (:func:`update_z_last_fista`).

The code's monitored objective counts the decay twice (``mu ||W||^2``); :meth:`MDLAM.objective` counts
it once in both presets. The code's softmax has no max-shift and adds 1e-10 inside the logarithm; this
module uses the stable ``log_softmax`` in every preset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..models import cross_entropy_sum, draw_normal, mlp_logits
from ..problem import Problem, Split
from .construction import check_widths, with_overrides
from .fista import fista_momentum

BACKTRACKING_TESTS = 11  # theta = 1, 2, ..., 1024 as in the official code
CANDIDATE_BLOCK_ELEMENTS = 2**18  # update_a tests its candidates in blocks of at most this many entries
# the kept x W_1^T is made again from x every this many steps: round-off in the extrapolated products is
# amplified like the iterates (float32, Cora: 6e-7 of the largest entry after 10 steps, 1e-3 after 1,000; with
# the refresh at most 4e-6 over 1,000 steps, where one float32 GEMM is 3e-7 off its float64 value)
PRODUCT_REFRESH = 10
FISTA_STEP, FISTA_TOLERANCE, FISTA_ITERATIONS = 4.0, 1e-4, 500  # the official code's z_L loop


def nesterov_weight(s: float) -> tuple[float, float]:
    """``(w_k, s_{k+1})`` of the FISTA sequence from ``s_k``."""
    s_next = fista_momentum(s)
    return (s - 1.0) / s_next, s_next


def penalty(z: torch.Tensor, a_prev: torch.Tensor, w: torch.Tensor, b: torch.Tensor, rho: float) -> torch.Tensor:
    """``phi = rho/2 ||z - a_prev W^T - b||^2``."""
    return penalty_of_product(z, a_prev @ w.T, b, rho)


def penalty_of_product(z: torch.Tensor, product: torch.Tensor, b: torch.Tensor, rho: float) -> torch.Tensor:
    """``phi`` from the product ``a_prev W^T``, already computed."""
    return 0.5 * rho * (z - product - b).square().sum()


def _first_passing(passed: torch.Tensor, values: torch.Tensor, fallback: float) -> torch.Tensor:
    """The entry of ``values`` at the first true entry of ``passed`` (``fallback`` if none), without a host sync."""
    first = passed.to(torch.int8).argmax()
    return torch.where(passed.any(), values[first], torch.full_like(values[0], fallback))


def _inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``<x, y>`` without a temporary the size of ``x``."""
    return torch.dot(x.reshape(-1), y.reshape(-1))


def update_w(
    w_bar: torch.Tensor, a_prev: torch.Tensor, z: torch.Tensor, b: torch.Tensor, *,
    rho: float, mu: float, linearize_decay: bool = False,
) -> torch.Tensor:
    """Eq (3): minimise the quadratic surrogate of ``phi`` at ``W̄`` plus ``mu/2 ||W||^2``, backtracking on theta.

    ``W = (theta W̄ - grad phi(W̄)) / (theta + mu)``, theta = 1, 2, 4, ..., 1024, the first with
    ``phi(W) <= phi(W̄) + <grad, W - W̄> + theta/2 ||W - W̄||^2``; ``W̄`` if none passes.
    With ``linearize_decay`` the decay joins the linearised part (the official code): ``W = W̄ - G/theta``.
    """
    return update_w_and_product(w_bar, a_prev, z, b, rho=rho, mu=mu, linearize_decay=linearize_decay)[0]


def update_w_and_product(
    w_bar: torch.Tensor, a_prev: torch.Tensor, z: torch.Tensor, b: torch.Tensor, *,
    rho: float, mu: float, linearize_decay: bool = False, product_bar: torch.Tensor | None = None,
    gram: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`update_w` and the product ``a_prev W^T`` of its result; ``product_bar`` is ``a_prev W̄^T`` if known,
    ``gram`` is ``a_prev a_prev^T`` if kept.

    Every candidate is ``W̄ - c D`` for one direction ``D``, so the tests of all theta reduce to a few
    inner products, evaluated together without a host sync, and ``a_prev W^T = a_prev W̄^T - c a_prev D^T``
    needs no third product: three GEMMs in all (``a_prev W̄^T``, the gradient, ``a_prev D^T``), two when
    ``product_bar`` is given. With ``D = rho r^T a_prev + mu W̄`` (``r`` the residual at ``W̄``),
    ``a_prev D^T = rho (a_prev a_prev^T) r + mu a_prev W̄^T``: with ``gram``, an N×N by N×n product instead.
    """
    if product_bar is None:
        product_bar = a_prev @ w_bar.T
    residual = product_bar + b - z
    grad = (rho * residual).T @ a_prev
    thetas = 2.0 ** torch.arange(BACKTRACKING_TESTS, dtype=w_bar.dtype, device=w_bar.device)
    direction = torch.add(grad, w_bar, alpha=mu)
    c = 1.0 / thetas if linearize_decay else 1.0 / (thetas + mu)
    q = a_prev @ direction.T if gram is None else torch.addmm(product_bar, gram, residual, beta=mu, alpha=rho)
    r_q, q_q, d_d = _inner(residual, q), _inner(q, q), _inner(direction, direction)
    # phi(W̄ - cD) - phi(W̄), its linear model <G, -cD> and the proximal term, for every theta
    increase = 0.5 * rho * (c * c * q_q - 2 * c * r_q)
    model = -c * (d_d if linearize_decay else _inner(grad, direction)) + 0.5 * thetas * c * c * d_d
    if linearize_decay:
        increase = increase + 0.5 * mu * (c * c * d_d - 2 * c * _inner(w_bar, direction))
    step = _first_passing(increase <= model, c, 0.0)
    return torch.addcmul(w_bar, step, direction, value=-1.0), torch.addcmul(product_bar, step, q, value=-1.0)


def update_b(z: torch.Tensor, a_prev: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact minimiser of ``phi`` in ``b``: the row mean of ``z - a_prev W^T``."""
    return update_b_of_product(z, a_prev @ w.T)


def update_b_of_product(z: torch.Tensor, product: torch.Tensor) -> torch.Tensor:
    """:func:`update_b` from the product ``a_prev W^T``, already computed."""
    return (z - product).mean(dim=0)


def update_z_hidden(m: torch.Tensor, a: torch.Tensor, eps: float) -> torch.Tensor:
    """Eq (4): ``argmin_{z in S(a)} ||z - m||^2`` with ``S(a) = {z : relu(z) - eps <= a <= relu(z) + eps}``.

    ``S(a) = [a - eps, a + eps]`` where ``a - eps > 0`` and ``(-inf, a + eps]`` elsewhere.
    """
    z = torch.minimum(m, a + eps)
    return torch.where(a - eps > 0, torch.maximum(z, a - eps), z)


def update_z_last(z0: torch.Tensor, m: torch.Tensor, y: torch.Tensor, *, rho: float, steps: int) -> torch.Tensor:
    """Eq (5): ``argmin_z R(z; y) + rho/2 ||z - m||^2`` by ``steps`` gradient steps of size ``1/(1/2 + rho)``
    from ``z0``.

    The summed cross-entropy has a row-wise Hessian bounded by 1/2, so each step does not increase the
    objective (descent lemma).
    """
    # z - (softmax(z) - y + rho (z - m))/(1/2 + rho) = (rho m + y)/(1/2 + rho) + (z/2 - softmax(z))/(1/2 + rho),
    # on the transposes: a softmax over the contiguous dim of C×N is several times faster than over N×C's rows
    scale = 1.0 / (0.5 + rho)
    fixed, z = (rho * m + y).mul_(scale).T.contiguous(), z0.T.contiguous()
    for _ in range(steps):
        z = torch.add(fixed, z, alpha=0.5 * scale).sub_(torch.softmax(z, dim=0), alpha=scale)
    return z.T.contiguous()


def update_z_last_fista(z0: torch.Tensor, m: torch.Tensor, y: torch.Tensor, *, rho: float,
                        step: float = FISTA_STEP, tolerance: float = FISTA_TOLERANCE,
                        iterations: int = FISTA_ITERATIONS) -> torch.Tensor:
    """Eq (5) by the official code's ``update_zl``: accelerated proximal gradient from ``z0``.

    A gradient step of size ``step`` on the cross-entropy, then the exact prox of ``rho/2 ||z - m||^2``:
    ``zeta = (rho m + (z - step (softmax(z) - y)) / step) / (rho + 1/step)``, and the momentum point
    ``z = (1 - gamma) zeta + gamma zeta_prev`` with the FISTA ``gamma``. It stops when the objective at
    the momentum point changed by less than ``tolerance`` or after ``iterations`` steps (one host
    sync each). ``step = 4`` is twice ``1/L`` of the cross-entropy, as in the code.
    """
    z, zeta, lam, previous = z0, z0, 1.0, math.inf
    for _ in range(iterations):
        value = float(cross_entropy_sum(z, y) + 0.5 * rho * (z - m).square().sum())
        if abs(value - previous) < tolerance:
            break
        previous, lam_next = value, fista_momentum(lam)
        gamma, lam = (1.0 - lam) / lam_next, lam_next
        zeta_prev = zeta
        zeta = (rho * m + (z - step * (torch.softmax(z, dim=1) - y)) / step) / (rho + 1.0 / step)
        z = (1.0 - gamma) * zeta + gamma * zeta_prev
    return z


def update_a(
    a_bar: torch.Tensor, z: torch.Tensor, w_next: torch.Tensor, b_next: torch.Tensor, z_next: torch.Tensor, *,
    rho: float, eps: float,
) -> torch.Tensor:
    """Eq (6): projected step on ``phi(a, W_{l+1}, z_{l+1})`` into the band ``relu(z) ± eps``, backtracking on tau.

    ``a = clamp(ā - grad/tau, relu(z) - eps, relu(z) + eps)``, tau = 1, 2, 4, ... until
    ``phi(a) <= phi(ā) + <grad, a - ā> + tau/2 ||a - ā||^2``; the projection of ``ā`` if none passes.

    ``phi`` is quadratic with ``grad = rho r W`` (``r`` the residual at ``ā``), so with ``S = a - ā`` the test is
    ``rho ||S W^T||^2 <= tau ||S||^2``. Every tau is tested without a host sync, as many candidates at once as
    fit in :data:`CANDIDATE_BLOCK_ELEMENTS` (one at a time on large problems, so only a few N×n blocks are
    alive: all 11 together took 2.6 GB per temporary at 60,000 × 1000 in float32); the first that passes is then
    made again.
    """
    low, high = torch.relu(z) - eps, torch.relu(z) + eps
    grad = (a_bar @ w_next.T + b_next - z_next) @ w_next.mul(rho)
    taus = 2.0 ** torch.arange(BACKTRACKING_TESTS, dtype=a_bar.dtype, device=a_bar.device)
    block = max(1, CANDIDATE_BLOCK_ELEMENTS // a_bar.numel())
    passed = []
    for first in range(0, BACKTRACKING_TESTS, block):
        tau = taus[first:first + block, None, None]
        steps = torch.clamp(a_bar - grad / tau, low, high).sub_(a_bar)
        moved = steps @ w_next.T
        passed.append(rho * moved.square().sum(dim=(1, 2)) <= tau.flatten() * steps.square().sum(dim=(1, 2)))
    passes = torch.cat(passed)
    tau = taus[passes.to(torch.int8).argmax()]
    return torch.where(passes.any(), torch.clamp(a_bar - grad / tau, low, high), torch.clamp(a_bar, low, high))


Z_LAST_INITS = ("forward", "labels")
Z_LAST_SOLVERS = ("gradient", "fista")


@dataclass(frozen=True)
class MDLAMOptions:
    """Every setting of mDLAM; :data:`PAPER` and :data:`OFFICIAL` are the presets (they share the hyperparameters).

    Attributes:
        rho: penalty weight (Table 3: Cora 1e-3, Citeseer 5e-3).
        eps0: initial band half-width (100); halved after each iteration down to ``eps_min`` (1e-3).
        mu: weight decay of the official code (0.05).
        init_std: W and b start at N(0, init_std²) (0.1, as in the code).
        accelerate: Nesterov extrapolation with the monotone safeguard (Alg. 1); off, plain alternating
            minimisation (the paper's DLAM, and what the official code runs).
        linearize_decay: the W-step linearises the weight decay too (code) instead of the closed form.
        update_all_biases: update every bias; ``False`` never updates the layer-2 bias (code).
        z_last_init: ``forward`` (the forward pass) or ``labels`` (``2y - 1``, code).
        z_last_solver: ``gradient`` (``z_steps`` fixed steps of size ``1/(1/2 + rho)``) or ``fista``
            (:func:`update_z_last_fista`, code).
        z_steps: steps of the ``gradient`` solver.
    """

    rho: float = 1e-3
    eps0: float = 100.0
    eps_min: float = 1e-3
    mu: float = 0.05
    init_std: float = 0.1
    accelerate: bool = True
    linearize_decay: bool = False
    update_all_biases: bool = True
    z_last_init: str = "forward"
    z_last_solver: str = "gradient"
    z_steps: int = 50

    def __post_init__(self) -> None:
        if self.rho <= 0 or self.init_std <= 0:
            raise ValueError(f"invalid rho {self.rho!r} or init_std {self.init_std!r}; expected > 0")
        if self.eps_min <= 0 or self.eps0 < self.eps_min:
            raise ValueError(f"invalid eps0 {self.eps0!r} and eps_min {self.eps_min!r}; expected eps0 >= eps_min > 0")
        if self.mu < 0:
            raise ValueError(f"invalid mu {self.mu!r}; expected >= 0")
        if self.z_last_init not in Z_LAST_INITS:
            raise ValueError(f"invalid z_last_init {self.z_last_init!r}; expected one of {', '.join(Z_LAST_INITS)}")
        if self.z_last_solver not in Z_LAST_SOLVERS:
            raise ValueError(f"invalid z_last_solver {self.z_last_solver!r}; "
                             f"expected one of {', '.join(Z_LAST_SOLVERS)}")
        if self.z_steps < 1:
            raise ValueError(f"invalid z_steps {self.z_steps!r}; expected >= 1")


PAPER = MDLAMOptions()
OFFICIAL = MDLAMOptions(accelerate=False, linearize_decay=True, update_all_biases=False, z_last_init="labels",
                        z_last_solver="fista")


@dataclass(frozen=True)
class MDLAMState:
    """All blocks, the previous iterate, and scalars.

    ``z[l]`` is the pre-activation of layer l+1 (l = 0..L-1) and ``a[l]`` the output of hidden layer l+1
    (l = 0..L-2): the input is not in ``a``, as in :class:`~beyond_backprop.optim.dladmm.DLADMMState`.
    ``eps`` is the band half-width the current iterate satisfies, the one used in the last step
    (``eps0`` before the first).

    When the problem's input ``x`` (constant) has fewer rows than columns, its products dominate a step and the
    state keeps ``input_product`` (``x W_1^T``), ``previous_input_product`` (that of ``previous_weights[0]``) and
    ``input_gram`` (``x x^T``, N² entries): by linearity the extrapolated ``x W̄_1^T`` is the extrapolation of
    the two products (both made again from ``x`` every :data:`PRODUCT_REFRESH` steps) and ``x D^T`` comes from
    the Gram matrix, so layer 1's W-step makes one product with ``x`` (the gradient) instead of four. Otherwise
    (e.g. images, N ≫ d) the three are ``None``: 2 N n_1 kept entries would buy little.
    """

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    z: tuple[torch.Tensor, ...]
    a: tuple[torch.Tensor, ...]
    previous_weights: tuple[torch.Tensor, ...]
    previous_z_last: torch.Tensor
    previous_a: tuple[torch.Tensor, ...]
    input_product: torch.Tensor | None
    previous_input_product: torch.Tensor | None
    input_gram: torch.Tensor | None
    eps: float
    s: float = 0.0
    k: int = 0
    fallbacks: int = 0  # safeguarded (non-extrapolated) block updates in the last step


class MDLAM:
    """mDLAM for an MLP ``widths[0] → … → widths[-1]`` (e.g. ``[d, 100, 100, C]``) with ReLU hidden layers, full
    batch (a :class:`Solver`): ``MDLAM(widths)`` runs :data:`PAPER`, ``MDLAM(widths, options=OFFICIAL, rho=5e-3)``
    the published code at Citeseer's ρ; keyword overrides replace single fields of :class:`MDLAMOptions`.
    """

    def __init__(self, widths: list[int], *, options: MDLAMOptions = PAPER, **overrides) -> None:
        if len(widths) < 3 or any(int(w) < 1 for w in widths):
            raise ValueError(f"invalid widths {widths!r}; expected at least three positive sizes")
        self.widths, self.options = list(widths), with_overrides(options, overrides)

    def init(self, problem: Problem, generator: torch.Generator) -> MDLAMState:
        """W, b ~ N(0, init_std²) drawn from ``generator`` (weights, then biases); z, a from a forward pass;
        ``z_L = 2y - 1`` with ``z_last_init="labels"``."""
        check_widths(self.widths, problem)
        x, y, std = problem.x, problem.onehot, self.options.init_std
        pairs = list(zip(self.widths[:-1], self.widths[1:]))
        weights = tuple(draw_normal((o, i), std, generator, x) for i, o in pairs)
        biases = tuple(draw_normal((o,), std, generator, x) for _, o in pairs)
        input_product, wide = x @ weights[0].T, x.shape[0] < x.shape[1]
        z, a = [input_product + biases[0]], [torch.relu(input_product + biases[0])]
        for w, b in zip(weights[1:], biases[1:]):
            z.append(a[-1] @ w.T + b)
            a.append(torch.relu(z[-1]))
        if self.options.z_last_init == "labels":
            z[-1] = 2 * y - 1
        a = tuple(a[:-1])
        kept = (input_product, input_product, x @ x.T) if wide else (None, None, None)
        return MDLAMState(weights, biases, tuple(z), a, weights, z[-1], a, *kept, eps=self.options.eps0)

    def objective(self, state: MDLAMState, problem: Problem) -> torch.Tensor:
        """``F`` (without the band indicator) as a 0-d tensor."""
        terms = [cross_entropy_sum(state.z[-1], problem.onehot)]
        for l, (w, b) in enumerate(zip(state.weights, state.biases)):
            a_prev = problem.x if l == 0 else state.a[l - 1]
            decay = 0.5 * self.options.mu * w.square().sum()
            terms.append(penalty(state.z[l], a_prev, w, b, self.options.rho) + decay)
        return torch.stack(terms).sum()

    @staticmethod
    def _safeguarded(bar: Any, current: Any, step: Callable[[Any], Any],
                     local: Callable[[Any], torch.Tensor], safeguard: bool,
                     current_value: Callable[[], Any] | None = None) -> tuple[Any, int]:
        """``step(X̄)``; when ``safeguard`` and its local objective is not below that at ``X^k``, ``step(X^k)``.

        ``local`` reads what ``step`` returns; ``current_value()`` is that for ``X^k`` (default ``X^k``).
        """
        candidate = step(bar)
        if not safeguard or local(candidate) < local(current if current_value is None else current_value()):
            return candidate, 0
        return step(current), 1

    def _z_last(self, start: torch.Tensor, m: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.options.z_last_solver == "fista":
            return update_z_last_fista(start, m, y, rho=self.options.rho)
        return update_z_last(start, m, y, rho=self.options.rho, steps=self.options.z_steps)

    def step(self, state: MDLAMState, problem: Problem) -> MDLAMState:
        """One forward sweep ``W_l → b_l → z_l → a_l`` for l = 1..L with the band halved after the previous step."""
        x, y, options = problem.x, problem.onehot, self.options
        omega, s_next = nesterov_weight(state.s) if options.accelerate else (0.0, state.s)
        omega = max(omega, 0.0)  # w_0 = -1 multiplies X^0 - X^{-1} = 0
        safeguard = omega > 0  # the safeguard only matters when the point was extrapolated
        rho, mu = options.rho, options.mu
        eps = state.eps if state.k == 0 else max(state.eps / 2.0, self.options.eps_min)
        weights, biases, z, a = list(state.weights), list(state.biases), list(state.z), list(state.a)
        last, fallbacks = len(weights) - 1, 0
        kept, kept_products = state.input_gram is not None, (None, None)
        for l in range(last + 1):
            a_prev = x if l == 0 else a[l - 1]
            # W + omega (W - W_prev) in one pass (exactly W at omega = 0); on layer 1 x W̄^T likewise from the kept
            # x W^T, or from x every PRODUCT_REFRESH steps. A step starts from (W, a_prev W^T), None if not known.
            w_bar = torch.lerp(state.previous_weights[l], weights[l], 1.0 + omega)
            bar, current = (w_bar, None), (weights[l], None)
            if l == 0 and kept and state.k % PRODUCT_REFRESH:
                current = (weights[0], state.input_product)
                bar = (w_bar, torch.lerp(state.previous_input_product, state.input_product, 1.0 + omega))
            elif l == 0 and kept:
                current = (weights[0], x @ weights[0].T)

            def w_step(start, l=l, a_prev=a_prev):  # the product serves the safeguard, b_l and m_l
                return update_w_and_product(start[0], a_prev, z[l], biases[l], rho=rho, mu=mu,
                                            linearize_decay=options.linearize_decay, product_bar=start[1],
                                            gram=state.input_gram if l == 0 else None)

            def w_local(pair, l=l):
                w, product = pair
                return penalty_of_product(z[l], product, biases[l], rho) + 0.5 * mu * _inner(w, w)

            def w_current(current=current, a_prev=a_prev):
                w, product = current
                return w, a_prev @ w.T if product is None else product

            (weights[l], product), used = self._safeguarded(bar, current, w_step, w_local, safeguard, w_current)
            fallbacks += used
            if l == 0 and kept:
                kept_products = (product, current[1])
            if options.update_all_biases or l != 1:
                biases[l] = update_b_of_product(z[l], product)
            m = product + biases[l]
            if l < last:
                z[l] = update_z_hidden(m, a[l], eps)
                a_bar = a[l] + omega * (a[l] - state.previous_a[l])

                def a_step(start, l=l):
                    return update_a(start, z[l], weights[l + 1], biases[l + 1], z[l + 1], rho=rho, eps=eps)

                def a_local(value, l=l):
                    return penalty(z[l + 1], value, weights[l + 1], biases[l + 1], rho)

                a[l], used = self._safeguarded(a_bar, a[l], a_step, a_local, safeguard)
                fallbacks += used
            else:
                z_bar = z[l] + omega * (z[l] - state.previous_z_last)

                def z_local(value, m=m):
                    return cross_entropy_sum(value, y) + 0.5 * rho * (value - m).square().sum()

                z[l], used = self._safeguarded(z_bar, z[l], lambda start, m=m: self._z_last(start, m, y), z_local,
                                               safeguard)
                fallbacks += used
        return replace(
            state, weights=tuple(weights), biases=tuple(biases), z=tuple(z), a=tuple(a),
            previous_weights=state.weights, previous_z_last=state.z[-1], previous_a=state.a,
            input_product=kept_products[0], previous_input_product=kept_products[1],
            eps=eps, s=s_next, k=state.k + 1, fallbacks=fallbacks,
        )

    @staticmethod
    def violation(state: MDLAMState) -> torch.Tensor:
        """``sum_l ||a_l - relu(z_l)||^2`` over the hidden layers."""
        return torch.stack([(a - torch.relu(z)).square().sum() for a, z in zip(state.a, state.z[:-1])]).sum()

    def metrics(self, state: MDLAMState, problem: Problem) -> dict[str, torch.Tensor]:
        """``penalty_objective`` (F), ``violation``, ``eps`` (the band of the last step) and ``fallbacks``."""
        objective = self.objective(state, problem)
        return {"penalty_objective": objective, "violation": self.violation(state),
                "eps": torch.tensor(state.eps, dtype=torch.float64),
                "fallbacks": torch.tensor(float(state.fallbacks), dtype=torch.float64)}

    @staticmethod
    def logits(state: MDLAMState, problem: Problem, split: Split) -> torch.Tensor:
        """Logits of the feed-forward network with the current weights and biases on the scored rows of ``split``."""
        out = mlp_logits(state.weights, state.biases, split.inputs)
        return out if split.index is None else out[split.index]
