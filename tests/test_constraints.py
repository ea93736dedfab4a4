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
    groups = C.initialization_constraints(model, kind, width=0.3, p=3.0, k_fraction=0.2)
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
