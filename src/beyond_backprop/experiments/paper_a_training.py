"""Paper A, experiments E2 and E3: constrained MLP training with Frank-Wolfe, and its memory and time.

Methods (spec section 3.2): ``backprop-fw`` (mini-batch backprop gradient, averaged as in SFW with
momentum), ``pfg`` (plain PFG-FW) and ``averaged-pfg`` (averaged PFG-FW). Every parameter tensor is
constrained (biases too) by a set whose diameter comes from its initial scale.
"""

from __future__ import annotations

import math
import statistics

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from .. import models
from ..autodiff.forward_gradient import layerwise_forward_gradient
from ..data import ImageData
from ..optim.constraints import initialization_constraints
from ..optim.frank_wolfe import FrankWolfe
from ..runtime import PeakMemory, Timer

TRAINING_METHODS = ("backprop-fw", "pfg", "averaged-pfg")
LABELS = {"backprop-fw": "FW, backprop gradient", "pfg": "PFG-FW (plain)", "averaged-pfg": "averaged PFG-FW"}


def constrained_mlp(widths: list[int], constraint: str, width_factor: float, k_fraction: float,
                    seed: int, device: torch.device) -> tuple[nn.Module, list[dict]]:
    """A fresh MLP, per-tensor constraint sets from its initial scale, and a FW optimiser over them."""
    torch.manual_seed(seed)
    model = models.mlp(widths).to(device)
    groups = initialization_constraints(model, constraint, width_factor, k_fraction=k_fraction)
    return model, groups


def _optimizer(groups: list[dict], method: str, schedule: str) -> FrankWolfe:
    return FrankWolfe(groups, schedule=schedule, averaging=method != "pfg")


def _set_gradients(model: nn.Module, method: str, x: torch.Tensor, y: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """Write the method's gradient estimate into ``.grad``; return the mini-batch loss."""
    loss_fn = nn.functional.cross_entropy
    if method == "backprop-fw":
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss.detach()
    return layerwise_forward_gradient(model, loss_fn, x, y, generator=generator)


def exact_fw_gap(model: nn.Module, optimizer: FrankWolfe, x: torch.Tensor, y: torch.Tensor) -> float:
    """sum over tensors of <grad f, theta - LMO(grad f)> with the full-batch gradient on (x, y)."""
    params = [g["params"][0] for g in optimizer.param_groups]
    grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), params)
    with torch.no_grad():
        return float(sum(torch.sum(g * (p - group["constraint"].lmo(g)))
                         for g, p, group in zip(grads, params, optimizer.param_groups)))


def density(model: nn.Module, threshold: float = 1e-8) -> float:
    """Fraction of parameters with |theta| > threshold."""
    total = sum(p.numel() for p in model.parameters())
    return sum(int((p.abs() > threshold).sum()) for p in model.parameters()) / total


def train(images: ImageData, method: str, *, widths: list[int], iterations: int, batch: int, constraint: str,
          width_factor: float, k_fraction: float, schedule: str, gap_samples: int, gap_every: int,
          seed: int, device: torch.device) -> tuple[pd.DataFrame, dict]:
    """Train one method; history rows every ``gap_every`` steps; a summary with test accuracy and density."""
    if method not in TRAINING_METHODS:
        raise ValueError(f"invalid method {method!r}; expected one of {', '.join(TRAINING_METHODS)}")
    model, groups = constrained_mlp(widths, constraint, width_factor, k_fraction, seed, device)
    optimizer = _optimizer(groups, method, schedule)
    data = images.to(device)
    gap_x, gap_y = data.x_train[:gap_samples], data.y_train[:gap_samples]
    batches = torch.Generator(device="cpu").manual_seed(seed)
    directions = torch.Generator(device=device).manual_seed(seed + 1)
    rows, best_gap = [], math.inf
    for k in tqdm(range(1, iterations + 1), desc=method, leave=False):
        rows_index = torch.randint(0, len(data.y_train), (batch,), generator=batches).to(device)
        loss = _set_gradients(model, method, data.x_train[rows_index], data.y_train[rows_index], directions)
        optimizer.step()
        if k % gap_every == 0 or k == iterations:
            gap = exact_fw_gap(model, optimizer, gap_x, gap_y)
            best_gap = min(best_gap, gap)
            rows.append({"iteration": k, "batch_loss": float(loss), "fw_gap": gap, "min_fw_gap": best_gap})
    with torch.no_grad():
        accuracy = float((model(data.x_test).argmax(1) == data.y_test).float().mean())
    summary = {"method": method, "test_accuracy": accuracy, "density": density(model),
               "parameters": sum(p.numel() for p in model.parameters())}
    return pd.DataFrame(rows).assign(method=method), summary


