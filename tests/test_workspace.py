"""The per-step workspace hands out one buffer per name and shape, and the blocks that use it compute
exactly what they compute without one."""

import torch

from beyond_backprop.optim.admm_blocks import update_z_relu
from beyond_backprop.optim.quadratic_blocks import activation_step, weight_step
from beyond_backprop.optim.workspace import Workspace, scratch


def test_a_name_and_shape_give_the_same_buffer_and_anything_else_another():
    ws, x = Workspace(), torch.zeros(3, 4)
    first = ws.like("target", x)
    assert ws.like("target", x) is first
    assert ws.like("m", x) is not first
    assert ws.like("target", torch.zeros(3, 5)) is not first
    assert ws.like("target", x, torch.bool).dtype == torch.bool
    assert scratch(None, "target", x) is not scratch(None, "target", x)


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=torch.float64) for shape in ((50, 8), (6, 8), (50, 6), (50, 8))]


def test_blocks_with_a_workspace_equal_the_blocks_without_one():
    a_prev, w, target, h = _data()
    ws = Workspace()
    for _ in range(2):  # the second pass reuses every buffer of the first
        plain = weight_step(w, a_prev, a_prev @ w.T, target.clone(), 0.5, 1.0)
        reused = weight_step(w, a_prev, a_prev @ w.T, target.clone(), 0.5, 1.0, workspace=ws)
        assert all(torch.equal(p, r) for p, r in zip(plain, reused))
        plain = activation_step(h, w, h @ w.T, target.clone(), 0.5, a_prev, 0.3, 1.0)
        reused = activation_step(h, w, h @ w.T, target.clone(), 0.5, a_prev, 0.3, 1.0, workspace=ws)
        assert all(torch.equal(p, r) for p, r in zip(plain, reused))
        assert torch.equal(update_z_relu(h, a_prev, 1.0, 2.0), update_z_relu(h, a_prev, 1.0, 2.0, workspace=ws))
