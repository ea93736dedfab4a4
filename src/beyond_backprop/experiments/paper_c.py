"""Paper C (mDLAM, Wang, Li, Zhao 2022): node classification with an MLP on graph-augmented features.

Every experiment trains ``d → width → width → C`` on ``[P⁴H, …, H]`` of the Planetoid public split,
training nodes only in the loss, and evaluates on the 1000 test nodes (spec §3.1). Every method runs
through the solver contract (:func:`~beyond_backprop.optim.solver.run_history`); mDLAM runs the paper's
algorithm (:data:`~beyond_backprop.optim.mdlam.PAPER`: Nesterov extrapolation with the monotone safeguard)
unless told otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import data, method_names as names, models
from ..claims import declared_for
from ..claims.paper_c import DATASETS, EPS_FLOOR_EPOCH, TABLE4, TABLE5, TABLE_EPOCHS  # noqa: F401
from ..data.graph_features import augmented_features
from ..fits import loglog_slope
from ..optim.dladmm import DLADMM
from ..optim.gradient import TorchOptimizer
from ..optim.mdlam import MDLAM, OFFICIAL, PAPER, MDLAMOptions
from ..optim.solver import run_history
from ..problem import Problem, Split
from ..results import Measurement
from ..runtime import Timer
from .histories import final_accuracy

# Table 3 of the paper: mDLAM's rho and the baselines' learning rates, per dataset
RHO = {"cora": 1e-3, "pubmed": 1e-2, "citeseer": 5e-3, "coauthor-cs": 1e-4}
LEARNING_RATES = {
    "gd": {"cora": 0.01, "pubmed": 0.01, "citeseer": 0.01, "coauthor-cs": 5e-3},
    "adadelta": {"cora": 0.01, "pubmed": 0.1, "citeseer": 0.01, "coauthor-cs": 0.05},
    "adagrad": {"cora": 5e-3, "pubmed": 5e-3, "citeseer": 0.01, "coauthor-cs": 5e-3},
    "adam": {"cora": 1e-3, "pubmed": 5e-4, "citeseer": 1e-3, "coauthor-cs": 1e-3},
}
DLADMM_RHO = 1e-6  # Table 3, every dataset
EPS_MIN = 1e-3


@dataclass(frozen=True)
class NodeTask:
    """One graph's problem: augmented features and labels of the training nodes, and the ``test`` split."""

    name: str
    problem: Problem

    def widths(self, width: int) -> list[int]:
        """The paper's MLP ``d → width → width → C`` on this task."""
        return [self.problem.x.shape[1], width, width, self.problem.classes]

    def without_test(self) -> NodeTask:
        """The same training problem with no split to evaluate (no test pass per evaluation)."""
        return replace(self, problem=Problem(self.problem.train, classes=self.problem.classes))


def load_task(name: str, data_dir: str, device: torch.device, hops: int = 4) -> NodeTask:
    """Load a Planetoid graph and build its augmented features; raises :class:`data.DataMissing`."""
    graph = data.load_planetoid(name, data_dir or None)

    def split(index: torch.Tensor) -> Split:
        features = augmented_features(graph.features, graph.adjacency, index, hops=hops).to(device)
        return Split(features, graph.labels[index].to(device))

    return NodeTask(name, Problem(split(graph.idx_train), {"test": split(graph.idx_test)}, classes=graph.num_classes))


def load_tasks(names: list[str], data_dir: str, device: torch.device) -> tuple[dict[str, NodeTask], dict[str, str]]:
    """The requested tasks that load, and for every other dataset of the paper the reason it is not run."""
    tasks, skipped = {}, {}
    for name in DATASETS:
        if name not in names:
            skipped[name] = f"{name} is not run in this profile"
            continue
        try:
            tasks[name] = load_task(name, data_dir, device)
        except data.DataMissing:
            skipped[name] = f"{name} is not available offline (data.DataMissing)"
    return tasks, skipped


def describe_tasks(tasks: dict[str, NodeTask], skipped: dict[str, str]) -> None:
    """Print one line per skipped dataset (why) and per loaded task (its size)."""
    for reason in skipped.values():
        print(f"skipped: {reason}")
    for name, task in tasks.items():
        problem = task.problem
        print(f"{name}: {problem.x.shape[0]} train / {problem.evaluate['test'].inputs.shape[0]} test nodes, "
              f"d = {problem.x.shape[1]}, {problem.classes} classes")


