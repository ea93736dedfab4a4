"""LMOs against brute force over vertices and a linear-programming solve; feasibility properties."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from beyond_backprop import models
from beyond_backprop.optim import constraints as C


def l1_vertices(n, r):
    return [s * r * np.eye(n)[i] for i in range(n) for s in (1, -1)]


def linf_vertices(n, r):
    return [np.array(v) * r for v in itertools.product((1, -1), repeat=n)]


def ksparse_vertices(n, k, r):
    out = []
    for support in itertools.combinations(range(n), k):
        for signs in itertools.product((1, -1), repeat=k):
            v = np.zeros(n)
            v[list(support)] = np.array(signs) * r
            out.append(v)
    return out


@pytest.mark.parametrize("make, vertices", [
    (lambda: C.L1Ball(5, radius=1.5), lambda: l1_vertices(5, 1.5)),
    (lambda: C.LInfBall(5, radius=0.7), lambda: linf_vertices(5, 0.7)),
    (lambda: C.KSparsePolytope(5, 2, radius=0.9), lambda: ksparse_vertices(5, 2, 0.9)),
])
def test_polytope_lmo_equals_brute_force_over_vertices(make, vertices):
    rng = np.random.default_rng(0)
    constraint = make()
    for _ in range(20):
        g = rng.normal(size=5)
        best = min(float(g @ v) for v in vertices())
        s = constraint.lmo(torch.tensor(g)).numpy()
        assert float(g @ s) == pytest.approx(best, abs=1e-12)
        assert constraint.contains(torch.tensor(s))


def test_ksparse_lmo_matches_a_linear_program():
    """min <g, s> over B_1(K r) ∩ B_inf(r), solved by scipy's linprog with s = s+ - s-."""
    rng = np.random.default_rng(1)
    n, k, r = 8, 3, 0.5
    constraint = C.KSparsePolytope(n, k, radius=r)
    for _ in range(5):
        g = rng.normal(size=n)
        res = linprog(np.concatenate([g, -g]), A_ub=np.ones((1, 2 * n)), b_ub=[k * r],
                      bounds=[(0, r)] * (2 * n), method="highs")
        assert float(g @ constraint.lmo(torch.tensor(g)).numpy()) == pytest.approx(res.fun, abs=1e-9)


@pytest.mark.parametrize("n, k", [(8, 3), (5, 3), (6, 6), (200, 10)])
def test_ksparse_sparse_lmo_is_the_vertex_of_k_largest_magnitudes(n, k):
    """K distinct indices holding -r sign(g) where |g| is largest (brute force: the K-th largest |g| bounds them
    from below, the rest from above); scattered, the dense lmo. Sets with dense vertices give None."""
    rng = np.random.default_rng(3)
    constraint = C.KSparsePolytope(n, k, radius=0.7)
    for _ in range(5):
        g = torch.tensor(rng.normal(size=n))
        index, values = constraint.sparse_lmo(g)
        assert len(set(index.tolist())) == k and torch.equal(values, -0.7 * torch.sign(g[index]))
        chosen = torch.zeros(n, dtype=torch.bool)
        chosen[index] = True
        assert g[chosen].abs().min() >= sorted(g.abs().tolist())[-k]
        assert chosen.all() or g[~chosen].abs().max() <= g[chosen].abs().min()
        dense = torch.zeros(n, dtype=g.dtype)
        dense[index] = values
        assert torch.equal(constraint.lmo(g), dense)
    assert C.L1Ball(4, radius=1.0).sparse_lmo(torch.ones(4)) is None


@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_smooth_ball_lmo_attains_the_dual_norm(p):
    """min over ||s||_p <= r of <g, s> = -r ||g||_q (Hölder), and random feasible points do no better."""
    rng = np.random.default_rng(2)
    g = torch.tensor(rng.normal(size=7))
    q = p / (p - 1)
    for constraint in ([C.LpBall(7, p, radius=2.0)] + ([C.L2Ball(7, radius=2.0)] if p == 2 else [])):
        s = constraint.lmo(g)
        assert float(g @ s) == pytest.approx(-2.0 * float(torch.linalg.vector_norm(g, ord=q)), rel=1e-10)
        assert float(torch.linalg.vector_norm(s, ord=p)) == pytest.approx(2.0, rel=1e-10)
        for _ in range(50):
            v = constraint.shift_inside(torch.tensor(rng.normal(size=7)) * 5)
            assert constraint.contains(v) and float(g @ s) <= float(g @ v) + 1e-12


@pytest.mark.parametrize("make", [
    lambda: C.L1Ball(6, radius=1.0), lambda: C.L2Ball(6, radius=1.0), lambda: C.LInfBall(6, radius=1.0),
    lambda: C.LpBall(6, 3.0, radius=1.0), lambda: C.KSparsePolytope(6, 2, radius=1.0),
])
def test_zero_gradient_gives_a_feasible_point(make):
    constraint = make()
    assert constraint.contains(constraint.lmo(torch.zeros(6)))


