"""Convex constraint sets and their linear minimisation oracles (LMOs), per tensor.

Each set solves ``lmo(g) = argmin_{s in C} <g, s>`` in closed form, moves a
point inside with ``shift_inside`` (a rescaling, not the Euclidean
projection), and knows its L2 ``diameter``. A set takes exactly one of
``radius`` or ``diameter`` and derives the other (as SFW's ``LpBall`` does).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConstraintSet:
    """Base class: a compact convex set centred at 0, defined per tensor of ``n`` entries."""

    sparse_vertices = False  # whether sparse_lmo gives the vertex as a few (index, value) pairs

    def __init__(self, n: int, *, radius: float | None = None, diameter: float | None = None) -> None:
        if (radius is None) == (diameter is None):
            raise ValueError("give exactly one of radius or diameter")
        if n < 1:
            raise ValueError(f"invalid size {n!r}; expected a positive number of entries")
        self.n = int(n)
        if radius is not None:
            if radius <= 0:
                raise ValueError(f"invalid radius {radius!r}; expected > 0")
            self.radius = float(radius)
        else:
            if diameter <= 0:
                raise ValueError(f"invalid diameter {diameter!r}; expected > 0")
            self.radius = float(diameter) / self._diameter_per_radius()

    def _diameter_per_radius(self) -> float:
        raise NotImplementedError

    @property
    def diameter(self) -> float:
        """max over a, b in C of ||a - b||_2."""
        return self.radius * self._diameter_per_radius()

    def lmo(self, g: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``argmin_{s in C} <g, s>``, written into ``out`` (shaped like ``g``) when given: no new tensor."""
        if out is not None and out.shape != g.shape:
            raise ValueError(f"invalid out of shape {tuple(out.shape)}; expected the shape of g, {tuple(g.shape)}")
        s = torch.empty_like(g) if out is None else out
        self._lmo_into(g, s)
        return s

    def _lmo_into(self, g: torch.Tensor, s: torch.Tensor) -> None:
        raise NotImplementedError

    def sparse_lmo(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``lmo(g)`` as ``(indices into g.reshape(-1), values)`` of its nonzeros when the set's vertices are sparse
        (:attr:`sparse_vertices`); None otherwise."""
        return None

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        """The gauge of the set: x is feasible iff norm(x) <= radius."""
        raise NotImplementedError

    def contains(self, x: torch.Tensor, tol: float = 1e-5) -> bool:
        return bool(self.norm(x) <= self.radius * (1 + tol))

    def shift_inside(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale ``x`` towards 0 until it is feasible (not the Euclidean projection)."""
        scale = self.norm(x) / self.radius
        return x / scale if scale > 1 else x.clone()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, radius={self.radius:.4g})"


class L1Ball(ConstraintSet):
    """``||x||_1 <= radius``. LMO: ``-radius * sign(g_i*) e_i*`` with ``i* = argmax |g_i|``.

    Ties go to the first index of largest magnitude; for ``g = 0`` the vertex ``-radius e_0``.
    """

    def _diameter_per_radius(self) -> float:
        return 2.0

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs().sum()

    def _lmo_into(self, g: torch.Tensor, s: torch.Tensor) -> None:
        flat = g.reshape(-1)
        i = torch.argmax(flat.abs())
        s.zero_()
        s.view(-1)[i] = torch.where(flat[i] < 0, s.new_tensor(self.radius), s.new_tensor(-self.radius))

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """Return ``argmin over ||x||_1 <= radius of ||x - v||_2`` (Euclidean projection; Duchi et al. 2008,
        sort-based, O(n log n)); a feasible ``v`` comes back as a copy."""
        if v.abs().sum() <= self.radius:
            return v.clone()
        magnitudes = v.abs().reshape(-1).sort(descending=True).values
        cumulative = magnitudes.cumsum(0)
        index = torch.arange(1, len(magnitudes) + 1, dtype=v.dtype, device=v.device)
        last = torch.nonzero(magnitudes * index > cumulative - self.radius).max()
        shift = (cumulative[last] - self.radius) / (last + 1)
        return torch.sign(v) * (v.abs() - shift).clamp_min(0)


def least_squares_on_l1_ball(a: torch.Tensor, b: torch.Tensor, ball: L1Ball, iterations: int) -> torch.Tensor:
    """``argmin over ||x||_1 <= radius of (1/2n) ||A x - b||^2`` by FISTA with :meth:`L1Ball.project`
    (step 1/L, L = ||A||_2^2 / n), from x = 0; a reference solution for Frank-Wolfe runs."""
    n = a.shape[0]
    step = n / float(torch.linalg.matrix_norm(a, ord=2) ** 2)
    x = y = torch.zeros(a.shape[1], dtype=a.dtype, device=a.device)
    t = 1.0
    for _ in range(iterations):
        x_next = ball.project(y - step * a.T @ (a @ y - b) / n)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = x_next + (t - 1) / t_next * (x_next - x)
        x, t = x_next, t_next
    return x


class L2Ball(ConstraintSet):
    """``||x||_2 <= radius``. LMO: ``-radius * g / ||g||_2`` (0 when ``g = 0``)."""

    def _diameter_per_radius(self) -> float:
        return 2.0

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x)

    def _lmo_into(self, g: torch.Tensor, s: torch.Tensor) -> None:
        size = torch.linalg.vector_norm(g)
        scale = torch.where(size > 0, -self.radius / size.clamp_min(torch.finfo(g.dtype).tiny), size.new_zeros(()))
        torch.mul(g, scale, out=s)


