"""Taylor et al.'s ADMM: each block update is the exact minimiser of its subproblem (least squares,
autograd, a fine grid), and exact block minimisation makes the multiplier-free objective monotone."""

import pytest
import torch

from beyond_backprop.optim.admm_taylor import TaylorADMM, least_squares, pseudo_inverse
from beyond_backprop.optim.solver import run_history
from beyond_backprop.problem import Problem, Split


def toy_problem(seed: int = 0, n: int = 100, d: int = 6) -> Problem:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    return Problem(Split(x, (x[:, 0] + x[:, 1] > 1).long()), {"test": Split(x[:20], (x[:20, 0] > 0.5).long())})


def stepped(solver: TaylorADMM, problem: Problem, steps: int = 3):
    """A state a few steps in, with a nonzero multiplier, and float64 data (for tight checks)."""
    state = solver.init(problem, torch.Generator().manual_seed(1))
    for _ in range(steps):
        state = solver.step(state, problem)
    return state


def float64_problem(seed: int = 0) -> Problem:
    p = toy_problem(seed)
    return Problem(Split(p.x.double(), p.y), {})


@pytest.mark.parametrize("rows", [200, 6])  # more rows than columns, and fewer
def test_least_squares_matches_the_pseudo_inverse_and_zeroes_dead_columns(rows):
    g = torch.Generator().manual_seed(0)
    inputs = torch.rand(rows, 8, generator=g, dtype=torch.float64)
    inputs[:, 3] = 0.0  # a dead unit: the pseudo-inverse gives it zero weight
    target = torch.randn(rows, 5, generator=g, dtype=torch.float64)
    reference = (torch.linalg.pinv(inputs) @ target).T
    w = least_squares(inputs, target)
    assert torch.allclose(w, reference, atol=1e-7)
    assert float(w[:, 3].abs().max()) < 1e-12
    assert torch.allclose(pseudo_inverse(inputs), torch.linalg.pinv(inputs), atol=1e-9)
    # float32 inputs: torch's float32 pseudo-inverse up to round-off, and as good a fit as float64's
    w32 = least_squares(inputs.float(), target.float())
    assert torch.allclose(w32, (torch.linalg.pinv(inputs.float()) @ target.float()).T, atol=1e-5)
    assert torch.allclose(pseudo_inverse(inputs.float()), torch.linalg.pinv(inputs.float()), atol=1e-6)
    best = (target - inputs @ reference.T).square().sum()
    excess = (target - inputs @ w32.double().T).square().sum() - best
    assert float(excess) <= 1e-6 * float(target.square().sum())


def test_weight_update_fits_as_well_as_the_float32_pseudo_inverse():
    """Against the pseudo-inverse with float32's default cut-off (what the solver used before): activations
    a few steps in have nearly dead units (columns ~1e-12), where any float32 solve must cut off."""
    problem = float64_problem()
    solver = TaylorADMM([6, 7, 5, 2], gamma=3.0)
    state = stepped(solver, problem)
    for l in range(3):
        inputs = solver._input(state, problem, l)
        solver.update_weights(state, problem, l)
        fit = (state.z[l] - inputs @ state.weights[l].T).square().sum()
        pinv = torch.linalg.pinv(inputs, rtol=max(inputs.shape) * torch.finfo(torch.float32).eps)
        best = (state.z[l] - inputs @ pinv @ state.z[l]).square().sum()
        assert float(fit) <= float(best) * (1 + 1e-6)


def block_gradient(solver: TaylorADMM, state, problem: Problem, block: list[torch.Tensor], l: int) -> torch.Tensor:
    variable = block[l].clone().requires_grad_(True)
    block[l] = variable
    (gradient,) = torch.autograd.grad(solver.lagrangian(state, problem), variable)
    block[l] = variable.detach()
    return gradient


def test_activation_update_zeroes_the_lagrangian_gradient():
    problem = float64_problem()
    solver = TaylorADMM([6, 7, 5, 2], rho=0.7, gamma=3.0)
    state = stepped(solver, problem)
    for l in range(2):
        before = block_gradient(solver, state, problem, state.a, l)
        solver.update_activations(state, l)
        after = block_gradient(solver, state, problem, state.a, l)
        assert float(after.abs().max()) < 1e-9 * float(before.abs().max()) + 1e-10


def test_output_z_update_zeroes_the_lagrangian_gradient_multiplier_included():
    problem = float64_problem()
    solver = TaylorADMM([6, 7, 2], rho=0.5, warmup=1)
    state = stepped(solver, problem, steps=4)
    assert float(state.lam.abs().max()) > 1e-3  # the multiplier term is exercised
    state.z[-1] = state.z[-1] + 0.5  # away from the minimiser
    before = block_gradient(solver, state, problem, state.z, 1)
    solver.update_output_z(state, problem)
    after = block_gradient(solver, state, problem, state.z, 1)
    assert float(after.abs().max()) < 1e-2 * float(before.abs().max())


def test_hidden_z_update_is_the_exact_minimiser_on_a_fine_grid():
    problem = float64_problem()
    solver = TaylorADMM([6, 7, 2], rho=0.7, gamma=3.0)
    state = stepped(solver, problem)
    solver.update_hidden_z(state, problem, 0)
    m = solver._input(state, problem, 0) @ state.weights[0].T
    grid = torch.linspace(-6.0, 6.0, 120001, dtype=torch.float64)
    a, m = state.a[0].flatten()[:, None], m.flatten()[:, None]
    assert float(a.abs().max()) < 5 and float(m.abs().max()) < 5  # the minimiser lies inside the grid

    def cost(z: torch.Tensor) -> torch.Tensor:
        return solver.gamma * (a - torch.relu(z)).square() + solver.rho * (z - m).square()

    brute = cost(grid[None, :]).min(dim=1).values
    exact = cost(state.z[0].flatten()[:, None]).squeeze(1)
    assert torch.all(exact <= brute + 1e-8)
    assert torch.all(brute - exact < 1e-6)  # the grid gets within its resolution of the exact minimum


def test_lagrangian_does_not_increase_during_warmup():
    problem = toy_problem()
    solver = TaylorADMM([6, 12, 2], rho=1.0, warmup=10)
    state = solver.init(problem, torch.Generator().manual_seed(1))
    values = []
    for _ in range(8):
        state = solver.step(state, problem)
        values.append(float(solver.lagrangian(state, problem)))
    assert all(b <= a + 1e-3 * abs(a) for a, b in zip(values, values[1:]))
    assert values[-1] < values[0]


def test_history_has_the_contract_columns():
    problem = toy_problem()
    solver = TaylorADMM([6, 8, 2], warmup=1)
    _, history = run_history(solver, solver.init(problem, torch.Generator().manual_seed(2)), problem, 3)
    assert list(history.columns) == ["iteration", "seconds", "train_loss", "lagrangian", "residual", "rho",
                                     "train_accuracy", "test_accuracy"]
    assert list(history["iteration"]) == [1, 2, 3] and (history["rho"] == 1.0).all()


@pytest.mark.parametrize("kwargs", [{"rho": -1.0}, {"gamma": 0.0}, {"warmup": -1}])
def test_invalid_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="invalid"):
        TaylorADMM([4, 2], **kwargs)