def run_on_tasks(experiment: Callable[..., pd.DataFrame], tasks: dict[str, NodeTask], out: Path,
                 columns: list[str] | None = None, **options: Any) -> pd.DataFrame:
    """``experiment(task, **options)`` on every task as one frame; its ``columns`` (all: None) saved as
    ``out/metrics.csv``."""
    runs = pd.concat([experiment(task, **options) for task in tasks.values()], ignore_index=True)
    runs[columns or list(runs.columns)].to_csv(Path(out) / "metrics.csv", index=False)
    return runs


def unmeasured(notebook_id: str, skipped: dict[str, str]) -> dict[str, Measurement]:
    """Each declared claim of ``notebook_id`` on a dataset that was not run, not testable with the reason."""
    return {d.id: Measurement(None, not_testable=skipped[d.scale["dataset"]]) for d in declared_for(notebook_id)
            if d.scale.get("dataset") in skipped}


def mdlam_solver(task: NodeTask, *, width: int = 100, rho: float | None = None, eps0: float = 100.0,
                 options: MDLAMOptions = PAPER) -> MDLAM:
    """mDLAM on ``task`` at the paper's settings (rho defaults to Table 3, eps floor 1e-3)."""
    return MDLAM(task.widths(width), options=options, rho=RHO[task.name] if rho is None else rho, eps0=eps0,
                 eps_min=EPS_MIN)


def run_mdlam(task: NodeTask, *, iterations: int, rho: float | None = None, eps0: float = 100.0, width: int = 100,
              options: MDLAMOptions = PAPER, evaluate_every: int = 1, seed: int = 0) -> pd.DataFrame:
    """One mDLAM run: :func:`~beyond_backprop.optim.solver.run_history`'s rows after every ``evaluate_every``-th
    epoch and the last. Evaluating the 1000 test nodes costs as much as half an epoch on Citeseer: a run that
    needs no accuracy passes :meth:`NodeTask.without_test`."""
    solver = mdlam_solver(task, width=width, rho=rho, eps0=eps0, options=options)
    state = solver.init(task.problem, torch.Generator().manual_seed(seed))
    return run_history(solver, state, task.problem, iterations, evaluate_every=evaluate_every)[1]


ACCELERATED, PLAIN, CODE = "mDLAM (accelerated, safeguarded)", "DLAM without acceleration", "official code"
VARIANTS = {ACCELERATED: PAPER, PLAIN: replace(PAPER, accelerate=False), CODE: OFFICIAL}


def convergence(task: NodeTask, *, iterations: int, seed: int = 0) -> pd.DataFrame:
    """C1: the penalised objective after every epoch of each variant in :data:`VARIANTS` at the Table-3 rho
    (no test pass)."""
    train_only = task.without_test()
    frames = [run_mdlam(train_only, iterations=iterations, options=options, seed=seed)
              .assign(variant=variant, dataset=task.name) for variant, options in VARIANTS.items()]
    return pd.concat(frames, ignore_index=True)


def largest_rise(objective: pd.Series) -> float:
    """Largest relative rise of F above its lowest earlier value, ``max_k F_k / min_{j<k} F_j - 1``; 0 if F
    never rises. A climb over several epochs counts in full. NaN for fewer than two entries."""
    values = objective.to_numpy(dtype=float)
    if len(values) < 2:
        return math.nan
    lowest_before = np.minimum.accumulate(values)[:-1]
    return float(max((values[1:] / lowest_before).max() - 1.0, 0.0))


def at_eps_floor(history: pd.DataFrame) -> pd.Series:
    """The objective after each epoch whose step used eps at its floor (epoch 18 on for eps0 = 100).

    The first of these is the base: rises are counted from the second floor epoch, where the previous
    iterate lies in the same band (Lemma 2's setting).
    """
    return history.loc[history["eps"] <= EPS_MIN, "penalty_objective"]


def objective_fraction(history: pd.DataFrame) -> float:
    """Objective after the last epoch over that after the first (the paper's "epoch 0", spec §3)."""
    return float(history["penalty_objective"].iloc[-1] / history["penalty_objective"].iloc[0])


C1_IDS = {"monotone": {"cora": "C1.1", "citeseer": "C1.2"},
          "fraction": {"cora": "C1.3", "citeseer": "C1.4", "pubmed": "C1.9", "coauthor-cs": "C1.10"},
          "acceleration": {"cora": "C1.5", "citeseer": "C1.6"}, "floor": {"cora": "C1.7", "citeseer": "C1.8"}}


def _declared(ids: dict[str, dict[str, str]], name: str, values: dict[str, float], at: dict) -> dict[str, Measurement]:
    """The measurement of each kind that has a claim declared on dataset ``name``, by claim id."""
    return {ids[kind][name]: Measurement(float(value), at) for kind, value in values.items() if name in ids[kind]}


