"""X1's equal-budget runner on a fake clock: the budget holds within one step, evaluation is not counted,
the crossing of the target is timed at its step, diverged runs are never chosen, flagged rows are never
ranked, and the numbers the leaderboard shows come out right on hand-made runs."""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import dataclass
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from beyond_backprop import models, report, runtime
from beyond_backprop.experiments import equal_budget as eb
from beyond_backprop.experiments.equal_budget import memory, runs
from beyond_backprop.experiments.equal_budget import ranking as lb
from beyond_backprop.optim.gradient import TorchOptimizer
from beyond_backprop.optim.minibatch import Minibatch
from beyond_backprop.optim.solver import evaluate
from beyond_backprop.optim.stochastic import MinibatchMLP
from beyond_backprop.problem import Problem, Split

STEP, EVALUATION = 0.03, 0.05


class Clock:
    """A fake ``time.perf_counter`` that moves only when a test solver says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(runtime, "time", SimpleNamespace(perf_counter=fake))
    return fake


@dataclass(frozen=True)
class Count:
    k: int = 0


class Scripted:
    """A solver whose step takes ``step`` fake seconds and whose evaluation takes EVALUATION; its test
    accuracy after k steps is ``test(k)``, its training accuracy ``train(k)``, and its logits turn NaN
    from step ``nan_from`` on (a diverging run)."""

    def __init__(self, clock: Clock, *, step: float = STEP, test=lambda k: 0.5, train=lambda k: 0.5,
                 nan_from: int | None = None) -> None:
        self.clock, self.seconds, self.test, self.train, self.nan_from = clock, step, test, train, nan_from

    def init(self, problem, generator):
        return Count()

    def step(self, state, problem):
        self.clock.now += self.seconds
        return Count(state.k + 1)

    def metrics(self, state, problem):
        self.clock.now += EVALUATION
        return {}

    def logits(self, state, problem, split):
        share = self.train(state.k) if split is problem.train else self.test(state.k)
        right = torch.arange(split.targets.shape[0]) < round(share * split.targets.shape[0])
        chosen = torch.where(right, split.targets, 1 - split.targets)
        logits = torch.nn.functional.one_hot(chosen, problem.classes).float()
        if self.nan_from is not None and state.k >= self.nan_from:
            logits[-1] = float("nan")  # one row: the loss is NaN, the accuracy barely moves
        return logits


def tiny_task(name: str = "fashion-mnist") -> eb.Task:
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(20) % 2
    return eb.Task(name, "M", Problem(Split(x, labels), {"test": Split(x, labels)}))


def method(make, name: str = "m", family: str = "test", **grids) -> eb.Method:
    return eb.Method(name, family, make, grids=grids)


def test_budget_is_held_within_one_step_and_evaluation_is_not_counted(clock):
    comparison = eb.compare({"fashion-mnist": tiny_task()}, [method(lambda task, value: Scripted(clock))],
                            budgets={"M": 0.2}, seeds=2, points=4)
    for _, run in comparison.histories.groupby("seed"):
        assert run["iteration"].iloc[-1] == 7  # 6 steps end at 0.18 s, the 7th at 0.21 s: past the budget
        assert run["seconds"].iloc[-1] == pytest.approx(7 * STEP)
        assert len(run) == 7  # below the target: evaluated after every step
    # 14 evaluations happened on the clock and in no run's seconds; one more step measured the memory
    assert clock.now == pytest.approx(2 * 7 * STEP + 14 * EVALUATION + STEP)
    assert comparison.costs["state_bytes"].iloc[0] == 0


def test_the_target_crossing_is_timed_at_its_step_then_evaluation_thins_out(clock):
    solver = Scripted(clock, test=lambda k: min(1.0, k / 10))  # reaches 0.5 at step 5
    state, history = eb.train_once(solver, tiny_task().mlp, seconds=3.1, seed=0, points=2, target=0.5)
    every = math.floor(3.1 / (2 * STEP))  # from the mean step time: 51
    assert list(history["iteration"]) == [1, 2, 3, 4, 5, 5 + every, 104]  # 104 steps: 3.12 s, past the budget
    assert runs.seconds_to_target(history, 0.5) == pytest.approx(5 * STEP)
    assert history["iteration"].iloc[-1] == state.k and history["seconds"].is_monotonic_increasing
    _, coarse = eb.train_once(Scripted(clock, test=lambda k: min(1.0, k / 100)), tiny_task().mlp, seconds=3.1, seed=0,
                              points=2, target=0.5, resolution=10)  # crosses at step 50: seen at the next of every 10
    assert list(coarse["iteration"])[:7] == [1, 11, 21, 31, 41, 51, 102]
    assert runs.seconds_to_target(coarse, 0.5) == pytest.approx(51 * STEP)
    _, capped = eb.train_once(Scripted(clock), tiny_task().mlp, seconds=10.0, seed=0, points=4, max_steps=3)
    assert list(capped["iteration"]) == [1, 3]  # no target: every step only until the first


def test_a_diverging_run_stops_and_is_flagged(clock):
    def make(task, value):
        return Scripted(clock, nan_from=4)

    comparison = eb.compare({"fashion-mnist": tiny_task()}, [method(make)], budgets={"M": 1.0}, seeds=1)
    final = eb.finals(comparison)
    assert final["steps"].iloc[0] == 4 and not final["finite"].iloc[0]
    assert final["flag"].iloc[0] == runs.DIVERGED


def test_the_chooser_never_picks_a_diverging_run(clock):
    # value 2 has the higher (noisy) training accuracy but its loss turns NaN; value 1 stays finite
    solvers = {1: {"train": lambda k: 0.6 + 0.02 * (k % 3)}, 2: {"train": lambda k: 0.9 + 0.05 * (k % 2),
                                                                        "nan_from": 3}}
    grid = method(lambda task, value: Scripted(clock, **solvers[value]), M=(1, 2))
    value, table = eb.choose(grid, tiny_task(), seconds=0.5, points=2, seed=0)
    assert value == 1 and list(table["finite"]) == [True, False] and list(table["chosen"]) == [True, False]
    everywhere = method(lambda task, value: Scripted(clock, nan_from=2), M=(3, 4))
    assert eb.choose(everywhere, tiny_task(), seconds=0.5, points=2, seed=0)[0] == 3  # all diverge: the smallest


def test_the_grid_is_chosen_on_training_accuracy_never_on_test(clock):
    accuracy = {1: (0.75, 0.25), 2: (0.25, 0.75)}  # value 1: best on training, worst on test
    grid = method(lambda task, value: Scripted(clock, train=lambda k: accuracy[value][0],
                                               test=lambda k: accuracy[value][1]), M=(1, 2))
    value, table = eb.choose(grid, tiny_task(), seconds=1.0, points=1, seed=0, max_steps=2)
    assert value == 1 and list(table["chosen"]) == [True, False]


class Tracked(Scripted):
    """A :class:`Scripted` solver that notes, at each run's start, how many states of earlier runs are alive."""

    def __init__(self, clock: Clock, states: list, alive: list) -> None:
        super().__init__(clock)
        self.states, self.alive = states, alive

    def init(self, problem, generator):
        self.alive.append(sum(ref() is not None for ref in self.states))
        return self._track(super().init(problem, generator))

    def step(self, state, problem):
        return self._track(super().step(state, problem))

    def _track(self, state):
        self.states.append(weakref.ref(state))
        return state


