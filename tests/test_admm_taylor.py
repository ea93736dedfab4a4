"""Taylor et al.'s ADMM: exact block minimisation makes the multiplier-free objective monotone."""

import pytest
import torch

from beyond_backprop.optim.admm_taylor import TaylorADMM
from beyond_backprop.optim.solver import Problem, Split, run_history


def toy_problem(seed: int = 0, n: int = 100, d: int = 6) -> Problem:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    return Problem(Split(x, (x[:, 0] + x[:, 1] > 1).long()), {"test": Split(x[:20], (x[:20, 0] > 0.5).long())})


def test_lagrangian_does_not_increase_during_warmup():
    problem = toy_problem()
    solver = TaylorADMM([6, 12, 2], rho=1.0, warmup=10)
    state = solver.init(problem, torch.Generator().manual_seed(1))
    values = []
    for _ in range(8):
        state = solver.step(state, problem)
        values.append(float(solver.lagrangian(state, problem)))
    assert all(b <= a + 1e-3 * abs(a) for a, b in zip(values, values[1:]))
    assert values[-1] < values[0]


def test_history_has_the_contract_columns():
    problem = toy_problem()
    solver = TaylorADMM([6, 8, 2], warmup=1)
    _, history = run_history(solver, solver.init(problem, torch.Generator().manual_seed(2)), problem, 3)
    assert list(history.columns) == ["iteration", "seconds", "train_loss", "lagrangian", "residual", "rho",
                                     "train_accuracy", "test_accuracy"]
    assert list(history["iteration"]) == [1, 2, 3] and (history["rho"] == 1.0).all()


def test_invalid_rho():
    with pytest.raises(ValueError, match="invalid rho"):
        TaylorADMM([4, 2], rho=-1.0)
