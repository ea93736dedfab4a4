"""Projected forward gradients against torch.autograd: unbiasedness and the second moment."""

import math

import pytest
import torch

from beyond_backprop import models
from beyond_backprop.autodiff import forward_gradient as fg


def quadratic_setup(d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(30, d, generator=g, dtype=torch.float64)
    b = torch.randn(30, generator=g, dtype=torch.float64)
    theta = {"w": torch.randn(d, generator=g, dtype=torch.float64)}
    loss = lambda p: 0.5 * ((a @ p["w"] - b) ** 2).mean()  # noqa: E731
    w = theta["w"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss({"w": w}), w)
    return loss, theta, grad


@pytest.mark.parametrize("kind", fg.DIRECTIONS)
def test_unbiased_against_autograd(kind):
    """Mean of N samples: ||mean - grad|| <= 5 sigma/sqrt(N), sigma^2 = E||phi - grad||^2 <= (d+1)||grad||^2."""
    loss, theta, grad = quadratic_setup()
    n, d = 4000, grad.numel()
    _, phi = fg.projected_forward_gradient(loss, theta, directions=n, kind=kind,
                                           generator=torch.Generator().manual_seed(1))
    mean = phi["w"]  # the average over n directions is the sample mean of n single-direction estimates
    tolerance = 5 * math.sqrt((d + 1) / n) * float(grad.norm())
    assert float((mean - grad).norm()) < tolerance
    assert float(torch.nn.functional.cosine_similarity(mean, grad, dim=0)) > 0.9


@pytest.mark.parametrize("kind, factor", [("gaussian", lambda d: d + 2), ("rademacher", lambda d: d)])
def test_second_moment_closed_form(kind, factor):
    loss, theta, grad = quadratic_setup(d=10)
    gen = torch.Generator().manual_seed(2)
    samples = torch.stack([fg.projected_forward_gradient(loss, theta, kind=kind, generator=gen)[1]["w"]
                           for _ in range(6000)])
    second = float((samples ** 2).sum(1).mean())
    expected = factor(10) * float(grad.norm() ** 2)
    assert second == pytest.approx(expected, rel=0.08)


def test_module_loss_single_direction_is_exact_directional_derivative():
    """<grad, u> from the JVP equals autograd's gradient dotted with the same u."""
    torch.manual_seed(0)
    model = models.mlp([6, 5, 3])
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    loss_of = fg.module_loss(model, torch.nn.functional.cross_entropy, x, y)
    params = fg.model_parameters(model)
    gen_state = torch.Generator().manual_seed(5)
    tangents = fg.sample_directions(params, 1, "gaussian", torch.Generator().manual_seed(5))
    loss, phi = fg.projected_forward_gradient(loss_of, params, generator=gen_state)
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), list(model.parameters()))
    slope = sum(float((g * tangents[k][0]).sum()) for k, g in zip(params, grads))
    for k in params:
        torch.testing.assert_close(phi[k], slope * tangents[k][0], rtol=1e-4, atol=1e-6)
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(model(x), y)))


def test_no_autograd_graph_is_built():
    model = models.mlp([4, 3])
    params = {k: v.detach().requires_grad_(True) for k, v in fg.model_parameters(model).items()}
    loss_of = fg.module_loss(model, torch.nn.functional.cross_entropy, torch.randn(2, 4), torch.tensor([0, 1]))
    loss, phi = fg.projected_forward_gradient(loss_of, params, generator=torch.Generator().manual_seed(0))
    assert loss.grad_fn is None and all(t.grad_fn is None for t in phi.values())


def test_bad_arguments():
    loss, theta, _ = quadratic_setup()
    with pytest.raises(ValueError):
        fg.projected_forward_gradient(loss, theta, directions=0)
    with pytest.raises(ValueError):
        fg.sample_directions(theta, 1, "sphere")


def assert_layerwise_equals_torch_func(model: torch.nn.Sequential, x: torch.Tensor, y: torch.Tensor, kind: str,
                                       directions: int) -> None:
    """Same draws, same phi as projected_forward_gradient (torch.func.jvp), and the generator ends in the same state."""
    loss_of = fg.module_loss(model, torch.nn.functional.cross_entropy, x, y)
    reference_gen, gen = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    loss, phi = fg.projected_forward_gradient(loss_of, fg.model_parameters(model), kind=kind, generator=reference_gen,
                                              directions=directions)
    value = fg.layerwise_forward_gradient(model, torch.nn.functional.cross_entropy, x, y, generator=gen, kind=kind,
                                          directions=directions)
    torch.testing.assert_close(value, loss)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, phi[name], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.randn(3, generator=gen), torch.randn(3, generator=reference_gen))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("kind", fg.DIRECTIONS)
