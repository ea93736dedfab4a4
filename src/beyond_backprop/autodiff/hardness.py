"""Conservative (AD) gradients vs Clarke subgradients of small {−1, 0, 1} ReLU networks.

A bias-free network F(x) = W_L relu(W_{L-1} ⋯ relu(W_1 x)) is piecewise linear and
positively homogeneous. On the region where the activation pattern is D_1, …, D_{L-1}
its gradient is W_L D_{L-1} W_{L-1} ⋯ D_1 W_1, so

- the Clarke subdifferential at 0 is the convex hull of the gradients of the
  full-dimensional regions (found exactly by one LP per sign pattern, exponential
  in the number of neurons, or approximately by sampling random points);
- the conservative field D^a_F(x) that backprop selects from is the set of such
  products with D free in [0, 1] at every neuron whose pre-activation is exactly 0;
  its {0, 1} choices are enumerated by ``conservative_products``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linprog

from .kinks import relu_at

Network = list[torch.Tensor]

# max(x1, x2) written twice with weights in {-1, 0, 1}: x2 + relu(x1 - x2) and x1 + relu(x2 - x1),
# the linear term as relu(t) - relu(-t). At x1 = x2 the two programs' AD outputs differ.
MAX_PAIR: tuple[Network, Network] = (
    [torch.tensor([[1.0, -1.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64),
     torch.tensor([[1.0, 1.0, -1.0]], dtype=torch.float64)],
    [torch.tensor([[-1.0, 1.0], [1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64),
     torch.tensor([[1.0, 1.0, -1.0]], dtype=torch.float64)],
)


def random_ternary_network(widths: Sequence[int], generator: torch.Generator) -> Network:
    """Weights W_l of shape (widths[l+1], widths[l]) with entries uniform in {−1, 0, 1}; last width 1."""
    if len(widths) < 2 or widths[-1] != 1 or any(w < 1 for w in widths):
        raise ValueError(f"invalid widths {list(widths)!r}; expected positive sizes ending with 1")
    return [torch.randint(-1, 2, (n_out, n_in), generator=generator).double()
            for n_in, n_out in zip(widths[:-1], widths[1:])]


def evaluate(network: Network, x: torch.Tensor, s: float | Sequence[torch.Tensor] = 0.0) -> torch.Tensor:
    """F(x) for x of shape (..., p), with relu'(0) = s (one number, or one tensor per hidden layer)."""
    slopes = list(s) if isinstance(s, Sequence) else [s] * (len(network) - 1)
    for weight, slope in zip(network[:-1], slopes):
        x = relu_at(x @ weight.T, slope)
    return (x @ network[-1].T).squeeze(-1)


def ad_gradient(network: Network, x: torch.Tensor, s: float | Sequence[torch.Tensor] = 0.0) -> torch.Tensor:
    """What backprop returns for F at the point x (shape (p,)) with relu'(0) = s."""
    x = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(evaluate(network, x, s), x)[0]


def pre_activations(network: Network, x: torch.Tensor) -> list[torch.Tensor]:
    """z_l = W_l relu(z_{l-1}) for every hidden layer, at x of shape (..., p)."""
    zs = []
    for weight in network[:-1]:
        zs.append(x @ weight.T)
        x = torch.relu(zs[-1])
    return zs


def _products(network: Network, masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """W_L D_{L-1} ⋯ D_1 W_1 for masks of shape (K, n_l) per hidden layer: (K, p)."""
    jacobian = masks[0][:, :, None] * network[0]
    for weight, mask in zip(network[1:-1], masks[1:]):
        jacobian = mask[:, :, None] * (weight @ jacobian)
    return (network[-1] @ jacobian)[:, 0, :]


def conservative_products(network: Network, x: torch.Tensor) -> torch.Tensor:
    """Distinct elements of D^a_F(x) with each kink neuron's derivative in {0, 1}: (k, p).

    D_l = 1{z_l > 0} off the kinks; every neuron with z_l = 0 takes 0 and 1 (2^{#kinks} choices).
    """
    zs = pre_activations(network, x)
    kinks = torch.cat([z == 0 for z in zs])
    choices = torch.tensor(list(itertools.product((0.0, 1.0), repeat=int(kinks.sum()))), dtype=x.dtype)
    flat = torch.cat([(z > 0).to(x.dtype) for z in zs]).repeat(len(choices), 1)
    flat[:, kinks] = choices.reshape(len(choices), -1)
    masks = flat.split([len(z) for z in zs], dim=1)
    return torch.unique(_products(network, masks), dim=0)


def clarke_generators_exact(network: Network) -> tuple[torch.Tensor, int]:
    """Gradients of all full-dimensional linear regions of F, whose convex hull is ∂^c F(0).

    for every sign pattern σ of the hidden neurons (2^n of them):
        z_l(x) = A_l x with A_l = W_l D_{l-1} A_{l-1} on the pattern's region;
        solve the LP  (2σ_i − 1)·(A x)_i ≥ 1  (strict signs, by homogeneity);
        neurons with A_i = 0 are ≡ 0 there and only σ_i = 0 is kept for them.
    Returns the distinct gradients and the number of LPs solved.
    """
    sizes = [len(weight) for weight in network[:-1]]
    p = network[0].shape[1]
    gradients, solved = [], 0
    for pattern in itertools.product((0.0, 1.0), repeat=sum(sizes)):
        masks = torch.tensor(pattern, dtype=network[0].dtype).split(sizes)
        rows, linear = [], network[0]
        for layer, mask in enumerate(masks):
            if layer:
                linear = network[layer] @ (masks[layer - 1][:, None] * linear)
            rows.append(linear)
        rows_all, signs = torch.cat(rows), 2 * torch.tensor(pattern, dtype=network[0].dtype) - 1
        zero = (rows_all == 0).all(dim=1)
        if bool((signs[zero] > 0).any()):
            continue
        constraints = -(signs[~zero, None] * rows_all[~zero]).numpy()
        solved += 1
        feasible = linprog(np.zeros(p), A_ub=constraints, b_ub=-np.ones(len(constraints)),
                           bounds=[(None, None)] * p, method="highs").status == 0
        if feasible:
            gradients.append(_products(network, [m[None] for m in masks])[0])
    return torch.unique(torch.stack(gradients), dim=0), solved


def clarke_generators_sampled(network: Network, points: int, generator: torch.Generator) -> torch.Tensor:
    """Distinct gradients of F at ``points`` Gaussian points (valid for ∂^c F(0) by homogeneity);
    regions of small angular measure are likely to be missed."""
    x = torch.randn(points, network[0].shape[1], generator=generator, dtype=network[0].dtype)
    masks = [(z > 0).to(x.dtype) for z in pre_activations(network, x)]
    return torch.unique(_products(network, masks), dim=0)


def in_convex_hull(point: torch.Tensor, generators: torch.Tensor, tol: float = 1e-9) -> bool:
    """Whether ``point`` is a convex combination of the rows of ``generators`` (an LP)."""
    k = len(generators)
    equality = np.vstack([generators.T.numpy(), np.ones((1, k))])
    target = np.concatenate([point.numpy(), [1.0]])
    result = linprog(np.zeros(k), A_eq=equality, b_eq=target, bounds=[(0, None)] * k, method="highs",
                     options={"primal_feasibility_tolerance": tol})
    return result.status == 0
