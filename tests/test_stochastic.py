"""Paper A's methods as contract solvers, against torch.autograd and the constraint sets."""

from __future__ import annotations

import itertools

import pytest
import torch

from beyond_backprop import models
from beyond_backprop.autodiff import forward_gradient
from beyond_backprop.optim.solver import run_history
from beyond_backprop.optim.stochastic import MinibatchMLP, estimate_gradient
from beyond_backprop.problem import Problem, Split


def blobs(n: int = 90, d: int = 5, classes: int = 3, seed: int = 0) -> Problem:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    x = 3.0 * torch.randn(classes, d, generator=g)[labels] + 0.3 * torch.randn(n, d, generator=g)
    return Problem(Split(x, labels), {"test": Split(x.flip(0), labels.flip(0))})


def autograd_gradient(model: torch.nn.Module, problem: Problem) -> list[torch.Tensor]:
    """The reference: torch.autograd's gradient of the mean cross-entropy on the training split."""
    return list(torch.autograd.grad(torch.nn.functional.cross_entropy(model(problem.x), problem.y),
                                    list(model.parameters())))


def test_forward_estimate_is_unbiased_against_autograd():
    torch.manual_seed(0)
    model = models.mlp([5, 8, 3])
    problem = blobs()
    exact = torch.cat([g.flatten() for g in autograd_gradient(model, problem)])
    generator = torch.Generator().manual_seed(1)
    samples = 4000
    mean = torch.zeros_like(exact)
    for _ in range(samples):
        estimate_gradient(model, problem.x, problem.y, forward=True, generator=generator)
        mean += torch.cat([p.grad.flatten() for p in model.parameters()])
    mean /= samples
    # E phi = grad f; the sample mean's error shrinks like sqrt((d + 2) / samples) ||grad f||
    d = exact.numel()
    assert torch.linalg.vector_norm(mean - exact) < 4 * (d / samples) ** 0.5 * torch.linalg.vector_norm(exact)
    assert torch.nn.functional.cosine_similarity(mean, exact, dim=0) > 0.9


def test_backprop_estimate_is_the_autograd_gradient():
    torch.manual_seed(0)
    model = models.mlp([5, 8, 3])
    problem = blobs()
    exact = autograd_gradient(model, problem)
    estimate_gradient(model, problem.x, problem.y, forward=False, generator=torch.Generator())
    assert all(torch.allclose(p.grad, g) for p, g in zip(model.parameters(), exact))


@pytest.mark.parametrize("gradient", ["backprop", "forward"])
def test_frank_wolfe_iterates_stay_in_their_k_sparse_sets(gradient):
    problem = blobs()
    solver = MinibatchMLP([5, 8, 3], gradient=gradient, update="frank-wolfe", batch=16, lr=0.5)
    state = solver.init(problem, torch.Generator().manual_seed(0))
    for _ in range(25):
        state = solver.step(state, problem)
    for group in state.optimizer.param_groups:
        assert group["constraint"].contains(group["params"][0].detach())
    assert state.k == 25


def test_sgd_step_is_the_update_along_the_estimate():
    problem = blobs(n=12)  # smaller than the batch: every step sees the whole set
    solver = MinibatchMLP([5, 8, 3], gradient="backprop", update="sgd", lr=0.1, batch=64)
    state = solver.init(problem, torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in state.model.parameters()]
    grads = autograd_gradient(state.model, problem)
    state = solver.step(state, problem)
    assert all(torch.allclose(p, b - 0.1 * g) for p, b, g in zip(state.model.parameters(), before, grads))


def test_minibatches_and_directions_come_from_the_init_generator():
    problem = blobs()
    solver = MinibatchMLP([5, 8, 3], gradient="forward", update="sgd", lr=0.01, batch=8)
    runs = []
    for _ in range(2):
        state = solver.init(problem, torch.Generator().manual_seed(4))
        for _ in range(3):
            state = solver.step(state, problem)
        runs.append(torch.cat([p.detach().flatten() for p in state.model.parameters()]))
    assert torch.equal(*runs)


def brute_force_lmo_value(g: torch.Tensor, k: int, radius: float) -> float:
    """min over every vertex v of the K-sparse polytope (K entries of ±radius, the rest 0) of <g, v>."""
    g = g.flatten().tolist()
    return min(sum(s * radius * g[i] for i, s in zip(support, signs))
               for support in itertools.combinations(range(len(g)), k)
               for signs in itertools.product((-1, 1), repeat=k))


