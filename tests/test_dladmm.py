"""dlADMM block updates against brute force, closed forms and a reference solver."""

import dataclasses

import pytest
import torch

from beyond_backprop.models import cross_entropy_sum, mlp_logits
from beyond_backprop.optim.admm_blocks import backtrack, exact_a, exact_w, update_z_last, update_z_relu
from beyond_backprop.optim.dladmm import DLADMM, OFFICIAL, PAPER, DLADMMOptions
from beyond_backprop.optim.quadratic_blocks import activation_step, weight_step
from beyond_backprop.problem import Problem, Split


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("weight_m", "weight_a"), [(1.0, 1.0), (1.0, 3.0), (2.0, 0.3)])
def test_z_relu_matches_brute_force_grid(weight_m, weight_a):
    g = _gen()
    m, a = 3 * torch.randn(400, generator=g), 3 * torch.randn(400, generator=g)
    grid = torch.linspace(-12, 12, 240001)
    cost = weight_m * (grid[None] - m[:, None]).square() + weight_a * (a[:, None] - torch.relu(grid[None])).square()
    best = cost.min(dim=1).values
    z = update_z_relu(m, a, weight_m, weight_a)
    mine = weight_m * (z - m).square() + weight_a * (a - torch.relu(z)).square()
    assert torch.all(mine <= best * (1 + 1e-5) + 1e-6)


def test_backtracking_ends_with_sufficient_decrease():
    g = _gen(1)
    q = torch.randn(20, 20, generator=g)
    hessian = q @ q.T + torch.eye(20)
    f = lambda v: 0.5 * v @ hessian @ v  # noqa: E731
    x = torch.randn(20, generator=g)
    grad = hessian @ x
    step, t = backtrack(f, x, grad, 1e-3)
    assert t >= 1e-3 and not torch.equal(step, x)
    assert f(step) <= f(x) + grad @ (step - x) + t / 2 * (step - x).square().sum() + 1e-4
    assert t / 2 < torch.linalg.eigvalsh(hessian).max() * 2  # stopped within one doubling of the Lipschitz constant


def weight_objective(w, a_prev, target, weight):
    """phi_W = weight/2 ||target - a_prev W^T||^2, written out independently of the solver."""
    return 0.5 * weight * (target - a_prev @ w.T).square().sum()


def activation_objective(a, w_next, target_next, weight_next, h, weight):
    """phi_a = weight_next/2 ||target_next - a W^T||^2 + weight/2 ||a - h||^2, written out independently."""
    return weight_objective(w_next, a, target_next, weight_next) + 0.5 * weight * (a - h).square().sum()


def test_w_and_a_steps_do_not_increase_and_exact_is_a_stationary_point():
    """The solver's backtracked W- and a-steps (quadratic_blocks) and its exact solves (admm_blocks) against the
    subproblems' objectives and their autograd gradients."""
    g = _gen(2)
    a_prev, target = torch.rand(50, 8, generator=g), torch.randn(50, 6, generator=g)
    w = torch.randn(6, 8, generator=g)
    before = weight_objective(w, a_prev, target, 2.0)
    quad, _, _ = weight_step(w, a_prev, a_prev @ w.T, target.clone(), 2.0, 1.0)
    exact = exact_w(a_prev, target)
    assert weight_objective(quad, a_prev, target, 2.0) <= before
    assert weight_objective(exact, a_prev, target, 2.0) <= weight_objective(quad, a_prev, target, 2.0) + 1e-4
    assert torch.func.grad(weight_objective)(exact, a_prev, target, 2.0).abs().max() < 1e-3
    a, h = torch.randn(50, 8, generator=g), torch.rand(50, 8, generator=g)
    a_before = activation_objective(a, w, target, 2.0, h, 0.5)
    a_quad, _, _ = activation_step(a, w, a @ w.T, target.clone(), 2.0, h, 0.5, 1.0)
    a_exact = exact_a(w, target, 2.0, h, 0.5)
    a_grad = torch.func.grad(activation_objective)(a_exact, w, target, 2.0, h, 0.5)
    assert activation_objective(a_quad, w, target, 2.0, h, 0.5) <= a_before
    assert a_grad.abs().max() < 1e-3


