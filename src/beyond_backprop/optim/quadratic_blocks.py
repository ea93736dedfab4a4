r"""dlADMM's quadratic W- and a-subproblems: one backtracked gradient step each, at the GEMM floor.

Both subproblems are quadratics ``f``; for the step ``x+ = x - g/t`` the sufficient-decrease test
``f(x+) <= f(x) - ||g||^2/(2t)`` (Alg. 2-4) has the closed form

.. math::
    f(x - g/t) = f(x) - \|g\|^2/t + g^\top H g/(2t^2)
    \quad\Longrightarrow\quad \text{accept } t \iff t\,\|g\|^2 \ge g^\top H g ,

so the search over ``t = t_0, 2t_0, 4t_0, ...`` needs ``||g||^2`` and ``g^T H g`` (one product of ``g``
through the data matrix) and then only scalar arithmetic. It never subtracts two nearly equal
objective values, which in float32 at penalties near 1e-6 made the evaluated test fail far past the
step exact arithmetic accepts. The search runs on the device for all ``t`` at once: no host sync.

Each step also keeps the product of its layer up to date without a GEMM: with ``P = a_prev W^T``,
``W+ = W - G/t`` gives ``a_prev W+^T = P - (a_prev G^T)/t``, and ``a_prev G^T`` is the product the
test needed anyway (likewise ``a+ W_next^T = a W_next^T - (g W_next^T)/t`` for the a-step).
"""

from __future__ import annotations

import torch

from .workspace import INNER, Workspace, scratch

MAX_TRIES = 60


def squared_norm(x: torch.Tensor) -> torch.Tensor:
    """``||x||^2`` in float64, without a temporary the size of ``x``."""
    return torch.linalg.vector_norm(x).to(torch.float64).square()


def accepted_step(gg: torch.Tensor, ghg: torch.Tensor, t0: torch.Tensor | float, *, factor: float = 2.0,
                  max_tries: int = MAX_TRIES) -> tuple[torch.Tensor, torch.Tensor]:
    """Backtracking's accepted ``t`` for a quadratic, from float64 ``gg = ||g||^2`` and ``ghg = g^T H g``.

    ``t`` runs over ``t0 factor^k`` (k < ``max_tries``); the first with ``t gg >= ghg`` passes. Returns
    ``(t, divisor)``: ``divisor = t`` when one passed, else ``inf`` (the step keeps ``x``) with
    ``t = t0 factor^max_tries``, as the loop ends. Float64 scalars on the device of ``gg``; no host sync.
    """
    if not isinstance(t0, torch.Tensor) and t0 <= 0:
        raise ValueError(f"invalid t0 {t0!r}; expected > 0")
    exponents = torch.arange(max_tries, dtype=torch.float64, device=gg.device)
    passed = t0 * factor ** exponents * gg >= ghg
    found = passed.any()
    tries = torch.where(found, passed.to(torch.int8).argmax(), max_tries).to(torch.float64)
    t = t0 * factor ** tries
    return t, torch.where(found, t, torch.full_like(t, float("inf")))


def weight_gradient(a_prev: torch.Tensor, residual: torch.Tensor, weight: float) -> torch.Tensor:
    """``grad phi_W = -weight residual^T a_prev`` with ``residual = target - a_prev W^T``."""
    return (residual.T @ a_prev).mul_(-weight)


def activation_gradient(a: torch.Tensor, w_next: torch.Tensor, residual_next: torch.Tensor, weight_next: float,
                        h: torch.Tensor, weight: float) -> torch.Tensor:
    """``grad phi_a = weight (a - h) - weight_next residual_next W_next``, with
    ``residual_next = target_next - a W_next^T``."""
    return torch.sub(a, h).addmm_(residual_next, w_next, beta=weight, alpha=-weight_next)


def weight_step(w: torch.Tensor, a_prev: torch.Tensor, product: torch.Tensor, target: torch.Tensor, weight: float,
                t0: torch.Tensor | float, *, workspace: Workspace | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One backtracked step on ``phi_W = weight/2 ||target - a_prev W^T||^2`` from ``W = w``.

    ``product`` is ``a_prev w^T``. Returns ``(W+, a_prev W+^T, t)``; ``a_prev W+^T`` is ``product``,
    updated in place, and ``target`` is overwritten (it becomes the residual). Two GEMMs: the gradient
    and ``a_prev G^T`` (its N×n buffer from ``workspace`` when one is given).
    """
    grad = weight_gradient(a_prev, target.sub_(product), weight)
    change = torch.matmul(a_prev, grad.T, out=scratch(workspace, INNER, product))
    t, divisor = accepted_step(squared_norm(grad), weight * squared_norm(change), t0)
    divisor = divisor.to(w.dtype)
    return torch.addcdiv(w, grad, divisor, value=-1.0), product.addcdiv_(change, divisor, value=-1.0), t


def activation_step(a: torch.Tensor, w_next: torch.Tensor, product_next: torch.Tensor, target_next: torch.Tensor,
                    weight_next: float, h: torch.Tensor, weight: float, t0: torch.Tensor | float, *,
                    workspace: Workspace | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One backtracked step on ``phi_a = weight_next/2 ||target_next - a W_next^T||^2 + weight/2 ||a - h||^2``.

    ``product_next`` is ``a W_next^T``. Returns ``(a+, a+ W_next^T, t)``; ``a+ W_next^T`` is
    ``product_next``, updated in place, and ``target_next`` is overwritten. ``a`` is left as it is; ``a+``
    takes the gradient's buffer. Two GEMMs: the gradient and ``g W_next^T`` (its buffer from ``workspace``
    when one is given).
    """
    grad = activation_gradient(a, w_next, target_next.sub_(product_next), weight_next, h, weight)
    change = torch.matmul(grad, w_next.T, out=scratch(workspace, INNER, product_next))
    gg = squared_norm(grad)
    t, divisor = accepted_step(gg, weight_next * squared_norm(change) + weight * gg, t0)
    divisor = divisor.to(a.dtype)
    return torch.addcdiv(a, grad, divisor, value=-1.0, out=grad), product_next.addcdiv_(change, divisor, value=-1.0), t
