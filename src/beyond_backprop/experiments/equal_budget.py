"""X1: every training method on the same task, at the same wall-clock budget.

Tasks: **M**, an MLP ``784-width-width-10`` on Fashion-MNIST and the MNIST subset; **G**, node
classification on Cora and Citeseer, where the MLP methods train ``d-100-100-C`` on mDLAM's augmented
features (paper C) and dlADMM-GCN trains the two-layer GCN on the graph (paper D, journal).

Every method runs through :func:`~beyond_backprop.optim.solver.run_history` with a ``seconds`` budget:
only ``step`` is timed, the run stops at the first step that ends at or past the budget, and the
test accuracy is evaluated on a schedule that is not counted. The peak memory of one training step
is measured apart, as A3 measures it (:class:`~beyond_backprop.runtime.PeakMemory`; on a CPU the
profiler's allocation trace), together with the tensors the method keeps between steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import data, models
from ..claims import declared_for
from ..optim.admm_taylor import TaylorADMM
from ..optim.dladmm import DLADMM, PAPER
from ..optim.dladmm_gcn import DLADMMGCN
from ..optim.gradient import TorchOptimizer
from ..optim.mdlam import MDLAM
from ..optim.solver import Solver, run_history
from ..optim.stochastic import BATCH, MinibatchMLP
from ..problem import Problem
from ..results import Measurement
from ..runtime import PeakMemory
from . import paper_c, paper_d

# the fixed test accuracy whose first crossing is timed, per dataset (about what the slower
# methods of each paper reach early: KDD Figs 4-5 and mDLAM Table 4)
TARGETS = {"fashion-mnist": 0.7, "mnist-subset": 0.8, "cora": 0.6, "citeseer": 0.5}
GRAPH_WIDTH = 100  # mDLAM's MLP on the augmented features (paper C, §5.1)
GCN_HIDDEN = 128  # dlADMM-GCN's official code
# forward-gradient SGD has no published rate: a grid, the value chosen per dataset on training accuracy
FORWARD_SGD_RATES = (1e-4, 1e-3, 1e-2)
# mDLAM's paper has graphs only; on images its Cora value (the middle of Table 4's grid). A grid is no
# use here: at task M's quick budget an mDLAM run is a single epoch
MDLAM_IMAGE_RHO = 1e-3
TAYLOR_RHO = 1.0  # Taylor et al.'s ADMM as dlADMM's comparison runs it (D2)


@dataclass(frozen=True)
class Task:
    """One dataset of task M or G: the MLP problem, and for a graph the GCN's problem on the whole graph."""

    name: str
    kind: str
    mlp: Problem
    graph: Problem | None = None

    @property
    def label(self) -> str:
        sizes = f"{self.mlp.x.shape[0]:,} train / {next(iter(self.mlp.evaluate.values())).targets.shape[0]:,} test"
        return f"task {self.kind}, {self.name} ({sizes}, {self.mlp.x.shape[1]} features)"


def image_task(name: str, data_dir: str, device: torch.device, *, train_size: int = 0, test_size: int = 0) -> Task:
    """Task M on an image dataset, the first ``train_size``/``test_size`` images (0: all); raises DataMissing."""
    images = data.load_images(name, data_dir or None, train_limit=train_size or None,
                              test_limit=test_size or None).to(device)
    return Task(name, "M", images.problem(classes=10))


def graph_task(name: str, data_dir: str, device: torch.device) -> Task:
    """Task G on a Planetoid graph (public split): mDLAM's augmented features of the training and test
    nodes for the MLPs (paper C), every node's features and the normalised graph for the GCN (paper D)."""
    return Task(name, "G", paper_c.load_task(name, data_dir, device).problem,
                paper_d.gcn_problem(name, data_dir or None, device))


def load_tasks(image_names: Sequence[str], graph_names: Sequence[str], data_dir: str, device: torch.device, *,
               train_size: int = 0, test_size: int = 0) -> tuple[dict[str, Task], dict[str, str]]:
    """The tasks whose data load, and for each other dataset asked for, why it is not run."""
    tasks, skipped = {}, {}
    for name in image_names:
        try:
            tasks[name] = image_task(name, data_dir, device, train_size=train_size, test_size=test_size)
        except data.DataMissing:
            skipped[name] = f"{name} is not available offline (data.DataMissing)"
    for name in graph_names:
        try:
            tasks[name] = graph_task(name, data_dir, device)
        except data.DataMissing:
            skipped[name] = f"{name} is not available offline (data.DataMissing)"
    return tasks, skipped


