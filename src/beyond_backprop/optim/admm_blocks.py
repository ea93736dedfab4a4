"""The ADMM block solvers that dlADMM, its GCN variant and Taylor et al.'s ADMM share.

Each function solves one subproblem and takes every constant it uses as an argument, so no solver's
defaults reach another solver through them: backtracking on a quadratic model (:func:`backtrack`),
the ReLU-coupled hidden ``z`` (:func:`update_z_relu`), the output ``z_L`` by FISTA
(:func:`update_z_last`), and the exact W- and a-subproblems (:func:`exact_w`, :func:`exact_a`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..models import cross_entropy_sum
from .fista import fista_momentum
from .quadratic_blocks import MAX_TRIES
from .workspace import INNER, INNER_2, Workspace, scratch


def backtrack(objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor,
              t: float, *, factor: float = 2.0, max_tries: int = MAX_TRIES) -> tuple[torch.Tensor, float]:
    """Quadratic approximation with backtracking (Alg. 2 and 4): ``(x+, t)`` with ``x+ = x - g/t``.

    ``t`` is multiplied by ``factor`` until ``f(x+) <= f(x) - ||g||^2 / (2t)`` (the sufficient-decrease
    test ``f(x+) <= f(x) + <g, x+ - x> + t/2 ||x+ - x||^2``); after ``max_tries`` failures (rounding
    near a minimiser) ``x`` is kept. One host sync per test.
    """
    if t <= 0:
        raise ValueError(f"invalid t {t!r}; expected > 0")
    f0, gg = objective(x), grad.square().sum()
    for _ in range(max_tries):
        step = x - grad / t
        if bool(objective(step) <= f0 - gg / (2.0 * t)):
            return step, t
        t *= factor
    return x, t


def update_z_relu(m: torch.Tensor, a: torch.Tensor, weight_m: float = 1.0, weight_a: float = 1.0, *,
                  workspace: Workspace | None = None) -> torch.Tensor:
    """Exact elementwise ``argmin_z weight_m (z - m)^2 + weight_a (a - relu(z))^2`` (two candidates).

    ``z- = min(m, 0)`` is the best point with ``z <= 0``, at cost ``w_m relu(m)^2 + w_a a^2``;
    ``z+ = (w_m m + w_a a)/(w_m + w_a)`` the best with ``z >= 0`` when it is positive, at cost
    ``w_m w_a/(w_m + w_a) (a - m)^2``; ``z+`` is kept only where it is positive and strictly better (as
    the code does; where ``z+ <= 0`` the best ``z >= 0`` is 0, never strictly better than ``z-``).

    With ``c = w_a/w_m`` and ``k = sqrt(1 + c) - 1`` (``0 < k < c``) the two tests reduce to signs:
    ``z+ > 0`` is ``m + c a > 0``, and given it, ``z+`` is strictly better iff ``m >= 0`` or
    ``m + k a > 0``; both together are ``min(m + c a, m + k a) > 0``. The update is six branch-free
    passes without either cost: two ``lerp`` (the scaled ``m + c a`` and ``m + k a``), ``minimum``, ``gt``
    into a 0/1 float mask, ``clamp`` for ``z-`` and a ``lerp`` by the mask (exact at weights 0 and 1),
    which selects without the branch per element of ``where`` on a boolean mask. The temporaries come
    from ``workspace`` when one is given; the result is always a new tensor.
    """
    c = weight_a / weight_m
    k = math.sqrt(1.0 + c) - 1.0
    z = torch.lerp(m, a, c / (1.0 + c))  # z+ = (m + c a)/(1 + c), before the test
    keep = torch.lerp(m, a, k / (1.0 + k), out=scratch(workspace, INNER, m))  # (m + k a)/(1 + k)
    keep = torch.gt(torch.minimum(keep, z, out=keep), 0.0, out=keep)  # 1 where z+ is kept, else 0
    return torch.lerp(torch.clamp(m, max=0.0, out=scratch(workspace, INNER_2, m)), z, keep, out=z)


def update_z_last(z: torch.Tensor, target: torch.Tensor, y: torch.Tensor, rho: float, *, step: float = 2.0,
                  tol: float = 1e-3, max_iter: int = 500, check_every: int = 5) -> torch.Tensor:
    """FISTA for ``min_z R(z; y) + rho/2 ||z - target||^2`` from the warm start ``z``.

    Prox-gradient step ``zeta+ = (rho target + z/step - (softmax(z) - y)) / (rho + 1/step)``, momentum
    ``lam+ = (1 + sqrt(1 + 4 lam^2))/2``, ``z <- (1 - g) zeta+ + g zeta`` with ``g = (1 - lam)/lam+``;
    stops when the objective changes by less than ``tol`` (tested every ``check_every`` steps).

    .. note:: The code uses ``step=4``; 2 is ``1/H`` for the softmax cross-entropy (``H <= 1/2``).
    """
    if rho <= 0:
        raise ValueError(f"invalid rho {rho!r}; expected > 0")

    def objective(v: torch.Tensor) -> torch.Tensor:
        return cross_entropy_sum(v, y) + 0.5 * rho * (v - target).square().sum()

    zeta_prev, lam, f_old = z, 1.0, objective(z)
    for i in range(1, max_iter + 1):
        zeta = (rho * target + z / step - (torch.softmax(z, dim=1) - y)) / (rho + 1.0 / step)
        lam_next = fista_momentum(lam)
        gamma = (1.0 - lam) / lam_next
        z = (1.0 - gamma) * zeta + gamma * zeta_prev
        zeta_prev, lam = zeta, lam_next
        if i % check_every == 0:
            f_new = objective(zeta)
            if bool((f_new - f_old).abs() < tol):
                break
            f_old = f_new
    return zeta_prev


def exact_w(a_prev: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The least-squares minimiser of ``phi_W``: ``(pinv(a_prev) target)^T``."""
    return (torch.linalg.pinv(a_prev) @ target).T


def exact_a(w_next: torch.Tensor, target_next: torch.Tensor, weight_next: float, h: torch.Tensor,
            weight: float) -> torch.Tensor:
    """The minimiser of ``phi_a``: a Cholesky solve of ``(weight_next W^T W + weight I) a^T = ...``."""
    eye = torch.eye(w_next.shape[1], dtype=h.dtype, device=h.device)
    system = weight_next * w_next.T @ w_next + weight * eye
    rhs = weight_next * target_next @ w_next + weight * h
    return torch.cholesky_solve(rhs.T, torch.linalg.cholesky(system)).T