def convergence_claims(runs: pd.DataFrame) -> dict[str, Measurement]:
    """C1's measurements from :func:`convergence` frames: monotonicity over the whole run and at the eps
    floor, the fraction of the first objective reached, and accelerated over plain final objective."""
    found: dict[str, Measurement] = {}
    for name, frame in runs.groupby("dataset"):
        by = {variant: run.sort_values("iteration") for variant, run in frame.groupby("variant")}
        accelerated = by[ACCELERATED]
        objective = accelerated["penalty_objective"]
        values = {"monotone": largest_rise(objective), "fraction": objective_fraction(accelerated),
                  "acceleration": objective.iloc[-1] / by[PLAIN]["penalty_objective"].iloc[-1],
                  "floor": largest_rise(at_eps_floor(accelerated))}
        found |= _declared(C1_IDS, name, values, {"epochs": int(frame["iteration"].max()), "dataset": name})
    return found


def accuracy_comparison(task: NodeTask, *, iterations: int, width: int = 100, evaluate_every: int = 5,
                        seed: int = 0) -> pd.DataFrame:
    """C2: test accuracy of mDLAM, dlADMM (Table-3 rho) and the gradient baselines after every
    ``evaluate_every``-th epoch and the last (the test pass costs as much as a large part of an mDLAM epoch).

    The baselines (:class:`~beyond_backprop.optim.gradient.TorchOptimizer`) use the Table-3 learning rates and
    mean-reduced cross-entropy (spec §5.8). Every method starts from N(0, 0.1²) drawn from a CPU generator seeded
    with ``seed``, so a run starts from the same values on any device.
    """
    problem = task.problem
    solvers = {names.MDLAM: mdlam_solver(task, width=width), names.DLADMM: DLADMM(task.widths(width), rho=DLADMM_RHO)}
    for method, rates in LEARNING_RATES.items():
        build = lambda _: models.mlp(task.widths(width))  # noqa: E731
        solvers[names.OPTIMIZERS[method]] = TorchOptimizer(build, method, lr=rates[task.name])
    frames = []
    for method, solver in solvers.items():
        state = solver.init(problem, torch.Generator().manual_seed(seed))
        _, history = run_history(solver, state, problem, iterations, evaluate_every=evaluate_every)
        frames.append(history.assign(method=method))
    return pd.concat(frames, ignore_index=True).assign(dataset=task.name)


C2_IDS = {"final": {"cora": "C2.1", "citeseer": "C2.2", "pubmed": "C2.3", "coauthor-cs": "C2.4"},
          "baselines": {"cora": "C2.5", "citeseer": "C2.6"},
          "adadelta": {"cora": "C2.7", "citeseer": "C2.10"}, "dladmm": {"cora": "C2.8", "citeseer": "C2.9"}}


def accuracy_claims(runs: pd.DataFrame) -> dict[str, Measurement]:
    """C2's measurements from :func:`accuracy_comparison` frames: accuracy after the last epoch and margins."""
    found: dict[str, Measurement] = {}
    for name, frame in runs.groupby("dataset"):
        final, at = final_accuracy(frame, "method"), {"epochs": int(frame["iteration"].max()), "dataset": name}
        mdlam = final[names.MDLAM]
        values = {"final": mdlam, "baselines": mdlam - final[[names.OPTIMIZERS[m] for m in LEARNING_RATES]].max(),
                  "adadelta": final[names.ADADELTA] / mdlam, "dladmm": mdlam - final[names.DLADMM]}
        found |= _declared(C2_IDS, name, values, at)
    return found


def runtime_sweep(task: NodeTask, *, widths: list[int], rhos: list[float], repeats: int,
                  seed: int = 0) -> pd.DataFrame:
    """C3: seconds of one mDLAM epoch against hidden width (Table-3 rho) and against rho (width 100).

    Each point's solver is first run for two epochs, so that every timed epoch extrapolates and runs the
    safeguard; round ``r`` then times epoch ``3 + r`` of every point, the points interleaved so that a
    slow spell of a shared machine hits every point alike. One row per (point, round).
    """
    if repeats < 1:
        raise ValueError(f"invalid repeats {repeats!r}; expected >= 1")
    points = [("width", w, int(w), RHO[task.name]) for w in widths] + [("rho", r, 100, float(r)) for r in rhos]
    problem, prepared = task.problem, []
    for sweep, value, width, rho in points:
        solver = mdlam_solver(task, width=width, rho=rho)
        state = solver.init(problem, torch.Generator().manual_seed(seed))
        for _ in range(2):
            state = solver.step(state, problem)
        prepared.append((sweep, value, solver, state))
    rows = []
    for repeat in range(repeats):
        for point, (sweep, value, solver, state) in enumerate(prepared):
            with Timer(problem.device) as timer:
                state = solver.step(state, problem)
            prepared[point] = (sweep, value, solver, state)
            rows.append({"dataset": task.name, "sweep": sweep, "value": value, "repeat": repeat,
                         "seconds": timer.seconds})
    return pd.DataFrame(rows)