def test_no_run_state_outlives_its_run(clock):
    states, alive = [], []
    methods = [method(lambda task, value: Tracked(clock, states, alive), name, M=grid)
               for name, grid in (("one", ()), ("grid", (1, 2)))]
    comparison = eb.compare({"fashion-mnist": tiny_task(), "mnist-subset": tiny_task("mnist-subset")}, methods,
                            budgets={"M": 0.1}, seeds=2, points=2)
    assert len(comparison.costs) == 4 and len(alive) == 2 * (2 + 2 + 2)  # 2 tasks x (seeds + seeds + grid)
    assert alive == [0] * len(alive)
    assert all(ref() is None for ref in states)  # the last run's too, and the state of the measured step


def test_a_graph_method_on_a_task_without_a_graph_is_not_run_and_says_why(clock):
    gcn = eb.Method("GCN", "ADMM-type", lambda task, value: Scripted(clock), on_graph=True)
    comparison = eb.compare({"fashion-mnist": tiny_task()}, [gcn, method(lambda t, v: Scripted(clock), "plain")],
                            budgets={"M": 0.03}, seeds=1, unavailable={"plain": "plain is not merged yet"})
    assert "needs a graph" in comparison.not_run[("fashion-mnist", "GCN")]
    assert comparison.not_run[("fashion-mnist", "plain")] == "plain is not merged yet"


