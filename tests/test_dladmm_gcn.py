"""dlADMM-GCN: sparse operators against the dense construction, gradients against autograd, memory, the contract,
the presets against a transcription of the official code."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace

import pytest
import torch
from torch.nn.functional import one_hot

from beyond_backprop.optim import dladmm_gcn
from beyond_backprop.optim.admm_blocks import backtrack, update_z_last
from beyond_backprop.optim.dladmm_gcn import (
    GCN_T0, OFFICIAL, PAPER, DLADMMGCN, GCNOperators, GCNOptions, training_rows, update_z2_code, weight_decay,
)
from beyond_backprop.optim.solver import run_history
from beyond_backprop.problem import Problem, Split
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


@pytest.mark.parametrize("decay", ["squared", "code"])
def test_block_gradients_are_autograd_gradients(decay):
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3], rho=0.3, mu=0.2, decay=decay)
    state = solver.step(solver.init(problem, _gen(3)), problem)
    state.u = 0.1 * torch.randn(state.u.shape, generator=_gen(4), dtype=state.u.dtype)
    ops = state.operators

    def phi1(w1, z1):
        return 0.5 * state.rho * (z1 - torch.relu(ops.p @ w1)).square().sum()

    def phi2(z1, w2):
        r = state.z2 - (ops.a_tt @ z1 + ops.fixed) @ w2
        return (state.u * r).sum() + 0.5 * state.rho * r.square().sum()

    def decay_term(w):  # mu ||W||^2, or the code's mu / 2 * torch.norm(w ** 2)
        mu = solver.options.mu
        return mu * w.square().sum() if decay == "squared" else mu / 2 * torch.linalg.norm(w ** 2)

    blocks = {  # block: (its objective, the variable, solver's update)
        "w1": (lambda v: phi1(v, state.z1) + decay_term(v), state.w1, solver._w1),
        "w2": (lambda v: phi2(state.z1, v) + decay_term(v), state.w2, solver._w2),
        "z1": (lambda v: phi1(state.w1, v) + phi2(v, state.w2), state.z1, solver._z1),
    }
    for name, (objective, variable, update) in blocks.items():
        expected, t = backtrack(objective, variable, torch.func.grad(objective)(variable),
                                solver._start(state, name), max_tries=solver.options.max_tries)
        moved = replace(state, t=dict(state.t))
        update(moved)
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


def test_the_codes_decay_is_far_weaker_than_the_squared_norm_on_a_large_matrix():
    w = 0.05 * torch.randn(100, 20, generator=_gen(12), dtype=torch.float64)
    squared, _ = weight_decay(w, 1.0, "squared")
    code, _ = weight_decay(w, 1.0, "code")
    assert code == pytest.approx(0.5 * float(torch.linalg.norm(w ** 2)))
    assert code < 0.05 * squared  # Gaussian entries: mu sum w^2 is about 2 sqrt(size / 3) = 52 times mu/2 sqrt(sum w^4)


def test_logits_are_the_gcn_forward_pass():
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3])
    state = solver.init(problem, _gen(7))
    expected = adjacency @ torch.relu(adjacency @ x @ state.w1) @ state.w2
    test = problem.evaluate["test"]
    torch.testing.assert_close(solver.logits(state, problem, test), expected[test.index])


@pytest.mark.parametrize("widths, kwargs", [([12, 16], {}), ([12, 16, 3], {"rho": 0.0}), ([12, 16, 3], {"mu": -1.0}),
                                            ([12, 16, 3], {"rho_every": 0}), ([12, 16, 3], {"decay": "l1"}),
                                            ([12, 16, 3], {"fista": "lbfgs"}), ([12, 16, 3], {"max_tries": 0}),
                                            ([12, 16, 3], {"z2_init": "zeros"}), ([12, 16, 3], {"fista_step": 0.0})])
def test_invalid_arguments(widths, kwargs):
    with pytest.raises(ValueError, match="invalid"):
        DLADMMGCN(widths, **kwargs)


def test_widths_must_fit_the_problem():
    adjacency, x, labels = dense_graph()
    with pytest.raises(ValueError, match="invalid widths .* 12 features and 3 classes"):
        DLADMMGCN([10, 16, 3]).init(graph_problem(adjacency, x, labels), _gen())


# --- the presets ---------------------------------------------------------------------------------------------


def test_presets_differ_in_exactly_the_official_code_switches():
    differing = {f.name for f in dataclasses.fields(GCNOptions) if getattr(PAPER, f.name) != getattr(OFFICIAL, f.name)}
    assert differing == {"decay", "faithful", "max_tries", "fista", "fista_step", "fista_check_every", "z2_init",
                         "shared_init"}
    assert (OFFICIAL.decay, OFFICIAL.faithful, OFFICIAL.max_tries, OFFICIAL.fista, OFFICIAL.fista_step,
            OFFICIAL.fista_check_every, OFFICIAL.z2_init, OFFICIAL.shared_init) == (
        "code", True, 33, "code", 5.0, 1, "forward", True)
    shared = ("rho", "rho_every", "rho_max", "mu")
    assert [getattr(PAPER, n) for n in shared] == [getattr(OFFICIAL, n) for n in shared] == [1e-3, 50, 1.0, 0.0]
    assert DLADMMGCN([12, 16, 3], OFFICIAL, mu=100.0).options == replace(OFFICIAL, mu=100.0)
    assert DLADMMGCN([12, 16, 3]).options == PAPER


def _recorded_backtracking(monkeypatch, solver, problem, steps):
    """``(start t, max_tries, accepted t)`` of every backtracking call over ``steps`` steps."""
    calls = []

    def recording(objective, x, grad, t, *, max_tries):
        out, accepted = backtrack(objective, x, grad, t, max_tries=max_tries)
        calls.append((t, max_tries, accepted))
        return out, accepted

    monkeypatch.setattr(dladmm_gcn, "backtrack", recording)
    state = solver.init(problem, _gen(9))
    for _ in range(steps):
        state = solver.step(state, problem)
    return calls


BACKTRACKED = ["w2", "z1", "w1", "w1", "z1", "w2"]  # the blocks of one step that backtrack, in order


def test_faithful_backtracking_always_starts_at_the_codes_constant(monkeypatch):
    problem = graph_problem(*dense_graph())
    for faithful in (False, True):
        calls = _recorded_backtracking(monkeypatch, DLADMMGCN([12, 16, 3], rho=1e-2, faithful=faithful), problem, 4)
        blocks = BACKTRACKED * 4
        assert len(calls) == len(blocks) and {tries for _, tries, _ in calls} == {32}
        constants = [GCN_T0[block] for block in blocks]
        starts = [t for t, _, _ in calls]
        if faithful:
            assert starts == constants
            continue
        last, expected = dict(GCN_T0), []  # the larger of the constant and half the last accepted value
        for block, (_, _, accepted) in zip(blocks, calls):
            expected.append(max(GCN_T0[block], last[block] / 2.0))
            last[block] = accepted
        assert starts == expected and starts != constants


def test_max_tries_is_passed_to_every_backtracking_search(monkeypatch):
    problem = graph_problem(*dense_graph())
    calls = _recorded_backtracking(monkeypatch, DLADMMGCN([12, 16, 3], OFFICIAL), problem, 2)
    assert len(calls) == 2 * len(BACKTRACKED) and {tries for _, tries, _ in calls} == {33}


def code_update_z2(adj_train, z1, z2_old, w2, y2, rho, label_onehot, mask):
    """``common.update_z2`` of the official GCN code, transcribed with dense tensors."""
    fz2, lamda, eta, tolerance = 10e10, 1, 5, 1e-3
    zeta = z2_old[mask]
    temp = adj_train @ (z1 @ w2)
    z2 = z2_old.clone()
    for _ in range(50):
        fz2_old = fz2
        prob = torch.softmax(z2[mask, :], dim=1)
        loss = -torch.einsum("ij, ij->", label_onehot, torch.log(prob + 1e-10))
        fz2 = loss + rho / 2 * torch.norm((z2[mask] - temp + y2[mask] / rho) ** 2)
        if abs(fz2 - fz2_old) < tolerance:
            break
        lamda_old = lamda
        lamda = (1 + math.sqrt(1 + 4 * lamda * lamda)) / 2
        gamma = (1 - lamda_old) / lamda
        gradient2 = prob - label_onehot
        zeta_old = zeta
        zeta = (-y2[mask] + rho * temp + z2[mask] / eta - gradient2) / (rho + 1 / eta)
        z2[mask, :] = (1 - gamma) * zeta + gamma * zeta_old
    return z2


def _backtracked(phi, old, gradient, t):
    """The code's backtracking: t doubled while ``phi(beta) > phi(old) + <g + t/2 d, d>``; after 33 tests the old."""
    loss, count = phi(old), 0
    beta = old - gradient / t
    while phi(beta) > loss + ((gradient + t / 2 * (beta - old)) * (beta - old)).sum():
        t, count = 2 * t, count + 1
        beta = old - gradient / t
        if count > 32:
            return old
    return beta