class LInfBall(ConstraintSet):
    """``max_i |x_i| <= radius``. LMO: ``-radius * sign(g)``, with ``+radius`` where ``g_i = 0`` (as ZIB)."""

    def _diameter_per_radius(self) -> float:
        return 2.0 * math.sqrt(self.n)

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs().max()

    def _lmo_into(self, g: torch.Tensor, s: torch.Tensor) -> None:
        s.fill_(self.radius)
        s[g > 0] = -self.radius


class LpBall(ConstraintSet):
    """``||x||_p <= radius`` for ``1 < p < inf``.

    LMO: ``-radius * sign(g) |g|^(q-1) / ||g||_q^(q-1)`` with ``1/p + 1/q = 1`` (0 when ``g = 0``).
    """

    def __init__(self, n: int, p: float, *, radius: float | None = None, diameter: float | None = None) -> None:
        if not 1 < p < math.inf:
            raise ValueError(f"invalid p {p!r}; expected 1 < p < inf (use L1Ball or LInfBall at the ends)")
        self.p = float(p)
        self.q = self.p / (self.p - 1)
        super().__init__(n, radius=radius, diameter=diameter)

    def _diameter_per_radius(self) -> float:
        return 2.0 * max(1.0, self.n ** (0.5 - 1.0 / self.p))

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x, ord=self.p)

    def _lmo_into(self, g: torch.Tensor, s: torch.Tensor) -> None:
        size = torch.linalg.vector_norm(g, ord=self.q)
        if size == 0:
            s.zero_()
            return
        torch.div(g.abs(), size, out=s).pow_(self.q - 1).mul_(torch.sign(g)).mul_(-self.radius)


class KSparsePolytope(ConstraintSet):
    """``conv{v in {0, ±radius}^n with exactly K nonzeros} = B_1(K r) ∩ B_inf(r)``.

    LMO: ``-radius * sign(g_i)`` on the K largest ``|g_i|`` (``torch.topk``; ties by its order), 0 elsewhere
    (``+radius`` where ``g_i = 0``). :meth:`sparse_lmo` gives those K entries alone.
    """

    sparse_vertices = True

    def __init__(self, n: int, k: int, *, radius: float | None = None, diameter: float | None = None) -> None:
        if not 1 <= k <= n:
            raise ValueError(f"invalid k {k!r}; expected 1 <= k <= {n}")
        self.k = int(k)
        super().__init__(n, radius=radius, diameter=diameter)

    def _diameter_per_radius(self) -> float:
        return 2.0 * math.sqrt(self.k)

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x.abs().max(), x.abs().sum() / self.k)

    def _lmo_into(self, g: torch.Tensor, s: torch.Tensor) -> None:
        index, values = self.sparse_lmo(g)
        s.zero_()
        s.view(-1)[index] = values

    def sparse_lmo(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = g.reshape(-1)
        top = torch.topk(flat.abs(), self.k).indices
        radius = flat.new_tensor(self.radius)
        return top, torch.where(flat[top] > 0, -radius, radius)


SETS = ("l1", "l2", "linf", "lp", "k-sparse")


def make_set(kind: str, n: int, *, diameter: float, p: float = 2.0, k_fraction: float = 0.05) -> ConstraintSet:
    """A set of one ``kind`` for a tensor of ``n`` entries with the given L2 diameter."""
    if kind == "l1":
        return L1Ball(n, diameter=diameter)
    if kind == "l2":
        return L2Ball(n, diameter=diameter)
    if kind == "linf":
        return LInfBall(n, diameter=diameter)
    if kind == "lp":
        return LpBall(n, p, diameter=diameter)
    if kind == "k-sparse":
        return KSparsePolytope(n, max(1, round(k_fraction * n)), diameter=diameter)
    raise ValueError(f"invalid constraint kind {kind!r}; expected one of {', '.join(SETS)}")


def initialization_constraints(model: nn.Module, kind: str, diameter_factor: float, **options) -> list[dict]:
    """Per-tensor sets whose L2 diameter is ``2 * diameter_factor * ||W_init||_2`` (SFW's "initialization" mode,
    where this factor is called the width ``w``).

    The norm of each parameter as it is now stands for its initial scale, so call this on a freshly
    initialised model; unlike SFW, the live model's weights are never reset. Parameters are then
    rescaled inside their sets (``shift_inside``). Returns ``torch.optim`` parameter groups
    ``{"params": [p], "constraint": set}``.
    """
    if diameter_factor <= 0:
        raise ValueError(f"invalid diameter_factor {diameter_factor!r}; expected > 0")
    groups = []
    for p in model.parameters():
        scale = float(torch.linalg.vector_norm(p.detach()))
        if scale == 0:
            scale = 1.0 / math.sqrt(p.numel())
        constraint = make_set(kind, p.numel(), diameter=2 * diameter_factor * scale, **options)
        with torch.no_grad():
            p.copy_(constraint.shift_inside(p))
        groups.append({"params": [p], "constraint": constraint})
    return groups
