"""What automatic differentiation returns at the kinks of nonsmooth programs.

A program is a composition of elementary functions, each with a chosen
derivative; backprop multiplies them (chain rule), which gives an element of a
*conservative* field of the function, not necessarily of its Clarke
subdifferential. Two programs of the same function can therefore return
different derivatives at a kink.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import jacfwd

Program = Callable[[torch.Tensor], torch.Tensor]


class _ReLUAt(torch.autograd.Function):
    """relu with derivative ``s`` at 0, the same in backward and forward mode."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, torch.zeros_like(x))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        x, s = inputs
        ctx.slope = (x > 0).to(x.dtype) + s * (x == 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output * ctx.slope, None

    @staticmethod
    def jvp(ctx: Any, x_tangent: torch.Tensor, s_tangent: Any) -> torch.Tensor:
        return x_tangent * ctx.slope


def relu_at(x: torch.Tensor, s: float | torch.Tensor) -> torch.Tensor:
    """relu(x) whose AD derivative at x = 0 is ``s`` (a number, or a tensor broadcast against x).

    relu'(x) = 1 for x > 0, 0 for x < 0, s at 0; any s in [0, 1] gives a conservative gradient.
    """
    s = torch.as_tensor(s, dtype=x.dtype, device=x.device)
    if bool(((s < 0) | (s > 1)).any()):
        raise ValueError(f"invalid s {s.tolist()!r}; expected values in [0, 1]")
    return _ReLUAt.apply(x, s)


# name -> (program, kink where it is evaluated); scalar programs take a 0-d tensor.
KINK_PROGRAMS: dict[str, tuple[Program, tuple[float, ...]]] = {
    "relu(x)": (torch.relu, (0.0,)),
    "abs(x)": (torch.abs, (0.0,)),
    "clamp(x, min=0)": (lambda x: torch.clamp(x, min=0), (0.0,)),
    "maximum(x, 0)": (lambda x: torch.maximum(x, torch.zeros_like(x)), (0.0,)),
    "where(x > 0, x, 0)": (lambda x: torch.where(x > 0, x, torch.zeros_like(x)), (0.0,)),
    "where(x >= 0, x, 0)": (lambda x: torch.where(x >= 0, x, torch.zeros_like(x)), (0.0,)),
    "leaky_relu(x, 0.1)": (lambda x: F.leaky_relu(x, 0.1), (0.0,)),
    "hardtanh(x) at 1": (F.hardtanh, (1.0,)),
    "max(x1, x2) tie": (torch.max, (1.0, 1.0)),
    "max_pool1d(x1, x2) tie": (lambda x: F.max_pool1d(x.reshape(1, 1, -1), 2).sum(), (1.0, 1.0)),
}

# Pairs of programs equal as functions of a scalar x (the second is the reference).
EQUAL_PAIRS: dict[str, tuple[Program, Program]] = {
    "relu(x) - relu(-x) = x": (lambda x: torch.relu(x) - torch.relu(-x), lambda x: x),
    "relu(x) + relu(-x) = abs(x)": (lambda x: torch.relu(x) + torch.relu(-x), torch.abs),
    "clamp(x, min=0) = relu(x)": (lambda x: torch.clamp(x, min=0), torch.relu),
    "maximum(x, 0) = relu(x)": (lambda x: torch.maximum(x, torch.zeros_like(x)), torch.relu),
    "where(x >= 0, x, 0) = relu(x)": (lambda x: torch.where(x >= 0, x, torch.zeros_like(x)), torch.relu),
    "x (1 + 1) = x + x (smooth control)": (lambda x: x * 2.0, lambda x: x + x),
}


def _point(values: Sequence[float], dtype: torch.dtype) -> torch.Tensor:
    point = torch.tensor(values, dtype=dtype)
    return point[0] if len(values) == 1 else point


def reverse_derivative(program: Program, x: torch.Tensor) -> torch.Tensor:
    """The derivative backprop returns for a scalar program at ``x``."""
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(program(x), x)[0]


def forward_derivative(program: Program, x: torch.Tensor) -> torch.Tensor:
    """The derivative forward mode (``jacfwd``) returns for a scalar program at ``x``."""
    return jacfwd(program)(x)


def kink_table(dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64)) -> pd.DataFrame:
    """AD output of every ``KINK_PROGRAMS`` entry at its kink, reverse and forward mode, per dtype."""
    rows = []
    for name, (program, values) in KINK_PROGRAMS.items():
        for dtype in dtypes:
            x = _point(values, dtype)
            rows.append({"program": name, "point": values, "dtype": str(dtype).removeprefix("torch."),
                         "reverse": tuple(reverse_derivative(program, x).reshape(-1).tolist()),
                         "forward": tuple(forward_derivative(program, x).reshape(-1).tolist())})
    return pd.DataFrame(rows)