def finals_of(accuracies: dict[str, list[float]], dataset: str = "cora", times: dict | None = None,
              steps: dict | None = None, seconds: dict | None = None, flags: dict | None = None) -> pd.DataFrame:
    rows = []
    for name, values in accuracies.items():
        for seed, value in enumerate(values):
            time = (times or {}).get(name, [float("nan")] * len(values))[seed]
            rows.append({"dataset": dataset, "method": name, "family": "test", "seed": seed,
                         "steps": (steps or {}).get(name, 30), "seconds": (seconds or {}).get(name, 2.0),
                         "train_accuracy": value, "test_accuracy": value, "target": 0.6, "seconds_to_target": time,
                         "finite": True, "flag": (flags or {}).get(name, "")})
    return pd.DataFrame(rows)


def costs_of(methods, dataset: str = "cora", peaks: dict[str, float] | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": dataset, "method": m, "peak_bytes": (peaks or {}).get(m, 2**20),
                          "state_bytes": 2**21} for m in methods])


def test_runs_with_too_few_steps_or_over_budget_are_flagged():
    ok = pd.Series({"finite": True, "steps": 20, "family": "backprop", "seconds": 2.0})
    assert runs.flag(ok, budget=1.0, capped=False) == ""
    assert runs.flag(pd.Series({**ok, "steps": 19}), 1.0, False) == runs.TOO_FEW_STEPS
    assert runs.flag(pd.Series({**ok, "steps": 15, "family": "ADMM-type"}), 1.0, False) == ""
    assert runs.flag(pd.Series({**ok, "seconds": 2.01}), 1.0, False) == runs.OVER_BUDGET
    assert runs.flag(pd.Series({**ok, "steps": 2}), 1.0, capped=True) == ""  # smoke: only divergence
    assert runs.flag(pd.Series({**ok, "finite": False}), 1.0, capped=True) == runs.DIVERGED


def test_flagged_rows_are_not_ranked_and_do_not_take_ranks():
    times = {"A": [1.0, 1.0, 1.0]}
    final = finals_of({"A": [0.7, 0.72, 0.69], "B": [0.9, 0.91, 0.88], "C": [0.5, 0.52, 0.49]}, times=times,
                      flags={"B": runs.TOO_FEW_STEPS})
    table = eb.leaderboard(final, costs_of("ABC")).set_index("method")
    assert table.loc["B", "rank"] == lb.UNRANKED and table.loc["B", "flag"] == runs.TOO_FEW_STEPS
    assert table.loc["A", "rank"] == "1" and table.loc["C", "rank"] == "2"
    assert list(table.index) == ["A", "C", "B"]  # flagged rows last


