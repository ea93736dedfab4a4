"""mDLAM block updates against brute force and naive references; monotonicity and the ε-band."""

import pytest
import torch

from beyond_backprop.optim.mdlam import (
    BACKTRACKING_TESTS, MDLAM, cross_entropy_sum, nesterov_weight, penalty, update_a, update_b, update_w,
    update_z_hidden, update_z_last,
)



@pytest.fixture(autouse=True)
def _float64():
    """Run in double precision so that the references are exact; restore the default afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _problem(seed: int = 0, n: int = 30, d: int = 8, classes: int = 3):
    g = _gen(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.nn.functional.one_hot(torch.randint(classes, (n,), generator=g), classes).double()
    return x, y


def test_nesterov_weights_follow_fista_sequence():
    omegas, s = [], 0.0
    for _ in range(4):
        omega, s = nesterov_weight(s)
        omegas.append(omega)
    assert omegas[:2] == [-1.0, 0.0]
    assert omegas[2] == pytest.approx(0.2817, abs=1e-4) and omegas[3] == pytest.approx(0.434, abs=1e-3)


def test_z_hidden_matches_grid_search():
    g = _gen(1)
    m, a, eps = 2 * torch.randn(200, generator=g), 2 * torch.randn(200, generator=g), 0.5
    grid = torch.linspace(-10, 10, 20001)
    feasible = (torch.relu(grid)[None] - eps <= a[:, None]) & (a[:, None] <= torch.relu(grid)[None] + eps)
    cost = torch.where(feasible, (grid[None] - m[:, None]) ** 2, torch.inf)
    expected = grid[cost.argmin(dim=1)]
    has_point = feasible.any(dim=1)
    torch.testing.assert_close(update_z_hidden(m, a, eps)[has_point], expected[has_point], atol=2e-3, rtol=0)


def test_b_is_the_exact_minimiser():
    g = _gen(2)
    z, a, w = torch.randn(20, 4, generator=g), torch.randn(20, 5, generator=g), torch.randn(4, 5, generator=g)
    b = update_b(z, a, w).requires_grad_()
    (grad,) = torch.autograd.grad(penalty(z, a, w, b, 0.3), b)
    assert grad.abs().max() < 1e-10


@pytest.mark.parametrize("linearize_decay", [False, True])
def test_w_matches_naive_backtracking(linearize_decay):
    g = _gen(3)
    a, z = torch.randn(25, 6, generator=g), torch.randn(25, 4, generator=g)
    w_bar, b, rho, mu = torch.randn(4, 6, generator=g), torch.randn(4, generator=g), 2.0, 0.05
    smooth = lambda w: penalty(z, a, w, b, rho) + (0.5 * mu * w.square().sum() if linearize_decay else 0.0)  # noqa: E731
    w_var = w_bar.clone().requires_grad_()
    (grad,) = torch.autograd.grad(smooth(w_var), w_var)
    expected = w_bar
    for test in range(BACKTRACKING_TESTS):
        theta = 2.0 ** test
        w = w_bar - grad / theta if linearize_decay else (theta * w_bar - grad) / (theta + mu)
        if smooth(w) <= smooth(w_bar) + (grad * (w - w_bar)).sum() + theta / 2 * (w - w_bar).square().sum():
            expected = w
            break
    got = update_w(w_bar, a, z, b, rho=rho, mu=mu, linearize_decay=linearize_decay)
    torch.testing.assert_close(got, expected)
    assert not torch.equal(got, w_bar)
    decay = 0.5 * mu * got.square().sum()
    assert penalty(z, a, got, b, rho) + decay <= penalty(z, a, w_bar, b, rho) + 0.5 * mu * w_bar.square().sum()


def test_a_matches_naive_backtracking_with_grid_minimiser():
    g = _gen(4)
    z, a_bar = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    w_next, b_next, z_next = torch.randn(2, 3, generator=g), torch.randn(2, generator=g), torch.randn(6, 2, generator=g)
    rho, eps = 1.5, 0.3
    a_var = a_bar.clone().requires_grad_()
    (grad,) = torch.autograd.grad(penalty(z_next, a_var, w_next, b_next, rho), a_var)
    grid = torch.linspace(-5, 5, 100001)
    low, high = torch.relu(z) - eps, torch.relu(z) + eps
    for test in range(BACKTRACKING_TESTS):
        tau = 2.0 ** test
        # separable surrogate <grad, a - ā> + tau/2 ||a - ā||^2 minimised elementwise over the band on a grid
        surrogate = grad[..., None] * (grid - a_bar[..., None]) + tau / 2 * (grid - a_bar[..., None]) ** 2
        inside = (grid >= low[..., None]) & (grid <= high[..., None])
        a = grid[torch.where(inside, surrogate, torch.inf).argmin(dim=-1)]
        model = penalty(z_next, a_bar, w_next, b_next, rho) + (grad * (a - a_bar)).sum()
        if penalty(z_next, a, w_next, b_next, rho) <= model + tau / 2 * (a - a_bar).square().sum() + 1e-6:
            break
    got = update_a(a_bar, z, w_next, b_next, z_next, rho=rho, eps=eps)
    torch.testing.assert_close(got, a, atol=2e-4, rtol=0)
    assert ((got - torch.relu(z)).abs() <= eps + 1e-12).all()


def test_z_last_matches_lbfgs():
    x, y = _problem(5, n=10, classes=4)
    m, rho = torch.randn(10, 4, generator=_gen(6)), 1.0
    reference = m.clone().requires_grad_()
    opt = torch.optim.LBFGS([reference], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = cross_entropy_sum(reference, y) + rho / 2 * (reference - m).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    got = update_z_last(torch.zeros_like(m), m, y, rho=rho, steps=300)
    torch.testing.assert_close(got, reference.detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("accelerate", [True, False])
def test_objective_non_increasing_at_fixed_eps_and_band_holds(accelerate):
    x, y = _problem(7)
    solver = MDLAM([8, 6, 5, 3], rho=0.5, eps0=0.1, eps_min=0.1, accelerate=accelerate)
    state = solver.init(x, y, _gen(8))
    state = solver.step(state, x, y)  # the first sweep makes the initial point feasible for the band
    previous = solver.objective(state, y)
    for _ in range(15):
        state = solver.step(state, x, y)
        current = solver.objective(state, y)
        assert current <= previous * (1 + 1e-12)
        for a, z in zip(state.a[1:], state.z[:-1]):
            assert ((a - torch.relu(z)).abs() <= 0.1 + 1e-12).all()
        previous = current


def test_band_holds_after_each_step_while_eps_shrinks():
    x, y = _problem(9)
    solver = MDLAM([8, 6, 5, 3], rho=0.1, eps0=4.0, eps_min=1e-3)
    state = solver.init(x, y, _gen(10))
    for _ in range(14):
        eps = state.eps
        state = solver.step(state, x, y)
        for a, z in zip(state.a[1:], state.z[:-1]):
            assert ((a - torch.relu(z)).abs() <= eps + 1e-12).all()
    assert state.eps == pytest.approx(max(4.0 / 2**14, 1e-3))


def test_run_records_history_and_official_code_freezes_second_bias():
    x, y = _problem(11)
    solver = MDLAM([8, 6, 5, 3], rho=0.1, accelerate=False, official_code=True)
    state = solver.init(x, y, _gen(12))
    torch.testing.assert_close(state.z[-1], 2 * y - 1)
    final, history = solver.run(state, x, y, 3, evaluate={"test": (x, y.argmax(dim=1))})
    assert list(history.iteration) == [1, 2, 3]
    assert {"objective", "violation", "train_accuracy", "test_accuracy", "fallbacks", "seconds"} <= set(history)
    assert torch.equal(final.biases[1], state.biases[1]) and not torch.equal(final.biases[0], state.biases[0])


def test_validation():
    with pytest.raises(ValueError, match="invalid rho"):
        MDLAM([4, 3, 3, 2], rho=0.0)
    with pytest.raises(ValueError, match="invalid accelerate"):
        MDLAM([4, 3, 3, 2], official_code=True)
    with pytest.raises(ValueError, match="invalid eps0"):
        MDLAM([4, 3, 3, 2], eps0=1e-4)