@pytest.mark.parametrize("directions", [1, 3])
def test_layerwise_forward_gradient_equals_the_torch_func_estimate(activation, kind, directions):
    """Same draws, same phi as projected_forward_gradient (torch.func.jvp), and the generator ends in the same state."""
    torch.manual_seed(0)
    model = models.mlp([6, 5, 4, 3], activation=activation).double()
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    assert_layerwise_equals_torch_func(model, x, y, kind, directions)


@pytest.mark.parametrize("directions", [1, 3])
def test_forward_gradient_of_known_equals_the_jvp_estimate_from_the_same_draws(directions):
    loss, theta, grad = quadratic_setup()
    _, phi = fg.projected_forward_gradient(loss, theta, directions=directions,
                                           generator=torch.Generator().manual_seed(7))
    known = fg.forward_gradient_of_known(grad, directions=directions, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(known, phi["w"])
    with pytest.raises(ValueError, match="directions"):
        fg.forward_gradient_of_known(grad, directions=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", fg.DIRECTIONS)
@pytest.mark.parametrize("shape", [(48, 784), (24, 32), (50, 16), (96,), (7, 5)])
def test_tangents_drawn_in_pieces_are_the_whole_draw(monkeypatch, dtype, kind, shape):
    """CPU normal_ draws 16 at a time: pieces of multiples of 16 entries, drawn one after another, are the numbers of
    one whole draw (bit for bit), and the generator ends where the whole draw leaves it. (7, 5), 35 entries, is
    drawn whole."""
    monkeypatch.setattr(fg, "PIECE_ROWS", 2)
    p = torch.zeros(shape, dtype=dtype)
    whole_gen, gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    whole = fg.sample_directions({"p": p}, 3, kind, whole_gen)["p"]
    pieces = list(fg.drawn_rows(p, 3, kind, gen))
    for j in range(3):
        assert torch.equal(torch.cat([u for i, _, u in pieces if i == j]), whole[j])
    assert torch.equal(torch.randn(5, generator=gen), torch.randn(5, generator=whole_gen))
    if p.numel() % 16:
        assert len(pieces) == 3
    else:
        assert len(pieces) > 3 and all(u.numel() % 16 == 0 for _, _, u in pieces)
        assert max(u.numel() for _, _, u in pieces) == fg.tangent_piece_entries(p, 3, gen)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("kind", fg.DIRECTIONS)
@pytest.mark.parametrize("directions", [1, 3])
def test_layers_applied_in_place_in_pieces_equal_the_torch_func_estimate(monkeypatch, activation, kind, directions):
    """Row pieces of 3 rows (10 rows: a short last piece) and tangent pieces of a few rows, through layers that
    narrow and widen their view of the two buffers (16 -> 16 -> 32 -> 24 -> 3): the same phi as torch.func."""
    monkeypatch.setattr(fg, "PIECE_ROWS", 2)
    monkeypatch.setattr(fg, "ROW_CHUNK", 3)
    torch.manual_seed(1)
    model = models.mlp([16, 16, 32, 24, 3], activation=activation).double()
    x, y = torch.randn(10, 16, dtype=torch.float64), torch.randint(0, 3, (10,))
    assert_layerwise_equals_torch_func(model, x, y, kind, directions)


def test_forward_pass_holds_two_activation_buffers():
    """A deep ReLU MLP's forward-mode pass allocates the primal and the tangent buffer (batch x width each) and
    pieces, not a third batch x width tensor (the pass before writing in place held three)."""
    from beyond_backprop.runtime import PeakMemory

    batch, width = 1024, 256
    torch.manual_seed(0)
    model = models.mlp([64] + [width] * 6 + [10])
    x, y = torch.randn(batch, 64), torch.randint(0, 10, (batch,))
    with PeakMemory("cpu") as meter:
        fg.layerwise_directional_derivatives(model, torch.nn.functional.cross_entropy, x, y,
                                             generator=torch.Generator().manual_seed(0))
    buffer = batch * width * 4
    assert 2 * buffer <= meter.bytes < 2.5 * buffer
