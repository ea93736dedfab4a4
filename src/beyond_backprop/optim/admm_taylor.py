r"""ADMM without gradients (Taylor et al., ICML 2016), the "ADMM" baseline of the dlADMM paper.

Rows are samples; biases are included for parity with dlADMM (``ã = [a, 1]``). With ``β = γ = rho``:

.. math::
    \min\ R(z_L; y) + \langle z_L, \lambda\rangle + \beta\|z_L - m_L\|^2
        + \sum_{l<L} \gamma\|a_l - \mathrm{relu}(z_l)\|^2 + \beta\|z_l - m_l\|^2,\quad m_l = ã_{l-1} W_l^T

Every block is solved globally: ``W_l`` by least squares (pseudo-inverse, robust to dead units), ``a_l`` by a
Cholesky solve with ``βW^TW + γI``, hidden ``z_l`` elementwise, ``z_L`` by FISTA; then the Bregman
step ``λ <- λ + β (z_L - m_L)``, skipped during the first ``warmup`` iterations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import torch

from .dladmm import cross_entropy_sum, record_run, update_z_last, update_z_relu


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
    """Taylor et al.'s ADMM for the ReLU MLP ``widths``; ``rho`` is β = γ (1 in the dlADMM paper)."""

    def __init__(self, widths: list[int], *, rho: float = 1.0, warmup: int = 5, init_std: float = 0.1) -> None:
        if len(widths) < 2:
            raise ValueError(f"invalid widths {widths!r}; expected at least two widths")
        if rho <= 0:
            raise ValueError(f"invalid rho {rho!r}; expected > 0")
        if warmup < 0:
            raise ValueError(f"invalid warmup {warmup!r}; expected >= 0")
        self.widths, self.rho, self.warmup, self.init_std = list(widths), rho, warmup, init_std

    def init(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> TaylorState:
        """W ~ N(0, std²); z, a by the forward pass; ``λ = 0``."""
        weights = [self.init_std * torch.randn(n, m + 1, generator=generator, device=x.device)
                   for m, n in zip(self.widths[:-1], self.widths[1:])]
        z, a, h = [], [], x
        for w in weights:
            z.append(_with_ones(h) @ w.T)
            h = torch.relu(z[-1])
            a.append(h)
        return TaylorState(weights, z, a[:-1], torch.zeros_like(z[-1]))

    def step(self, state: TaylorState, x: torch.Tensor, y: torch.Tensor) -> TaylorState:
        """One forward pass of exact block updates and the Bregman step."""
        s = replace(state, weights=list(state.weights), z=list(state.z), a=list(state.a))
        beta, last, y1 = self.rho, len(s.weights) - 1, torch.nn.functional.one_hot(y, self.widths[-1]).float()
        for l in range(last + 1):
            inputs = _with_ones(x if l == 0 else s.a[l - 1])
            s.weights[l] = (torch.linalg.pinv(inputs) @ s.z[l]).T
            m = inputs @ s.weights[l].T
            if l < last:
                s.z[l] = update_z_relu(m, s.a[l])
                w, b = s.weights[l + 1][:, :-1], s.weights[l + 1][:, -1]
                system = beta * w.T @ w + beta * torch.eye(w.shape[1], device=x.device)
                rhs = beta * (s.z[l + 1] - b) @ w + beta * torch.relu(s.z[l])
                s.a[l] = torch.cholesky_solve(rhs.T, torch.linalg.cholesky(system)).T
            else:
                s.z[l] = update_z_last(s.z[l], m - s.lam / (2 * beta), y1, 2 * beta)
        s.k += 1
        if s.k > self.warmup:
            s.lam = s.lam + beta * self.residual_matrix(s, x)
        return s

    def residual_matrix(self, s: TaylorState, x: torch.Tensor) -> torch.Tensor:
        """``z_L - ã_{L-1} W_L^T``."""
        return s.z[-1] - _with_ones(x if len(s.weights) == 1 else s.a[-1]) @ s.weights[-1].T

    def objective(self, s: TaylorState, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The objective of the module docstring."""
        r = self.residual_matrix(s, x)
        y1 = torch.nn.functional.one_hot(y, self.widths[-1]).float()
        value = cross_entropy_sum(s.z[-1], y1) + (s.z[-1] * s.lam).sum() + self.rho * r.square().sum()
        for l in range(len(s.weights) - 1):
            m = _with_ones(x if l == 0 else s.a[l - 1]) @ s.weights[l].T
            value = value + self.rho * ((s.a[l] - torch.relu(s.z[l])).square().sum() + (s.z[l] - m).square().sum())
        return value

    def run(self, state: TaylorState, x: torch.Tensor, y: torch.Tensor, iterations: int,
            evaluate: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> tuple[TaylorState, pd.DataFrame]:
        """History with dlADMM's columns ``iteration, seconds, objective, residual, rho, <split>_accuracy``."""
        def measure(s: TaylorState) -> dict[str, torch.Tensor | float]:
            accuracies = {f"{name}_accuracy": (predict(s, sx).argmax(1) == sy).float().mean()
                          for name, (sx, sy) in {"train": (x, y), **(evaluate or {})}.items()}
            return {"objective": self.objective(s, x, y), "residual": self.residual_matrix(s, x).square().sum(),
                    "rho": self.rho, **accuracies}

        return record_run(state, lambda s: self.step(s, x, y), measure, iterations, x.device)


def predict(state: TaylorState, x: torch.Tensor) -> torch.Tensor:
    """Logits of the plain network with the current weights."""
    h = x
    for l, w in enumerate(state.weights):
        h = _with_ones(h) @ w.T
        if l < len(state.weights) - 1:
            h = torch.relu(h)
    return h
