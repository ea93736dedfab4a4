"""The solver contract: run_history's timing, budget and columns, and every solver through one table."""

from __future__ import annotations

import copy
import dataclasses
import io
from dataclasses import dataclass

import pytest
import torch

from beyond_backprop import models, runtime
from beyond_backprop.optim import dladmm, dladmm_gcn, mdlam
from beyond_backprop.optim.admm_taylor import TaylorADMM
from beyond_backprop.optim.dladmm import DLADMM
from beyond_backprop.optim.dladmm_gcn import DLADMMGCN
from beyond_backprop.optim.gradient import TorchOptimizer
from beyond_backprop.optim.mdlam import MDLAM
from beyond_backprop.problem import Problem, Split
from beyond_backprop.optim.solver import METRICS, run_history
from beyond_backprop.optim.stochastic import MinibatchMLP


def separable(seed: int = 0, n: int = 60, d: int = 6, classes: int = 3) -> Problem:
    """Gaussian blobs far apart: every method worth the name separates them."""
    g = torch.Generator().manual_seed(seed)
    centres = 4.0 * torch.randn(classes, d, generator=g)
    labels = torch.arange(n) % classes
    x = centres[labels] + 0.3 * torch.randn(n, d, generator=g)
    xt = centres[labels] + 0.3 * torch.randn(n, d, generator=g)
    return Problem(Split(x, labels), {"test": Split(xt, labels)})


@dataclass
class SleepState:
    k: int = 0


