"""Graph-augmented features against a dense numpy reference."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from beyond_backprop.data.graph_features import augmented_features


def _random_graph(nodes: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((nodes, nodes)) < 0.3, k=1)
    return sp.csr_matrix((upper | upper.T).astype(np.float64))


@pytest.mark.parametrize("extra_identity", [True, False])
def test_matches_dense_powers(extra_identity):
    adjacency = _random_graph(12, seed=0)
    features = torch.from_numpy(np.random.default_rng(1).random((12, 3)).astype(np.float32))
    rows = torch.tensor([0, 5, 7])
    dense = adjacency.toarray() + np.eye(12)
    scale = np.diag(dense.sum(axis=1) ** -0.5)
    operator = scale @ dense @ scale + (np.eye(12) if extra_identity else 0)
    h = features.numpy().astype(np.float64)
    expected = np.concatenate([np.linalg.matrix_power(operator, k) @ h for k in (4, 3, 2, 1, 0)], axis=1)[rows]
    got = augmented_features(features, adjacency, rows, hops=4, extra_identity=extra_identity)
    assert got.shape == (3, 15) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_rejects_bad_arguments():
    adjacency = _random_graph(5, seed=2)
    with pytest.raises(ValueError, match="invalid hops"):
        augmented_features(torch.ones(5, 2), adjacency, torch.arange(5), hops=-1)
    with pytest.raises(ValueError, match="invalid adjacency"):
        augmented_features(torch.ones(4, 2), adjacency, torch.arange(4))
