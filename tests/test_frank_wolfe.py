"""Frank-Wolfe: the textbook O(1/k) bound, feasibility of iterates, class vs functional core."""

import copy

import pytest
import torch

from beyond_backprop.optim import constraints as C
from beyond_backprop.optim.frank_wolfe import (
    FrankWolfe,
    frank_wolfe_update,
    named_schedule,
)


def problem(d=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(60, d, generator=g, dtype=torch.float64) / 60 ** 0.5
    b = a @ torch.randn(d, generator=g, dtype=torch.float64)
    return a, b


def f(a, b, x):
    return 0.5 * ((a @ x - b) ** 2).sum()


def test_exact_fw_meets_the_textbook_bound():
    """f(x_k) - f* <= 2 L D^2 / (k + 2) with gamma_k = 2/(k+2) (Jaggi 2013)."""
    a, b = problem()
    ball = C.L1Ball(30, radius=1.0)
    lipschitz = float(torch.linalg.matrix_norm(a, ord=2) ** 2)
    x_star = torch.zeros(30, dtype=torch.float64)
    for k in range(20000):  # a long exact FW run gives f* to high accuracy
        frank_wolfe_update([x_star], [a.T @ (a @ x_star - b)], [None], [ball], gamma=2 / (k + 2), rho=1)
    f_star = float(f(a, b, x_star))
    x = torch.zeros(30, dtype=torch.float64)
    for k in range(200):
        frank_wolfe_update([x], [a.T @ (a @ x - b)], [None], [ball], gamma=2 / (k + 2), rho=1)
        bound = 2 * lipschitz * ball.diameter ** 2 / (k + 1 + 2)
        assert float(f(a, b, x)) - f_star <= bound + 1e-12
    assert float(f(a, b, x)) - f_star < 0.05 * 2 * lipschitz * ball.diameter ** 2 / 202


def test_fw_gap_bounds_the_optimality_gap_for_convex_f():
    a, b = problem(seed=1)
    ball = C.L2Ball(30, radius=0.5)
    x = torch.zeros(30, dtype=torch.float64)
    for k in range(300):
        frank_wolfe_update([x], [a.T @ (a @ x - b)], [None], [ball], gamma=2 / (k + 2), rho=1)
    grad = a.T @ (a @ x - b)
    _, gap = frank_wolfe_update([x.clone()], [grad], [None], [ball], gamma=0.0, rho=1)
    # f(x) - f* <= gap; with the L2 ball, f* is also reached by projected gradient
    y = torch.zeros(30, dtype=torch.float64)
    step = 1 / float(torch.linalg.matrix_norm(a, ord=2) ** 2)
    for _ in range(5000):
        y = ball.shift_inside(y - step * a.T @ (a @ y - b))
    assert 0 <= float(f(a, b, x)) - float(f(a, b, y)) <= float(gap) + 1e-10


@pytest.mark.parametrize("kind", C.SETS)
@pytest.mark.parametrize("averaging", [False, True])
def test_iterates_stay_feasible_with_noisy_directions(kind, averaging):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(12))
    constraint = C.make_set(kind, 12, diameter=1.0, p=3.0, k_fraction=0.25)
    with torch.no_grad():
        w.copy_(constraint.shift_inside(w))
    opt = FrankWolfe([{"params": [w], "constraint": constraint}], schedule="convex", averaging=averaging)
    for _ in range(50):
        w.grad = torch.randn(12) * 10
        opt.step()
        assert constraint.contains(w.detach())
        assert torch.isfinite(opt.fw_gap)


def test_class_and_functional_core_in_lockstep():
    torch.manual_seed(1)
    w = torch.nn.Parameter(torch.randn(8) * 0.01)
    x = w.detach().clone()
    ball = C.KSparsePolytope(8, 3, radius=0.2)
    opt = FrankWolfe([{"params": [w], "constraint": ball}], schedule="nonconvex", averaging=True)
    gamma, rho = named_schedule("nonconvex")
    direction = [None]
    for k in range(25):
        g = torch.randn(8)
        w.grad = g.clone()
        opt.step()
        direction, gap = frank_wolfe_update([x], [g], direction, [ball], gamma=gamma(k), rho=rho(k))
        torch.testing.assert_close(w.detach(), x)
        torch.testing.assert_close(opt.fw_gap, gap)


def test_fw_gap_is_nonnegative_for_the_direction_used():
    ball = C.L1Ball(10, radius=1.0)
    x = ball.shift_inside(torch.randn(10))
    for _ in range(20):
        _, gap = frank_wolfe_update([x], [torch.randn(10)], [None], [ball], gamma=0.1, rho=1)
        assert float(gap) >= -1e-12


def test_schedules_and_validation():
    gamma, rho = named_schedule("convex")
    assert gamma(0) == pytest.approx(0.25) and rho(0) == pytest.approx(1.0) and rho(100) < 0.2
    with pytest.raises(ValueError):
        named_schedule("cosine")
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError):
        FrankWolfe([{"params": [w], "constraint": C.L1Ball(4, radius=1.0)}])
    with pytest.raises(ValueError):
        FrankWolfe([{"params": [w]}])


