"""Taylor et al.'s ADMM: exact block minimisation makes the multiplier-free objective monotone."""

import pytest
import torch

from beyond_backprop.optim.admm_taylor import TaylorADMM


def test_objective_does_not_increase_during_warmup():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(100, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 1).long()
    solver = TaylorADMM([6, 12, 2], rho=1.0, warmup=10)
    state = solver.init(x, y, torch.Generator().manual_seed(1))
    values = []
    for _ in range(8):
        state = solver.step(state, x, y)
        values.append(float(solver.objective(state, x, y)))
    assert all(b <= a + 1e-3 * abs(a) for a, b in zip(values, values[1:]))
    assert values[-1] < values[0]


def test_history_columns_match_dladmm():
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(50, 4, generator=g), torch.randint(0, 3, (50,), generator=g)
    solver = TaylorADMM([4, 8, 3], warmup=1)
    _, history = solver.run(solver.init(x, y, g), x, y, 3, evaluate={"test": (x, y)})
    assert list(history.columns) == ["iteration", "seconds", "objective", "residual", "rho",
                                     "train_accuracy", "test_accuracy"]


def test_invalid_rho():
    with pytest.raises(ValueError):
        TaylorADMM([4, 2], rho=-1.0)