def code_gcn_run(adjacency, x, labels, train, test, seed, rho, mu, rho_every, epochs):
    """``main.py`` and ``common.py`` of the official GCN code, transcribed with dense tensors and autograd;
    yields ``(w1, w2, z1[train], z2[train], y2[train])`` after every epoch."""
    n, nhid, nclass = x.shape[0], 16, int(labels.max()) + 1
    mask = torch.zeros(n, dtype=torch.bool)
    mask[train] = True
    onehot = one_hot(labels[train], nclass).to(x.dtype)
    ws = []
    for shape in ((x.shape[1], nhid), (nhid, nclass)):  # torch.manual_seed(seed); glorot(w)
        g, stdv = _gen(seed), math.sqrt(6.0 / sum(shape))
        ws.append(torch.empty(shape, dtype=x.dtype).uniform_(-stdv, stdv, generator=g))
    w1, w2 = ws
    z1 = torch.relu(adjacency @ (x @ w1))
    z2 = adjacency @ (z1 @ w2)
    z1[test], z2[test] = 0.0, 0.0
    y2, adj_train = torch.zeros_like(z2), adjacency[mask]
    decay = (lambda w: mu / 2 * torch.norm(w ** 2)) if mu else (lambda w: 0.0)

    def grad(f, v):
        v = v.detach().requires_grad_()
        return torch.autograd.grad(f(v), v)[0]

    def update_w1(w1):
        phi = lambda w: rho / 2 * (z1[mask] - torch.relu(adj_train @ (x @ w))).square().sum() + decay(w)  # noqa: E731
        return _backtracked(phi, w1, grad(phi, w1), 1.0)

    def update_w2(w2):
        def phi(w):
            temp = z2[mask] - adj_train @ (z1 @ w)
            return ((y2[mask] + rho / 2 * temp) * temp).sum() + decay(w)
        return _backtracked(phi, w2, grad(phi, w2), 0.01)

    def update_z1(z1):
        temp1 = torch.relu(adj_train @ (x @ w1))

        def phi(rows):  # phi_z1 as a function of the training rows
            full = z1.clone()
            full[mask] = rows
            temp2 = z2[mask] - adj_train @ (full @ w2)
            return rho / 2 * (rows - temp1).square().sum() + ((y2[mask] + rho / 2 * temp2) * temp2).sum()
        out = z1.clone()
        out[mask] = _backtracked(phi, z1[mask], grad(phi, z1[mask]), 0.001)
        return out

    for epoch in range(epochs):
        z2 = code_update_z2(adj_train, z1, z2, w2, y2, rho, onehot, mask)
        w2 = update_w2(w2)
        z1 = update_z1(z1)
        w1 = update_w1(w1)
        w1 = update_w1(w1)
        z1 = update_z1(z1)
        w2 = update_w2(w2)
        z2 = code_update_z2(adj_train, z1, z2, w2, y2, rho, onehot, mask)
        y2 = y2 + rho * (z2 - adjacency @ (z1 @ w2))
        if (epoch + 1) % rho_every == 0:
            rho = min(10 * rho, 1)
        yield w1, w2, z1[mask], z2[mask], y2[mask]


