"""Enumerations of ``autodiff.hardness`` against brute force, autograd and hand-derived sets."""

import itertools
import math

import pytest
import torch

from beyond_backprop.autodiff import hardness

F64 = torch.float64


def _rows(t: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(r) for r in t.tolist()}


@pytest.fixture
def networks() -> list[hardness.Network]:
    g = torch.Generator().manual_seed(3)
    return [hardness.random_ternary_network([2, 3, 3, 1], g) for _ in range(4)]


def test_random_ternary_network_shapes_entries_and_validation():
    net = hardness.random_ternary_network([3, 4, 2, 1], torch.Generator().manual_seed(0))
    assert [tuple(w.shape) for w in net] == [(4, 3), (2, 4), (1, 2)]
    assert all(set(w.unique().tolist()) <= {-1.0, 0.0, 1.0} for w in net)
    with pytest.raises(ValueError, match="invalid widths"):
        hardness.random_ternary_network([3, 4, 2], torch.Generator())


def test_relu_minus_relu_of_minus_x_hand_derived_sets():
    """F(x) = relu(x) - relu(-x) = x: Clarke at 0 is {1}; D^a(0) vertices are d1 + d2 ∈ {0, 1, 2}."""
    net = [torch.tensor([[1.0], [-1.0]], dtype=F64), torch.tensor([[1.0, -1.0]], dtype=F64)]
    assert _rows(hardness.conservative_products(net, torch.zeros(1, dtype=F64))) == {(0.0,), (1.0,), (2.0,)}
    exact, solved = hardness.clarke_generators_exact(net)
    assert _rows(exact) == {(1.0,)} and solved == 4
    assert hardness.ad_gradient(net, torch.zeros(1, dtype=F64), 0.0).tolist() == [0.0]
    assert hardness.ad_gradient(net, torch.zeros(1, dtype=F64), 1.0).tolist() == [2.0]


def test_conservative_products_equal_backprop_over_every_per_neuron_choice(networks):
    zero = torch.zeros(2, dtype=F64)
    for net in networks:
        sizes = [len(w) for w in net[:-1]]
        brute = set()
        for bits in itertools.product((0.0, 1.0), repeat=sum(sizes)):
            slopes = list(torch.tensor(bits, dtype=F64).split(sizes))
            brute.add(tuple(hardness.ad_gradient(net, zero, slopes).tolist()))
        assert _rows(hardness.conservative_products(net, zero)) == brute


def test_conservative_products_off_the_kinks_is_the_gradient(networks):
    x = torch.tensor([0.37, -1.21], dtype=F64)
    for net in networks:
        assert _rows(hardness.conservative_products(net, x)) == {tuple(hardness.ad_gradient(net, x).tolist())}


def test_exact_clarke_generators_match_a_dense_angular_sweep(networks):
    """In R^2, F is linear on cones: autograd on a fine grid of angles finds every region's gradient."""
    angles = torch.linspace(0, 2 * math.pi, 200_001, dtype=F64)[:-1] + 1e-4 * math.sqrt(2)
    points = torch.stack([angles.cos(), angles.sin()], dim=1).requires_grad_(True)
    for net in networks:
        exact, solved = hardness.clarke_generators_exact(net)
        assert solved <= 2 ** 6
        grid = torch.autograd.grad(hardness.evaluate(net, points).sum(), points)[0]
        assert _rows(exact) == _rows(torch.unique(grid, dim=0))


def test_sampled_generators_are_a_subset_of_the_exact_ones(networks):
    g = torch.Generator().manual_seed(0)
    for net in networks:
        assert _rows(hardness.clarke_generators_sampled(net, 500, g)) <= _rows(hardness.clarke_generators_exact(net)[0])


def test_in_convex_hull_on_a_triangle():
    triangle = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=F64)
    assert hardness.in_convex_hull(torch.tensor([0.2, 0.3], dtype=F64), triangle)
    assert not hardness.in_convex_hull(torch.tensor([0.6, 0.6], dtype=F64), triangle)


def test_max_pair_computes_max_twice_with_different_ad_outputs_at_the_tie():
    x = torch.randn(100, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    kink = torch.ones(2, dtype=F64)
    first, second = hardness.MAX_PAIR
    for net in (first, second):
        torch.testing.assert_close(hardness.evaluate(net, x), x.max(dim=1).values)
        assert set(net[0].unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert hardness.ad_gradient(first, kink).tolist() == [0.0, 1.0]
    assert hardness.ad_gradient(second, kink).tolist() == [1.0, 0.0]