def test_fw_gap_metric_is_the_brute_force_gap_over_every_vertex():
    problem = blobs(n=40, d=2, classes=2)
    solver = MinibatchMLP([2, 2, 2], gradient="backprop", update="frank-wolfe", batch=8, k_fraction=0.5,
                          gap_samples=30)
    state = solver.init(problem, torch.Generator().manual_seed(0))
    state = solver.step(state, problem)
    params = list(state.model.parameters())
    x, y = problem.x[:30], problem.y[:30]
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(state.model(x), y), params)
    expected = 0.0
    for g, p, group in zip(grads, params, state.optimizer.param_groups):
        constraint = group["constraint"]
        expected += float(torch.sum(g * p.detach())) - brute_force_lmo_value(g, constraint.k, constraint.radius)
    assert float(solver.metrics(state, problem)["fw_gap"]) == pytest.approx(expected, rel=1e-5)
    assert expected > 0  # a gap, not a vacuous 0: the iterate is not stationary after one step


def test_plain_pfg_fw_is_the_unaveraged_step_with_the_theory_schedule():
    problem = blobs()
    runs = {}
    for averaging in (True, False):
        solver = MinibatchMLP([5, 8, 3], gradient="forward", update="frank-wolfe", batch=16, averaging=averaging,
                              schedule="nonconvex", init="torch-default", gap_samples=20)
        state = solver.init(problem, torch.Generator().manual_seed(0))
        state, runs[averaging] = run_history(solver, state, problem, 6, evaluate_every=3)
        assert state.optimizer.schedule == "nonconvex"
        assert list(runs[averaging]["iteration"]) == [3, 6] and "fw_gap" in runs[averaging]
    assert not runs[True]["fw_gap"].equals(runs[False]["fw_gap"])  # the averaging changes the iterates


@pytest.mark.parametrize("kwargs", [{"gradient": "reverse", "update": "sgd", "lr": 0.1},
                                    {"gradient": "forward", "update": "frank-wolfe", "init": "xavier"},
                                    {"gradient": "forward", "update": "frank-wolfe", "schedule": "cosine"},
                                    {"gradient": "forward", "update": "sgd", "lr": 0.1, "averaging": False},
                                    {"gradient": "forward", "update": "sgd", "lr": 0.1, "gap_samples": 10},
                                    {"gradient": "forward", "update": "adam", "lr": 0.1},
                                    {"gradient": "forward", "update": "sgd"},
                                    {"gradient": "forward", "update": "sgd", "lr": 0.1, "batch": 0}])
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ValueError, match="invalid|needs|only"):
        MinibatchMLP([5, 8, 3], **kwargs)


@pytest.mark.parametrize(("averaging", "schedule", "directions", "pieces"),
                         [(True, "nonconvex", 1, False), (True, "sfw", 1, False), (False, "nonconvex", 1, False),
                          (True, "nonconvex", 4, False), (True, "nonconvex", 1, True), (False, "sfw", 1, True),
                          (True, "nonconvex", 4, True)])
def test_forward_fw_step_without_a_gradient_buffer_matches_the_grad_buffer_step_for_20_steps(
        monkeypatch, averaging, schedule, directions, pieces):
    """The step that folds each redrawn tangent into the FW direction against estimate_gradient + optimizer.step()
    (the step with a .grad buffer), from the same generators: equal to float round-off over 20 steps. With
    ``pieces``, tensors whose sizes 16 divides, tangents drawn a few rows at a time and layers applied 5 rows at a
    time (the estimate's own pieces are checked against torch.func in test_forward_gradient)."""
    if pieces:
        monkeypatch.setattr(forward_gradient, "PIECE_ROWS", 2)
        monkeypatch.setattr(forward_gradient, "ROW_CHUNK", 5)
    problem = blobs(n=200, d=16 if pieces else 5)
    widths = [16, 32, 16, 3] if pieces else [5, 8, 8, 3]
    solver = MinibatchMLP(widths, gradient="forward", update="frank-wolfe", batch=32, averaging=averaging,
                          schedule=schedule, directions=directions)
    folded = solver.init(problem, torch.Generator().manual_seed(4))
    buffered = solver.init(problem, torch.Generator().manual_seed(4))
    for _ in range(20):
        folded = solver.step_in_place(folded, problem)
        rows = torch.randint(0, 200, (32,), generator=buffered.batches)
        estimate_gradient(buffered.model, problem.x[rows], problem.y[rows], forward=True,
                          generator=buffered.directions, directions=directions)
        buffered.optimizer.step()
        buffered.model.zero_grad(set_to_none=True)
        assert all(p.grad is None for p in folded.model.parameters())
    for p, q in zip(folded.model.parameters(), buffered.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not torch.equal(next(folded.model.parameters()), next(solver.init(
        problem, torch.Generator().manual_seed(4)).model.parameters())), "the steps moved the weights"