class FakeClock:
    """Stands in for the ``time`` module of :mod:`beyond_backprop.runtime`: ``sleep`` advances ``perf_counter``
    exactly, so timing tests cannot flake on a loaded machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(runtime, "time", fake)
    return fake


class Sleeper:
    """A solver whose step and evaluation take known times on ``clock``."""

    def __init__(self, step_seconds: float, evaluate_seconds: float, clock: FakeClock | None = None) -> None:
        self.step_seconds, self.evaluate_seconds, self.clock = step_seconds, evaluate_seconds, clock or FakeClock()

    def init(self, problem, generator):
        return SleepState()

    def step(self, state, problem):
        self.clock.sleep(self.step_seconds)
        return SleepState(state.k + 1)

    def metrics(self, state, problem):
        self.clock.sleep(self.evaluate_seconds)
        return {"rho": torch.tensor(1.0)}

    def logits(self, state, problem, split):
        return torch.zeros(split.targets.shape[0], problem.classes)


def test_seconds_count_steps_only(clock):
    problem = separable()
    _, history = run_history(Sleeper(0.01, 0.05, clock), SleepState(), problem, iterations=5)
    assert list(history["iteration"]) == [1, 2, 3, 4, 5]
    assert history["seconds"].tolist() == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])  # not the evaluations
    assert clock.now == pytest.approx(0.05 + 5 * 0.05)


def test_budget_is_respected_within_one_step(clock):
    problem = separable()
    state, history = run_history(Sleeper(0.03, 0.5, clock), SleepState(), problem, seconds=0.1, evaluate_every=2)
    spent = history["seconds"].iloc[-1]
    assert spent == pytest.approx(0.12)  # stops at the first step that ends past the budget: the fourth
    assert state.k == history["iteration"].iloc[-1] == 4
    assert list(history["iteration"]) == [2, 4]  # every second step, and the last
    assert clock.now == pytest.approx(0.12 + 2 * 0.5)  # two evaluations happened, and were not counted


def test_iterations_cap_a_budget():
    _, history = run_history(Sleeper(0.0, 0.0), SleepState(), separable(), iterations=3, seconds=100.0)
    assert list(history["iteration"]) == [1, 2, 3]


@pytest.mark.parametrize("kwargs", [{}, {"iterations": 0}, {"seconds": -1.0}, {"iterations": 2, "evaluate_every": 0}])
def test_run_history_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="run_history needs|invalid"):
        run_history(Sleeper(0.0, 0.0), SleepState(), separable(), **kwargs)


def test_metrics_outside_the_vocabulary_are_refused():
    class Misnamed(Sleeper):
        def metrics(self, state, problem):
            return {"objective": torch.tensor(0.0)}

    with pytest.raises(ValueError, match="objective"):
        run_history(Misnamed(0.0, 0.0), SleepState(), separable(), iterations=1)


def test_split_and_problem_check_their_data():
    with pytest.raises(ValueError, match="integer class indices"):
        Split(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="invalid split"):
        Split(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    problem = separable()
    assert problem.classes == 3 and problem.onehot.shape == (60, 3)
    assert torch.equal(problem.onehot.argmax(1), problem.y)
    with pytest.raises(ValueError, match="invalid train_scored"):
        Problem(problem.train, train_scored=torch.zeros(2, 2, dtype=torch.long))
    graph = Split(problem.train.inputs, problem.train.labels, index=torch.arange(10))
    with pytest.raises(ValueError, match="invalid train_scored"):
        Problem(graph, train_scored=torch.arange(5))


def gradient_solver(problem: Problem) -> TorchOptimizer:
    return TorchOptimizer(lambda p: models.mlp([p.x.shape[1], 16, p.classes]), "adam", lr=0.05)


# Each entry: a name and a function of the problem that makes the solver. Every solver of the package is listed.
SOLVERS = {
    "adam": gradient_solver,
    "gd (summed loss)": lambda p: TorchOptimizer(lambda q: models.mlp([q.x.shape[1], 16, q.classes]), "gd",
                                                 lr=0.01, reduction="sum"),
    "FW, backprop gradient": lambda p: MinibatchMLP([p.x.shape[1], 16, p.classes], gradient="backprop",
                                                    update="frank-wolfe", lr=0.5, batch=32),
    # one random direction per step: in 30 steps a hidden layer often loses a class to dead units
    # (7 seeds of 8 reach 1.0 with a linear model, 2-6 of 8 with 4-16 hidden units); a loose polytope
    "averaged PFG-FW": lambda p: MinibatchMLP([p.x.shape[1], p.classes], gradient="forward",
                                              update="frank-wolfe", lr=0.2, batch=32, k_fraction=1.0),
    "forward-gradient SGD": lambda p: MinibatchMLP([p.x.shape[1], 16, p.classes], gradient="forward",
                                                   update="sgd", lr=0.02, batch=32),
    "dlADMM (paper)": lambda p: DLADMM([p.x.shape[1], 16, 16, p.classes], rho=1.0, nu=1.0),
    "dlADMM (official)": lambda p: DLADMM([p.x.shape[1], 16, 16, p.classes], options=dladmm.OFFICIAL, rho=1.0),
    # gamma/rho = 10, the ratio of Taylor et al.'s beta = 1, gamma = 10; at gamma = rho = 1 the forward pass
    # lags the ADMM variables and stays at 2/3 on these blobs after 30 steps
    "taylor admm": lambda p: TaylorADMM([p.x.shape[1], 16, p.classes], rho=0.1, gamma=1.0),
    "mdlam (paper)": lambda p: MDLAM([p.x.shape[1], 16, 16, p.classes], rho=1.0),
    "mdlam (official)": lambda p: MDLAM([p.x.shape[1], 16, 16, p.classes], rho=1.0, options=mdlam.OFFICIAL),
    "dlADMM-GCN (no edges)": lambda p: DLADMMGCN([p.x.shape[1], 16, p.classes], rho=1.0),
    "dlADMM-GCN official (no edges)": lambda p: DLADMMGCN([p.x.shape[1], 16, p.classes],
                                                          options=dladmm_gcn.OFFICIAL, rho=1.0),
}


@pytest.mark.parametrize("name", SOLVERS)
def test_every_solver_meets_the_contract(name):
    problem = separable()
    solver = SOLVERS[name](problem)
    state = solver.init(problem, torch.Generator().manual_seed(0))
    state, history = run_history(solver, state, problem, iterations=30, evaluate_every=10)
    columns = set(history.columns)
    named = {c for c in columns if not c.endswith("_accuracy")}
    assert named <= set(METRICS), f"{name}: columns outside the vocabulary: {named - set(METRICS)}"
    assert {"iteration", "seconds", "train_loss", "train_accuracy", "test_accuracy"} <= columns
    assert list(history["iteration"]) == [10, 20, 30] and state.k == 30
    first = solver.init(problem, torch.Generator().manual_seed(0))
    with torch.no_grad():
        start = float(torch.nn.functional.cross_entropy(solver.logits(first, problem, problem.train), problem.y))
    assert history["train_loss"].iloc[-1] < 0.5 * start
    assert history["train_accuracy"].iloc[-1] == 1.0
    # the state round-trips: saved and loaded, it takes the same next step as the original
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    copy = torch.load(buffer, weights_only=False)
    after, after_copy = solver.step(state, problem), solver.step(copy, problem)
    assert after.k == after_copy.k == 31
    assert torch.equal(solver.logits(after, problem, problem.train), solver.logits(after_copy, problem, problem.train))


def test_gradient_init_is_the_documented_normal_from_the_generator():
    problem = separable()
    solver = gradient_solver(problem)
    one, two = (solver.init(problem, torch.Generator().manual_seed(3)) for _ in range(2))
    weights = torch.cat([p.detach().flatten() for p in one.model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(one.model.parameters(), two.model.parameters()))
    assert abs(float(weights.std()) - 0.1) < 0.02 and abs(float(weights.mean())) < 0.02


def contents(value) -> list:
    """Every tensor, generator state and number reachable from a solver state, in a fixed order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, torch.Generator):
        return [value.get_state()]
    if isinstance(value, torch.nn.Module):
        return contents(value.state_dict())
    if isinstance(value, torch.optim.Optimizer):
        return contents(value.state_dict()["state"])
    if dataclasses.is_dataclass(value):
        return [item for f in dataclasses.fields(value) for item in contents(getattr(value, f.name))]
    if isinstance(value, dict):
        return [item for key in sorted(value, key=str) for item in contents(value[key])]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in contents(v)]
    return [value]