def test_fista_matches_lbfgs():
    g = _gen(3)
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (30,), generator=g), 4).float()
    target, rho = torch.randn(30, 4, generator=g), 0.7
    mine = update_z_last(torch.zeros(30, 4), target, y, rho, tol=1e-9, max_iter=3000, check_every=1)
    ref = torch.zeros(30, 4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([ref], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = cross_entropy_sum(ref, y.double()) + 0.5 * rho * (ref - target.double()).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(mine.double(), ref.detach(), atol=1e-3)


def test_lagrangian_decreases_at_rho_one():
    g = _gen(4)
    x = torch.rand(120, 10, generator=g)
    y = (x[:, :3].sum(1) > 1.5).long() + (x[:, 3] > 0.5).long()
    problem = Problem(Split(x, y))
    solver = DLADMM([10, 16, 16, 3], rho=1.0, nu=None, rho_rule="fixed")
    state = solver.init(problem, _gen(5))
    values = [float(solver.lagrangian(state, problem))]
    for _ in range(15):
        state = solver.step(state, problem)
        values.append(float(solver.lagrangian(state, problem)))
    assert all(b <= a * (1 + 1e-5) for a, b in zip(values[1:], values[2:]))
    assert values[-1] < values[1]


def test_exact_subproblems_give_a_finite_lagrangian():
    g = _gen(6)
    problem = Problem(Split(torch.rand(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)))
    exact = DLADMM([5, 7, 3], rho=1.0, nu=None, rho_rule="fixed", subproblem="exact")
    state = exact.step(exact.init(problem, _gen(7)), problem)
    assert torch.isfinite(exact.lagrangian(state, problem))


@pytest.mark.parametrize("kwargs", [{"rho": 0.0}, {"nu": -1.0}, {"rho_rule": "sometimes"}, {"subproblem": "diag"},
                                    {"fista_step": 0.0}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        DLADMM([4, 3, 2], **kwargs)


def _blobs(n: int = 60, seed: int = 10) -> Problem:
    g = _gen(seed)
    y = torch.arange(n) % 3
    x = 3 * torch.randn(3, 6, generator=g)[y] + 0.3 * torch.randn(n, 6, generator=g)
    return Problem(Split(x, y))


def test_presets_differ_in_exactly_the_official_code_switches():
    differing = {f.name for f in dataclasses.fields(DLADMMOptions)
                 if getattr(PAPER, f.name) != getattr(OFFICIAL, f.name)}
    assert differing == {"nu", "rho_rule", "restart_backtracking", "z_last_init", "fista_step", "shared_init"}
    assert (OFFICIAL.nu, OFFICIAL.rho_rule, OFFICIAL.z_last_init, OFFICIAL.fista_step) == (None, "code", "labels", 4.0)
    assert (PAPER.rho, PAPER.nu, PAPER.rho_rule) == (1e-6, 1e-6, "paper")
    assert DLADMM([6, 5, 3], options=OFFICIAL, rho=1.0).options == dataclasses.replace(OFFICIAL, rho=1.0)
    with pytest.raises(ValueError, match="rho_rule"):
        dataclasses.replace(OFFICIAL, rho_rule="sometimes")


def test_presets_start_where_their_source_starts():
    problem, widths = _blobs(), [6, 5, 4, 3]
    paper = DLADMM(widths, options=PAPER).init(problem, _gen(1))
    official = DLADMM(widths, options=OFFICIAL).init(problem, _gen(1))
    # z_L: the forward pass (paper) or 2y - 1 (code); the hidden z, a are the forward pass in both
    assert torch.equal(official.z[-1], 2 * problem.onehot - 1)
    assert torch.allclose(paper.z[-1], mlp_logits(paper.weights, paper.biases, problem.x))
    assert torch.allclose(official.z[0], problem.x @ official.weights[0].T + official.biases[0])
    # the code resets its seed before every tensor: each is the first draw of the generator; the paper draws in turn
    for tensor in official.weights + official.biases:
        assert torch.equal(tensor, 0.1 * torch.randn(tensor.shape, generator=_gen(1)))
    assert not torch.equal(paper.weights[1], 0.1 * torch.randn(paper.weights[1].shape, generator=_gen(1)))
    assert torch.equal(paper.weights[0], official.weights[0])  # same generator, same first tensor


def test_presets_penalise_hidden_layers_and_adapt_rho_by_their_rules():
    problem, widths = _blobs(), [6, 120, 3]
    paper, official = DLADMM(widths, options=PAPER), DLADMM(widths, options=OFFICIAL)
    state = paper.init(problem, _gen(2))
    state.a[0] = state.a[0] + 1.0  # a hidden constraint violated by ||1||^2 = 60 * 120
    state.rho = 0.5
    gap = 0.5 * 60 * 120
    assert float(official.lagrangian(state, problem) - paper.lagrangian(state, problem)) == pytest.approx(
        (0.5 - 1e-6) * gap, rel=1e-4)  # nu tied to rho (code) against nu = 1e-6 (paper)
    for solver in (paper, official):
        s = solver.init(problem, _gen(3))
        s.losses = [0.0, 0.1, 0.2]  # the training loss rose twice: one more rise fires the code's rule
        s.k = 99  # the paper's schedule fires at iteration 100
        s = solver.step(s, problem)
        if solver is paper:
            assert (s.rho, s.backtracking_scale) == (pytest.approx(1e-5), 1.0)
        else:
            # rho x10, and the backtracking starts theta, tau x10 at hidden width >= 100
            assert (s.rho, s.backtracking_scale) == (pytest.approx(1e-5), 10.0)
            assert s.losses[-1] > 0.2
    s = official.step(official.init(problem, _gen(3)), problem)
    assert (s.rho, s.k) == (1e-6, 1)  # no rise yet: the code's rho stays


@pytest.mark.parametrize("widths", [[6, 3], [6, 20, 3], [6, 20, 20, 3]])
def test_code_rule_watches_the_training_loss_of_the_plain_network(widths):
    """The loss the code's ρ rule records (from the step's kept first-layer product) is the forward pass's."""
    problem = _blobs()
    problem = Problem(Split(problem.x.double(), problem.y), classes=3)
    solver = DLADMM(widths, options=OFFICIAL)
    s = solver.init(problem, _gen(4))
    for _ in range(2):
        s = solver.step(s, problem)
    loss = torch.nn.functional.cross_entropy(mlp_logits(s.weights, s.biases, problem.x), problem.y)
    assert s.losses[-1] == pytest.approx(float(loss), rel=1e-10)