@pytest.mark.parametrize("make, expected", [
    (lambda: C.L1Ball(9, radius=2.0), 4.0),
    (lambda: C.L2Ball(9, radius=2.0), 4.0),
    (lambda: C.LInfBall(9, radius=2.0), 12.0),
    (lambda: C.KSparsePolytope(9, 4, radius=2.0), 8.0),
    (lambda: C.LpBall(9, 4.0, radius=2.0), 4.0 * 9 ** 0.25),
])
def test_diameter_is_the_largest_vertex_distance_and_round_trips(make, expected):
    constraint = make()
    assert constraint.diameter == pytest.approx(expected)
    again = type(constraint)(*([constraint.n] + ([constraint.p] if hasattr(constraint, "p") else [])
                               + ([constraint.k] if hasattr(constraint, "k") else [])), diameter=expected)
    assert again.radius == pytest.approx(constraint.radius)


def test_radius_xor_diameter_and_bad_arguments():
    with pytest.raises(ValueError):
        C.L1Ball(3)
    with pytest.raises(ValueError):
        C.L1Ball(3, radius=1.0, diameter=2.0)
    with pytest.raises(ValueError):
        C.LpBall(3, 1.0, radius=1.0)
    with pytest.raises(ValueError):
        C.KSparsePolytope(3, 4, radius=1.0)
    with pytest.raises(ValueError):
        C.make_set("simplex", 3, diameter=1.0)


@pytest.mark.parametrize("kind", C.SETS)
def test_initialization_constraints_scale_with_the_weights_and_make_them_feasible(kind):
    torch.manual_seed(0)
    model = models.mlp([20, 10, 3])
    before = [p.detach().clone() for p in model.parameters()]
    groups = C.initialization_constraints(model, kind, diameter_factor=0.3, p=3.0, k_fraction=0.2)
    assert len(groups) == 4
    for group, original in zip(groups, before):
        p, constraint = group["params"][0], group["constraint"]
        assert constraint.diameter == pytest.approx(2 * 0.3 * float(original.norm()))
        assert constraint.contains(p)
        cosine = torch.nn.functional.cosine_similarity(p.detach().reshape(1, -1), original.reshape(1, -1))
        assert float(cosine) == pytest.approx(1.0), "shift_inside rescales, it does not rotate"


@pytest.mark.parametrize("kind", C.SETS)
def test_lmo_into_a_given_buffer_equals_the_fresh_result(kind):
    constraint = C.make_set(kind, 12, diameter=2.0, p=3.0, k_fraction=0.25)
    g = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = torch.full((3, 4), 7.0, dtype=torch.float64)
    assert constraint.lmo(g, out=out) is out
    torch.testing.assert_close(out, constraint.lmo(g))
    with pytest.raises(ValueError, match="shape"):
        constraint.lmo(g, out=torch.empty(12, dtype=torch.float64))


def brute_force_l1_grid(n_dims, radius, steps):
    """Every point of a regular grid inside the l1 ball of ``radius`` in ``n_dims`` dimensions (float64)."""
    axis = torch.linspace(-radius, radius, steps, dtype=torch.float64)
    grid = torch.cartesian_prod(*[axis] * n_dims).reshape(-1, n_dims)
    return grid[grid.abs().sum(1) <= radius * (1 + 1e-12)]


@pytest.mark.parametrize("seed", range(4))
def test_l1_projection_is_the_nearest_point_of_a_fine_grid(seed):
    v = 2.0 * torch.randn(2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ball = C.L1Ball(2, radius=1.0)
    grid = brute_force_l1_grid(2, 1.0, 1601)
    nearest = grid[((grid - v) ** 2).sum(1).argmin()]
    torch.testing.assert_close(ball.project(v), nearest, atol=2.5e-3, rtol=0)


@pytest.mark.parametrize("n", [3, 10, 200])
def test_l1_projection_satisfies_the_variational_inequality_at_every_vertex(n):
    """x = P(v) iff <v - x, s - x> <= 0 for every s of the ball; the ball is the hull of its 2n vertices."""
    v = torch.randn(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 3
    ball = C.L1Ball(n, radius=0.7)
    x = ball.project(v)
    assert ball.contains(x, tol=1e-12)
    vertices = torch.tensor(np.array(l1_vertices(n, 0.7)))
    assert float(((vertices - x) @ (v - x)).max()) <= 1e-10
    inside = 0.1 * v / v.abs().sum()
    torch.testing.assert_close(ball.project(inside), inside)


def test_least_squares_on_l1_ball_matches_a_grid_minimum_and_has_zero_fw_gap():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(30, 2, generator=g, dtype=torch.float64), 3 * torch.randn(30, generator=g, dtype=torch.float64)
    ball = C.L1Ball(2, radius=0.5)
    x = C.least_squares_on_l1_ball(a, b, ball, iterations=3000)
    grid = brute_force_l1_grid(2, 0.5, 2001)
    nearest = grid[((grid @ a.T - b) ** 2).sum(1).argmin()]
    torch.testing.assert_close(x, nearest, atol=1e-3, rtol=0)
    a, b = torch.randn(100, 40, generator=g, dtype=torch.float64), torch.randn(100, generator=g, dtype=torch.float64)
    ball = C.L1Ball(40, radius=0.3)
    x = C.least_squares_on_l1_ball(a, b, ball, iterations=5000)
    gradient = a.T @ (a @ x - b) / 100
    assert float(gradient @ (x - ball.lmo(gradient))) < 1e-10, "FW gap of the solution"
