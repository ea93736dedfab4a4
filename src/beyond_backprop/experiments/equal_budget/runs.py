"""X1's runs: every method on every task for the same seconds of training steps, and what each run shows.

Every method runs through :func:`~beyond_backprop.optim.solver.run_history` with a ``seconds`` budget:
only ``step`` is timed, and the run stops at the first step that ends at or past the budget. The test
accuracy is evaluated densely until it first reaches the task's target (after every step, or every
``budget / resolution`` seconds of steps: the crossing is timed to that resolution), then about
``points`` times over the budget; evaluation is not counted. A run whose training loss is no longer
finite has diverged and stops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...optim.solver import Solver, run_history
from ...problem import Problem
from .memory import step_cost
from .methods import ADMM, Method
from .tasks import TARGETS, Task

MIN_STEPS = 20  # fewer of its own steps in a run, and a method's row says nothing about the method
MIN_STEPS_ADMM = 15  # the ADMM-type methods' epochs are dear; their papers' curves change little after 15
OVERRUN = 2.0  # a run that spent more than twice the budget (one step outlasts it) is not at equal time
DIVERGED, TOO_FEW_STEPS, OVER_BUDGET = "diverged", "too few steps", "over budget"


def min_steps(family: str) -> int:
    """The fewest steps a run of a method of ``family`` must take to be ranked."""
    return MIN_STEPS_ADMM if family == ADMM else MIN_STEPS


def train_once(solver: Solver, problem: Problem, *, seconds: float, seed: int, points: int,
               target: float | None = None, resolution: int = 0, max_steps: int | None = None
               ) -> tuple[Any, pd.DataFrame]:
    """One run of ``seconds`` of training steps (at most ``max_steps``) from seed ``seed``: the final
    state and the history.

    The first step is evaluated alone. Until the test accuracy first reaches ``target`` (None: no target)
    the run is evaluated every ``seconds / resolution`` seconds of steps (0: after every step), so the
    crossing is timed to that resolution; then about ``points`` times over the budget, and after its
    last step. Both schedules count steps from the mean step time so far. A non-finite training loss
    ends the run (it diverged).
    """
    state = solver.init(problem, torch.Generator(device=problem.device).manual_seed(seed))
    parts, spent, taken, every, crossed = [], 0.0, 0, 1, target is None
    while True:
        chunk = every if max_steps is None else min(every, max_steps - taken)
        state, part = run_history(solver, state, problem, chunk, seconds=seconds - spent, evaluate_every=chunk)
        parts.append(part.assign(seconds=part["seconds"] + spent))
        spent, taken = spent + float(part["seconds"].iloc[-1]), int(part["iteration"].iloc[-1])
        last = part.iloc[-1]
        if spent >= seconds or taken == max_steps or not math.isfinite(float(last["train_loss"])):
            return state, pd.concat(parts, ignore_index=True)
        crossed = crossed or float(last["test_accuracy"]) >= target
        per_run = points if crossed else resolution
        every = max(1, math.floor(seconds / (per_run * spent / taken))) if per_run else 1


def measured_run(solver: Solver, problem: Problem, *, measure: bool, **run: Any
                 ) -> tuple[pd.DataFrame, dict[str, float] | None]:
    """One run of :func:`train_once` (``run``: its keyword arguments): its history and, with ``measure``,
    the memory of one more step (:func:`~.memory.step_cost`). The run's state is dropped on return, so
    no two runs' states (N x width blocks for the ADMM-type methods) are ever alive together."""
    state, history = train_once(solver, problem, **run)
    return history, step_cost(solver, state, problem)[1] if measure else None


def finite(history: pd.DataFrame) -> bool:
    """Whether every training loss and accuracy of a run is finite (else it diverged)."""
    values = history[[c for c in history.columns if c == "train_loss" or c.endswith("_accuracy")]]
    return bool(np.isfinite(values.to_numpy(dtype=float)).all())


def choose(method: Method, task: Task, *, seconds: float, points: int, seed: int,
           max_steps: int | None = None) -> tuple[Any, pd.DataFrame]:
    """The grid value with the highest final TRAINING accuracy (never test) after one run of ``seconds``,
    among the runs that stayed finite; a run that diverged is never chosen. When every value diverges,
    the smallest is kept (its runs are then flagged ``diverged``)."""
    grid = method.grid(task)
    if not grid:
        return None, pd.DataFrame()
    histories = [train_once(method.make(task, value), method.problem(task), seconds=seconds, seed=seed,
                            points=points, max_steps=max_steps)[1] for value in grid]
    table = pd.DataFrame({"value": grid, "train_accuracy": [float(h["train_accuracy"].iloc[-1]) for h in histories],
                          "finite": [finite(h) for h in histories]})
    score = table["train_accuracy"].where(table["finite"], -math.inf).to_numpy()
    best = int(np.argmax(score))  # the first of equals: the smallest value
    return grid[best], table.assign(method=method.name, dataset=task.name, chosen=table.index == best)


