"""MLP/GCN definitions against dense formulas; the gradient baselines against torch.optim by hand."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from beyond_backprop import models
from beyond_backprop.optim.gradient import TorchOptimizer
from beyond_backprop.optim.solver import run_history
from beyond_backprop.problem import Problem, Split


def test_mlp_layout_and_validation():
    net = models.mlp([4, 8, 3], activation="tanh")
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Linear"]
    with pytest.raises(ValueError):
        models.mlp([4])
    with pytest.raises(ValueError):
        models.mlp([4, 2], activation="swish")


def test_gcn_matches_dense_formula():
    torch.manual_seed(0)
    adjacency = sp.random(6, 6, density=0.4, random_state=0, format="csr")
    a_hat = torch.tensor(adjacency.toarray(), dtype=torch.float32)
    gcn = models.GCN(models.sparse_tensor(adjacency), [5, 4, 3])
    with torch.no_grad():
        gcn.first_bias.normal_()
        gcn.second_bias.normal_()
    x = torch.randn(6, 5)
    hidden = torch.relu(a_hat @ x @ gcn.first.weight.T + gcn.first_bias)
    expected = a_hat @ hidden @ gcn.second.weight.T + gcn.second_bias
    torch.testing.assert_close(gcn(x), expected, rtol=1e-5, atol=1e-5)


def test_torch_optimizer_equals_a_hand_written_loop():
    x, y = torch.randn(40, 5, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 3
    problem = Problem(Split(x, y))
    solver = TorchOptimizer(lambda p: models.mlp([5, 7, 3]), "adam", lr=0.01)
    state = solver.init(problem, torch.Generator().manual_seed(1))
    reference = models.mlp([5, 7, 3])
    reference.load_state_dict(state.model.state_dict())
    state, history = run_history(solver, state, problem, iterations=5)
    opt = torch.optim.Adam(reference.parameters(), lr=0.01)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(reference(x), y).backward()
        opt.step()
    for p, q in zip(state.model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(reference(x), y)  # after the last step, as the history reports
    np.testing.assert_allclose(history["train_loss"].iloc[-1], float(loss), rtol=1e-6)
    assert list(history.columns) == ["iteration", "seconds", "train_loss", "train_accuracy"]


def test_split_index_selects_labelled_rows_and_gd_learns():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 2, generator=g)
    y = (x[:, 0] > 0).long()
    index = torch.arange(0, 60, 2)
    problem = Problem(Split(x, y, index), {"test": Split(x, y, index + 1)})
    solver = TorchOptimizer(lambda p: models.mlp([2, 2]), "gd", lr=0.5)
    state = solver.init(problem, g)
    _, history = run_history(solver, state, problem, iterations=100, evaluate_every=10)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["test_accuracy"].iloc[-1] > 0.9


@pytest.mark.parametrize("kwargs", [{"optimizer": "lbfgs"}, {"reduction": "max"}, {"lr": 0.0}])
def test_bad_optimizer_arguments(kwargs):
    arguments = {"optimizer": "adam", "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match="invalid"):
        TorchOptimizer(lambda p: models.mlp([2, 2]), arguments.pop("optimizer"), **arguments)


def test_linear_default_init_from_a_generator_equals_torchs_own_under_a_global_seed():
    torch.manual_seed(3)
    reference = models.mlp([6, 5, 4, 3])
    drawn = models.init_linear_default_(models.mlp([6, 5, 4, 3]), torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(reference.parameters(), drawn.parameters()))
    fan_in = 6 ** -0.5  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the first bias, Kaiming's bound for its weights
    assert drawn[0].bias.abs().max() <= fan_in and drawn[0].weight.abs().max() <= fan_in
