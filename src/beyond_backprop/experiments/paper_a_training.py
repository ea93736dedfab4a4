"""Paper A, experiments E2 and E3: constrained MLP training with Frank-Wolfe, and its memory and time.

Methods (spec section 3.2): ``backprop-fw`` (mini-batch backprop gradient, averaged as in SFW with
momentum), ``pfg`` (plain PFG-FW) and ``averaged-pfg`` (averaged PFG-FW). Every parameter tensor is
constrained (biases too) by a set whose diameter comes from its initial scale.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..autodiff.forward_gradient import (
    layerwise_directional_derivatives,
    redrawn_folds,
    tangent_piece_entries,
)
from ..data import ImageData
from ..optim.solver import run_history
from ..optim.stochastic import MinibatchMLP, MinibatchState
from ..problem import Problem, Split
from ..results import Measurement
from ..runtime import PeakMemory, Timer

TRAINING_METHODS = ("backprop-fw", "pfg", "averaged-pfg")
LABELS = {"backprop-fw": "FW, backprop gradient", "pfg": "PFG-FW (plain)", "averaged-pfg": "averaged PFG-FW"}
METHOD_OPTIONS = {"backprop-fw": {"gradient": "backprop", "averaging": True},
                  "pfg": {"gradient": "forward", "averaging": False},
                  "averaged-pfg": {"gradient": "forward", "averaging": True}}


def fw_solver(method: str, widths: list[int], *, batch: int, schedule: str, learning_rate: float = 1.0,
              gap_samples: int = 0, directions: int = 1) -> MinibatchMLP:
    """One of :data:`TRAINING_METHODS` as a contract solver: the K-sparse polytope (w = 10, K = 5%) on every
    tensor, biases included, around torch's default initialisation; ``directions`` per forward-gradient step."""
    if method not in TRAINING_METHODS:
        raise ValueError(f"invalid method {method!r}; expected one of {', '.join(TRAINING_METHODS)}")
    return MinibatchMLP(widths, update="frank-wolfe", lr=learning_rate, batch=batch, schedule=schedule,
                        init="torch-default", gap_samples=gap_samples, directions=directions,
                        **METHOD_OPTIONS[method])


def density(model: nn.Module, threshold: float = 1e-8) -> float:
    """Fraction of parameters with |theta| > threshold."""
    total = sum(p.numel() for p in model.parameters())
    return sum(int((p.abs() > threshold).sum()) for p in model.parameters()) / total


def train(images: ImageData, method: str, *, widths: list[int], iterations: int, batch: int, schedule: str,
          gap_samples: int, gap_every: int, seed: int, device: torch.device, learning_rate: float = 1.0,
          directions: int = 1) -> tuple[pd.DataFrame, dict]:
    """Train one method through :func:`~beyond_backprop.optim.solver.run_history`, a history row every
    ``gap_every`` steps (with ``min_fw_gap``, the best FW gap so far); a summary with the final test
    accuracy, training loss and density."""
    solver = fw_solver(method, widths, batch=batch, schedule=schedule, learning_rate=learning_rate,
                       gap_samples=gap_samples, directions=directions)
    problem = images.to(device).problem(widths[-1])
    state = solver.init(problem, torch.Generator().manual_seed(seed))
    state, history = run_history(solver, state, problem, iterations, evaluate_every=gap_every, progress=False)
    history["min_fw_gap"] = history["fw_gap"].cummin()
    summary = {"method": method, "test_accuracy": float(history["test_accuracy"].iloc[-1]),
               "train_loss": float(history["train_loss"].iloc[-1]), "density": density(state.model),
               "parameters": sum(p.numel() for p in state.model.parameters())}
    return history.assign(method=method), summary


STEP_RULES = {"sfw": "SFW step (lr / diameter, momentum 0.9)", "theory": "theory step (1/(k+1), rho (k+1)^-2/3)"}
SCHEDULE_OF_RULE = {"sfw": "sfw", "theory": "nonconvex"}