@dataclass
class Comparison:
    """Every run of X1: histories (``dataset, task, method, family, seed`` plus the history's columns),
    costs per (dataset, method), grid choices, the methods not run on a dataset with the reason, the
    budget per task kind, each dataset's task kind, and the step cap (None: equal time)."""

    histories: pd.DataFrame
    costs: pd.DataFrame
    choices: pd.DataFrame
    not_run: dict[tuple[str, str], str]
    budgets: dict[str, float]
    tasks: dict[str, str]
    capped: int | None

    def budget(self, dataset: str) -> float:
        """Seconds of training steps per run on ``dataset`` (0 when it was not run)."""
        return self.budgets.get(self.tasks.get(dataset, ""), 0.0)


def compare(tasks: Mapping[str, Task], methods: Sequence[Method], *, budgets: Mapping[str, float], seeds: int,
            points: int = 8, resolution: int = 0, max_steps: int | None = None, seed: int = 0,
            unavailable: Mapping[str, str] | None = None) -> Comparison:
    """Run every method on every task for ``budgets[task.kind]`` seconds of steps, ``seeds`` times.

    Each run is evaluated at ``resolution`` and ``points`` (:func:`train_once`). The memory of a step is
    measured once per method and task, one step after the first seed's run (:func:`~.memory.step_cost`).
    ``max_steps`` caps the steps (smoke runs: deterministic, but then the budget is no longer equal time).
    Grid values are chosen per task on training accuracy from one run at half the budget with seed
    ``seed + 1000`` (:func:`choose`).
    """
    if seeds < 1 or points < 1 or resolution < 0:
        raise ValueError(f"invalid seeds {seeds!r}, points {points!r} or resolution {resolution!r}; expected "
                         "seeds and points >= 1, resolution >= 0")
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
                history, cost = measured_run(method.make(task, value), method.problem(task), measure=run == 0,
                                             seconds=seconds, seed=seed + run, points=points, target=TARGETS[name],
                                             resolution=resolution, max_steps=max_steps)
                frames.append(history.assign(dataset=name, task=task.kind, method=method.name, family=method.family,
                                             seed=seed + run))
                if cost is not None:
                    costs.append({"dataset": name, "task": task.kind, "method": method.name,
                                  "family": method.family, **cost})
    leading = ["dataset", "task", "method", "family", "seed"]
    histories = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=leading)
    histories = histories[leading + [c for c in histories.columns if c not in leading]]
    return Comparison(histories, pd.DataFrame(costs), pd.concat(choices, ignore_index=True) if choices else
                      pd.DataFrame(), not_run, dict(budgets),
                      {name: task.kind for name, task in tasks.items()}, max_steps)


def seconds_to_target(history: pd.DataFrame, target: float, column: str = "test_accuracy") -> float:
    """Training seconds at the first evaluation at or above ``target`` (NaN: never reached): the crossing,
    timed to the resolution of :func:`train_once`'s evaluations before it (every step at resolution 0)."""
    reached = history[history[column] >= target]
    return float(reached["seconds"].iloc[0]) if len(reached) else float("nan")


def flag(run: pd.Series, budget: float, capped: bool) -> str:
    """Why a run's row cannot be ranked (``diverged``, ``too few steps``, ``over budget``), or ``""``.
    A step-capped run (smoke) is judged on divergence only."""
    if not run["finite"]:
        return DIVERGED
    if capped:
        return ""
    if run["steps"] < min_steps(run["family"]):
        return TOO_FEW_STEPS
    return OVER_BUDGET if run["seconds"] > OVERRUN * budget else ""


def finals(comparison: Comparison, targets: Mapping[str, float] = TARGETS) -> pd.DataFrame:
    """One row per run: family, steps, training seconds, final train and test accuracy, seconds to the
    target, whether it stayed finite, and its ``flag`` (:func:`flag`)."""
    rows = []
    for (dataset, method, seed), run in comparison.histories.groupby(["dataset", "method", "seed"], sort=False):
        run = run.sort_values("iteration")
        last = run.iloc[-1]
        row = pd.Series({"dataset": dataset, "method": method, "family": last["family"], "seed": seed,
                         "steps": int(last["iteration"]), "seconds": float(last["seconds"]),
                         "train_accuracy": float(last["train_accuracy"]), "test_accuracy": float(last["test_accuracy"]),
                         "target": targets[dataset], "seconds_to_target": seconds_to_target(run, targets[dataset]),
                         "finite": finite(run)})
        rows.append({**row, "flag": flag(row, comparison.budget(dataset), comparison.capped is not None)})
    return pd.DataFrame(rows)
