"""Paper D (dlADMM, KDD 2019 and arXiv 2112.11619): the sweeps behind notebooks D1-D5.

MLP experiments take an :class:`~beyond_backprop.data.ImageData` already on the device; every
history has the columns ``iteration, seconds, objective, residual, rho, train_accuracy,
test_accuracy`` plus the sweep's own columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import data, models, train
from ..optim.admm_taylor import TaylorADMM
from ..optim.dladmm import DLADMM, DLADMMGCN

# KDD §5.1: learning rates of the full-batch baselines (GD on the summed loss, spec §6.10)
BASELINES = {"gd": 1e-6, "adagrad": 1e-3, "adadelta": 0.1, "adam": 1e-3}
# GCN baselines: the sibling OPT2021 paper's rates (the journal's are not available, spec §3.2)
GCN_BASELINES = {"gd": 0.1, "adagrad": 1e-3, "adadelta": 1e-3, "adam": 1e-3}
# weight decay mu per dataset in the official GCN code
GCN_MU = {"cora": 0.0, "citeseer": 100.0, "pubmed": 0.0, "coauthor-cs": 10.0, "coauthor-physics": 10.0}
# the code's form of the convergence runs: nu tied to rho, rho held fixed (spec §6.1)
FIXED = {"nu": None, "rho_rule": "fixed"}


def run_dladmm(images: data.ImageData, widths: list[int], *, iterations: int, seed: int = 0,
               **options) -> pd.DataFrame:
    """dlADMM on ``images`` from a seeded initialisation; ``options`` go to :class:`DLADMM`."""
    solver = DLADMM(widths, **options)
    generator = torch.Generator(device=images.x_train.device).manual_seed(seed)
    state = solver.init(images.x_train, images.y_train, generator)
    _, history = solver.run(state, images.x_train, images.y_train, iterations,
                            evaluate={"test": (images.x_test, images.y_test)})
    return history


def convergence(images: data.ImageData, widths: list[int], variants: dict[str, dict], *, iterations: int,
                seed: int = 0) -> pd.DataFrame:
    """One dlADMM history per named variant (keyword options), stacked with a ``variant`` column."""
    frames = [run_dladmm(images, widths, iterations=iterations, seed=seed, **options).assign(variant=name)
              for name, options in variants.items()]
    return pd.concat(frames, ignore_index=True)


def fraction_decreasing(values: pd.Series) -> float:
    """Fraction of consecutive steps at which ``values`` decreased."""
    steps = np.diff(values.to_numpy())
    return float((steps < 0).mean()) if len(steps) else float("nan")


def _seeded_mlp(widths: list[int], seed: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.mlp(widths).to(device)


def accuracy_comparison(images: data.ImageData, widths: list[int], *, iterations: int, seed: int = 0,
                        taylor_rho: float = 1.0) -> pd.DataFrame:
    """dlADMM (paper schedule), the four gradient baselines and Taylor's ADMM; a ``method`` column."""
    frames = [run_dladmm(images, widths, iterations=iterations, seed=seed).assign(method="dlADMM")]
    x, y = images.x_train, images.y_train
    test = {"test": train.Split(images.x_test, images.y_test)}
    for name, lr in BASELINES.items():
        history = train.train_full_batch(_seeded_mlp(widths, seed, x.device), name, lr, train.Split(x, y), test,
                                         iterations=iterations, reduction="sum" if name == "gd" else "mean",
                                         progress=False)
        frames.append(history.assign(method=name))
    taylor = TaylorADMM(widths, rho=taylor_rho)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    _, history = taylor.run(taylor.init(x, y, generator), x, y, iterations,
                            evaluate={"test": (images.x_test, images.y_test)})
    frames.append(history.assign(method="ADMM (Taylor)"))
    return pd.concat(frames, ignore_index=True)


