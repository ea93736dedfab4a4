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

from ..data import ImageData
from ..optim.solver import run_history
from ..optim.stochastic import MinibatchMLP, estimate_gradient
from ..problem import Problem, Split
from ..runtime import PeakMemory, Timer
from ..results import Measurement

TRAINING_METHODS = ("backprop-fw", "pfg", "averaged-pfg")
LABELS = {"backprop-fw": "FW, backprop gradient", "pfg": "PFG-FW (plain)", "averaged-pfg": "averaged PFG-FW"}
METHOD_OPTIONS = {"backprop-fw": {"gradient": "backprop", "averaging": True},
                  "pfg": {"gradient": "forward", "averaging": False},
                  "averaged-pfg": {"gradient": "forward", "averaging": True}}


def fw_solver(method: str, widths: list[int], *, batch: int, schedule: str, learning_rate: float = 1.0,
              gap_samples: int = 0) -> MinibatchMLP:
    """One of :data:`TRAINING_METHODS` as a contract solver: the K-sparse polytope (w = 10, K = 5%) on every
    tensor, biases included, around torch's default initialisation."""
    if method not in TRAINING_METHODS:
        raise ValueError(f"invalid method {method!r}; expected one of {', '.join(TRAINING_METHODS)}")
    return MinibatchMLP(widths, update="frank-wolfe", lr=learning_rate, batch=batch, schedule=schedule,
                        init="torch-default", gap_samples=gap_samples, **METHOD_OPTIONS[method])


def density(model: nn.Module, threshold: float = 1e-8) -> float:
    """Fraction of parameters with |theta| > threshold."""
    total = sum(p.numel() for p in model.parameters())
    return sum(int((p.abs() > threshold).sum()) for p in model.parameters()) / total


def train(images: ImageData, method: str, *, widths: list[int], iterations: int, batch: int, schedule: str,
          gap_samples: int, gap_every: int, seed: int, device: torch.device,
          learning_rate: float = 1.0) -> tuple[pd.DataFrame, dict]:
    """Train one method through :func:`~beyond_backprop.optim.solver.run_history`, a history row every
    ``gap_every`` steps (with ``min_fw_gap``, the best FW gap so far); a summary with the final test
    accuracy and density."""
    solver = fw_solver(method, widths, batch=batch, schedule=schedule, learning_rate=learning_rate,
                       gap_samples=gap_samples)
    problem = images.to(device).problem(widths[-1])
    state = solver.init(problem, torch.Generator().manual_seed(seed))
    state, history = run_history(solver, state, problem, iterations, evaluate_every=gap_every, progress=True,
                                 description=method)
    history["min_fw_gap"] = history["fw_gap"].cummin()
    summary = {"method": method, "test_accuracy": float(history["test_accuracy"].iloc[-1]),
               "density": density(state.model), "parameters": sum(p.numel() for p in state.model.parameters())}
    return history.assign(method=method), summary


STEP_RULES = {"sfw": "SFW step (lr / diameter, momentum 0.9)", "theory": "theory step (1/(k+1), rho (k+1)^-2/3)"}


def compare_training(datasets: dict[str, ImageData], *, hidden: int, iterations: int, batch: int,
                     learning_rate: float, gap_samples: int, gap_every: int, seed: int,
                     device: torch.device) -> tuple[pd.DataFrame, pd.DataFrame]:
    """E2 on every data set: the three methods with the SFW step rule, and averaged PF-FW with the
    theory step rule. Returns the stacked histories and summaries, with ``dataset`` and ``step_rule``."""
    runs = [(method, "sfw") for method in TRAINING_METHODS] + [("averaged-pfg", "theory")]
    histories, summaries = [], []
    for label, images in datasets.items():
        for method, rule in runs:
            history, summary = train(
                images, method, widths=[784, hidden, hidden, 10], iterations=iterations, batch=batch,
                schedule="sfw" if rule == "sfw" else "nonconvex", learning_rate=learning_rate,
                gap_samples=gap_samples, gap_every=gap_every, seed=seed, device=device)
            histories.append(history.assign(dataset=label, step_rule=rule))
            summaries.append({**summary, "dataset": label, "step_rule": rule})
    return pd.concat(histories, ignore_index=True), pd.DataFrame(summaries)


