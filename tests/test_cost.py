"""Derivative programs of ``autodiff.cost`` against torch.autograd and finite differences."""

import pytest
import torch

from beyond_backprop.autodiff import cost


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """A smooth R^4 -> R^3 map."""
    w = torch.arange(12, dtype=x.dtype).reshape(3, 4) / 10 - 0.5
    return torch.tanh(w @ x) * torch.exp(x[:3] / 3)


def _scalar(x: torch.Tensor) -> torch.Tensor:
    return _smooth(x).pow(2).sum() + torch.sin(x).sum()


@pytest.fixture
def x() -> torch.Tensor:
    return torch.tensor([0.3, -1.2, 0.7, 2.0], dtype=torch.float64)


def _finite_difference(f, x: torch.Tensor, v: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    return (f(x + h * v) - f(x - h * v)) / (2 * h)


def test_jvp_matches_autograd_jacobian_and_finite_differences(x):
    v = torch.tensor([1.0, -2.0, 0.5, 0.25], dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(_smooth, x)
    torch.testing.assert_close(cost.jvp(_smooth, x, v), jacobian @ v)
    torch.testing.assert_close(cost.jvp(_smooth, x, v), _finite_difference(_smooth, x, v), rtol=1e-7, atol=1e-8)


def test_vjp_matches_autograd_jacobian(x):
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(cost.vjp(_smooth, x, w), w @ torch.autograd.functional.jacobian(_smooth, x))


@pytest.mark.parametrize("batched", [False, True])
def test_directional_derivatives_stack_one_jvp_per_direction(x, batched):
    directions = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = directions @ torch.autograd.functional.jacobian(_smooth, x).T
    torch.testing.assert_close(cost.directional_derivatives(_smooth, x, directions, batched), expected)


@pytest.mark.parametrize("batched", [False, True])
def test_forward_and_backward_gradients_agree_with_finite_differences(x, batched):
    reference = torch.stack([_finite_difference(_scalar, x, e) for e in torch.eye(4, dtype=torch.float64)])
    torch.testing.assert_close(cost.gradient_forward(_scalar, x, batched), reference, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(cost.gradient_backward(_scalar, x), reference, rtol=1e-7, atol=1e-8)


def test_parameter_gradient_matches_backward():
    model = torch.nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = cost.parameter_gradient(model, lambda out: out.pow(2).sum(), x)
    model(x).pow(2).sum().backward()
    for got, param in zip(grads, model.parameters()):
        torch.testing.assert_close(got, param.grad)


def test_directions_shape_and_timing_arguments_are_validated(x):
    with pytest.raises(ValueError, match="invalid directions shape"):
        cost.directional_derivatives(_smooth, x, torch.ones(2, 3, dtype=torch.float64), batched=True)
    with pytest.raises(ValueError, match="invalid repeats"):
        cost.interleaved_times({"f": lambda: None}, "cpu", repeats=0)


def test_interleaved_times_runs_every_program_warmup_plus_repeats_times_in_turn():
    calls = []

    def record(name: str):
        return lambda: calls.append(name)

    times = cost.interleaved_times({"a": record("a"), "b": record("b")}, "cpu", repeats=4, warmup=2)
    assert calls == ["a", "b"] * 6
    assert set(times) == {"a", "b"} and all(len(t) == 4 and min(t) >= 0 for t in times.values())


def test_peak_memory_sees_a_known_allocation():
    size = 1 << 20
    assert cost.peak_memory(lambda: torch.empty(size, dtype=torch.uint8), "cpu") >= size
