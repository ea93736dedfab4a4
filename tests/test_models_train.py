"""MLP/GCN definitions against dense formulas; the baseline loop against torch.optim by hand."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from beyond_backprop import models, train


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


def test_train_full_batch_equals_a_hand_written_loop():
    torch.manual_seed(0)
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    model = models.mlp([5, 7, 3])
    reference = models.mlp([5, 7, 3])
    reference.load_state_dict(model.state_dict())
    history = train.train_full_batch(model, "adam", 0.01, train.Split(x, y), iterations=5, progress=False)
    opt = torch.optim.Adam(reference.parameters(), lr=0.01)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(reference(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    np.testing.assert_allclose(history["objective"], losses, rtol=1e-6)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)
    assert list(history.columns) == ["iteration", "seconds", "objective", "train_accuracy"]


def test_split_index_selects_labelled_rows_and_gd_learns():
    torch.manual_seed(1)
    x = torch.randn(60, 2)
    y = (x[:, 0] > 0).long()
    index = torch.arange(0, 60, 2)
    model = models.mlp([2, 2])
    history = train.train_full_batch(model, "gd", 0.5, train.Split(x, y, index),
                                     {"test": train.Split(x, y, index + 1)}, iterations=100, progress=False)
    assert history["objective"].iloc[-1] < history["objective"].iloc[0]
    assert history["test_accuracy"].iloc[-1] > 0.9


def test_bad_optimizer_name():
    with pytest.raises(ValueError, match="invalid optimizer"):
        train.train_full_batch(models.mlp([2, 2]), "lbfgs", 0.1, train.Split(torch.zeros(1, 2), torch.zeros(1).long()),
                               iterations=1)
