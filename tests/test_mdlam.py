"""mDLAM block updates against brute force and naive references; monotonicity and the ε-band."""

import pytest
import torch

from dataclasses import fields, replace

from beyond_backprop.models import cross_entropy_sum
from beyond_backprop.optim import mdlam
from beyond_backprop.optim.mdlam import (
    BACKTRACKING_TESTS, CANDIDATE_BLOCK_ELEMENTS, MDLAM, OFFICIAL, PAPER, MDLAMOptions, nesterov_weight, penalty,
    update_a, update_b, update_w, update_w_and_product, update_z_hidden, update_z_last, update_z_last_fista,
)
from beyond_backprop.problem import Problem, Split


@pytest.fixture(autouse=True)
def _float64():
    """Run in double precision so that the references are exact; restore the default afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _problem(seed: int = 0, n: int = 30, d: int = 8, classes: int = 3) -> Problem:
    g = _gen(seed)
    x = torch.randn(n, d, generator=g)
    return Problem(Split(x, torch.randint(classes, (n,), generator=g)), classes=classes)


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


@pytest.mark.parametrize("linearize_decay", [False, True])
def test_w_and_product_from_kept_products_and_gram(linearize_decay):
    """Given ``a W̄^T`` and ``a a^T`` the W-step is :func:`update_w`'s, and its product is ``a W^T``."""
    g = _gen(25)
    a, z = torch.randn(5, 9, generator=g), torch.randn(5, 4, generator=g)
    w_bar, b, rho, mu = torch.randn(4, 9, generator=g), torch.randn(4, generator=g), 2.0, 0.05
    expected = update_w(w_bar, a, z, b, rho=rho, mu=mu, linearize_decay=linearize_decay)
    assert not torch.equal(expected, w_bar)
    for product_bar, gram in ((None, None), (a @ w_bar.T, None), (a @ w_bar.T, a @ a.T), (None, a @ a.T)):
        w, product = update_w_and_product(w_bar, a, z, b, rho=rho, mu=mu, linearize_decay=linearize_decay,
                                          product_bar=product_bar, gram=gram)
        torch.testing.assert_close(w, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(product, a @ w.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block_elements", [1, 36, 54, CANDIDATE_BLOCK_ELEMENTS])
def test_a_matches_naive_backtracking_with_grid_minimiser(block_elements, monkeypatch):
    """Candidates tested one at a time, in blocks of 2 and 3 (the first passing tau, the third, ends the first
    block of 3 and opens the second of 2), and all at once."""
    monkeypatch.setattr(mdlam, "CANDIDATE_BLOCK_ELEMENTS", block_elements)
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


def _z_last_minimiser(m: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
    """``argmin_z R(z; y) + rho/2 ||z - m||^2`` by L-BFGS through autograd."""
    reference = m.clone().requires_grad_()
    opt = torch.optim.LBFGS([reference], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = cross_entropy_sum(reference, y) + rho / 2 * (reference - m).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return reference.detach()


def test_z_last_matches_lbfgs():
    y = _problem(5, n=10, classes=4).onehot
    m, rho = torch.randn(10, 4, generator=_gen(6)), 1.0
    got = update_z_last(torch.zeros_like(m), m, y, rho=rho, steps=300)
    torch.testing.assert_close(got, _z_last_minimiser(m, y, rho), atol=1e-6, rtol=0)


@pytest.mark.parametrize("rho", [0.5, 1.0, 5.0])
def test_official_fista_z_last_reaches_the_minimiser(rho):
    y = _problem(13, n=12, classes=4).onehot
    m = 2 * torch.randn(12, 4, generator=_gen(14))
    got = update_z_last_fista(2 * y - 1, m, y, rho=rho, tolerance=1e-12)
    torch.testing.assert_close(got, _z_last_minimiser(m, y, rho), atol=1e-5, rtol=0)


def test_official_fista_z_last_stops_at_the_code_tolerance():
    y = _problem(15, n=12, classes=4).onehot
    m, rho = torch.randn(12, 4, generator=_gen(16)), 1.0
    objective = lambda z: float(cross_entropy_sum(z, y) + rho / 2 * (z - m).square().sum())  # noqa: E731
    loose = update_z_last_fista(m, m, y, rho=rho, tolerance=1e-1)
    tight = update_z_last_fista(m, m, y, rho=rho, tolerance=1e-10)
    best = objective(_z_last_minimiser(m, y, rho))
    assert objective(tight) - best < 1e-8 < objective(loose) - best  # stopped early, above the minimum
    one_step = (rho * m + (m - 4 * (torch.softmax(m, dim=1) - y)) / 4) / (rho + 1 / 4)  # gamma = 0 at first
    torch.testing.assert_close(update_z_last_fista(m, m, y, rho=rho, iterations=1), one_step)


@pytest.mark.parametrize("accelerate", [True, False])
def test_objective_non_increasing_at_fixed_eps_and_band_holds(accelerate):
    problem = _problem(7)
    solver = MDLAM([8, 6, 5, 3], rho=0.5, eps0=0.1, eps_min=0.1, options=replace(PAPER, accelerate=accelerate))
    state = solver.init(problem, _gen(8))
    state = solver.step(state, problem)  # the first sweep makes the initial point feasible for the band
    previous = solver.objective(state, problem)
    for _ in range(15):
        state = solver.step(state, problem)
        current = solver.objective(state, problem)
        assert current <= previous * (1 + 1e-12)
        for a, z in zip(state.a, state.z[:-1]):
            assert ((a - torch.relu(z)).abs() <= 0.1 + 1e-12).all()
        previous = current


def test_band_holds_after_each_step_while_eps_shrinks():
    problem = _problem(9)
    solver = MDLAM([8, 6, 5, 3], rho=0.1, eps0=4.0, eps_min=1e-3)
    state = solver.init(problem, _gen(10))
    for k in range(14):
        state = solver.step(state, problem)
        assert state.eps == pytest.approx(max(4.0 / 2**k, 1e-3))  # the band of step k + 1
        for a, z in zip(state.a, state.z[:-1]):
            assert ((a - torch.relu(z)).abs() <= state.eps + 1e-12).all()
    assert float(solver.metrics(state, problem)["eps"]) == state.eps


def test_kept_input_products_are_those_of_the_weights(monkeypatch):
    """With a wide input (5 rows, 8 features) the state's ``x W_1^T`` and ``x W_1^{k-1}^T``, extrapolated and
    updated without ``x`` (``x D^T`` from the kept ``x x^T``), are the products of its weights, and the iterates
    are those of a run that makes them from ``x`` every step; a tall input keeps none."""
    problem = _problem(23, n=5)
    solver = MDLAM([8, 6, 5, 3], rho=0.5)
    kept = solver.init(problem, _gen(24))
    torch.testing.assert_close(kept.input_gram, problem.x @ problem.x.T)
    fresh = kept
    for k in range(25):  # past two refreshes, extrapolating from the third step
        previous, before = kept, (kept.input_product.clone(), kept.previous_input_product.clone())
        kept = solver.step(kept, problem)
        assert torch.equal(previous.input_product, before[0]) and torch.equal(previous.previous_input_product,
                                                                              before[1])  # the step is pure
        with monkeypatch.context() as patch:
            patch.setattr(mdlam, "PRODUCT_REFRESH", 1)
            fresh = solver.step(fresh, problem)
        torch.testing.assert_close(kept.input_product, problem.x @ kept.weights[0].T, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(kept.previous_input_product, problem.x @ kept.previous_weights[0].T,
                                   rtol=1e-10, atol=1e-10)
        for got, expected in zip((*kept.weights, *kept.biases, *kept.z, *kept.a),
                                 (*fresh.weights, *fresh.biases, *fresh.z, *fresh.a)):
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert kept.s > 1.0 and not torch.equal(kept.weights[0], kept.previous_weights[0])
    tall = _problem(23, n=30)
    state = solver.step(solver.init(tall, _gen(24)), tall)
    assert state.input_product is None and state.previous_input_product is None and state.input_gram is None


def test_state_follows_dladmm_convention_and_logits_are_the_forward_pass():
    problem = _problem(11)
    solver = MDLAM([8, 6, 5, 3])
    state = solver.init(problem, _gen(12))
    assert [tuple(a.shape) for a in state.a] == [(30, 6), (30, 5)]  # hidden outputs only, not the input
    torch.testing.assert_close(solver.logits(state, problem, problem.train), state.z[-1])
    torch.testing.assert_close(state.a[1], torch.relu(state.z[1]))


def test_presets_differ_exactly_in_the_code_switches():
    differing = {f.name for f in fields(MDLAMOptions) if getattr(PAPER, f.name) != getattr(OFFICIAL, f.name)}
    assert differing == {"accelerate", "linearize_decay", "update_all_biases", "z_last_init", "z_last_solver"}
    problem = _problem(17)
    paper, official = MDLAM([8, 6, 5, 3], rho=0.1), MDLAM([8, 6, 5, 3], rho=0.1, options=OFFICIAL)
    start_paper, start_official = paper.init(problem, _gen(18)), official.init(problem, _gen(18))
    for name in ("weights", "biases", "a"):
        assert all(torch.equal(p, o) for p, o in zip(getattr(start_paper, name), getattr(start_official, name)))
    torch.testing.assert_close(start_official.z[-1], 2 * problem.onehot - 1)
    torch.testing.assert_close(start_paper.z[-1], paper.logits(start_paper, problem, problem.train))

    # One step from the same state, switching one option of OFFICIAL at a time: the first block that
    # differs is the one the switch governs (a first step never extrapolates, so `accelerate` shows later).
    def one_step(**switch):
        solver = MDLAM([8, 6, 5, 3], rho=0.1, options=replace(OFFICIAL, **switch))
        return solver.step(start_official, problem)

    base = one_step()
    assert torch.equal(base.biases[1], start_official.biases[1])  # the code never updates b_2
    first_differing = {
        "linearize_decay": one_step(linearize_decay=False),
        "update_all_biases": one_step(update_all_biases=True),
        "z_last_solver": one_step(z_last_solver="gradient"),
        "accelerate": one_step(accelerate=True),
    }
    order = [("weights", 0), ("biases", 0), ("z", 0), ("a", 0), ("weights", 1), ("biases", 1), ("z", 1),
             ("a", 1), ("weights", 2), ("biases", 2), ("z", 2)]

    def first_change(state):
        return next((block for block in order if not torch.equal(getattr(state, block[0])[block[1]],
                                                                 getattr(base, block[0])[block[1]])), None)

    assert {switch: first_change(state) for switch, state in first_differing.items()} == {
        "linearize_decay": ("weights", 0), "update_all_biases": ("biases", 1), "z_last_solver": ("z", 2),
        "accelerate": None}
    # the paper preset extrapolates from the third step on; the official code never does
    runs = {}
    for preset, solver, state in (("paper", paper, start_paper), ("official", official, start_official)):
        omegas = []
        for _ in range(4):
            previous, state = state, solver.step(state, problem)
            omegas.append(state.s != previous.s)
        runs[preset] = (omegas, state)
    assert runs["paper"][0] == [True] * 4 and runs["official"][0] == [False] * 4
    assert runs["official"][1].fallbacks == 0


def test_official_preset_follows_the_published_loop():
    """Lockstep with a transcription of ``mDLAM.py``'s hand-unrolled three-layer loop (no extrapolation), in
    float64: the solver takes ``a_prev W^T`` from the W-step's own products, the transcription recomputes it."""
    problem = _problem(19)
    problem = Problem(Split(problem.x.double(), problem.y), classes=problem.classes)
    x, y, rho, mu, eps = problem.x, problem.onehot, 0.1, 0.05, 100.0
    solver = MDLAM([8, 6, 5, 3], rho=rho, mu=mu, options=OFFICIAL)
    state = solver.init(problem, _gen(20))
    (w1, w2, w3), (b1, b2, b3), (z1, z2, z3), (a1, a2) = state.weights, state.biases, state.z, state.a
    for _ in range(3):
        state = solver.step(state, problem)
        w1 = update_w(w1, x, z1, b1, rho=rho, mu=mu, linearize_decay=True)
        b1 = update_b(z1, x, w1)
        z1 = update_z_hidden(x @ w1.T + b1, a1, eps)
        a1 = update_a(a1, z1, w2, b2, z2, rho=rho, eps=eps)
        w2 = update_w(w2, a1, z2, b2, rho=rho, mu=mu, linearize_decay=True)
        z2 = update_z_hidden(a1 @ w2.T + b2, a2, eps)
        a2 = update_a(a2, z2, w3, b3, z3, rho=rho, eps=eps)
        w3 = update_w(w3, a2, z3, b3, rho=rho, mu=mu, linearize_decay=True)
        b3 = update_b(z3, a2, w3)
        z3 = update_z_last_fista(z3, a2 @ w3.T + b3, y, rho=rho)
        eps = eps / 2
        for got, expected in zip((*state.weights, *state.biases, *state.z, *state.a),
                                 (w1, w2, w3, b1, b2, b3, z1, z2, z3, a1, a2)):
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_metrics_carry_the_vocabulary():
    problem = _problem(21)
    solver = MDLAM([8, 6, 5, 3])
    state = solver.step(solver.init(problem, _gen(22)), problem)
    values = solver.metrics(state, problem)
    assert set(values) == {"penalty_objective", "violation", "eps", "fallbacks"}
    assert all(v.dim() == 0 for v in values.values())
    torch.testing.assert_close(values["penalty_objective"], solver.objective(state, problem))


def test_validation():
    with pytest.raises(ValueError, match="invalid rho"):
        MDLAM([4, 3, 3, 2], rho=0.0)
    with pytest.raises(ValueError, match="invalid z_last_solver"):
        MDLAMOptions(z_last_solver="lbfgs")
    with pytest.raises(ValueError, match="invalid widths"):
        MDLAM([4, 3, 3, 2]).init(_problem(), _gen())
    with pytest.raises(ValueError, match="invalid eps0"):
        MDLAM([4, 3, 3, 2], eps0=1e-4)
    with pytest.raises(ValueError, match="invalid rho .* or init_std"):
        MDLAM([4, 3, 3, 2], init_std=0.0)