@pytest.mark.parametrize("mu", [0.0, 0.05])
def test_official_preset_follows_the_published_code(mu):
    """Lockstep with a transcription of the official GCN code (dense Â, autograd gradients, the code's loops)."""
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3], OFFICIAL, rho=1e-2, mu=mu, rho_every=3)
    state = solver.init(problem, _gen(4))
    reference = code_gcn_run(adjacency, x, labels, problem.train.index, problem.evaluate["test"].index, 4,
                             rho=1e-2, mu=mu, rho_every=3, epochs=7)
    for expected in reference:
        state = solver.step(state, problem)
        for got, want in zip((state.w1, state.w2, state.z1, state.z2, state.u), expected):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    assert state.rho == pytest.approx(1.0)
    paper = DLADMMGCN([12, 16, 3], PAPER, rho=1e-2, mu=mu, rho_every=3)
    other = paper.init(problem, _gen(4))
    for _ in range(7):
        other = paper.step(other, problem)
    assert (other.w1 - state.w1).abs().max() > 1e-6  # the presets are different algorithms


def test_code_fista_is_the_codes_update_z2():
    adjacency, x, labels = dense_graph()
    g = _gen(21)
    z, target, u = (torch.randn(15, 3, generator=g, dtype=torch.float64) for _ in range(3))
    y, rho = one_hot(labels[:15], 3).to(torch.float64), 0.05
    mask = torch.ones(15, dtype=torch.bool)
    eye = torch.eye(15, dtype=torch.float64)  # adj_train = I, z1 = target, w2 = I: temp = target
    expected = code_update_z2(eye, target, z, torch.eye(3, dtype=torch.float64), u, rho, y, mask)
    torch.testing.assert_close(update_z2_code(z, target - u / rho, y, rho), expected, rtol=1e-9, atol=1e-10)
    # the project's loop tests and returns the prox point: another iterate of the same problem
    project = update_z_last(z, target - u / rho, y, rho, step=5.0, check_every=1, max_iter=50)
    assert (project - expected).abs().max() > 1e-8


