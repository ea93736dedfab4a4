"""AD at kinks (``autodiff.kinks``) against hand-derived derivatives and torch.autograd."""

import pytest
import torch
from torch import nn
from torch.func import jvp

from beyond_backprop.autodiff import kinks

# Hand-derived from each operator's documented derivative rule at its kink.
EXPECTED_AT_KINK = {
    "relu(x)": (0.0,),                      # derivative of x>0 branch only
    "abs(x)": (0.0,),                       # sign(0) = 0
    "clamp(x, min=0)": (1.0,),              # gradient passes where x >= min
    "maximum(x, 0)": (0.5,),                # ties split the gradient evenly
    "where(x > 0, x, 0)": (0.0,),           # condition false at 0: the constant branch
    "where(x >= 0, x, 0)": (1.0,),          # condition true at 0: the identity branch
    "leaky_relu(x, 0.1)": (0.1,),           # negative slope used for x <= 0
    "hardtanh(x) at 1": (0.0,),             # gradient only strictly inside (-1, 1)
    "max(x1, x2) tie": (0.5, 0.5),          # full max reduction splits ties evenly
    "max_pool1d(x1, x2) tie": (1.0, 0.0),   # pooling routes to the first maximal index
}


def test_kink_table_matches_hand_derived_values_in_both_modes_and_dtypes():
    table = kinks.kink_table((torch.float32, torch.float64))
    assert set(table["program"]) == set(EXPECTED_AT_KINK)
    for row in table.itertuples():
        assert row.reverse == pytest.approx(EXPECTED_AT_KINK[row.program], rel=1e-7), row.program
        assert row.forward == pytest.approx(EXPECTED_AT_KINK[row.program], rel=1e-7), row.program


def test_equal_pairs_are_equal_functions_with_the_hand_derived_derivatives_at_zero():
    table = kinks.equal_pairs_table().set_index("pair")
    assert (table["max_gap"] == 0).all()
    expected = {"relu(x) - relu(-x) = x": (0.0, 1.0), "relu(x) + relu(-x) = abs(x)": (0.0, 0.0),
                "clamp(x, min=0) = relu(x)": (1.0, 0.0), "maximum(x, 0) = relu(x)": (0.5, 0.0),
                "where(x >= 0, x, 0) = relu(x)": (1.0, 0.0), "x (1 + 1) = x + x (smooth control)": (2.0, 2.0)}
    for pair, (d, d_ref) in expected.items():
        assert (table.loc[pair, "derivative"], table.loc[pair, "reference_derivative"]) == (d, d_ref)
        assert table.loc[pair, "ad_differs"] == (d != d_ref)


@pytest.mark.parametrize("s", [0.0, 0.3, 1.0])
def test_relu_at_uses_s_at_zero_in_backward_and_forward_mode(s):
    x = torch.tensor([-1.5, 0.0, 2.0], dtype=torch.float64)
    expected = torch.tensor([0.0, s, 1.0], dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda t: kinks.relu_at(t, s), x)
    torch.testing.assert_close(jacobian, torch.diag(expected))
    torch.testing.assert_close(jvp(lambda t: kinks.relu_at(t, s), (x,), (torch.ones_like(x),))[1], expected)
    torch.testing.assert_close(kinks.relu_at(x, s), torch.relu(x))


def test_relu_at_rejects_s_outside_the_unit_interval():
    with pytest.raises(ValueError, match="invalid s"):
        kinks.relu_at(torch.zeros(2), 1.5)


def _net_with_exact_zero() -> nn.Sequential:
    """x -> relu(x1 - x2) -> 2·h: the hidden pre-activation is exactly 0 when x1 = x2."""
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[2.0], [-1.0]]))
        net[2].bias.zero_()
    return net


def test_forward_with_s_matches_torch_and_its_gradient_at_the_kink_is_s_times_the_smooth_one():
    net = _net_with_exact_zero()
    x = torch.tensor([[1.0, 1.0]], requires_grad=True)
    for s in (0.0, 1.0):
        logits, pre = kinks.forward_with_s(net, x, s)
        torch.testing.assert_close(logits, net(x))
        assert pre[0].item() == 0.0
        g = torch.autograd.grad(logits[0, 0], x)[0]
        torch.testing.assert_close(g, s * torch.tensor([[2.0, -2.0]]))


def test_backprops_differ_exactly_on_the_kink_and_compares_with_autograd():
    net = _net_with_exact_zero()
    y = torch.tensor([0])
    assert kinks.backprops_differ(net, torch.tensor([[1.0, 1.0]]), y) == (True, 1)
    assert kinks.backprops_differ(net, torch.tensor([[3.0, 1.0]]), y) == (False, 0)
    # off the kink the one backprop computed is torch's own (relu'(0) plays no role)
    x = torch.tensor([[3.0, 1.0]])
    logits, _ = kinks.forward_with_s(net, x, 0.0)
    ours = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, y), tuple(net.parameters()))
    theirs = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x), y), tuple(net.parameters()))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_bifurcation_volume_stops_each_network_at_its_first_differing_minibatch():
    x = torch.tensor([[3.0, 1.0], [2.0, 5.0], [1.0, 1.0], [0.5, 0.5]])
    y = torch.tensor([0, 1, 0, 1])
    table = kinks.bifurcation_volume(_net_with_exact_zero, x, y, batch_size=1, dtypes=[torch.float64], networks=2)
    assert list(table["differs"]) == [True, True]
    assert list(table["minibatches"]) == [3, 3] and list(table["samples"]) == [3, 3]
    smooth = kinks.bifurcation_volume(_net_with_exact_zero, x[:2], y[:2], batch_size=2, dtypes=[torch.float64],
                                      networks=1).iloc[0]
    assert (smooth["differs"], smooth["minibatches"], smooth["zeros"]) == (False, 1, 0)
    with pytest.raises(ValueError, match="invalid batch_size"):
        kinks.bifurcation_volume(_net_with_exact_zero, x, y, batch_size=0, dtypes=[torch.float64], networks=1)


def test_bertoin_mlp_has_the_authors_layers():
    net = kinks.bertoin_mlp(784, 256, 3)
    kinds = [type(layer).__name__ for layer in net]
    assert kinds == ["Linear", "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [layer.out_features for layer in net if isinstance(layer, nn.Linear)] == [256, 256, 256, 10]
