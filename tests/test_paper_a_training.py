"""A2's training through the solver contract against the loop of paper A's scripts, written out by hand."""

import pytest
import torch

from beyond_backprop import models
from beyond_backprop.data import ImageData
from beyond_backprop.experiments import paper_a_training
from beyond_backprop.optim.constraints import initialization_constraints
from beyond_backprop.optim.stochastic import estimate_gradient, sfw_optimizer

WIDTHS = [784, 6, 6, 10]


def tiny_images(n: int = 120, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    x = (torch.rand(10, 784, generator=g)[labels] + 0.2 * torch.rand(n, 784, generator=g)).clamp(0, 1)
    return ImageData("fashion-mnist", x, labels, x.flip(0), labels.flip(0), "synthetic")


def scripts_loop(images: ImageData, method: str, schedule: str, *, iterations: int, batch: int, gap_samples: int,
                 gap_every: int, seed: int, learning_rate: float) -> list[float]:
    """The FW gaps of the loop as paper A's scripts write it: global seed, then batches and directions."""
    torch.manual_seed(seed)
    model = models.mlp(WIDTHS)
    groups = initialization_constraints(model, "k-sparse", 10.0, k_fraction=0.05)
    optimizer = sfw_optimizer(groups, averaging=method != "pfg", schedule=schedule, learning_rate=learning_rate)
    batches, directions = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    x, y = images.x_train, images.y_train
    gaps = []
    for k in range(1, iterations + 1):
        rows = torch.randint(0, len(y), (batch,), generator=batches)
        estimate_gradient(model, x[rows], y[rows], forward=method != "backprop-fw", generator=directions)
        optimizer.step()
        if k % gap_every == 0 or k == iterations:
            params = [group["params"][0] for group in optimizer.param_groups]
            grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[:gap_samples]), y[:gap_samples]),
                                        params)
            gaps.append(float(sum(torch.sum(g * (p.detach() - group["constraint"].lmo(g)))
                                  for g, p, group in zip(grads, params, optimizer.param_groups))))
    return gaps


@pytest.mark.parametrize("method, schedule", [("backprop-fw", "sfw"), ("pfg", "sfw"), ("averaged-pfg", "nonconvex")])
def test_contract_training_is_the_scripts_loop_in_lockstep(method, schedule):
    images = tiny_images()
    options = dict(iterations=7, batch=16, gap_samples=50, gap_every=3, seed=2, learning_rate=0.1)
    history, summary = paper_a_training.train(images, method, widths=WIDTHS, schedule=schedule,
                                              device=torch.device("cpu"), **options)
    expected = scripts_loop(images, method, schedule, **options)
    assert list(history["iteration"]) == [3, 6, 7]
    assert history["fw_gap"].tolist() == pytest.approx(expected, rel=1e-6)
    assert history["min_fw_gap"].tolist() == pytest.approx(torch.tensor(expected).cummin(0).values.tolist(), rel=1e-6)
    assert summary["test_accuracy"] == history["test_accuracy"].iloc[-1]
    assert 0 < summary["density"] <= 1


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="invalid method"):
        paper_a_training.fw_solver("adam", WIDTHS, batch=8, schedule="sfw")