def test_fista_switches_select_the_z2_loop(monkeypatch):
    problem = graph_problem(*dense_graph())
    calls = []
    for name in ("update_z_last", "update_z2_code"):
        original = getattr(dladmm_gcn, name)

        def recording(*args, _name=name, _original=original, **kwargs):
            calls.append((_name, kwargs["step"], kwargs["check_every"]))
            return _original(*args, **kwargs)
        monkeypatch.setattr(dladmm_gcn, name, recording)
    for options in (PAPER, OFFICIAL, replace(PAPER, fista_step=3.0, fista_check_every=2)):
        DLADMMGCN([12, 16, 3], options).step(DLADMMGCN([12, 16, 3], options).init(problem, _gen(1)), problem)
    assert calls == [("update_z_last", 2.0, 5)] * 2 + [("update_z2_code", 5.0, 1)] * 2 + [("update_z_last", 3.0, 2)] * 2


def test_z2_init_and_shared_init():
    adjacency, x, labels = dense_graph()
    problem = graph_problem(adjacency, x, labels)
    solver = DLADMMGCN([12, 16, 3], PAPER)
    paper, forward = solver.init(problem, _gen(2)), DLADMMGCN([12, 16, 3], z2_init="forward").init(problem, _gen(2))
    assert solver.residual_matrix(paper).abs().max() == 0  # constraint: Z_2 = Â_T Z_1 W_2
    torch.testing.assert_close(forward.z2, solver.logits(forward, problem, problem.train))  # the forward pass
    assert (forward.z2 - paper.z2).abs().max() > 1e-6  # the training nodes have test neighbours
    shared = DLADMMGCN([12, 16, 3], shared_init=True).init(problem, _gen(2))
    assert torch.equal(shared.w1, paper.w1)
    bounds = math.sqrt(6.0 / 28), math.sqrt(6.0 / 19)  # glorot of 12×16 and 16×3
    torch.testing.assert_close((shared.w2 + bounds[1]) / bounds[1], ((shared.w1 + bounds[0]) / bounds[0]).flatten()[:48]
                               .reshape(16, 3))
    assert not torch.allclose(paper.w2 / bounds[1], shared.w2 / bounds[1])