def test_when_nobody_reaches_the_target_the_leaderboard_gives_no_ranks():
    final = finals_of({"A": [0.55, 0.58, 0.52], "B": [0.41, 0.47, 0.44]})  # noisy, all below the 0.6 target
    table = eb.leaderboard(final, costs_of("AB"))
    assert set(table["rank"]) == {lb.UNRANKED}
    markdown = eb.leaderboard_markdown(table, {"G": 2.0}, 3)
    assert lb.NOT_INFORMATIVE in markdown and "| 1 | A" not in markdown and "| – | A" in markdown
    # a flagged run at the target does not make the ranks informative either
    flagged = finals_of({"A": [0.7] * 3, "B": [0.5] * 3}, times={"A": [1.0] * 3}, flags={"A": runs.OVER_BUDGET})
    assert lb.NOT_INFORMATIVE in eb.leaderboard_markdown(eb.leaderboard(flagged, costs_of("AB")), {"G": 2.0}, 3)


def test_a_rank_that_changes_between_seeds_is_a_tie():
    final = finals_of({"A": [0.8, 0.7, 0.9], "B": [0.7, 0.8, 0.6], "C": [0.5, 0.5, 0.5]}, times={"A": [1.0] * 3})
    table = eb.leaderboard(final, costs_of("ABC")).set_index("method")
    assert table.loc["A", "rank"] == "1-2 (tie)" and table.loc["B", "rank"] == "1-2 (tie)"
    assert table.loc["C", "rank"] == "3"
    assert list(table.index) == ["A", "B", "C"]  # by mean test accuracy
    assert table.loc["A", "test_accuracy"] == pytest.approx(0.8)
    assert table.loc["C", "spread"] == pytest.approx(0.0)


def test_leaderboard_reports_median_time_unreached_seeds_and_unmeasured_memory():
    final = finals_of({"A": [0.8, 0.8, 0.8]}, times={"A": [1.0, float("nan"), 3.0]})
    row = eb.leaderboard(final, costs_of("A")).iloc[0]
    assert row["seconds_to_target"] == 3.0 and row["reached"] == "2/3"
    markdown = eb.leaderboard_markdown(eb.leaderboard(final, costs_of("A", peaks={"A": float("nan")})), {"G": 2.0}, 3)
    assert "| 1 | A | 0.800 ± 0.000 |" in markdown and "task G 2 s" in markdown and "| n/a | 2 |" in markdown


def test_a_zero_byte_peak_is_not_a_measurement(monkeypatch):
    class Blind:
        bytes = 0

        def __init__(self, device):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(memory, "PeakMemory", Blind)
    solver = MinibatchMLP([3, 8, 2], gradient="backprop", update="sgd", lr=0.1, batch=4)
    problem = tiny_task().mlp
    _, cost = eb.step_cost(solver, solver.init(problem, torch.Generator().manual_seed(0)), problem)
    assert math.isnan(cost["peak_bytes"]) and cost["state_bytes"] > 0


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


def test_minibatch_sgd_step_matches_autograd_on_the_drawn_rows():
    problem = tiny_task().mlp
    inner = TorchOptimizer(lambda p: models.mlp([3, 4, 2]), "gd", lr=0.5)
    solver = Minibatch(inner, batch=6)
    state = solver.init(problem, torch.Generator().manual_seed(3))
    before = {n: p.detach().clone() for n, p in state.inner.model.named_parameters()}
    rows_before = state.rows.get_state()
    after = solver.step(state, problem)
    assert torch.equal(state.rows.get_state(), rows_before)  # the step left its input's generator alone
    rows = torch.randint(0, 20, (6,), generator=torch.Generator().manual_seed(3 + 2))
    reference = models.mlp([3, 4, 2])
    reference.load_state_dict(before)
    loss = torch.nn.functional.cross_entropy(reference(problem.x[rows]), problem.y[rows])
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    for (name, p), g in zip(after.inner.model.named_parameters(), grads):
        torch.testing.assert_close(p.detach(), before[name] - 0.5 * g)
    assert after.k == 1
    with pytest.raises(ValueError, match="invalid batch"):
        Minibatch(inner, batch=0)


def test_practitioner_baselines_are_in_the_catalogue():
    names = {m.name: m for m in eb.gradient_methods(8, 8, 16)}
    assert names["Adam, mini-batch"].family == names["SGD + momentum, mini-batch"].family
    solver = names["SGD + momentum, mini-batch"].make(tiny_task(), 0.1)
    assert isinstance(solver, Minibatch) and 128 <= solver.batch <= 1024