def inverse_log_decrease_share(history: pd.DataFrame, column: str = "min_fw_gap") -> float:
    """How much of the decrease that a decay to 0 like 1/log k predicts the best FW gap makes over the
    second half of the run.

    From the first recorded k_0 >= K/2 to K, ``c / log(k + 1)`` falls by ``1 - log(k_0 + 1) / log(K + 1)``
    (10% at K = 800); the share is the observed relative fall over that prediction: 1 for such a
    decay, more for a faster one, 0 for a plateau. It compares the tail with the claimed rate without
    extrapolating a fit, and the transient at the start of the run does not enter it. NaN with fewer
    than 3 records in the second half.
    """
    last = history["iteration"].max()
    tail = history[history["iteration"] >= last / 2].sort_values("iteration")
    if len(tail) < 3:
        return float("nan")
    first, end = tail.iloc[0], tail.iloc[-1]
    predicted = 1 - math.log(first["iteration"] + 1) / math.log(end["iteration"] + 1)
    return (1 - end[column] / first[column]) / predicted


def accuracy_behind(summary: pd.DataFrame, dataset: str, reference_floor: float = 0.5) -> tuple[float | None, str]:
    """(backprop FW's test accuracy minus averaged PF-FW's, reason it says nothing or "").

    The comparison is only informative when the backprop reference learns: below ``reference_floor``
    test accuracy both are near chance and the difference is not a measurement of the claim.
    """
    accuracy = summary[summary["step_rule"] == "sfw"].set_index(["dataset", "method"])["test_accuracy"]
    reference = float(accuracy[dataset, "backprop-fw"])
    if reference < reference_floor:
        return None, (f"the backprop FW reference reached only {reference:.2f} test accuracy "
                      f"(needs {reference_floor:.2f} for the comparison to say anything)")
    return reference - float(accuracy[dataset, "averaged-pfg"]), ""


