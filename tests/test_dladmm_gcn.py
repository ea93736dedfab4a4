"""dlADMM-GCN: sparse operators against the dense construction, gradients against autograd, memory, the contract."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.nn.functional import one_hot

from beyond_backprop.optim.dladmm import backtrack
from beyond_backprop.optim.dladmm_gcn import DLADMMGCN, GCNOperators, training_rows
from beyond_backprop.optim.solver import Problem, Split, run_history
from beyond_backprop.runtime import PeakMemory


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def dense_graph(n: int = 30, features: int = 12, classes: int = 3, dtype=torch.float64, seed: int = 8):
    """A random symmetric graph with self-loops, normalised like Kipf's Â, as a dense matrix, and its data."""
    g = _gen(seed)
    edges = (torch.rand(n, n, generator=g) < 0.15).to(dtype)
    edges = ((edges + edges.T + torch.eye(n, dtype=dtype)) > 0).to(dtype)
    degree = edges.sum(1).rsqrt()
    adjacency = degree[:, None] * edges * degree[None]
    x = torch.rand(n, features, generator=g, dtype=dtype)
    return adjacency, x, torch.randint(0, classes, (n,), generator=g)


def graph_problem(adjacency: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> Problem:
    n = x.shape[0]
    train, test = torch.arange(0, n // 2), torch.arange(2 * n // 3, n)
    return Problem(Split(x, labels, train), {"test": Split(x, labels, test)}, adjacency.to_sparse_csr())


def dense_operators(adjacency: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, w1: torch.Tensor,
                    train: torch.Tensor, test: torch.Tensor) -> GCNOperators:
    """The reference: Â_T = Â[T] dense, P = Â_T X, Â_{T,T}, Â_{T,not T} Z_1[not T] with Z_1's test rows 0."""
    hidden = torch.relu(adjacency @ x @ w1)
    hidden[test] = 0.0
    rows = torch.zeros(x.shape[0], dtype=torch.bool)
    rows[train] = True
    a_t = adjacency[train]
    return GCNOperators(a_t @ x, a_t[:, train], a_t[:, ~rows] @ hidden[~rows], one_hot(labels[train]).to(x.dtype))


def test_training_rows_are_the_dense_rows():
    adjacency, _, _ = dense_graph(n=40)
    index = torch.tensor([3, 0, 17, 39, 5])
    for layout in (adjacency.to_sparse_csr(), adjacency.to_sparse(), adjacency):
        rows = training_rows(layout, index)
        assert rows.layout == torch.sparse_csr and rows.shape == (5, 40)
        assert torch.equal(rows.to_dense(), adjacency[index])


def test_iterates_match_the_dense_construction():
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3], rho=1e-2, rho_every=5)
    sparse = solver.init(problem, _gen(9))
    reference = dense_operators(adjacency, x, labels, sparse.w1, problem.train.index, problem.evaluate["test"].index)
    for name in ("p", "a_tt", "fixed", "targets"):
        torch.testing.assert_close(getattr(sparse.operators, name), getattr(reference, name), rtol=1e-14, atol=1e-15)
    dense = solver.init(problem, _gen(9))
    dense.operators, dense.z2 = reference, reference.mixed(dense.z1) @ dense.w2
    for _ in range(12):
        sparse, dense = solver.step(sparse, problem), solver.step(dense, problem)
    for name in ("w1", "w2", "z1", "z2", "u"):
        torch.testing.assert_close(getattr(sparse, name), getattr(dense, name), rtol=1e-12, atol=1e-13)
    assert sparse.t == dense.t and sparse.rho == dense.rho == pytest.approx(1.0)