def same(one: list, two: list) -> bool:
    return len(one) == len(two) and all(
        torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(one, two))


@pytest.mark.parametrize("name", SOLVERS)
def test_step_is_pure(name):
    """The step rule: ``step`` returns the new state and leaves its input, tensors and fields, as it was."""
    problem = separable()
    solver = SOLVERS[name](problem)
    state = solver.init(problem, torch.Generator().manual_seed(0))
    state = solver.step(solver.step(state, problem), problem)  # past the first step: every buffer exists
    before = copy.deepcopy(contents(state))
    after = solver.step(state, problem)
    assert same(contents(state), before), f"{name}: step changed its input state"
    assert after.k == state.k + 1 and not same(contents(after), before)
    again = solver.step(state, problem)  # the old state steps again to the same new state
    assert same(contents(again), contents(after))



DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", SOLVERS)
def test_init_draws_on_the_generator_device(name, device):
    """The generator rule: a generator on the problem's device works, one seed gives one initial state, and the
    state lives on the problem's device."""
    problem = separable()
    problem = Problem(Split(problem.x.to(device), problem.y.to(device)),
                      {"test": Split(problem.evaluate["test"].inputs.to(device), problem.y.to(device))})
    solver = SOLVERS[name](problem)
    one, two = (solver.init(problem, torch.Generator(device=device).manual_seed(5)) for _ in range(2))
    assert same(contents(one), contents(two))
    drawn = [t for t in contents(one) if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() == 2]
    assert drawn and all(t.device.type == device for t in drawn)
    other = solver.init(problem, torch.Generator(device=device).manual_seed(6))
    assert not same(contents(one), contents(other))


@pytest.mark.parametrize("name", SOLVERS)
def test_init_refuses_widths_that_do_not_fit_the_problem(name):
    problem = separable()
    solver = SOLVERS[name](problem)
    if not hasattr(solver, "widths"):
        pytest.skip("a TorchOptimizer builds its model from the problem it is given: no widths to check")
    fewer_features = Problem(Split(problem.x[:, 1:], problem.y))
    more_classes = Problem(Split(problem.x, problem.y), classes=problem.classes + 1)
    for wrong in (fewer_features, more_classes):
        with pytest.raises(ValueError, match=r"invalid widths .* features and \d+ classes"):
            solver.init(wrong, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("solver", [DLADMM, DLADMMGCN, TaylorADMM, MDLAM])
def test_constructors_take_a_preset_by_keyword_and_refuse_unknown_overrides(solver):
    widths = [6, 8, 3]
    preset = solver(widths).options
    assert solver(widths, options=preset, rho=0.5).options == dataclasses.replace(preset, rho=0.5)
    with pytest.raises(ValueError, match="unknown option.* lr for .*Options; expected some of .*rho"):
        solver(widths, lr=0.1)
    with pytest.raises(TypeError):
        solver(widths, preset)  # the preset is a keyword