@dataclass(frozen=True)
class Method:
    """A training method: its family, how to make its solver for a task with one tuned value (from
    ``grids[task.kind]``; None when the kind has no grid), and whether it trains the GCN on the graph."""

    name: str
    family: str
    make: Callable[[Task, Any], Solver]
    grids: Mapping[str, tuple] = field(default_factory=dict)
    on_graph: bool = False

    def problem(self, task: Task) -> Problem:
        return task.graph if self.on_graph else task.mlp

    def grid(self, task: Task) -> tuple:
        return tuple(self.grids.get(task.kind, ()))


def mlp_widths(task: Task, width: int) -> list[int]:
    """The MLP of the task: ``n_0-width-width-C`` (task M: width as given; task G: mDLAM's 100)."""
    return [task.mlp.x.shape[1], width, width, task.mlp.classes]


def gradient_methods(width: int, graph_width: int = GRAPH_WIDTH, batch: int = BATCH) -> list[Method]:
    """Adam and SGD (full batch: the ADMM papers' baselines, their learning rates), and paper A's three
    mini-batch methods (its batch 1024, SFW's step, K-sparse polytopes of 5% per tensor)."""

    def widths(task: Task) -> list[int]:
        return mlp_widths(task, width if task.kind == "M" else graph_width)

    def full_batch(name: str) -> Callable[[Task, Any], Solver]:
        def make(task: Task, _: Any) -> Solver:
            shape = widths(task)
            if task.kind == "M":  # KDD §5.1: GD on the summed loss
                lr, reduction = paper_d.BASELINES[name], "sum" if name == "gd" else "mean"
            else:  # mDLAM Table 3, mean loss
                lr, reduction = paper_c.LEARNING_RATES[name][task.name], "mean"
            return TorchOptimizer(lambda p: models.mlp(shape), name, lr=lr, reduction=reduction)
        return make

    def minibatch(gradient: str, update: str) -> Callable[[Task, Any], Solver]:
        return lambda task, lr: MinibatchMLP(widths(task), gradient=gradient, update=update, lr=lr, batch=batch)

    return [
        Method("Adam", "backprop", full_batch("adam")),
        Method("SGD", "backprop", full_batch("gd")),
        Method("FW, backprop gradient", "backprop", minibatch("backprop", "frank-wolfe")),
        Method("averaged PFG-FW", "forward gradient", minibatch("forward", "frank-wolfe")),
        Method("forward-gradient SGD", "forward gradient", minibatch("forward", "sgd"),
               grids={"M": FORWARD_SGD_RATES, "G": FORWARD_SGD_RATES}),
    ]


def admm_methods(width: int, graph_width: int = GRAPH_WIDTH, gcn_hidden: int = GCN_HIDDEN) -> list[Method]:
    """dlADMM (KDD's schedule; on graphs mDLAM's Table 3 also gives it rho = 1e-6), Taylor et al.'s ADMM
    (rho = 1, as D2), mDLAM (Table 3 on graphs, :data:`MDLAM_IMAGE_RHO` on images, eps0 = 100) and
    dlADMM-GCN (the official code's rho0 = 1e-3 raised every 50 epochs, mu per dataset, on the graph)."""

    def widths(task: Task) -> list[int]:
        return mlp_widths(task, width if task.kind == "M" else graph_width)

    def mdlam(task: Task, _: Any) -> Solver:
        rho = paper_c.RHO[task.name] if task.kind == "G" else MDLAM_IMAGE_RHO
        return MDLAM(widths(task), rho=rho, eps0=100.0, eps_min=paper_c.EPS_MIN)

    def gcn(task: Task, _: Any) -> Solver:
        shape = [task.graph.train.inputs.shape[1], gcn_hidden, task.graph.classes]
        return DLADMMGCN(shape, rho=1e-3, mu=paper_d.GCN_MU[task.name], rho_every=50)

    return [
        Method("dlADMM", "ADMM-type", lambda task, _: DLADMM(widths(task), PAPER)),
        Method("Taylor's ADMM", "ADMM-type", lambda task, _: TaylorADMM(widths(task), rho=TAYLOR_RHO)),
        Method("mDLAM", "ADMM-type", mdlam),
        Method("dlADMM-GCN", "ADMM-type", gcn, on_graph=True),
    ]


