r"""ADMM without gradients (Taylor et al., ICML 2016), the "ADMM" baseline of the dlADMM paper.

Rows are samples; biases are included for parity with dlADMM (``ã = [a, 1]``). With ``β = rho`` and
``γ = gamma`` (``γ = β = 1`` in the dlADMM paper):

.. math::
    \min\ R(z_L; y) + \langle z_L, \lambda\rangle + \beta\|z_L - m_L\|^2
        + \sum_{l<L} \gamma\|a_l - \mathrm{relu}(z_l)\|^2 + \beta\|z_l - m_l\|^2,\quad m_l = ã_{l-1} W_l^T

Every block is solved globally, layer by layer in the order of Taylor et al.'s Algorithm 1: ``W_l`` by
least squares (:func:`least_squares`; the inputs' pseudo-inverse is computed once), ``a_l`` by a
Cholesky solve with ``βW^TW + γI``, hidden ``z_l`` elementwise (exact), and after the hidden layers
``W_L`` and ``z_L`` (FISTA); then the Bregman step ``λ <- λ + β (z_L - m_L)``,
skipped during the first ``warmup`` iterations. The multiplier enters only the ``z_L`` problem (the
term ``<z_L, λ>``), as in the paper, so once ``λ`` settles at ``-∇R(z_L)`` the loss no longer pulls
``z_L`` away from ``m_L``: the output layer's fit stays where it was when the multiplier started.
Accuracy is scored by the plain forward pass with the current weights (:meth:`TaylorADMM.logits`),
which lags far behind the ADMM variables: the activation updates absorb what the output layer asks
for, sample by sample, and least squares passes on to the weights only what is linear in the layer's
inputs, so the lower layers' weights barely move (Fashion-MNIST, 2,000 images, width 256, 30 steps:
``ã_{L-1} W_L^T`` classifies 0.885 of the training images, the network 0.352).

There is no ``PAPER``/``OFFICIAL`` options preset: Taylor et al.'s code (gitlab.umiacs.umd.edu/tomg/admm_nets)
is not available and the dlADMM authors did not publish their adaptation (spec §5, §6.11), so there is no
published code behaviour to reproduce; the spec's choices are the constructor's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..models import cross_entropy_sum, draw_normal, mlp_logits
from ..problem import Problem, Split
from .admm_blocks import exact_a, update_z_last, update_z_relu


def _with_ones(a: torch.Tensor) -> torch.Tensor:
    return torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype, device=a.device)], dim=1)


def _pseudo_inverse_gram(gram: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """``pinv(gram)`` of a float64 Gram matrix ``x^T x`` or ``x x^T`` from its eigendecomposition, with
    ``torch.linalg.pinv``'s default cut-off for an ``x`` of largest side ``size`` and dtype ``dtype``
    (or the Gram matrix's float64 resolution, whichever is coarser)."""
    cutoff = max((size * torch.finfo(dtype).eps) ** 2, size * torch.finfo(torch.float64).eps)
    eigenvalues, vectors = torch.linalg.eigh(gram)
    kept = eigenvalues > cutoff * eigenvalues[-1]
    return (vectors * torch.where(kept, 1.0 / torch.where(kept, eigenvalues, 1.0), 0.0)) @ vectors.T


def pseudo_inverse(inputs: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.pinv(inputs)`` through the float64 Gram matrix of the smaller side instead of an SVD.

    Singular values at or below ``max(N, n) eps σ_max`` (eps of the inputs' dtype) count as zero, as
    in ``torch.linalg.pinv``, so dead units (zero columns) get zero weight.
    """
    x, size = inputs.double(), max(inputs.shape)
    if x.shape[0] < x.shape[1]:
        return (x.T @ _pseudo_inverse_gram(x @ x.T, size, inputs.dtype)).to(inputs.dtype)
    return (_pseudo_inverse_gram(x.T @ x, size, inputs.dtype) @ x.T).to(inputs.dtype)


def least_squares(inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``W = (pinv(inputs) target)^T``, the minimum-norm minimiser of ``||target - inputs W^T||^2``,
    with :func:`pseudo_inverse`'s cut-off and without forming the N×n pseudo-inverse."""
    x, t, size = inputs.double(), target.double(), max(inputs.shape)
    if x.shape[0] < x.shape[1]:
        solution = x.T @ (_pseudo_inverse_gram(x @ x.T, size, inputs.dtype) @ t)
    else:
        solution = _pseudo_inverse_gram(x.T @ x, size, inputs.dtype) @ (x.T @ t)
    return solution.T.to(inputs.dtype)


@dataclass
class TaylorState:
    """``weights[l]`` (n_l×(n_{l-1}+1), bias last), ``z[l]``, ``a[l]`` (l < L), multiplier ``lam``, and
    ``input_pinv``, the pseudo-inverse of the training inputs with a ones column (fixed, so computed once)."""

    weights: list[torch.Tensor]
    z: list[torch.Tensor]
    a: list[torch.Tensor]
    lam: torch.Tensor
    input_pinv: torch.Tensor
    k: int = 0


class TaylorADMM:
    """Taylor et al.'s ADMM for the ReLU MLP ``widths``: ``rho`` is β (1 in the dlADMM paper), ``gamma``
    is γ (``None``: equal to β, as the dlADMM paper's single ρ implies).

    Implements the :class:`~beyond_backprop.optim.solver.Solver` contract; ``warmup`` steps run
    without the multiplier update; weights start at N(0, init_std²) from the generator. The block
    updates are public so that each can be checked against its own subproblem.
    """

    def __init__(self, widths: list[int], *, rho: float = 1.0, gamma: float | None = None, warmup: int = 5,
                 init_std: float = 0.1) -> None:
        if len(widths) < 2:
            raise ValueError(f"invalid widths {widths!r}; expected at least two widths")
        if rho <= 0:
            raise ValueError(f"invalid rho {rho!r}; expected > 0")
        if gamma is not None and gamma <= 0:
            raise ValueError(f"invalid gamma {gamma!r}; expected > 0 or None (equal to rho)")
        if warmup < 0:
            raise ValueError(f"invalid warmup {warmup!r}; expected >= 0")
        self.widths, self.rho, self.warmup, self.init_std = list(widths), rho, warmup, init_std
        self.gamma = rho if gamma is None else gamma

    def init(self, problem: Problem, generator: torch.Generator) -> TaylorState:
        """W ~ N(0, std²); z, a by the forward pass on the training rows; ``λ = 0``; the inputs' pseudo-inverse."""
        x = problem.x
        weights = [draw_normal((n, m + 1), self.init_std, generator, x) for m, n in zip(self.widths[:-1], self.widths[1:])]
        z, a, h = [], [], x
        for w in weights:
            z.append(_with_ones(h) @ w.T)
            h = torch.relu(z[-1])
            a.append(h)
        return TaylorState(weights, z, a[:-1], torch.zeros_like(z[-1]), pseudo_inverse(_with_ones(x)))

    def step(self, state: TaylorState, problem: Problem) -> TaylorState:
        """One pass of exact block updates (Algorithm 1: W, a, z per hidden layer; W_L, z_L) and the Bregman step."""
        s = replace(state, weights=list(state.weights), z=list(state.z), a=list(state.a))
        for l in range(len(s.weights) - 1):
            self.update_weights(s, problem, l)
            self.update_activations(s, l)
            self.update_hidden_z(s, problem, l)
        self.update_weights(s, problem, len(s.weights) - 1)
        self.update_output_z(s, problem)
        s.k += 1
        if s.k > self.warmup:
            s.lam = s.lam + self.rho * self.residual_matrix(s, problem)
        return s

    @staticmethod
    def _input(s: TaylorState, problem: Problem, l: int) -> torch.Tensor:
        return _with_ones(problem.x if l == 0 else s.a[l - 1])

    def update_weights(self, s: TaylorState, problem: Problem, l: int) -> None:
        """``W_l`` (bias last) by least squares of ``z_l`` on ``ã_{l-1}``, in place."""
        s.weights[l] = (s.input_pinv @ s.z[0]).T if l == 0 else least_squares(self._input(s, problem, l), s.z[l])

    def update_activations(self, s: TaylorState, l: int) -> None:
        """``a_l = argmin β||z_{l+1} - ã_l W_{l+1}^T||^2 + γ||a_l - relu(z_l)||^2``, in place."""
        w, b = s.weights[l + 1][:, :-1], s.weights[l + 1][:, -1]
        s.a[l] = exact_a(w, s.z[l + 1] - b, self.rho, torch.relu(s.z[l]), self.gamma)

    def update_hidden_z(self, s: TaylorState, problem: Problem, l: int) -> None:
        """``z_l = argmin γ||a_l - relu(z_l)||^2 + β||z_l - m_l||^2`` elementwise, in place."""
        m = self._input(s, problem, l) @ s.weights[l].T
        s.z[l] = update_z_relu(m, s.a[l], self.rho, self.gamma)

    def update_output_z(self, s: TaylorState, problem: Problem) -> None:
        """``z_L = argmin R(z_L; y) + <z_L, λ> + β||z_L - m_L||^2`` by FISTA from the current ``z_L``, in place."""
        m = self._input(s, problem, len(s.weights) - 1) @ s.weights[-1].T
        s.z[-1] = update_z_last(s.z[-1], m - s.lam / (2 * self.rho), problem.onehot, 2 * self.rho)

    def residual_matrix(self, s: TaylorState, problem: Problem) -> torch.Tensor:
        """``z_L - ã_{L-1} W_L^T``."""
        return s.z[-1] - self._input(s, problem, len(s.weights) - 1) @ s.weights[-1].T

    def lagrangian(self, s: TaylorState, problem: Problem) -> torch.Tensor:
        """The objective of the module docstring, multiplier term included."""
        r = self.residual_matrix(s, problem)
        value = cross_entropy_sum(s.z[-1], problem.onehot) + (s.z[-1] * s.lam).sum() + self.rho * r.square().sum()
        for l in range(len(s.weights) - 1):
            m = self._input(s, problem, l) @ s.weights[l].T
            value = value + self.gamma * (s.a[l] - torch.relu(s.z[l])).square().sum() \
                + self.rho * (s.z[l] - m).square().sum()
        return value

    def metrics(self, state: TaylorState, problem: Problem) -> dict[str, torch.Tensor]:
        """``lagrangian``, ``residual`` (squared Frobenius norm) and ``rho`` (β), as 0-d tensors."""
        return {"lagrangian": self.lagrangian(state, problem),
                "residual": self.residual_matrix(state, problem).square().sum(),
                "rho": torch.tensor(float(self.rho), device=problem.device)}

    @staticmethod
    def logits(state: TaylorState, problem: Problem, split: Split) -> torch.Tensor:
        """Logits of the plain network with the current weights on the scored rows of ``split``."""
        out = mlp_logits([w[:, :-1] for w in state.weights], [w[:, -1] for w in state.weights], split.inputs)
        return out if split.index is None else out[split.index]