def test_sparse_features_give_the_dense_features_iterates():
    adjacency, x, labels = dense_graph()
    x = (x > 0.7).to(x.dtype)  # bag-of-words-like
    dense, sparse = graph_problem(adjacency, x, labels), graph_problem(adjacency, x.to_sparse_csr(), labels)
    solver = DLADMMGCN([12, 16, 3], rho=1e-2)
    one, two = solver.init(dense, _gen(3)), solver.init(sparse, _gen(3))
    for _ in range(5):
        one, two = solver.step(one, dense), solver.step(two, sparse)
    for name in ("w1", "w2", "z1", "z2", "u"):
        torch.testing.assert_close(getattr(one, name), getattr(two, name), rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(solver.logits(one, dense, dense.train), solver.logits(two, sparse, sparse.train))


def test_init_allocates_no_dense_node_by_node_matrix():
    n, classes = 20_000, 3
    nodes = torch.arange(n)
    ring = torch.stack([torch.cat([nodes, nodes, nodes]), torch.cat([nodes, (nodes + 1) % n, (nodes - 1) % n])])
    adjacency = torch.sparse_coo_tensor(ring, torch.full((3 * n,), 1.0 / 3.0), (n, n), check_invariants=True)
    adjacency = adjacency.to_sparse_csr()
    x = torch.rand(n, 8, generator=_gen(1))
    labels = nodes % classes
    problem = Problem(Split(x, labels, nodes[:60]), {"test": Split(x, labels, nodes[-1000:])}, adjacency)
    solver = DLADMMGCN([8, 16, classes])
    with PeakMemory("cpu") as memory:
        state = solver.init(problem, _gen(2))
    assert memory.bytes < 0.01 * n * n * 4  # one N×N float32 matrix would be 1.6 GB; this is a few MB
    assert state.operators.a_tt.shape == (60, 60) and state.operators.p.shape == (60, 8)


def test_block_gradients_are_autograd_gradients():
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3], rho=0.3, mu=0.2)
    state = solver.step(solver.init(problem, _gen(3)), problem)
    state.u = 0.1 * torch.randn(state.u.shape, generator=_gen(4), dtype=state.u.dtype)
    ops = state.operators

    def phi1(w1, z1):
        return 0.5 * state.rho * (z1 - torch.relu(ops.p @ w1)).square().sum()

    def phi2(z1, w2):
        r = state.z2 - (ops.a_tt @ z1 + ops.fixed) @ w2
        return (state.u * r).sum() + 0.5 * state.rho * r.square().sum()

    blocks = {  # block: (its objective, the variable, solver's update)
        "w1": (lambda v: phi1(v, state.z1) + solver.mu * v.square().sum(), state.w1, solver._w1),
        "w2": (lambda v: phi2(state.z1, v) + solver.mu * v.square().sum(), state.w2, solver._w2),
        "z1": (lambda v: phi1(state.w1, v) + phi2(v, state.w2), state.z1, solver._z1),
    }
    for name, (objective, variable, update) in blocks.items():
        expected, t = backtrack(objective, variable, torch.func.grad(objective)(variable),
                                solver._start(state, name), max_tries=32)
        moved = replace(state, t=dict(state.t))
        update(moved, problem)
        torch.testing.assert_close(getattr(moved, name), expected, rtol=1e-10, atol=1e-12)
        assert moved.t[name] == t and objective(expected) <= objective(variable)


def test_a_step_depends_on_the_state_and_problem_alone():
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    other = graph_problem(*dense_graph(n=24, seed=11))
    solver = DLADMMGCN([12, 16, 3], rho=1e-2)
    first = solver.init(problem, _gen(5))
    solver.init(other, _gen(6))  # an init on another problem leaves nothing behind on the solver
    alone = DLADMMGCN([12, 16, 3], rho=1e-2)
    after, expected = solver.step(first, problem), alone.step(alone.init(problem, _gen(5)), problem)
    for name in ("w1", "w2", "z1", "z2", "u"):
        assert torch.equal(getattr(after, name), getattr(expected, name))


def test_gcn_fits_its_training_nodes():
    adjacency, x, labels = dense_graph(dtype=torch.float32)
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3], rho=1e-2, rho_every=10)
    state = solver.init(problem, _gen(9))
    _, history = run_history(solver, state, problem, iterations=40)
    assert set(history.columns) == {"iteration", "seconds", "train_loss", "lagrangian", "residual", "rho",
                                    "train_accuracy", "test_accuracy"}
    assert history["train_accuracy"].iloc[-1] > history["train_accuracy"].iloc[0]
    assert history["residual"].iloc[-1] < history["residual"].iloc[0]
    assert list(history["rho"].iloc[[8, 9, 19]]) == pytest.approx([1e-2, 0.1, 1.0])


def test_logits_are_the_gcn_forward_pass():
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3])
    state = solver.init(problem, _gen(7))
    expected = adjacency @ torch.relu(adjacency @ x @ state.w1) @ state.w2
    test = problem.evaluate["test"]
    torch.testing.assert_close(solver.logits(state, problem, test), expected[test.index])


@pytest.mark.parametrize("widths, kwargs", [([12, 16], {}), ([12, 16, 3], {"rho": 0.0}),
                                            ([12, 16, 3], {"mu": -1.0}), ([12, 16, 3], {"rho_every": 0})])
def test_invalid_arguments(widths, kwargs):
    with pytest.raises(ValueError, match="invalid"):
        DLADMMGCN(widths, **kwargs)


def test_widths_must_fit_the_problem():
    adjacency, x, labels = dense_graph()
    with pytest.raises(ValueError, match="invalid widths .* 12 features and 3 classes"):
        DLADMMGCN([10, 16, 3]).init(graph_problem(adjacency, x, labels), _gen())