def claim_measurements(history: pd.DataFrame, summary: pd.DataFrame, *, iterations: int, batch: int,
                       train_sizes: dict[str, int]) -> dict[str, Measurement]:
    """A2's claims per data set, in the order of ``train_sizes`` (Fashion-MNIST, then the MNIST subset):
    the FW gap of averaged PF-FW with the theory step (A2.1, A2.2) and the accuracy comparison with
    the SFW step (A2.3, A2.4)."""
    measured = {}
    for n, (label, train_size) in enumerate(train_sizes.items()):
        run = history[(history["dataset"] == label) & (history["method"] == "averaged-pfg")
                      & (history["step_rule"] == "theory")]
        share = inverse_log_decrease_share(run)
        measured[f"A2.{1 + n}"] = Measurement(share, {"iterations": iterations, "dataset": label}, not_testable="" if
                                              math.isfinite(share) else "the run records fewer than 3 FW gaps in "
                                              "its second half: no rate can be compared")
        behind, why = accuracy_behind(summary, label)
        epochs = round(iterations * batch / train_size, 1)
        measured[f"A2.{3 + n}"] = Measurement(behind, {"epochs": epochs, "iterations": iterations, "dataset": label},
                                              not_testable=why)
    return dict(sorted(measured.items()))


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def step_cost(method: str, *, width: int, depth: int, batch: int, device: torch.device, repeats: int = 5,
              seed: int = 0) -> dict:
    """Peak memory, its breakdown, and median time of one training step (gradient estimate + FW update).

    Inputs are random: only cost is measured. ``peak_bytes`` is the whole step's peak above what was
    allocated before it (``runtime.PeakMemory``); ``total_bytes`` adds the resident tensors (weights,
    batch, averaged direction, LMO buffer), the figure comparable to a device-wide reading such as the
    paper's MiB per epoch. The breakdown: ``weights_bytes``, ``batch_bytes``, ``direction_bytes``
    (averaged direction), ``lmo_buffer_bytes``, ``gradient_bytes`` (the estimate in ``.grad``),
    ``tape_bytes`` (the gradient phase's peak beyond ``.grad``: activations stored for the backward
    pass, or the JVP's primal and tangent buffers) and ``update_bytes`` (the FW update's temporaries).
    """
    x = torch.rand(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    solver = fw_solver(method, [784] + [width] * depth + [10], batch=batch, schedule="nonconvex")
    problem = Problem(Split(x, y), classes=10)
    state = solver.init(problem, torch.Generator().manual_seed(seed))
    model, optimizer = state.model, state.optimizer
    forward = solver.gradient == "forward"
    for _ in range(2):  # warm-up: the averaged direction and the LMO buffer exist from here on
        solver.step(state, problem)
    times = []
    for _ in range(repeats):
        with Timer(device) as timer:
            solver.step(state, problem)
        times.append(timer.seconds)
    with PeakMemory(device) as meter:
        solver.step(state, problem)
    with PeakMemory(device) as gradient_meter:
        estimate_gradient(model, x, y, forward=forward, generator=state.directions)
    gradient_bytes = _bytes(p.grad for p in model.parameters())
    with PeakMemory(device) as update_meter:
        optimizer.step()
    model.zero_grad(set_to_none=True)
    breakdown = {
        "weights_bytes": _bytes(model.parameters()), "batch_bytes": _bytes([x, y]),
        "direction_bytes": _bytes(t for s in optimizer.state.values() for t in s.values()),
        "lmo_buffer_bytes": _bytes([optimizer._buffer]), "gradient_bytes": gradient_bytes,
        "tape_bytes": gradient_meter.bytes - gradient_bytes, "update_bytes": update_meter.bytes,
    }
    resident = sum(breakdown[k] for k in ("weights_bytes", "batch_bytes", "direction_bytes", "lmo_buffer_bytes"))
    return {"method": method, "width": width, "depth": depth, "batch": batch,
            "seconds": statistics.median(times), "peak_bytes": meter.bytes, "total_bytes": meter.bytes + resident,
            "gradient_peak_bytes": gradient_meter.bytes, **breakdown}


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


BREAKDOWN = ("weights_bytes", "batch_bytes", "direction_bytes", "lmo_buffer_bytes", "gradient_bytes", "tape_bytes",
             "update_bytes")


def memory_breakdown(sweep: pd.DataFrame, depth: int, batch: int) -> pd.DataFrame:
    """MiB by tensor kind (rows) for each method (columns) at one (depth, batch), with the step's peak."""
    rows = sweep[(sweep["depth"] == depth) & (sweep["batch"] == batch)].set_index("method")
    table = rows[list(BREAKDOWN) + ["peak_bytes", "total_bytes"]].T / 2**20
    return table.rename(index=lambda name: name.removesuffix("_bytes"))


def memory_claims(ratios: pd.DataFrame, width: int) -> dict[str, Measurement]:
    """A3's claims at the deepest network: whole-step ratios at the largest batch and at the smallest."""
    depth = int(ratios["depth"].max())
    at_depth = ratios[ratios["depth"] == depth].set_index("batch")
    largest, smallest = int(at_depth.index.max()), int(at_depth.index.min())
    setting = {"depth": depth, "width": width}
    return {
        "A3.1": Measurement(float(at_depth.loc[largest, "total_ratio"]), {**setting, "batch": largest}),
        "A3.2": Measurement(float(at_depth.loc[largest, "peak_ratio"]), {**setting, "batch": largest}),
        "A3.3": Measurement(float(at_depth.loc[smallest, "peak_ratio"]), {**setting, "batch": smallest}),
    }