def test_sfw_step_rule_moves_each_tensor_by_lr_over_its_diameter():
    """rescale='diameter': gamma = min(1, lr / D) per tensor (SFW), against the update written out by hand."""
    torch.manual_seed(2)
    small, large = C.L2Ball(4, diameter=0.5), C.KSparsePolytope(6, 2, diameter=40.0)
    a, b = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(6))
    opt = FrankWolfe([{"params": [a], "constraint": small}, {"params": [b], "constraint": large}],
                     schedule="sfw", averaging=True, step_scale=2.0, rescale="diameter")
    expected_a, expected_b = a.detach().clone(), b.detach().clone()
    da = db = None
    for k in range(5):
        ga, gb = torch.randn(4), torch.randn(6)
        a.grad, b.grad = ga.clone(), gb.clone()
        opt.step()
        da = ga if da is None else 0.9 * da + 0.1 * ga
        db = gb if db is None else 0.9 * db + 0.1 * gb
        expected_a = (1 - 1.0) * expected_a + 1.0 * small.lmo(da)  # 2 / 0.5 > 1: clamped to a full step
        expected_b = (1 - 0.05) * expected_b + 0.05 * large.lmo(db)  # 2 / 40
        torch.testing.assert_close(a.detach(), expected_a)
        torch.testing.assert_close(b.detach(), expected_b)
    with pytest.raises(ValueError, match="rescale"):
        FrankWolfe([{"params": [a], "constraint": small}], rescale="gradient")


def test_step_allocates_no_parameter_sized_tensor():
    """In-place averaging and update, LMO into the optimiser's buffer: the step's peak is the LMO's
    own small temporaries (|d| for top-k), well below the tensor itself."""
    from beyond_backprop.runtime import PeakMemory

    n = 200_000
    w = torch.nn.Parameter(torch.zeros(n))
    ball = C.L1Ball(n, radius=1.0)
    opt = FrankWolfe([{"params": [w], "constraint": ball}], schedule="nonconvex", averaging=True)
    for _ in range(2):
        w.grad = torch.randn(n)
        opt.step()
    w.grad = torch.randn(n)
    with PeakMemory("cpu") as meter:
        opt.step()
    assert meter.bytes <= 4 * n * 1.1  # one |d| temporary, never d, s or d * (p - s)


def test_k_sparse_step_keeps_no_lmo_buffer_and_no_parameter_sized_tensor():
    """The K-sparse vertex stays sparse: theta is scaled and K entries scattered, the gap read on K entries; the
    step's peak is the LMO's |d| and top-k outputs, and the optimiser keeps no LMO buffer; the update is
    (1 - gamma) theta + gamma lmo(d) with the dense vertex."""
    from beyond_backprop.runtime import PeakMemory

    n, k = 200_000, 10_000
    w = torch.nn.Parameter(torch.zeros(n))
    polytope = C.KSparsePolytope(n, k, radius=0.01)
    opt = FrankWolfe([{"params": [w], "constraint": polytope}], schedule="nonconvex", averaging=True)
    for _ in range(2):
        w.grad = torch.randn(n)
        opt.step()
    w.grad = torch.randn(n)
    before, d = w.detach().clone(), opt.state[w]["direction"]
    with PeakMemory("cpu") as meter:
        opt.step()
    assert opt._buffer is None
    assert meter.bytes <= 4 * n * 1.1 + 12 * k * 1.1  # |d| for top-k and its K values and indices
    gamma = 1.0 / 3  # nonconvex rule at k = 2
    torch.testing.assert_close(w.detach(), (1 - gamma) * before + gamma * polytope.lmo(d))
    torch.testing.assert_close(opt.fw_gap, d @ (before - polytope.lmo(d)))


def linear_model_with_fw(seed: int, schedule: str = "nonconvex"):
    torch.manual_seed(seed)
    model = torch.nn.Linear(6, 3).double()
    groups = C.initialization_constraints(model, "k-sparse", 2.0, k_fraction=0.3)
    return model, FrankWolfe(groups, schedule=schedule, averaging=True)


def loss_step(model, optimizer, k):
    g = torch.Generator().manual_seed(100 + k)
    x, y = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (5,), generator=g)
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


@pytest.mark.parametrize("schedule", ["nonconvex", "convex"])
def test_state_dict_restores_the_schedule_position_and_steps_in_lockstep(schedule):
    """torch's restore-and-step check: a copy loaded from state_dict after 5 steps takes the same next 5 steps."""
    model, optimizer = linear_model_with_fw(0, schedule)
    for k in range(5):
        loss_step(model, optimizer, k)
    saved = copy.deepcopy(optimizer.state_dict())  # torch's state_dict holds references to the live state
    assert all(state["step"] == 5 for state in saved["state"].values())
    twin, restored = linear_model_with_fw(1, schedule)
    twin.load_state_dict(model.state_dict())
    restored.load_state_dict(saved)
    for k in range(5, 10):
        loss_step(model, optimizer, k)
        loss_step(twin, restored, k)
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(q, p, rtol=0, atol=0)


def test_step_with_an_iterator_of_estimates_equals_step_with_grad():
    model, optimizer = linear_model_with_fw(0)
    twin, twin_optimizer = linear_model_with_fw(0)
    for k in range(6):
        loss_step(model, optimizer, k)
        g = torch.Generator().manual_seed(100 + k)
        x, y = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (5,), generator=g)
        grads = torch.autograd.grad(torch.nn.functional.cross_entropy(twin(x), y), list(twin.parameters()))
        twin_optimizer.step_with(iter(grads))
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(q, p, rtol=1e-12, atol=1e-14)
        assert all(p.grad is None for p in twin.parameters())
