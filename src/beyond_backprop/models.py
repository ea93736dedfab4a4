"""MLP and GCN definitions shared by the papers."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import scipy.sparse as sp
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def mlp(widths: list[int], activation: str = "relu", bias: bool = True) -> nn.Sequential:
    """``Linear(w0, w1) → act → … → Linear(w_{L-1}, w_L)``; no activation after the last layer."""
    if len(widths) < 2 or any(int(w) < 1 for w in widths):
        raise ValueError(f"invalid widths {widths!r}; expected at least two positive sizes")
    if activation not in ACTIVATIONS:
        raise ValueError(f"invalid activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def sparse_tensor(matrix: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy sparse matrix as a torch sparse CSR tensor (float32) on ``device``."""
    csr = sp.csr_matrix(matrix, dtype="float32")
    with warnings.catch_warnings():  # torch warns that sparse CSR is beta: known, and noise in every notebook
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr).long(), torch.from_numpy(csr.indices).long(),
            torch.from_numpy(csr.data), size=csr.shape, device=device,
        )


class GCN(nn.Module):
    """Two-layer graph convolutional network (Kipf & Welling): ``Â relu(Â X W1 + b1) W2 + b2``.

    Args:
        adjacency: the propagation matrix Â (for example ``data.normalized_adjacency``), n×n.
        widths: ``[in_features, hidden, classes]``.
    """

    def __init__(self, adjacency: torch.Tensor, widths: list[int], bias: bool = True) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"invalid widths {widths!r}; a two-layer GCN takes [in, hidden, classes]")
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.first = nn.Linear(widths[0], widths[1], bias=False)
        self.second = nn.Linear(widths[1], widths[2], bias=False)
        self.first_bias = nn.Parameter(torch.zeros(widths[1])) if bias else None
        self.second_bias = nn.Parameter(torch.zeros(widths[2])) if bias else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.adjacency @ self.first(features)
        if self.first_bias is not None:
            hidden = hidden + self.first_bias
        out = self.adjacency @ self.second(torch.relu(hidden))
        return out if self.second_bias is None else out + self.second_bias


def cross_entropy_sum(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of logits ``z`` against one-hot ``y``, summed over rows."""
    return -(y * torch.log_softmax(z, dim=1)).sum()


def mlp_logits(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of the ReLU MLP ``relu(x W_1^T + b_1) … W_L^T + b_L`` (``W_l`` is n_l×n_{l-1}), rows as samples."""
    h = x
    for l, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w.T + b
        if l < len(weights) - 1:
            h = torch.relu(h)
    return h


INIT_STD = 0.1  # N(0, 0.1²) for every weight and bias: the dlADMM and mDLAM codes' initialisation


def draw_normal(shape: Sequence[int], std: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """N(0, std²) of ``shape`` drawn on ``generator.device``, then moved to ``like``'s device (dtype of ``like``).

    The package's generator rule: a solver draws on its generator's device, so one seed gives one
    initial state on any device when the generator stays on the CPU.
    """
    drawn = torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=like.dtype)
    return drawn.mul_(std).to(like.device)


def init_normal_(model: nn.Module, generator: torch.Generator, std: float = INIT_STD) -> nn.Module:
    """Every parameter of ``model`` ~ N(0, std²), drawn in order from ``generator`` (on its device).

    The one initialisation of the gradient baselines in every paper: the ADMM-type solvers start
    from the same distribution (dlADMM spec §6.10: "same architecture and initialisation").
    """
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(draw_normal(parameter.shape, std, generator, parameter))
    return model


def init_linear_default_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every ``nn.Linear`` of ``model`` as ``reset_parameters`` initialises it (weights Kaiming-uniform with
    a = sqrt(5), biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn in order from ``generator`` (on its device).

    Paper A's initialisation (torch's default, as in SFW's code). With a CPU generator seeded ``s`` it
    equals ``torch.manual_seed(s)`` followed by building the model on the CPU.
    """
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                weight = torch.empty(layer.weight.shape, device=generator.device)
                layer.weight.copy_(nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator))
                if layer.bias is not None:
                    bound = 1 / math.sqrt(layer.in_features)
                    bias = torch.empty(layer.bias.shape, device=generator.device)
                    layer.bias.copy_(bias.uniform_(-bound, bound, generator=generator))
    return model
