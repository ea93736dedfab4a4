"""The FISTA momentum sequence against its defining equation and its known growth."""

import pytest

from beyond_backprop.optim.fista import fista_momentum


def test_momentum_solves_the_defining_quadratic_and_grows_like_half_k():
    lam = 1.0
    for k in range(1, 200):
        new = fista_momentum(lam)
        # Beck and Teboulle: lam+ is the positive root of t^2 - t - lam^2 = 0
        assert new * new - new == pytest.approx(lam * lam, rel=1e-12)
        assert new >= (k + 2) / 2
        lam = new


def test_momentum_from_zero_is_one():
    assert fista_momentum(0.0) == 1.0
