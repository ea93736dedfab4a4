"""dlADMM block updates against brute force, closed forms and a reference solver."""

import pytest
import torch

from beyond_backprop.optim.dladmm import (
    DLADMM, activation_objective, backtrack, cross_entropy_sum, update_a, update_w, update_z_last,
    update_z_relu, weight_objective,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_z_relu_matches_brute_force_grid():
    g = _gen()
    m, a = 3 * torch.randn(400, generator=g), 3 * torch.randn(400, generator=g)
    grid = torch.linspace(-12, 12, 240001)
    cost = (grid[None] - m[:, None]).square() + (a[:, None] - torch.relu(grid[None])).square()
    best = cost.min(dim=1).values
    z = update_z_relu(m, a)
    mine = (z - m).square() + (a - torch.relu(z)).square()
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


def test_w_and_a_updates_do_not_increase_and_exact_is_best():
    g = _gen(2)
    a_prev, target = torch.rand(50, 8, generator=g), torch.randn(50, 6, generator=g)
    w = torch.randn(6, 8, generator=g)
    before = weight_objective(w, a_prev, target, 2.0)
    quad, _ = update_w(w, a_prev, target, 2.0, 1.0)
    exact, _ = update_w(w, a_prev, target, 2.0, 1.0, exact=True)
    assert weight_objective(quad, a_prev, target, 2.0) <= before
    assert weight_objective(exact, a_prev, target, 2.0) <= weight_objective(quad, a_prev, target, 2.0) + 1e-4
    grad = (a_prev @ exact.T - target).T @ a_prev  # normal equations hold at the exact solution
    assert grad.abs().max() < 1e-3
    a, h = torch.randn(50, 8, generator=g), torch.rand(50, 8, generator=g)
    a_before = activation_objective(a, w, target, 2.0, h, 0.5)
    a_quad, _ = update_a(a, w, target, 2.0, h, 0.5, 1.0)
    a_exact, _ = update_a(a, w, target, 2.0, h, 0.5, 1.0, exact=True)
    a_grad = torch.func.grad(lambda v: activation_objective(v, w, target, 2.0, h, 0.5))(a_exact)
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
    solver = DLADMM([10, 16, 16, 3], rho=1.0, nu=None, rho_rule="fixed")
    state = solver.init(x, y, _gen(5))
    values = [float(solver.lagrangian(state, x, y))]
    for _ in range(15):
        state = solver.step(state, x, y)
        values.append(float(solver.lagrangian(state, x, y)))
    assert all(b <= a * (1 + 1e-5) for a, b in zip(values[1:], values[2:]))
    assert values[-1] < values[1]


def test_columns_layout_and_exact_subproblems_agree_in_shape():
    g = _gen(6)
    x, y = torch.rand(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)
    rows = DLADMM([5, 7, 3], rho=1.0, nu=None, rho_rule="fixed")
    cols = DLADMM([5, 7, 3], rho=1.0, nu=None, rho_rule="fixed", layout="columns")
    s_rows = rows.step(rows.init(x, y, _gen(7)), x, y)
    s_cols = cols.step(cols.init(x.T, y, _gen(7)), x.T, y)
    assert torch.allclose(s_rows.weights[0], s_cols.weights[0])
    exact = DLADMM([5, 7, 3], rho=1.0, nu=None, rho_rule="fixed", subproblem="exact")
    state = exact.step(exact.init(x, y, _gen(7)), x, y)
    assert torch.isfinite(exact.lagrangian(state, x, y))


@pytest.mark.parametrize("kwargs", [{"rho": 0.0}, {"nu": -1.0}, {"rho_rule": "sometimes"}, {"layout": "diag"}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        DLADMM([4, 3, 2], **kwargs)
