r"""ADMM without gradients (Taylor et al., ICML 2016), the "ADMM" baseline of the dlADMM paper.

Rows are samples; biases are included for parity with dlADMM (``ã = [a, 1]``). With ``β = γ = rho``:

.. math::
    \min\ R(z_L; y) + \langle z_L, \lambda\rangle + \beta\|z_L - m_L\|^2
        + \sum_{l<L} \gamma\|a_l - \mathrm{relu}(z_l)\|^2 + \beta\|z_l - m_l\|^2,\quad m_l = ã_{l-1} W_l^T

Every block is solved globally: ``W_l`` by least squares (pseudo-inverse, robust to dead units), ``a_l`` by a
Cholesky solve with ``βW^TW + γI``, hidden ``z_l`` elementwise, ``z_L`` by FISTA; then the Bregman
step ``λ <- λ + β (z_L - m_L)``, skipped during the first ``warmup`` iterations.

There is no ``PAPER``/``OFFICIAL`` options preset: Taylor et al.'s code (gitlab.umiacs.umd.edu/tomg/admm_nets)
is not available and the dlADMM authors did not publish their adaptation (spec §5, §6.11), so there is no
published code behaviour to reproduce; the spec's choices are the constructor's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..models import cross_entropy_sum, mlp_logits
from .dladmm import update_z_last, update_z_relu
from .solver import Problem, Split


def _with_ones(a: torch.Tensor) -> torch.Tensor:
    return torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype, device=a.device)], dim=1)


@dataclass
class TaylorState:
    """``weights[l]`` (n_l×(n_{l-1}+1), bias last), ``z[l]``, ``a[l]`` (l < L), multiplier ``lam``."""

    weights: list[torch.Tensor]
    z: list[torch.Tensor]
    a: list[torch.Tensor]
    lam: torch.Tensor
    k: int = 0


class TaylorADMM:
    """Taylor et al.'s ADMM for the ReLU MLP ``widths``; ``rho`` is β = γ (1 in the dlADMM paper).

    Implements the :class:`~beyond_backprop.optim.solver.Solver` contract; ``warmup`` steps run
    without the multiplier update; weights start at N(0, init_std²) from the generator.
    """

    def __init__(self, widths: list[int], *, rho: float = 1.0, warmup: int = 5, init_std: float = 0.1) -> None:
        if len(widths) < 2:
            raise ValueError(f"invalid widths {widths!r}; expected at least two widths")
        if rho <= 0:
            raise ValueError(f"invalid rho {rho!r}; expected > 0")
        if warmup < 0:
            raise ValueError(f"invalid warmup {warmup!r}; expected >= 0")
        self.widths, self.rho, self.warmup, self.init_std = list(widths), rho, warmup, init_std

    def init(self, problem: Problem, generator: torch.Generator) -> TaylorState:
        """W ~ N(0, std²); z, a by the forward pass on the training rows; ``λ = 0``."""
        x = problem.x
        weights = [self.init_std * torch.randn(n, m + 1, generator=generator, device=x.device, dtype=x.dtype)
                   for m, n in zip(self.widths[:-1], self.widths[1:])]
        z, a, h = [], [], x
        for w in weights:
            z.append(_with_ones(h) @ w.T)
            h = torch.relu(z[-1])
            a.append(h)
        return TaylorState(weights, z, a[:-1], torch.zeros_like(z[-1]))

    def step(self, state: TaylorState, problem: Problem) -> TaylorState:
        """One forward pass of exact block updates and the Bregman step."""
        x = problem.x
        s = replace(state, weights=list(state.weights), z=list(state.z), a=list(state.a))
        beta, last = self.rho, len(s.weights) - 1
        for l in range(last + 1):
            inputs = _with_ones(x if l == 0 else s.a[l - 1])
            s.weights[l] = (torch.linalg.pinv(inputs) @ s.z[l]).T
            m = inputs @ s.weights[l].T
            if l < last:
                s.z[l] = update_z_relu(m, s.a[l])
                w, b = s.weights[l + 1][:, :-1], s.weights[l + 1][:, -1]
                system = beta * w.T @ w + beta * torch.eye(w.shape[1], device=x.device, dtype=x.dtype)
                rhs = beta * (s.z[l + 1] - b) @ w + beta * torch.relu(s.z[l])
                s.a[l] = torch.cholesky_solve(rhs.T, torch.linalg.cholesky(system)).T
            else:
                s.z[l] = update_z_last(s.z[l], m - s.lam / (2 * beta), problem.onehot, 2 * beta)
        s.k += 1
        if s.k > self.warmup:
            s.lam = s.lam + beta * self.residual_matrix(s, problem)
        return s

    def residual_matrix(self, s: TaylorState, problem: Problem) -> torch.Tensor:
        """``z_L - ã_{L-1} W_L^T``."""
        return s.z[-1] - _with_ones(problem.x if len(s.weights) == 1 else s.a[-1]) @ s.weights[-1].T

    def lagrangian(self, s: TaylorState, problem: Problem) -> torch.Tensor:
        """The objective of the module docstring, multiplier term included."""
        r = self.residual_matrix(s, problem)
        value = cross_entropy_sum(s.z[-1], problem.onehot) + (s.z[-1] * s.lam).sum() + self.rho * r.square().sum()
        for l in range(len(s.weights) - 1):
            m = _with_ones(problem.x if l == 0 else s.a[l - 1]) @ s.weights[l].T
            value = value + self.rho * ((s.a[l] - torch.relu(s.z[l])).square().sum() + (s.z[l] - m).square().sum())
        return value

    def metrics(self, state: TaylorState, problem: Problem) -> dict[str, torch.Tensor]:
        """``lagrangian``, ``residual`` (squared Frobenius norm) and ``rho``, as 0-d tensors."""
        return {"lagrangian": self.lagrangian(state, problem),
                "residual": self.residual_matrix(state, problem).square().sum(),
                "rho": torch.tensor(float(self.rho), device=problem.device)}

    @staticmethod
    def logits(state: TaylorState, problem: Problem, split: Split) -> torch.Tensor:
        """Logits of the plain network with the current weights on the scored rows of ``split``."""
        out = mlp_logits([w[:, :-1] for w in state.weights], [w[:, -1] for w in state.weights], split.inputs)
        return out if split.index is None else out[split.index]