def training_runs(direction_counts: tuple[int, ...]) -> list[tuple[str, str, int]]:
    """(method, step rule, directions) of A2: backprop FW and averaged PF-FW under both rules, averaged PF-FW
    with every direction count, and plain PF-FW with the theory rule and one direction (A2.1's contrast)."""
    return ([("backprop-fw", rule, 1) for rule in STEP_RULES]
            + [("averaged-pfg", rule, m) for rule in STEP_RULES for m in direction_counts]
            + [("pfg", "theory", 1)])


def compare_training(datasets: dict[str, ImageData], *, hidden: int, iterations: int, batch: int,
                     learning_rate: float, gap_samples: int, gap_every: int, seed: int, device: torch.device,
                     direction_counts: tuple[int, ...] = (1, 4, 16)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """E2 on every data set, every run of :func:`training_runs`. Returns the stacked histories and summaries,
    with ``dataset``, ``step_rule`` and ``directions``."""
    histories, summaries = [], []
    for label, images in datasets.items():
        for method, rule, m in training_runs(tuple(direction_counts)):
            history, summary = train(
                images, method, widths=[784, hidden, hidden, 10], iterations=iterations, batch=batch,
                schedule=SCHEDULE_OF_RULE[rule], learning_rate=learning_rate, gap_samples=gap_samples,
                gap_every=gap_every, seed=seed, device=device, directions=m)
            histories.append(history.assign(dataset=label, step_rule=rule, directions=m))
            summaries.append({**summary, "dataset": label, "step_rule": rule, "directions": m})
    return pd.concat(histories, ignore_index=True), pd.DataFrame(summaries)


def log_decay_share(history: pd.DataFrame, column: str = "fw_gap") -> tuple[float, float]:
    """(share, its standard error): how much of the fall that a decay to 0 like ``c / log(k + 1)`` predicts the run
    makes, read on robust levels.

    The level of a stretch is the median of ``column`` over it: the second quarter of the run (k in (K/4, K/2])
    and the last quarter (k in (3K/4, K]). ``c / log(k + 1)`` falls between their median iterations k_2 and k_4
    by ``1 - log(k_2 + 1) / log(k_4 + 1)``; the share is the observed relative fall over that prediction: 1 for such
    a decay, more for a faster one, about 0 for a plateau, and a single drop moves neither median much. The
    standard error comes from the record-to-record scatter of ``log(column)`` over the last three quarters
    (1.4826 x the median absolute change / sqrt 2 per record; 1.2533 sigma / sqrt n for a median of n).
    NaN with fewer than 3 records in either quarter.
    """
    k = history.sort_values("iteration")["iteration"]
    values = history.sort_values("iteration")[column]
    last = k.max()
    second, fourth = values[(k > last / 4) & (k <= last / 2)], values[k > 3 * last / 4]
    if min(len(second), len(fourth)) < 3:
        return float("nan"), float("nan")
    k_2, k_4 = k[(k > last / 4) & (k <= last / 2)].median(), k[k > 3 * last / 4].median()
    predicted = 1 - math.log(k_2 + 1) / math.log(k_4 + 1)
    ratio = fourth.median() / second.median()
    sigma = 1.4826 * float(np.log(values[k > last / 4]).diff().abs().median()) / math.sqrt(2)
    spread = ratio * 1.2533 * sigma * math.sqrt(1 / len(second) + 1 / len(fourth))
    return (1 - ratio) / predicted, spread / predicted


MAX_CONTRAST_ERROR = 0.25  # A2.1/A2.2 are judged only when noise could not reach the rule's 0.5 by itself


def run_of(frame: pd.DataFrame, dataset: str, method: str, rule: str, directions: int = 1) -> pd.DataFrame:
    """The rows of one run (history or summary) of :func:`compare_training`."""
    return frame[(frame["dataset"] == dataset) & (frame["method"] == method) & (frame["step_rule"] == rule)
                 & (frame["directions"] == directions)]


def gap_contrast(history: pd.DataFrame, dataset: str) -> tuple[float, str]:
    """A2.1/A2.2's measure and the reason it is not testable (or ""): :func:`log_decay_share` of averaged PF-FW
    minus that of plain PF-FW, both with the theory step and one direction (the spec's criterion: the averaged
    gap heads to 0, the plain one plateaus). Not testable when the records are too few or too noisy for the
    difference (standard error above :data:`MAX_CONTRAST_ERROR`)."""
    averaged, averaged_error = log_decay_share(run_of(history, dataset, "averaged-pfg", "theory"))
    plain, plain_error = log_decay_share(run_of(history, dataset, "pfg", "theory"))
    value, error = averaged - plain, math.hypot(averaged_error, plain_error)
    if not math.isfinite(value):
        return float("nan"), "a run records fewer than 3 FW gaps in its second or last quarter: no levels to compare"
    if error > MAX_CONTRAST_ERROR:
        return value, (f"the FW gap's record-to-record noise gives the measure a standard error of {error:.2f} "
                       f"(above {MAX_CONTRAST_ERROR}): record it more often or run longer")
    return value, ""


def best_run(summary: pd.DataFrame, dataset: str, method: str) -> pd.Series | None:
    """The run of ``method`` on ``dataset`` with the lowest final training loss (chosen on training data, never on
    test accuracy); runs whose loss is not finite are never chosen. None when no run qualifies."""
    runs = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
    runs = runs[runs["train_loss"].map(math.isfinite)]
    return None if runs.empty else runs.loc[runs["train_loss"].idxmin()]


def run_name(run: pd.Series) -> str:
    """``theory step, m 16``: the step rule and directions of a summary row."""
    return f"{run['step_rule']} step, m {int(run['directions'])}"


def accuracy_behind(summary: pd.DataFrame, dataset: str,
                    reference_floor: float = 0.5) -> tuple[float | None, str, dict[str, str]]:
    """(backprop FW's test accuracy minus averaged PF-FW's, each at its :func:`best_run`; reason it says nothing
    or ""; the runs read).

    The comparison is only informative when the backprop reference learns: below ``reference_floor``
    test accuracy both are near chance and the difference is not a measurement of the claim.
    """
    reference, averaged = best_run(summary, dataset, "backprop-fw"), best_run(summary, dataset, "averaged-pfg")
    if reference is None or averaged is None:
        return None, "a method has no run with a finite training loss", {}
    runs = {"backprop_fw_run": run_name(reference), "averaged_pf_fw_run": run_name(averaged)}
    if reference["test_accuracy"] < reference_floor:
        return None, (f"the backprop FW reference reached only {reference['test_accuracy']:.2f} test accuracy "
                      f"(needs {reference_floor:.2f} for the comparison to say anything)"), runs
    return float(reference["test_accuracy"] - averaged["test_accuracy"]), "", runs


def claim_measurements(history: pd.DataFrame, summary: pd.DataFrame, *, iterations: int, batch: int,
                       train_sizes: dict[str, int]) -> dict[str, Measurement]:
    """A2's claims per data set, in the order of ``train_sizes`` (Fashion-MNIST, then the MNIST subset):
    :func:`gap_contrast` (A2.1, A2.2) and :func:`accuracy_behind` at an equal number of steps (A2.3, A2.4)."""
    measured = {}
    for n, (label, train_size) in enumerate(train_sizes.items()):
        contrast, why = gap_contrast(history, label)
        measured[f"A2.{1 + n}"] = Measurement(contrast, {"iterations": iterations, "dataset": label}, not_testable=why)
        behind, why, runs = accuracy_behind(summary, label)
        epochs = round(iterations * batch / train_size, 1)
        measured[f"A2.{3 + n}"] = Measurement(behind, {"epochs": epochs, "iterations": iterations, "dataset": label,
                                                       **runs}, not_testable=why)
    return dict(sorted(measured.items()))


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def step_phases(solver: MinibatchMLP, state: MinibatchState, x: torch.Tensor, y: torch.Tensor,
                device: torch.device) -> dict[str, int]:
    """Bytes of one step's two phases, measured apart: the gradient phase (``activation_bytes``: backprop's tape,
    the peak of its forward pass with the graph alive, or the forward-mode pass's primal and tangent buffers;
    ``gradient_bytes``: the estimate in ``.grad``, backprop only) and the FW update (``tangent_bytes``: the
    largest piece of redrawn tangents held at once, forward only; ``update_bytes``: the update's temporaries)."""
    model, optimizer = state.model, state.optimizer
    if solver.gradient == "backprop":
        model.zero_grad(set_to_none=True)
        with PeakMemory(device) as tape_meter:  # what the graph keeps for the backward pass stays alive at exit
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        del loss
        with PeakMemory(device) as update_meter:
            optimizer.step()
        gradient_bytes = _bytes(p.grad for p in model.parameters())
        model.zero_grad(set_to_none=True)
        return {"gradient_bytes": gradient_bytes, "activation_bytes": tape_meter.bytes,
                "tangent_bytes": 0, "update_bytes": update_meter.bytes}
    with PeakMemory(device) as gradient_meter:
        _, slopes = layerwise_directional_derivatives(model, nn.functional.cross_entropy, x, y,
                                                      generator=state.directions, directions=solver.directions)
    params = [group["params"][0] for group in optimizer.param_groups]
    with PeakMemory(device) as update_meter:
        optimizer.step_with(redrawn_folds(params, slopes, generator=state.directions))
    tangent_bytes = max(tangent_piece_entries(p, solver.directions, state.directions) * p.element_size()
                        for p in params)
    return {"gradient_bytes": 0, "activation_bytes": gradient_meter.bytes, "tangent_bytes": tangent_bytes,
            "update_bytes": max(0, update_meter.bytes - tangent_bytes)}


def step_cost(method: str, *, width: int, depth: int, batch: int, device: torch.device, repeats: int = 5,
              seed: int = 0) -> dict:
    """Peak memory, its breakdown, and median time of one training step (gradient estimate + FW update).

    Inputs are random: only cost is measured. The step is :meth:`MinibatchMLP.step_in_place`, the training
    step itself. ``peak_bytes`` is the whole step's peak above what was allocated before it
    (``runtime.PeakMemory``); ``total_bytes`` adds the resident tensors (weights, batch, optimiser state, an
    LMO buffer if any: the K-sparse sets' sparse LMO needs none), the figure comparable to a device-wide reading
    such as the paper's MiB per epoch; ``floor_bytes`` is what any FW step must hold (weights, optimiser state,
    batch). The breakdown: ``weights_bytes``, ``batch_bytes``, ``state_bytes`` (the averaged direction),
    ``lmo_buffer_bytes`` and :func:`step_phases`.
    """
    x = torch.rand(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    solver = fw_solver(method, [784] + [width] * depth + [10], batch=batch, schedule="nonconvex")
    problem = Problem(Split(x, y), classes=10)
    state = solver.init(problem, torch.Generator().manual_seed(seed))
    for _ in range(2):  # warm-up: the averaged direction (and an LMO buffer, if any) exist from here on
        state = solver.step_in_place(state, problem)
    times = []
    for _ in range(repeats):
        with Timer(device) as timer:
            state = solver.step_in_place(state, problem)
        times.append(timer.seconds)
    with PeakMemory(device) as meter:
        state = solver.step_in_place(state, problem)
    optimizer = state.optimizer
    breakdown = {
        "weights_bytes": _bytes(state.model.parameters()), "batch_bytes": _bytes([x, y]),
        "state_bytes": _bytes(t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)),
        "lmo_buffer_bytes": 0 if optimizer._buffer is None else _bytes([optimizer._buffer]),
        **step_phases(solver, state, x, y, device),
    }
    floor = breakdown["weights_bytes"] + breakdown["state_bytes"] + breakdown["batch_bytes"]
    return {"method": method, "width": width, "depth": depth, "batch": batch,
            "seconds": statistics.median(times), "peak_bytes": meter.bytes,
            "total_bytes": meter.bytes + floor + breakdown["lmo_buffer_bytes"], "floor_bytes": floor,
            "gradient_peak_bytes": breakdown["activation_bytes"] + breakdown["gradient_bytes"], **breakdown}


def cost_sweep(depths: list[int], batches: list[int], *, width: int, device: torch.device,
               repeats: int = 5) -> pd.DataFrame:
    """:func:`step_cost` of backprop FW and PFG-FW side by side for every (depth, batch)."""
    rows = []
    for depth in depths:
        for batch in batches:
            for method in ("backprop-fw", "averaged-pfg"):
                rows.append(step_cost(method, width=width, depth=depth, batch=batch, device=device, repeats=repeats))
    return pd.DataFrame(rows)


def cost_ratios(sweep: pd.DataFrame) -> pd.DataFrame:
    """PFG over backprop, per (depth, batch): gradient-phase peak, step peak, total memory, the floor (PFG's
    weights + state + batch over backprop's total), activation bytes and time."""
    wide = sweep.pivot_table(index=["depth", "batch"], columns="method",
                             values=["peak_bytes", "total_bytes", "gradient_peak_bytes", "seconds", "floor_bytes",
                                     "activation_bytes"])
    backprop = wide.xs("backprop-fw", axis=1, level="method")
    forward = wide.xs("averaged-pfg", axis=1, level="method")
    return pd.DataFrame({
        "gradient_ratio": forward["gradient_peak_bytes"] / backprop["gradient_peak_bytes"],
        "peak_ratio": forward["peak_bytes"] / backprop["peak_bytes"],
        "total_ratio": forward["total_bytes"] / backprop["total_bytes"],
        "floor_ratio": forward["floor_bytes"] / backprop["total_bytes"],
        "activation_ratio": forward["activation_bytes"] / backprop["activation_bytes"],
        "time_ratio": forward["seconds"] / backprop["seconds"],
    }).reset_index()


BREAKDOWN = ("weights_bytes", "state_bytes", "batch_bytes", "lmo_buffer_bytes", "gradient_bytes", "tangent_bytes",
             "activation_bytes", "update_bytes")


def memory_breakdown(sweep: pd.DataFrame, depth: int, batch: int) -> pd.DataFrame:
    """MiB by tensor kind (rows) for each method (columns) at one (depth, batch), with the step's peak, the total
    and the floor (weights + state + batch)."""
    rows = sweep[(sweep["depth"] == depth) & (sweep["batch"] == batch)].set_index("method")
    table = rows[list(BREAKDOWN) + ["peak_bytes", "total_bytes", "floor_bytes"]].T / 2**20
    return table.rename(index=lambda name: name.removesuffix("_bytes"))


def memory_claims(ratios: pd.DataFrame, width: int) -> dict[str, Measurement]:
    """A3's claims at the deepest network and the largest batch: whole-step, step-peak and activation ratios."""
    depth = int(ratios["depth"].max())
    at_depth = ratios[ratios["depth"] == depth].set_index("batch")
    largest = int(at_depth.index.max())
    setting = {"depth": depth, "width": width}
    return {
        "A3.1": Measurement(float(at_depth.loc[largest, "total_ratio"]), {**setting, "batch": largest}),
        "A3.2": Measurement(float(at_depth.loc[largest, "peak_ratio"]), {**setting, "batch": largest}),
        "A3.3": Measurement(float(at_depth.loc[largest, "activation_ratio"]), {**setting, "batch": largest}),
    }
