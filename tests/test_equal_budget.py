"""X1's equal-budget runner: the budget holds within one step, evaluation is not counted, and the
numbers the leaderboard shows come out right on hand-made runs."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from beyond_backprop import models
from beyond_backprop.experiments import equal_budget as eb
from beyond_backprop.optim.stochastic import MinibatchMLP
from beyond_backprop.problem import Problem, Split

STEP, EVALUATION = 0.02, 0.05


@dataclass
class Count:
    k: int = 0


class SlowEvaluation:
    """A solver whose step takes STEP seconds and whose evaluation takes EVALUATION seconds."""

    def init(self, problem, generator):
        return Count()

    def step(self, state, problem):
        time.sleep(STEP)
        return Count(state.k + 1)

    def metrics(self, state, problem):
        time.sleep(EVALUATION)
        return {}

    def logits(self, state, problem, split):
        return torch.zeros(split.targets.shape[0], problem.classes)


def tiny_task(name: str = "fashion-mnist") -> eb.Task:
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(12) % 2
    return eb.Task(name, "M", Problem(Split(x, labels), {"test": Split(x, labels)}))


def test_budget_is_held_within_one_step_and_evaluation_is_not_counted():
    method = eb.Method("slow evaluation", "test", lambda task, value: SlowEvaluation())
    start = time.perf_counter()
    comparison = eb.compare({"fashion-mnist": tiny_task()}, [method], budgets={"M": 0.2}, seeds=2, points=4)
    wall = time.perf_counter() - start
    for _, run in comparison.histories.groupby("seed"):
        spent = run["seconds"].iloc[-1]
        assert 0.2 <= spent < 0.2 + STEP + 0.015  # stops at the first step that ends past the budget
        assert run["iteration"].iloc[-1] <= math.ceil(0.2 / STEP) + 1
        assert len(run) >= 3  # evaluated on a schedule, and after the last step
    # about 11 evaluations of 50 ms per seed happened and were not counted in the 0.2 s of steps
    assert wall > 2 * 0.2 + 2 * 3 * EVALUATION
    assert comparison.costs["peak_bytes"].iloc[0] >= 0  # measured once, on the first seed's state


def test_a_run_is_evaluated_about_points_times_and_after_its_last_step():
    state, history = eb.train_once(SlowEvaluation(), tiny_task().mlp, seconds=0.4, seed=0, points=2)
    every = math.floor(0.4 / (2 * history["seconds"].iloc[0]))  # from the first step's time: about 10
    assert list(history["iteration"])[:2] == [1, 1 + every]
    assert history["iteration"].iloc[-1] == state.k and history["seconds"].is_monotonic_increasing
    _, capped = eb.train_once(SlowEvaluation(), tiny_task().mlp, seconds=10.0, seed=0, points=4, max_steps=3)
    assert list(capped["iteration"]) == [1, 3]


def test_a_graph_method_on_a_task_without_a_graph_is_not_run_and_says_why():
    method = eb.Method("GCN", "ADMM-type", lambda task, value: SlowEvaluation(), on_graph=True)
    plain = eb.Method("plain", "test", lambda task, value: SlowEvaluation())
    comparison = eb.compare({"fashion-mnist": tiny_task()}, [method, plain], budgets={"M": 0.03}, seeds=1,
                            unavailable={"plain": "plain is not merged yet"})
    assert "needs a graph" in comparison.not_run[("fashion-mnist", "GCN")]
    assert comparison.not_run[("fashion-mnist", "plain")] == "plain is not merged yet"


class FixedAccuracy:
    """Logits that score ``train`` on the training rows and ``test`` on the test rows, whatever the step."""

    def __init__(self, train: float, test: float) -> None:
        self.train, self.test = train, test

    def init(self, problem, generator):
        return Count()

    def step(self, state, problem):
        return Count(state.k + 1)

    def metrics(self, state, problem):
        return {}

    def logits(self, state, problem, split):
        share = self.train if split is problem.train else self.test
        right = torch.arange(split.targets.shape[0]) < round(share * split.targets.shape[0])
        chosen = torch.where(right, split.targets, 1 - split.targets)
        return torch.nn.functional.one_hot(chosen, problem.classes).float()


def test_the_grid_is_chosen_on_training_accuracy_never_on_test():
    # value 1: best on the training split, worst on test; value 2 the other way round
    accuracy = {1: (0.75, 0.25), 2: (0.25, 0.75)}
    method = eb.Method("grid", "test", lambda task, value: FixedAccuracy(*accuracy[value]), grids={"M": (1, 2)})
    value, table = eb.choose(method, tiny_task(), seconds=1.0, points=1, seed=0, max_steps=2)
    assert value == 1 and list(table["chosen"]) == [True, False]


def test_seconds_to_target_is_the_first_evaluation_at_or_above_it():
    history = pd.DataFrame({"iteration": [1, 2, 3, 4], "seconds": [0.5, 1.0, 1.5, 2.0],
                            "test_accuracy": [0.2, 0.7, 0.6, 0.9]})
    assert eb.seconds_to_target(history, 0.7) == 1.0
    assert eb.seconds_to_target(history, 0.8) == 2.0
    assert math.isnan(eb.seconds_to_target(history, 0.95))


def finals_of(accuracies: dict[str, list[float]], dataset: str = "cora",
              times: dict[str, list[float]] | None = None) -> pd.DataFrame:
    rows = []
    for method, values in accuracies.items():
        for seed, value in enumerate(values):
            seconds = (times or {}).get(method, [float("nan")] * len(values))[seed]
            rows.append({"dataset": dataset, "method": method, "seed": seed, "steps": 10, "seconds": 2.0,
                         "train_accuracy": value, "test_accuracy": value, "target": 0.6,
                         "seconds_to_target": seconds})
    return pd.DataFrame(rows)


def costs_of(methods, dataset: str = "cora", peaks: dict[str, float] | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": dataset, "method": m, "peak_bytes": (peaks or {}).get(m, 2**20),
                          "state_bytes": 2**21} for m in methods])


def test_a_rank_that_changes_between_seeds_is_a_tie():
    final = finals_of({"A": [0.8, 0.7, 0.9], "B": [0.7, 0.8, 0.6], "C": [0.5, 0.5, 0.5]})
    table = eb.leaderboard(final, costs_of("ABC")).set_index("method")
    assert table.loc["A", "rank"] == "1-2 (tie)" and table.loc["B", "rank"] == "1-2 (tie)"
    assert table.loc["C", "rank"] == "3"
    assert list(table.index) == ["A", "B", "C"]  # by mean test accuracy
    assert table.loc["A", "test_accuracy"] == pytest.approx(0.8)
    assert table.loc["C", "spread"] == pytest.approx(0.0)


def test_leaderboard_reports_median_time_and_unreached_seeds():
    final = finals_of({"A": [0.8, 0.8, 0.8]}, times={"A": [1.0, float("nan"), 3.0]})
    row = eb.leaderboard(final, costs_of("A")).iloc[0]
    assert row["seconds_to_target"] == 3.0 and row["reached"] == "2/3"
    markdown = eb.leaderboard_markdown(eb.leaderboard(final, costs_of("A")), {"G": 2.0}, 3)
    assert "| 1 | A | 0.800 ± 0.000 |" in markdown and "task G 2 s" in markdown


def test_time_ratio_censors_an_unreached_target_at_the_budget():
    nan = float("nan")
    final = finals_of({"fast": [0.7] * 2, "slow": [0.7] * 2}, times={"fast": [1.0, 2.0], "slow": [4.0, nan]})
    # seed 0: 1/4; seed 1: 2 over the budget 10 (a bound)
    assert eb.time_ratio(final, "cora", ["fast"], "slow", 10.0) == pytest.approx(0.25)
    later = finals_of({"fast": [0.7], "slow": [0.7]}, times={"fast": [nan], "slow": [5.0]})
    assert eb.time_ratio(later, "cora", ["fast"], "slow", 10.0) == pytest.approx(2.0)
    # a seed where neither reaches the target is a tie, not a win
    tie = finals_of({"fast": [0.7] * 2, "slow": [0.7] * 2}, times={"fast": [1.0, nan], "slow": [nan, nan]})
    assert eb.time_ratio(tie, "cora", ["fast"], "slow", 10.0) == pytest.approx(1.0)
    never = finals_of({"fast": [0.7], "slow": [0.7]})
    assert math.isnan(eb.time_ratio(never, "cora", ["fast"], "slow", 10.0))


def test_worst_seed_margin_and_mean_difference():
    final = finals_of({"A": [0.8, 0.7], "B": [0.75, 0.75], "C": [0.6, 0.9]})
    assert eb.worst_seed_margin(final, "cora", "A", ["B"]) == pytest.approx(-0.05)
    assert eb.worst_seed_margin(final, "cora", "A", ["B", "C"]) == pytest.approx(-0.2)
    assert eb.mean_difference(final, "cora", "A", "B") == pytest.approx(0.0)


def test_tensor_bytes_counts_each_storage_once():
    weight = torch.zeros(10, 10)

    @dataclass
    class State:
        model: torch.nn.Module
        alias: torch.Tensor
        extra: list

    model = torch.nn.Linear(10, 10, bias=False)
    model.weight.data = weight
    state = State(model, weight[:2], [torch.zeros(5), {"x": torch.zeros(3, dtype=torch.float64)}])
    assert eb.tensor_bytes(state) == 400 + 20 + 24


def test_step_cost_measures_one_more_step():
    problem = tiny_task().mlp
    solver = MinibatchMLP([3, 8, 2], gradient="backprop", update="frank-wolfe", batch=4)
    state = solver.step(solver.init(problem, torch.Generator().manual_seed(0)), problem)
    state, cost = eb.step_cost(solver, state, problem)
    parameters = sum(p.numel() for p in models.mlp([3, 8, 2]).parameters()) * 4
    assert state.k == 2 and cost["peak_bytes"] > 0
    assert cost["state_bytes"] >= 2 * parameters  # the weights and their averaged direction


@pytest.mark.parametrize("kwargs", [{"seeds": 0}, {"points": 0}])
def test_compare_refuses_bad_counts(kwargs):
    with pytest.raises(ValueError, match="invalid"):
        eb.compare({}, [], budgets={"M": 1.0}, **{"seeds": 1, "points": 1, **kwargs})


def test_report_embeds_the_leaderboard_of_a_complete_run(tmp_path):
    import json

    from beyond_backprop import report

    folder = tmp_path / "X1"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"status": "complete", "minutes": 1.0}))
    (folder / "claims.json").write_text(json.dumps({"claims": []}))
    board = eb.leaderboard(finals_of({"A": [0.8], "B": [0.7]}), costs_of("AB"))
    eb.save_leaderboard(board, folder, {"G": 2.0}, 1)
    text = report.render_report(tmp_path, "quick")
    assert "## X1 leaderboard" in text and "| 1 | A | 0.800 ± 0.000 |" in text
    (folder / "manifest.json").write_text(json.dumps({"status": "failed"}))
    assert "## X1 leaderboard" not in report.render_report(tmp_path, "quick")