def inverse_log_fit(history: pd.DataFrame) -> tuple[float, float]:
    """Least-squares fit min_gap ≈ a + b / log(k + 1) over the second half of the history: (a, b).

    The O(1/log K) rate means a ≈ 0 relative to the gap's scale.
    """
    tail = history[history["iteration"] >= history["iteration"].max() / 2]
    x = 1.0 / torch.log(torch.tensor(tail["iteration"].to_numpy(), dtype=torch.float64) + 1)
    y = torch.tensor(tail["min_fw_gap"].to_numpy(), dtype=torch.float64)
    design = torch.stack([torch.ones_like(x), x], dim=1)
    a, b = torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1).tolist()
    return a, b


def step_cost(method: str, *, width: int, depth: int, batch: int, device: torch.device, repeats: int = 5,
              seed: int = 0) -> dict:
    """Peak memory and median time of one training step (gradient estimate + FW update) of an MLP.

    Inputs are random: only cost is measured. ``peak_bytes`` is the step's peak above what was
    allocated before it (``runtime.PeakMemory``); ``total_bytes`` adds the parameters, the batch and
    the optimiser state, the figure comparable to a device-wide reading such as the paper's MiB per
    epoch. ``gradient_peak_bytes`` is the peak of the gradient estimate alone (backward pass or JVP),
    the part where forward and reverse mode differ.
    """
    widths = [784] + [width] * depth + [10]
    model, groups = constrained_mlp(widths, "k-sparse", 10.0, 0.05, seed, device)
    optimizer = _optimizer(groups, method, "nonconvex")
    x = torch.rand(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)

    def step() -> None:
        _set_gradients(model, method, x, y, generator)
        optimizer.step()
        for p in model.parameters():
            p.grad = None

    step()  # warm-up: lazily allocated state (averaged directions) exists from here on
    times = []
    for _ in range(repeats):
        with Timer(device) as timer:
            step()
        times.append(timer.seconds)
    with PeakMemory(device) as meter:
        step()
    with PeakMemory(device) as gradient_meter:
        _set_gradients(model, method, x, y, generator)
    for p in model.parameters():
        p.grad = None
    resident = sum(p.numel() * p.element_size() for p in model.parameters()) + x.numel() * x.element_size()
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values())
    return {"method": method, "width": width, "depth": depth, "batch": batch,
            "seconds": statistics.median(times), "peak_bytes": meter.bytes,
            "total_bytes": meter.bytes + resident + state, "gradient_peak_bytes": gradient_meter.bytes}


def cost_sweep(depths: list[int], batches: list[int], *, width: int, device: torch.device,
               repeats: int = 5) -> pd.DataFrame:
    """:func:`step_cost` of backprop FW and PFG-FW side by side for every (depth, batch)."""
    rows = []
    for depth in tqdm(depths, desc="depths"):
        for batch in batches:
            for method in ("backprop-fw", "averaged-pfg"):
                rows.append(step_cost(method, width=width, depth=depth, batch=batch, device=device, repeats=repeats))
    return pd.DataFrame(rows)


def cost_ratios(sweep: pd.DataFrame) -> pd.DataFrame:
    """PFG over backprop, per (depth, batch): gradient-phase peak, step peak, total memory and time."""
    wide = sweep.pivot_table(index=["depth", "batch"], columns="method",
                             values=["peak_bytes", "total_bytes", "gradient_peak_bytes", "seconds"])
    return pd.DataFrame({
        "gradient_ratio": wide["gradient_peak_bytes"]["averaged-pfg"] / wide["gradient_peak_bytes"]["backprop-fw"],
        "peak_ratio": wide["peak_bytes"]["averaged-pfg"] / wide["peak_bytes"]["backprop-fw"],
        "total_ratio": wide["total_bytes"]["averaged-pfg"] / wide["total_bytes"]["backprop-fw"],
        "time_ratio": wide["seconds"]["averaged-pfg"] / wide["seconds"]["backprop-fw"],
    }).reset_index()