def seconds_per_epoch(timings: pd.DataFrame) -> pd.DataFrame:
    """The fastest round of each (dataset, sweep, value), and the spread of its rounds over it.

    The fastest round, because a shared machine only ever adds time to an epoch.
    """
    grouped = timings.groupby(["dataset", "sweep", "value"])["seconds"]
    table = grouped.min().rename("seconds_per_epoch").to_frame()
    table["spread"] = (grouped.max() - grouped.min()) / table["seconds_per_epoch"]
    return table.reset_index()


def width_slope(points: pd.DataFrame) -> float:
    """Log-log slope of seconds per epoch against width (1 = linear)."""
    return loglog_slope(points["value"], points["seconds"])


def rho_ratio(points: pd.DataFrame) -> float:
    """Seconds per epoch at the largest rho over that at the smallest, read off a log-log fit through every rho
    (less noisy than the two end points alone)."""
    slope = loglog_slope(points["value"], points["seconds"])
    return float((points["value"].max() / points["value"].min()) ** slope)


def runtime_values(timings: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per dataset: ``base`` (s/epoch at the smallest width), ``slope`` (:func:`width_slope`), ``ratio``
    (:func:`rho_ratio`), each from the fastest round of every point."""
    fastest = timings.groupby(["dataset", "sweep", "value"], as_index=False)["seconds"].min()
    values = {}
    for name, frame in fastest.groupby("dataset"):
        width, rho = frame[frame["sweep"] == "width"], frame[frame["sweep"] == "rho"]
        values[name, "base"] = float(width.sort_values("value")["seconds"].iloc[0])
        values[name, "slope"] = width_slope(width)
        values[name, "ratio"] = rho_ratio(rho)
    return values


def runtime_noise(timings: pd.DataFrame) -> pd.DataFrame:
    """The noise band of C3's numbers: the slope and the rho ratio computed from each round alone."""
    rows = []
    for (name, repeat), frame in timings.groupby(["dataset", "repeat"]):
        rows.append({"dataset": name, "repeat": repeat, "slope": width_slope(frame[frame["sweep"] == "width"]),
                     "ratio": rho_ratio(frame[frame["sweep"] == "rho"])})
    return pd.DataFrame(rows).groupby("dataset")[["slope", "ratio"]].agg(["min", "max"]).round(3)


C3_IDS = {"base": {"cora": "C3.1", "citeseer": "C3.4"}, "slope": {"cora": "C3.2", "citeseer": "C3.5"},
          "ratio": {"cora": "C3.3", "citeseer": "C3.6"}}


def runtime_claims(timings: pd.DataFrame) -> dict[str, Measurement]:
    """C3's measurements from :func:`runtime_sweep` rounds, each with the grid it was measured on."""
    found: dict[str, Measurement] = {}
    for (name, kind), value in runtime_values(timings).items():
        frame = timings[timings["dataset"] == name]
        widths, rhos = frame[frame["sweep"] == "width"]["value"], frame[frame["sweep"] == "rho"]["value"]
        at = {"base": {"width": int(widths.min())},
              "slope": {"largest_width": int(widths.max()), "widths": int(widths.nunique())},
              "ratio": {"rho_decades": round(math.log10(rhos.max() / rhos.min())), "rhos": int(rhos.nunique())}}[kind]
        found |= _declared(C3_IDS, name, {kind: value}, {**at, "dataset": name})
    return found


def sensitivity(task: NodeTask, *, rhos: list[float], eps0s: list[float], iterations: int,
                evaluate_every: int = 5, seed: int = 0) -> pd.DataFrame:
    """C4: test accuracy across rho (eps0 = 100) and across eps0 (Table-3 rho), every ``evaluate_every`` epochs.

    A setting in both sweeps (the Table-3 rho at eps0 = 100) is run once.
    """
    settings = [("rho", rho, float(rho), 100.0) for rho in rhos]
    settings += [("eps0", eps0, RHO[task.name], float(eps0)) for eps0 in eps0s]
    runs: dict[tuple[float, float], pd.DataFrame] = {}
    frames = []
    for parameter, value, rho, eps0 in settings:
        if (rho, eps0) not in runs:
            runs[rho, eps0] = run_mdlam(task, iterations=iterations, rho=rho, eps0=eps0,
                                        evaluate_every=evaluate_every, seed=seed)
        frames.append(runs[rho, eps0].assign(parameter=parameter, value=value))
    test_nodes = len(task.problem.evaluate["test"].labels)
    return pd.concat(frames, ignore_index=True).assign(dataset=task.name, test_nodes=test_nodes)


def final_spread(frame: pd.DataFrame, parameter: str) -> float:
    """Largest minus smallest final test accuracy across the values of ``parameter``."""
    accuracy = final_accuracy(frame[frame["parameter"] == parameter], "value")
    return float(accuracy.max() - accuracy.min())


def final_spread_nodes(frame: pd.DataFrame, parameter: str) -> int:
    """:func:`final_spread` as a whole number of test nodes (a float32 accuracy read back as a count)."""
    nodes = int(frame["test_nodes"].iloc[0])
    correct = (final_accuracy(frame[frame["parameter"] == parameter], "value") * nodes).round().astype(int)
    return int(correct.max() - correct.min())


def table4_order_share(frame: pd.DataFrame, dataset: str) -> float | None:
    """Share of the pairs of run rho values (those Table 4 reports) whose final accuracies are ordered as in
    Table 4 at epoch 200; None when fewer than two of them were run."""
    paper = {rho: values[-1] for (name, rho), values in TABLE4.items() if name == dataset}
    measured = final_accuracy(frame[frame["parameter"] == "rho"], "value")
    common = sorted(rho for rho in measured.index if rho in paper)
    pairs = [(a, b) for i, a in enumerate(common) for b in common[i + 1:]]
    if not pairs:
        return None
    agree = [np.sign(measured[a] - measured[b]) == np.sign(paper[a] - paper[b]) for a, b in pairs]
    return float(np.mean(agree))


def early_gain(frame: pd.DataFrame, epoch: int) -> float:
    """Test accuracy of the largest eps0 minus that of the smallest, at ``epoch``."""
    runs = frame[(frame["parameter"] == "eps0") & (frame["iteration"] == epoch)]
    accuracy = runs.set_index("value")["test_accuracy"]
    return float(accuracy[accuracy.index.max()] - accuracy[accuracy.index.min()])


C4_IDS = {"spreads": {"cora": "C4.1", "citeseer": "C4.4"}, "eps0": {"cora": "C4.2", "citeseer": "C4.5"},
          "early": {"cora": "C4.3", "citeseer": "C4.6"}, "order": {"cora": "C4.7", "citeseer": "C4.8"}}
EARLY_EPOCH = 40


def sensitivity_claims(runs: pd.DataFrame) -> dict[str, Measurement]:
    """C4's measurements from :func:`sensitivity` frames (the early gain at epoch 40, or the last one run)."""
    found: dict[str, Measurement] = {}
    for name, frame in runs.groupby("dataset"):
        last = int(frame["iteration"].max())
        early = min(EARLY_EPOCH, last)
        at = {"epochs": last, "dataset": name}
        found |= _declared(C4_IDS, name, {"spreads": final_spread(frame, "rho") - final_spread(frame, "eps0"),
                                          "eps0": final_spread_nodes(frame, "eps0")}, at)
        if name in C4_IDS["order"]:
            order = table4_order_share(frame, name)
            found[C4_IDS["order"][name]] = Measurement(order, at, "" if order is not None else
                                                       "fewer than two of Table 4's rho values were run")
        found |= _declared(C4_IDS, name, {"early": early_gain(frame, early)}, {**at, "epochs": early})
    return found


def accuracy_at(frame: pd.DataFrame, epochs: list[int]) -> pd.DataFrame:
    """Test accuracy at the given 1-based epochs (those reached), one row per (parameter, value)."""
    reached = [e for e in epochs if e <= frame["iteration"].max()]
    table = frame[frame["iteration"].isin(reached)].pivot_table(
        index=["parameter", "value"], columns="iteration", values="test_accuracy")
    return table.astype(float).round(3)


def paper_table(dataset: str) -> pd.DataFrame:
    """Tables 4 and 5 of the paper (epochs 40 and 200) for ``dataset``, in the layout of :func:`accuracy_at`."""
    first, last = TABLE_EPOCHS.index(40), TABLE_EPOCHS.index(200)
    rows = [("rho", rho, values[first], values[last]) for (name, rho), values in TABLE4.items() if name == dataset]
    rows += [("eps0", eps0, values[first], values[last]) for (name, eps0), values in TABLE5.items()
             if name == dataset]
    return pd.DataFrame(rows, columns=["parameter", "value", "paper@40", "paper@200"]).set_index(["parameter", "value"])