def test_figures_share_one_legend_outside_the_panels(clock):
    methods = [method(lambda task, value: Scripted(clock, test=lambda k: k / 10), "fast", "backprop, full batch"),
               method(lambda task, value: Scripted(clock), "slow", "ADMM-type")]
    comparison = eb.compare({"fashion-mnist": tiny_task()}, methods, budgets={"M": 0.3}, seeds=2, points=2)
    final = eb.finals(comparison)
    fig = eb.accuracy_vs_seconds(comparison.histories, final, methods, comparison.budgets)
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    board = eb.leaderboard(final, comparison.costs)
    fig = eb.memory_vs_seconds_to_target(board, methods, comparison.tasks, comparison.budgets)
    assert len(fig.legends) == 1 and "not measured (left out)" in fig.axes[0].get_title()  # 0-byte states


@pytest.mark.parametrize("kwargs", [{"seeds": 0}, {"points": 0}])
def test_compare_refuses_bad_counts(kwargs):
    with pytest.raises(ValueError, match="invalid"):
        eb.compare({}, [], budgets={"M": 1.0}, **{"seeds": 1, "points": 1, **kwargs})


def test_report_embeds_the_leaderboard_of_a_complete_run(tmp_path):
    folder = tmp_path / "X1"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"status": "complete", "minutes": 1.0}))
    (folder / "claims.json").write_text(json.dumps({"claims": []}))
    board = eb.leaderboard(finals_of({"A": [0.8], "B": [0.7]}, times={"A": [1.0]}), costs_of("AB"))
    eb.save_leaderboard(board, folder, {"G": 2.0}, 1)
    text = report.render_report(tmp_path, "quick")
    assert "## X1 leaderboard" in text and "| 1 | A | 0.800 ± 0.000 |" in text
    (folder / "manifest.json").write_text(json.dumps({"status": "failed"}))
    assert "## X1 leaderboard" not in report.render_report(tmp_path, "quick")


def test_a_sampled_training_score_trains_on_every_row_and_scores_only_the_sample():
    """At full size X1 scores the training accuracy on a fixed sample; the steps still see every row, the
    test split is scored whole, and the sampled accuracy is the brute-force accuracy on exactly those rows."""
    g = torch.Generator().manual_seed(0)
    x, labels = torch.randn(200, 5, generator=g), torch.randint(0, 3, (200,), generator=g)
    full = Problem(Split(x, labels), {"test": Split(x[:50], labels[:50])})
    sampled = eb.tasks.score_on_sample(full, 40)
    solver = TorchOptimizer(lambda p: models.mlp([5, 8, 3]), "adam", lr=0.05)
    states = [solver.init(p, torch.Generator().manual_seed(1)) for p in (full, sampled)]
    for _ in range(3):
        states = [solver.step(state, p) for state, p in zip(states, (full, sampled))]
    for a, b in zip(states[0].model.parameters(), states[1].model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same steps: every row trained on
    on_full, on_sample = (evaluate(solver, state, p) for state, p in zip(states, (full, sampled)))
    rows = sampled.train_scored
    assert rows.shape == (40,) and rows.unique().numel() == 40
    expected = (states[0].model(x[rows]).argmax(1) == labels[rows]).float().mean()
    torch.testing.assert_close(on_sample["train_accuracy"], expected)
    torch.testing.assert_close(on_sample["test_accuracy"], on_full["test_accuracy"])
    assert not torch.equal(on_sample["train_loss"], on_full["train_loss"])  # scored on 40 rows, not 200
    assert torch.equal(eb.tasks.score_on_sample(full, 40).train_scored, rows)  # the same rows for every run
    assert eb.tasks.score_on_sample(full, 0) is full and eb.tasks.score_on_sample(full, 200) is full
    assert "(accuracy on 40 of them)" in eb.Task("fashion-mnist", "M", sampled).label