def tensor_bytes(value: Any, seen: set[int] | None = None) -> int:
    """Bytes of every distinct tensor storage reachable from ``value`` (dataclasses, modules, optimizers,
    containers): what a method keeps between steps."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        total = 0
        storage = value.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return total + (tensor_bytes(value.grad, seen) if value.grad is not None else 0)
    if isinstance(value, Mapping):
        return sum(tensor_bytes(k, seen) + tensor_bytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return sum(tensor_bytes(v, seen) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return sum(tensor_bytes(getattr(value, f.name), seen) for f in fields(value))
    if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
        return sum(tensor_bytes(v, seen) for v in vars(value).values())
    return 0


def step_cost(solver: Solver, state: Any, problem: Problem) -> tuple[Any, dict[str, float]]:
    """One more step of a run already under way (so every buffer exists, as A3 warms up first): its peak
    memory above what was allocated before it (A3's ``peak_bytes``), and ``state_bytes``, the tensors the
    method keeps between steps. Not part of any history."""
    with PeakMemory(problem.device) as meter:
        state = solver.step(state, problem)
    return state, {"peak_bytes": float(meter.bytes), "state_bytes": float(tensor_bytes(state))}


def train_once(solver: Solver, problem: Problem, *, seconds: float, seed: int, points: int,
               max_steps: int | None = None) -> tuple[Any, pd.DataFrame]:
    """One run of ``seconds`` of training steps (at most ``max_steps``) from seed ``seed``: the final
    state and the history.

    The first step is timed and evaluated alone; from its time the rest of the run is evaluated every
    ``evaluate_every`` steps, about ``points`` times in all, and after its last step. The run stops at
    the first step that ends at or past ``seconds`` in all (:func:`run_history`).
    """
    state = solver.init(problem, torch.Generator(device=problem.device).manual_seed(seed))
    state, history = run_history(solver, state, problem, 1)
    spent = float(history["seconds"].iloc[-1])
    if spent >= seconds or max_steps == 1:
        return state, history
    every = max(1, math.floor(seconds / (points * max(spent, 1e-9))))
    state, rest = run_history(solver, state, problem, None if max_steps is None else max_steps - 1,
                              seconds=seconds - spent, evaluate_every=every)
    return state, pd.concat([history, rest.assign(seconds=rest["seconds"] + spent)], ignore_index=True)


def choose(method: Method, task: Task, *, seconds: float, points: int, seed: int,
           max_steps: int | None = None) -> tuple[Any, pd.DataFrame]:
    """The grid value with the highest final TRAINING accuracy (never test) after one run of ``seconds``."""
    grid = method.grid(task)
    if not grid:
        return None, pd.DataFrame()
    finals = [train_once(method.make(task, value), method.problem(task), seconds=seconds, seed=seed, points=points,
                         max_steps=max_steps)[1].iloc[-1] for value in grid]
    table = pd.DataFrame({"value": grid, "train_accuracy": [float(r["train_accuracy"]) for r in finals]})
    best = int(np.argmax(table["train_accuracy"].to_numpy()))  # the first of equals: the smallest value
    return grid[best], table.assign(method=method.name, dataset=task.name, chosen=table.index == best)


@dataclass
class Comparison:
    """Every run of X1: histories (``dataset, method, seed`` plus the history's columns), costs per
    (dataset, method), grid choices, and the methods not run on a dataset with the reason."""

    histories: pd.DataFrame
    costs: pd.DataFrame
    choices: pd.DataFrame
    not_run: dict[tuple[str, str], str]
    budgets: dict[str, float]
    tasks: dict[str, str]
    capped: int | None


def compare(tasks: Mapping[str, Task], methods: Sequence[Method], *, budgets: Mapping[str, float], seeds: int,
            points: int = 8, max_steps: int | None = None, seed: int = 0,
            unavailable: Mapping[str, str] | None = None) -> Comparison:
    """Run every method on every task for ``budgets[task.kind]`` seconds of steps, ``seeds`` times.

    Evaluation happens about ``points`` times a run (:func:`train_once`) and is not counted; the memory
    of a step is measured once per method and task, one step after the first seed's run
    (:func:`step_cost`). ``max_steps`` caps the steps (smoke runs: deterministic, but then the budget
    is no longer equal time). Grid values are chosen per task on training accuracy
    from one run at half the budget with seed ``seed + 1000``.
    """
    if seeds < 1 or points < 1:
        raise ValueError(f"invalid seeds {seeds!r} or points {points!r}; expected >= 1")
    frames, costs, choices, not_run = [], [], [], {}
    for name, task in tasks.items():
        seconds = budgets[task.kind]
        for method in methods:
            if method.on_graph and task.graph is None:
                not_run[(name, method.name)] = f"{method.name} trains a GCN and needs a graph; {name} has none"
                continue
            if unavailable and method.name in unavailable:
                not_run[(name, method.name)] = unavailable[method.name]
                continue
            value, table = choose(method, task, seconds=seconds / 2, points=points, seed=seed + 1000,
                                  max_steps=max_steps)
            choices.append(table)
            for run in range(seeds):
                solver, problem = method.make(task, value), method.problem(task)
                state, history = train_once(solver, problem, seconds=seconds, seed=seed + run, points=points,
                                            max_steps=max_steps)
                frames.append(history.assign(dataset=name, task=task.kind, method=method.name, seed=seed + run))
                if run == 0:
                    costs.append({"dataset": name, "task": task.kind, "method": method.name,
                                  "family": method.family, **step_cost(solver, state, problem)[1]})
    leading = ["dataset", "task", "method", "seed"]
    histories = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=leading)
    histories = histories[leading + [c for c in histories.columns if c not in leading]]
    return Comparison(histories, pd.DataFrame(costs), pd.concat(choices, ignore_index=True) if choices else
                      pd.DataFrame(), not_run, dict(budgets),
                      {name: task.kind for name, task in tasks.items()}, max_steps)


def seconds_to_target(history: pd.DataFrame, target: float, column: str = "test_accuracy") -> float:
    """Training seconds at the first evaluation at or above ``target`` (NaN: never reached).

    The time is that of the evaluation, an upper bound on the crossing by at most ``evaluate_every`` steps.
    """
    reached = history[history[column] >= target]
    return float(reached["seconds"].iloc[0]) if len(reached) else float("nan")


def finals(histories: pd.DataFrame, targets: Mapping[str, float] = TARGETS) -> pd.DataFrame:
    """One row per run: steps, training seconds, final train and test accuracy, seconds to the target."""
    rows = []
    for (dataset, method, seed), run in histories.groupby(["dataset", "method", "seed"], sort=False):
        run = run.sort_values("iteration")
        last = run.iloc[-1]
        rows.append({"dataset": dataset, "method": method, "seed": seed, "steps": int(last["iteration"]),
                     "seconds": float(last["seconds"]), "train_accuracy": float(last["train_accuracy"]),
                     "test_accuracy": float(last["test_accuracy"]), "target": targets[dataset],
                     "seconds_to_target": seconds_to_target(run, targets[dataset])})
    return pd.DataFrame(rows)


def seed_ranks(final: pd.DataFrame) -> pd.DataFrame:
    """Each run's rank by final test accuracy among the methods of its dataset and seed (1 = best; equals share)."""
    ranks = final.groupby(["dataset", "seed"])["test_accuracy"].rank(ascending=False, method="min")
    return final.assign(rank=ranks.astype(int))


def rank_text(ranks: pd.Series) -> str:
    """``2`` when every seed ranks the method the same, else ``2-4 (tie)``: a rank that changes is no win."""
    low, high = int(ranks.min()), int(ranks.max())
    return f"{low}" if low == high else f"{low}-{high} (tie)"


def leaderboard(final: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method: final test accuracy (mean, std over seeds), final train accuracy, median
    steps and training seconds spent (the budget, overrun by less than one step), median seconds to the
    target (an unreached seed counts as never), peak step memory and kept state, rank."""
    ranked = seed_ranks(final)
    rows = []
    for (dataset, method), runs in ranked.groupby(["dataset", "method"], sort=False):
        times = runs["seconds_to_target"].fillna(math.inf)
        cost = costs[(costs["dataset"] == dataset) & (costs["method"] == method)].iloc[0]
        rows.append({"dataset": dataset, "method": method, "test_accuracy": runs["test_accuracy"].mean(),
                     "spread": runs["test_accuracy"].std(ddof=0), "train_accuracy": runs["train_accuracy"].mean(),
                     "steps": int(runs["steps"].median()), "seconds": float(runs["seconds"].median()),
                     "target": float(runs["target"].iloc[0]),
                     "seconds_to_target": float(times.median()),
                     "reached": f"{int(np.isfinite(times).sum())}/{len(times)}",
                     "peak_mib": cost["peak_bytes"] / 2**20, "state_mib": cost["state_bytes"] / 2**20,
                     "rank": rank_text(runs["rank"])})
    table = pd.DataFrame(rows)
    order = {name: n for n, name in enumerate(dict.fromkeys(final["dataset"]))}
    table = table.assign(_order=table["dataset"].map(order))
    return table.sort_values(["_order", "test_accuracy"], ascending=[True, False]).drop(columns="_order") \
        .reset_index(drop=True)


def leaderboard_markdown(table: pd.DataFrame, budgets: Mapping[str, float], seeds: int) -> str:
    """The leaderboard as Markdown, one table per dataset (for the notebook's folder and REPORT.md)."""
    lines = [f"Equal wall-clock budget per method: {', '.join(f'task {k} {v:g} s' for k, v in budgets.items())} "
             f"of training steps; {seeds} seed(s); mean ± std over seeds. A run stops at the first step that ends "
             "past the budget: a method whose single step outlasts it spends more (seconds spent). Seconds to "
             "target: median over seeds, read at the evaluations (inf: not reached). A rank that changes between "
             "seeds is a tie."]
    for dataset, part in table.groupby("dataset", sort=False):
        lines += ["", f"**{dataset}** (target test accuracy {part['target'].iloc[0]:.2f})", "",
                  "| rank | method | test accuracy | train accuracy | steps | seconds spent | seconds to target | "
                  "reached | step peak MiB | state MiB |", "|---|---|---|---|---|---|---|---|---|---|"]
        for row in part.itertuples():
            lines.append(f"| {row.rank} | {row.method} | {row.test_accuracy:.3f} ± {row.spread:.3f} | "
                         f"{row.train_accuracy:.3f} | {row.steps} | {row.seconds:.3g} | {row.seconds_to_target:.3g} | "
                         f"{row.reached} | "
                         f"{row.peak_mib:.3g} | {row.state_mib:.3g} |")
    return "\n".join(lines) + "\n"


def save_leaderboard(table: pd.DataFrame, out: Path, budgets: Mapping[str, float], seeds: int) -> None:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` (REPORT.md embeds the latter)."""
    table.to_csv(Path(out) / "leaderboard.csv", index=False)
    (Path(out) / "leaderboard.md").write_text(leaderboard_markdown(table, budgets, seeds))


# --- claims -------------------------------------------------------------------------------------------


def mean_difference(final: pd.DataFrame, dataset: str, method: str, other: str) -> float:
    """Mean over seeds of ``method``'s final test accuracy minus ``other``'s."""
    wide = final[final["dataset"] == dataset].pivot(index="seed", columns="method", values="test_accuracy")
    return float((wide[method] - wide[other]).mean())


def worst_seed_margin(final: pd.DataFrame, dataset: str, method: str, rivals: Sequence[str]) -> float:
    """The smallest, over seeds, of ``method``'s final test accuracy minus the best rival's: > 0 only
    when it wins in every seed."""
    wide = final[final["dataset"] == dataset].pivot(index="seed", columns="method", values="test_accuracy")
    return float((wide[method] - wide[list(rivals)].max(axis=1)).min())


def time_ratio(final: pd.DataFrame, dataset: str, fast: Sequence[str], slow: str, budget: float) -> float:
    """The largest, over seeds, of (fastest of ``fast`` to the target) / (``slow`` to the target).

    A method that does not reach the target is censored at the budget: a seed where only one side
    reaches it gives a bound (below 1 when ``fast`` reached it, above 1 when only ``slow`` did), and a
    seed where neither does is a tie (1), never a win. NaN when no seed reaches the target at all.
    """
    part = final[final["dataset"] == dataset]
    wide = part.pivot(index="seed", columns="method", values="seconds_to_target")
    quick, slower = wide[list(fast)].min(axis=1).fillna(math.inf), wide[slow].fillna(math.inf)
    if not (np.isfinite(quick) | np.isfinite(slower)).any():
        return float("nan")
    return float(max(min(q, budget) / min(s, budget) for q, s in zip(quick, slower)))


MIN_STEPS = 5  # a comparison in which a method took fewer of its own steps says nothing about the method


def too_few_steps(final: pd.DataFrame, dataset: str, methods: Sequence[str]) -> str:
    """Why a comparison of ``methods`` is not testable at this budget (some seed of one of them took
    fewer than :data:`MIN_STEPS` steps), or ``""``."""
    part = final[(final["dataset"] == dataset) & final["method"].isin(list(methods))]
    fewest = part.groupby("method")["steps"].min()
    short = fewest[fewest < MIN_STEPS]
    if short.empty:
        return ""
    listed = ", ".join(f"{method} {int(steps)}" for method, steps in short.items())
    return (f"at this budget some methods take fewer than {MIN_STEPS} of their own steps (fewest in a seed: "
            f"{listed}); a larger budget (--profile full) is needed")


# method names the claims compare (as the notebook's methods are named)
ADMM_TYPE = ("dlADMM", "Taylor's ADMM", "mDLAM")
GRAPH_RIVALS = ("dlADMM", "Adam", "SGD")  # mDLAM's baselines among X1's methods
FORWARD_GRADIENT = ("averaged PFG-FW", "forward-gradient SGD")
BACKPROP_FW = "FW, backprop gradient"


def _competitive(c: Comparison, final: pd.DataFrame, dataset: str) -> float:
    return mean_difference(final, dataset, "dlADMM", "Adam")


def _beats(c: Comparison, final: pd.DataFrame, dataset: str) -> float:
    return worst_seed_margin(final, dataset, "mDLAM", GRAPH_RIVALS)


def _memory(c: Comparison, final: pd.DataFrame, dataset: str) -> float:
    peaks = c.costs[c.costs["dataset"] == dataset].set_index("method")["peak_bytes"]
    return float(peaks[list(FORWARD_GRADIENT)].max() / peaks[BACKPROP_FW])


def _faster(c: Comparison, final: pd.DataFrame, dataset: str) -> float:
    admm = [m for m in ADMM_TYPE if m in set(final[final["dataset"] == dataset]["method"])]
    return time_ratio(final, dataset, admm, "SGD", c.budgets[c.tasks[dataset]])


# claim -> (what it measures, the methods it needs: all of them, or at least one of those in ``any``)
CLAIM_MEASURES: dict[str, tuple[Callable[[Comparison, pd.DataFrame, str], float], tuple[str, ...], tuple[str, ...]]] = {
    "X1.1": (_competitive, ("dlADMM", "Adam"), ()),
    "X1.2": (_beats, ("mDLAM", *GRAPH_RIVALS), ()),
    "X1.3": (_beats, ("mDLAM", *GRAPH_RIVALS), ()),
    "X1.4": (_memory, (BACKPROP_FW, *FORWARD_GRADIENT), ()),
    "X1.5": (_faster, ("SGD",), ADMM_TYPE),
    "X1.6": (_faster, ("SGD",), ADMM_TYPE),
}


def x1_claims(comparison: Comparison, final: pd.DataFrame, skipped: Mapping[str, str], *,
              batch: int) -> dict[str, Measurement]:
    """X1's measurements (declared in :mod:`beyond_backprop.claims.cross_method`), each with its dataset
    and budget; a dataset or method not run, or a step-capped run, makes a claim not testable, with why."""
    out = {}
    for declared in declared_for("X1"):
        measure, needs, any_of = CLAIM_MEASURES[declared.id]
        dataset = declared.scale["dataset"]
        ran = set(final[final["dataset"] == dataset]["method"])
        if declared.id == "X1.4":
            at: dict[str, Any] = {"dataset": dataset, "batch": batch}
        else:
            at = {"dataset": dataset, "seconds": comparison.budgets.get(comparison.tasks.get(dataset, ""), 0.0),
                  "seeds": int(final[final["dataset"] == dataset]["seed"].nunique())}
            if declared.id in ("X1.5", "X1.6"):
                at["target"] = TARGETS[dataset]
        why = ""
        if not ran:
            why = skipped.get(dataset, f"{dataset} is not run in this profile")
        elif not set(needs) <= ran or (any_of and not set(any_of) & ran):
            absent = [m for m in (*needs, *any_of) if m not in ran]
            why = "; ".join(comparison.not_run.get((dataset, m), f"{m} was not run") for m in absent)
        elif comparison.capped and declared.id != "X1.4":
            why = f"steps were capped at {comparison.capped} (smoke): not an equal wall-clock budget"
        elif declared.id != "X1.4":
            why = too_few_steps(final, dataset, [m for m in (*needs, *any_of) if m in ran])
        if why:
            out[declared.id] = Measurement(None, at, why)
            continue
        value = measure(comparison, final, dataset)
        out[declared.id] = Measurement(value, at, "" if math.isfinite(value) else
                                       f"neither side reached test accuracy {TARGETS[dataset]} within the budget "
                                       "in any seed")
    return out