def equal_pairs_table(dtype: torch.dtype = torch.float64, grid: int = 1001) -> pd.DataFrame:
    """For each ``EQUAL_PAIRS`` entry: the largest gap between the two functions on [-1, 1]
    (0 means equal as functions there) and the backprop derivative of each at x = 0."""
    xs = torch.linspace(-1, 1, grid, dtype=dtype)
    zero = torch.zeros((), dtype=dtype)
    rows = []
    for name, (program, reference) in EQUAL_PAIRS.items():
        rows.append({"pair": name, "max_gap": float((program(xs) - reference(xs)).abs().max()),
                     "derivative": float(reverse_derivative(program, zero)),
                     "reference_derivative": float(reverse_derivative(reference, zero))})
    table = pd.DataFrame(rows)
    table["ad_differs"] = table["derivative"] != table["reference_derivative"]
    return table


def forward_with_s(model: nn.Sequential, x: torch.Tensor, s: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run a sequential ReLU network with relu'(0) = ``s``; return its output and the input of every ReLU."""
    relu_inputs = []
    for layer in model:
        if isinstance(layer, nn.ReLU):
            relu_inputs.append(x)
            x = relu_at(x, s)
        else:
            x = layer(x)
    return x, relu_inputs


def bertoin_mlp(inputs: int = 784, width: int = 256, hidden_layers: int = 3, classes: int = 10) -> nn.Sequential:
    """The MLP of Bertoin et al.'s volume estimate on MNIST (the authors' notebook, ``deel-ai/relu-prime``):
    ``Linear(inputs, width)``, then ``hidden_layers - 1`` times ``Linear(width, width), ReLU``, then
    ``Linear(width, classes)``; as in their code the first linear layer feeds the second directly.
    PyTorch's default initialisation, drawn from the global generator."""
    if hidden_layers < 2:
        raise ValueError(f"invalid hidden_layers {hidden_layers!r}; expected >= 2 (the first has no ReLU)")
    layers: list[nn.Module] = [nn.Linear(inputs, width)]
    for _ in range(hidden_layers - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def backprops_differ(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[bool, int]:
    """Whether backprop of the cross-entropy with relu'(0) = 0 and = 1 gives different parameter gradients
    on the minibatch (x, y), and how many ReLU inputs are exactly 0.

    Without an exact zero the two programs run the same operations on the same numbers, so their
    gradients are equal bit for bit and the second backprop is skipped.
    """
    params = tuple(model.parameters())
    logits, relu_inputs = forward_with_s(model, x, 0.0)
    zeros = int(sum(int((z == 0).sum()) for z in relu_inputs))
    if zeros == 0:
        return False, 0
    first = torch.autograd.grad(F.cross_entropy(logits, y), params)
    second = torch.autograd.grad(F.cross_entropy(forward_with_s(model, x, 1.0)[0], y), params)
    return any(not torch.equal(a, b) for a, b in zip(first, second)), zeros


def bifurcation_volume(make_network: Callable[[], nn.Sequential], x: torch.Tensor, y: torch.Tensor,
                       batch_size: int, dtypes: Sequence[torch.dtype], networks: int) -> pd.DataFrame:
    """Bertoin et al.'s estimate of the volume of the bifurcation set S, per dtype.

    For each of ``networks`` random initialisations θ (``make_network()``, the same θ cast to every
    dtype), sweep the minibatches of (x, y) in order and stop at the first on which backprop with
    relu'(0) = 0 and = 1 differ (θ ∈ S). One row per network and dtype: whether θ ∈ S, the minibatches
    and samples swept, and the exact zeros met among the ReLU inputs.
    """
    if batch_size < 1 or batch_size > len(x):
        raise ValueError(f"invalid batch_size {batch_size!r}; expected 1..{len(x)}")
    if networks < 1:
        raise ValueError(f"invalid networks {networks!r}; expected >= 1")
    rows = []
    for network in range(networks):
        model = make_network()
        for dtype in dtypes:
            net = copy.deepcopy(model).to(dtype)
            differs, swept, samples, zeros = False, 0, 0, 0
            for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
                differs, found = backprops_differ(net, xb.to(dtype), yb)
                swept, samples, zeros = swept + 1, samples + len(xb), zeros + found
                if differs:
                    break
            rows.append({"network": network, "dtype": str(dtype).removeprefix("torch."), "differs": differs,
                         "minibatches": swept, "samples": samples, "zeros": zeros})
    return pd.DataFrame(rows)