def final_accuracy(frame: pd.DataFrame, by: str, column: str = "test_accuracy") -> pd.Series:
    """The last iteration's ``column`` per value of ``by``."""
    return frame.sort_values("iteration").groupby(by, sort=False)[column].last()


def runtime_sweep(images: data.ImageData, widths: list[int], sizes: list[int], *, depth_widths: int = 2,
                  iterations: int, rho: float = 1e-6, seed: int = 0, exact_width: int | None = None) -> pd.DataFrame:
    """Seconds per iteration against hidden width (all training rows of ``images[:max(sizes)]``) and against
    training size (largest width); with ``exact_width``, the exact subproblem solver at that width too.

    Rows: ``sweep`` (``width``, ``size`` or ``exact``), ``width``, ``size``, ``solver``, ``seconds_per_iteration``.
    """
    rows = []
    classes = int(images.y_train.max()) + 1

    def timed(width: int, size: int, subproblem: str) -> float:
        subset = data.ImageData(images.name, images.x_train[:size], images.y_train[:size],
                                images.x_test[:1], images.y_test[:1], images.source)
        net = [images.x_train.shape[1], *[width] * depth_widths, classes]
        history = run_dladmm(subset, net, iterations=iterations, seed=seed, rho=rho, subproblem=subproblem)
        return float(history["seconds"].iloc[-1]) / iterations

    largest = max(sizes)
    for width in widths:
        rows.append({"sweep": "width", "width": width, "size": largest, "solver": "quadratic",
                     "seconds_per_iteration": timed(width, largest, "quadratic")})
    for size in sizes:
        rows.append({"sweep": "size", "width": max(widths), "size": size, "solver": "quadratic",
                     "seconds_per_iteration": timed(max(widths), size, "quadratic")})
    if exact_width is not None:
        for solver in ("quadratic", "exact"):
            rows.append({"sweep": "exact", "width": exact_width, "size": largest, "solver": solver,
                         "seconds_per_iteration": timed(exact_width, largest, solver)})
    return pd.DataFrame(rows)


def linear_fit_r2(x: pd.Series, y: pd.Series) -> float:
    """Coefficient of determination of the least-squares line through ``(x, y)``."""
    xs, ys = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = ((ys - (slope * xs + intercept)) ** 2).sum()
    total = ((ys - ys.mean()) ** 2).sum()
    return float(1.0 - residual / total) if total > 0 else 1.0


def gcn_comparison(name: str, data_dir: str, device: torch.device, *, hidden: int, iterations: int,
                   rho: float = 1e-3, rho_every: int = 50, seed: int = 0) -> pd.DataFrame:
    """dlADMM-GCN and the four gradient baselines on a Planetoid graph; raises ``data.DataMissing``."""
    graph = data.load_planetoid(name, data_dir)
    adjacency = models.sparse_tensor(data.normalized_adjacency(graph.adjacency), device)
    features, labels = graph.features.to(device), graph.labels.to(device)
    index = {"train": graph.idx_train.to(device), "test": graph.idx_test.to(device)}
    widths = [features.shape[1], hidden, int(labels.max()) + 1]
    solver = DLADMMGCN(widths, rho=rho, mu=GCN_MU[name], rho_every=rho_every)
    generator = torch.Generator(device=device).manual_seed(seed)
    state = solver.init(adjacency, features, labels, index["train"], index["test"], generator)
    _, history = solver.run(state, adjacency, features, labels, index, iterations)
    frames = [history.assign(method="dlADMM")]
    for method, lr in GCN_BASELINES.items():
        torch.manual_seed(seed)
        model = models.GCN(adjacency, widths, bias=False).to(device)
        split = train.Split(features, labels, index["train"])
        history = train.train_full_batch(model, method, lr, split, {"test": train.Split(features, labels, index["test"])},
                                         iterations=iterations, progress=False)
        frames.append(history.assign(method=method))
    return pd.concat(frames, ignore_index=True).assign(dataset=name)
