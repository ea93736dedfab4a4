"""D3's runtime sweep: every point in every round, a point shared by two sweeps timed once per round."""

import pandas as pd
import torch

from beyond_backprop import data
from beyond_backprop.experiments import paper_d


def _images(n: int = 30) -> data.ImageData:
    x = torch.rand(n, 6, generator=torch.Generator().manual_seed(0))
    y = torch.arange(n) % 3
    return data.ImageData("fashion-mnist", x, y, x[:5], y[:5], "synthetic")


def test_runtime_sweep_times_a_shared_point_once_per_round(monkeypatch):
    calls = []

    def fake_run(images, widths, options, *, iterations, seed, evaluate_every, reuse):
        assert not reuse  # a timing is never taken from the run cache
        calls.append((widths[1], images.x_train.shape[0], options.subproblem))
        return pd.DataFrame({"seconds": [float(len(calls))]})

    monkeypatch.setattr(paper_d, "run_dladmm", fake_run)
    table = paper_d.runtime_sweep(_images(), [4, 8], [10, 30], width_size=30, iterations=1, repeats=2,
                                  exact_width=8)
    # (8, 30, quadratic) belongs to all three sweeps; it is timed once per round
    assert calls.count((8, 30, "quadratic")) == 2
    assert len(calls) == 2 * 4  # (4, 30), (8, 30), (8, 10) quadratic and (8, 30) exact, per round
    shared = table[(table["width"] == 8) & (table["size"] == 30) & (table["solver"] == "quadratic")]
    assert list(shared["sweep"]) == ["width", "size", "exact"] * 2
    assert shared.groupby("round")["seconds_per_iteration"].nunique().eq(1).all()
    assert len(table) == 2 * 6


def test_runtime_sweep_runs_dladmm_at_every_point():
    table = paper_d.runtime_sweep(_images(), [4], [20], width_size=30, iterations=1, repeats=1)
    assert set(zip(table["sweep"], table["width"], table["size"])) == {("width", 4, 30), ("size", 4, 20)}
    assert (table["seconds_per_iteration"] > 0).all()
