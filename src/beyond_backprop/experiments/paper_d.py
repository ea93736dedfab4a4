"""Paper D (dlADMM, KDD 2019 and arXiv 2112.11619): the sweeps behind notebooks D1-D5.

MLP experiments take an :class:`~beyond_backprop.data.ImageData` already on the device and run every
method through :func:`~beyond_backprop.optim.solver.run_history`, so every history has the columns of
:data:`~beyond_backprop.optim.solver.METRICS` (``iteration, seconds, train_loss``, the solver's own
``lagrangian, residual, rho``, ``train_accuracy, test_accuracy``) plus the sweep's own columns.
The ``d<N>_claims`` functions turn a notebook's runs into its claims' measured numbers, each with the
setting it was measured at (``ClaimLedger.record`` files them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from .. import data, fits, method_names as names, models
from ..optim.admm_taylor import TaylorADMM
from ..optim.dladmm import DLADMM, OFFICIAL, PAPER, DLADMMOptions
from ..optim import dladmm_gcn
from ..optim.dladmm_gcn import DLADMMGCN
from ..optim.gradient import MLPBuilder, TorchOptimizer
from ..optim.solver import Solver, run_history
from ..problem import Problem, Split
from . import run_cache
from .histories import final_accuracy
from ..results import Measurement

# KDD §5.1: learning rates of the full-batch baselines (GD on the summed loss, spec §6.10)
BASELINES = {"gd": 1e-6, "adagrad": 1e-3, "adadelta": 0.1, "adam": 1e-3}
# GCN baselines: the sibling OPT2021 paper's rates (the journal's are not available, spec §3.2)
GCN_BASELINES = {"gd": 0.1, "adagrad": 1e-3, "adadelta": 1e-3, "adam": 1e-3}
# weight decay mu per dataset in the official GCN code
GCN_MU = {"cora": 0.0, "citeseer": 100.0, "pubmed": 0.0, "coauthor-cs": 10.0, "coauthor-physics": 10.0}
# the paper's schedule first raises rho after this many iterations (KDD §5.1)
SCHEDULE_STEP = 100
# the datasets of D1/D2 in claim-id order (D4 follows data.GRAPH_DATASETS, the journal's five graphs)
MLP_DATASETS = ("fashion-mnist", "mnist-subset")


def rho_variant(rho: float) -> str:
    """The one spelling of a fixed-rho variant's name, the papers' ``rho=1e-6`` (not ``rho=1e-06``)."""
    mantissa, _, exponent = f"{rho:g}".partition("e")
    return f"rho={mantissa}" + (f"e{int(exponent)}" if exponent else "")


CONVERGING, DIVERGING = rho_variant(1.0), rho_variant(1e-6)  # D1 and D5.1: rho = 1 converges, 1e-6 does not


def convergence_variants() -> dict[str, DLADMMOptions]:
    """D1's runs: fixed rho = 1 (Fig 2) and fixed rho = 1e-6 (Fig 3), nu tied to rho."""
    return {CONVERGING: fixed_rho(1.0), DIVERGING: fixed_rho(1e-6)}


def fixed_rho(rho: float) -> DLADMMOptions:
    """The code's form of the convergence runs (spec §6.1): the paper's solver with nu tied to a fixed ``rho``."""
    return replace(PAPER, rho=rho, nu=None, rho_rule="fixed")


def run_method(solver: Solver, problem: Problem, *, iterations: int, seed: int = 0,
               evaluate_every: int = 1, reuse: bool = True) -> pd.DataFrame:
    """``solver`` from an initialisation drawn by a generator seeded with ``seed``, through :func:`run_history`;
    with ``reuse``, a run already computed by this or another notebook is reused (:mod:`.run_cache`)."""

    def compute() -> pd.DataFrame:
        generator = torch.Generator(device=problem.device).manual_seed(seed)
        return run_history(solver, solver.init(problem, generator), problem, iterations,
                           evaluate_every=evaluate_every)[1]

    if not reuse:
        return compute()
    return run_cache.cached_history(solver, problem, iterations=iterations, seed=seed,
                                    evaluate_every=evaluate_every, compute=compute)


def run_dladmm(images: data.ImageData, widths: list[int], options: DLADMMOptions = PAPER, *, iterations: int,
               seed: int = 0, evaluate_every: int = 1, reuse: bool = True) -> pd.DataFrame:
    """dlADMM with ``options`` on ``images`` from a seeded initialisation (see :func:`run_method`)."""
    return run_method(DLADMM(widths, options=options), images.problem(widths[-1]), iterations=iterations,
                      seed=seed, evaluate_every=evaluate_every, reuse=reuse)


def convergence(images: data.ImageData, widths: list[int], variants: Mapping[str, DLADMMOptions], *,
                iterations: int, seed: int = 0) -> pd.DataFrame:
    """One dlADMM history per named variant (its options), stacked with a ``variant`` column."""
    frames = [run_dladmm(images, widths, options, iterations=iterations, seed=seed).assign(variant=name)
              for name, options in variants.items()]
    return pd.concat(frames, ignore_index=True)


def fraction_decreasing(values: pd.Series) -> float:
    """Fraction of consecutive steps at which ``values`` decreased."""
    steps = np.diff(np.asarray(values, dtype=float))
    return float((steps < 0).mean()) if len(steps) else float("nan")


def sign_change_share(values: pd.Series) -> float:
    """Share of consecutive non-zero steps of ``values`` whose sign differs from the step before.

    0 for a monotone rise or descent, 1 for a zig-zag; NaN with fewer than two non-zero steps.
    """
    signs = np.sign(np.diff(np.asarray(values, dtype=float)))
    signs = signs[signs != 0]
    return float((signs[1:] != signs[:-1]).mean()) if len(signs) > 1 else float("nan")


def d1_claims(histories: Mapping[str, pd.DataFrame], *, width: int, train_sizes: Mapping[str, int]
              ) -> dict[str, Measurement]:
    """D1.1-D1.3 (Fashion-MNIST), D1.4-D1.6 (MNIST subset) from :func:`convergence` histories with
    variants :data:`CONVERGING` and :data:`DIVERGING`: share of falling L_rho and residual steps at rho = 1,
    share of L_rho steps that change sign (:func:`sign_change_share`) at rho = 1e-6."""
    out = {}
    for offset, name in enumerate(MLP_DATASETS):
        frame = histories[name].sort_values("iteration")
        one, tiny = frame[frame["variant"] == CONVERGING], frame[frame["variant"] == DIVERGING]
        at = {"iterations": int(frame["iteration"].max()), "width": width, "train_size": train_sizes[name],
              "dataset": name}
        values = (fraction_decreasing(one["lagrangian"]), fraction_decreasing(one["residual"]),
                  sign_change_share(tiny["lagrangian"]))
        for number, value in enumerate(values, start=3 * offset + 1):
            out[f"D1.{number}"] = Measurement(value, at)
    return out


def accuracy_comparison(images: data.ImageData, widths: list[int], *, iterations: int, seed: int = 0,
                        taylor_rho: float = 1.0, evaluate_every: int = 1) -> pd.DataFrame:
    """dlADMM (:data:`PAPER`), the four gradient baselines (GD on the summed loss, spec §6.10) and Taylor's
    ADMM, each from a generator seeded with ``seed``; a ``method`` column. ``evaluate_every``: see
    :func:`run_history` (the last iteration is always evaluated)."""
    solvers: dict[str, Solver] = {names.DLADMM: DLADMM(widths, options=PAPER)}
    for name, lr in BASELINES.items():
        solvers[names.OPTIMIZERS[name]] = TorchOptimizer(MLPBuilder(tuple(widths)), name, lr=lr,
                                                         reduction="sum" if name == "gd" else "mean")
    solvers[names.TAYLOR_ADMM] = TaylorADMM(widths, rho=taylor_rho)
    problem = images.problem(widths[-1])
    frames = [run_method(solver, problem, iterations=iterations, seed=seed, evaluate_every=evaluate_every)
              .assign(method=name) for name, solver in solvers.items()]
    return pd.concat(frames, ignore_index=True)


def rank_of(final: pd.Series, method: str) -> float:
    """1 + the number of methods whose value in ``final`` is strictly higher than ``method``'s."""
    return float((final > final[method]).sum() + 1)


def d2_claims(histories: Mapping[str, pd.DataFrame], *, width: int, train_sizes: Mapping[str, int]
              ) -> dict[str, Measurement]:
    """D2.1-D2.2 (Fashion-MNIST), D2.3-D2.4 (MNIST subset) from :func:`accuracy_comparison` histories:
    dlADMM's final test accuracy and its rank among the methods; a dataset not run is not testable."""
    out = {}
    for offset, name in enumerate(MLP_DATASETS):
        ids = (f"D2.{2 * offset + 1}", f"D2.{2 * offset + 2}")
        if name not in histories:
            for claim_id in ids:
                out[claim_id] = Measurement(None, {"dataset": name}, f"{name} is not run in this profile")
            continue
        frame = histories[name]
        final = final_accuracy(frame, "method")
        at = {"iterations": int(frame["iteration"].max()), "width": width, "train_size": train_sizes[name],
              "dataset": name}
        out[ids[0]] = Measurement(float(final[names.DLADMM]), at)
        out[ids[1]] = Measurement(rank_of(final, names.DLADMM), at)
    return out


def runtime_sweep(images: data.ImageData, widths: list[int], sizes: list[int], *, width_size: int,
                  iterations: int, repeats: int = 3, rho: float = 1e-6, seed: int = 0,
                  exact_width: int | None = None) -> pd.DataFrame:
    """Seconds per iteration against hidden width (on ``width_size`` training rows) and against training
    size (at the largest width); with ``exact_width``, the exact subproblem solver beside the quadratic
    one at that width on ``width_size`` rows. Every point is timed once per round, for ``repeats``
    interleaved rounds, so that the spread between rounds measures the noise. A point shared by two sweeps
    (the largest width at ``width_size`` rows, timed again by the size sweep and the exact pair) is timed
    once per round and its time reported in each.

    Rows: ``round``, ``sweep`` (``width``, ``size`` or ``exact``), ``width``, ``size``, ``solver``,
    ``seconds_per_iteration``.
    """
    classes = int(images.y_train.max()) + 1
    points = [("width", width, width_size, "quadratic") for width in widths]
    points += [("size", max(widths), size, "quadratic") for size in sizes]
    if exact_width is not None:
        points += [("exact", exact_width, width_size, solver) for solver in ("quadratic", "exact")]

    def timed(width: int, size: int, subproblem: str) -> float:
        subset = data.ImageData(images.name, images.x_train[:size], images.y_train[:size],
                                images.x_test[:1], images.y_test[:1], images.source)
        net = [images.x_train.shape[1], width, width, classes]
        options = replace(PAPER, rho=rho, subproblem=subproblem)
        history = run_dladmm(subset, net, options, iterations=iterations, seed=seed, evaluate_every=iterations,
                             reuse=False)  # a timing: measured every round, never reused
        return float(history["seconds"].iloc[-1]) / iterations

    rows = []
    for r in range(repeats):
        seconds = {point: timed(*point) for point in dict.fromkeys(point[1:] for point in points)}
        rows += [{"round": r, "sweep": sweep, "width": width, "size": size, "solver": solver,
                  "seconds_per_iteration": seconds[width, size, solver]} for sweep, width, size, solver in points]
    return pd.DataFrame(rows)


def sweep_slope(table: pd.DataFrame, sweep: str) -> tuple[float, float, float]:
    """Log-log slope of the median seconds per iteration against ``sweep`` (``width`` or ``size``),
    with the smallest and largest slope of the single rounds (the noise band)."""
    part = table[table["sweep"] == sweep]
    median = part.groupby(sweep)["seconds_per_iteration"].median()
    rounds = [fits.loglog_slope(one[sweep], one["seconds_per_iteration"]) for _, one in part.groupby("round")]
    return fits.loglog_slope(median.index, median.to_numpy()), min(rounds), max(rounds)


def exact_ratio(table: pd.DataFrame) -> float:
    """Median over rounds of time(exact) / time(quadratic), each round's pair timed side by side."""
    part = table[table["sweep"] == "exact"].pivot(index="round", columns="solver", values="seconds_per_iteration")
    return float((part["exact"] / part["quadratic"]).median())


def d3_claims(table: pd.DataFrame) -> dict[str, Measurement]:
    """D3.1 (slope against width), D3.2 (slope against size), D3.3 (exact / quadratic time)."""
    widths, sizes = table[table["sweep"] == "width"], table[table["sweep"] == "size"]
    exact = table[table["sweep"] == "exact"]
    return {
        "D3.1": Measurement(sweep_slope(table, "width")[0],
                            {"points": widths["width"].nunique(), "largest_width": int(widths["width"].max())}),
        "D3.2": Measurement(sweep_slope(table, "size")[0],
                            {"points": sizes["size"].nunique(), "width": int(sizes["width"].max())}),
        "D3.3": Measurement(exact_ratio(table), {"width": int(exact["width"].max()), "size": int(exact["size"].max())}),
    }


def gcn_problem(name: str, data_dir: str, device: torch.device) -> Problem:
    """A Planetoid graph as a :class:`Problem`: every node's features (sparse CSR: bag-of-words, about 1%
    nonzero), the public training and test nodes, and the normalised ``Â`` (sparse); raises ``data.DataMissing``."""
    graph = data.load_planetoid(name, data_dir)
    adjacency = models.sparse_tensor(data.normalized_adjacency(graph.adjacency), device)
    features = models.sparse_tensor(graph.features.numpy(), device)
    labels = graph.labels.to(device)
    return Problem(Split(features, labels, graph.idx_train.to(device)),
                   {"test": Split(features, labels, graph.idx_test.to(device))}, adjacency)


def gcn_comparison(name: str, data_dir: str, device: torch.device, *, hidden: int, iterations: int,
                   rho: float = 1e-3, rho_every: int = 50, seed: int = 0, evaluate_every: int = 1) -> pd.DataFrame:
    """dlADMM-GCN and the four gradient baselines (the same bias-free GCN, N(0, 0.1²) from a generator seeded
    with ``seed``) on a Planetoid graph, each through :func:`run_history` (a history row every
    ``evaluate_every`` epochs and at the last); a ``method`` and a ``dataset`` column. dlADMM runs the
    official code (:data:`~beyond_backprop.optim.dladmm_gcn.OFFICIAL`) with the dataset's μ, its weight
    decay ``mu/2 ||W ⊙ W||_F`` included (the per-dataset μ were set for it). Raises ``data.DataMissing``."""
    problem = gcn_problem(name, data_dir, device)
    widths = [problem.train.inputs.shape[1], hidden, problem.classes]
    solvers = {names.DLADMM: DLADMMGCN(widths, options=dladmm_gcn.OFFICIAL, rho=rho, mu=GCN_MU[name],
                                       rho_every=rho_every)}
    for method, lr in GCN_BASELINES.items():
        solvers[names.OPTIMIZERS[method]] = TorchOptimizer(lambda p: models.GCN(p.adjacency, widths, bias=False),
                                                           method, lr=lr)
    frames = []
    for method, solver in solvers.items():
        state = solver.init(problem, torch.Generator(device=device).manual_seed(seed))
        _, history = run_history(solver, state, problem, iterations, evaluate_every=evaluate_every)
        frames.append(history.assign(method=method))
    return pd.concat(frames, ignore_index=True).assign(dataset=name)


def gcn_comparisons(datasets: list[str], data_dir: str, device: torch.device, **options: Any
                    ) -> tuple[pd.DataFrame, dict[str, str]]:
    """:func:`gcn_comparison` on each of ``datasets`` that loads, as one frame, and the reason each other graph
    of ``data.GRAPH_DATASETS`` was skipped (not run in this profile, or not available offline)."""
    frames, skipped = [], {name: "not run in this profile" for name in data.GRAPH_DATASETS if name not in datasets}
    for name in datasets:
        try:
            frames.append(gcn_comparison(name, data_dir, device, **options))
        except data.DataMissing:
            skipped[name] = "not available offline"
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["dataset", "method"])), skipped


def d4_claims(finals: Mapping[str, pd.Series], missing: Mapping[str, str], *, hidden: int, epochs: int
              ) -> dict[str, Measurement]:
    """D4.1-D4.5 (``data.GRAPH_DATASETS`` in order): dlADMM's final test accuracy minus the best baseline's."""
    out = {}
    for number, name in enumerate(data.GRAPH_DATASETS, start=1):
        at = {"epochs": epochs, "hidden": hidden, "dataset": name}
        if name in finals:
            final = finals[name]
            out[f"D4.{number}"] = Measurement(float(final[names.DLADMM] - final.drop(names.DLADMM).max()), at)
        else:
            out[f"D4.{number}"] = Measurement(None, at, f"{name}: {missing.get(name, 'not run')}")
    return out


def rho_variants(iterations: int) -> dict[str, DLADMMOptions]:
    """D5's runs: fixed rho in {1e-6, 1e-4, 1e-2, 1} (nu tied), the published code (:data:`OFFICIAL`, its
    adaptive rule), and the paper's schedule only when the run passes its first rho change (before it, it
    is fixed rho = nu = 1e-6)."""
    variants = {rho_variant(rho): fixed_rho(rho) for rho in (1e-6, 1e-4, 1e-2, 1.0)}
    if iterations > SCHEDULE_STEP:
        variants["paper schedule"] = PAPER
    variants["code rule"] = OFFICIAL
    return variants


def d5_claims(frame: pd.DataFrame, *, width: int, train_size: int) -> dict[str, Measurement]:
    """D5.1: share of falling L_rho steps at rho = 1 minus at rho = 1e-6; D5.2: the paper schedule's
    final test accuracy minus the best fixed rho's (None when the schedule was not run)."""
    decreasing = frame.sort_values("iteration").groupby("variant")["lagrangian"].apply(fraction_decreasing)
    final = final_accuracy(frame, "variant")
    fixed = final[[name for name in final.index if name.startswith("rho=")]]
    at = {"iterations": int(frame["iteration"].max()), "width": width, "train_size": train_size}
    schedule = float(final["paper schedule"] - fixed.max()) if "paper schedule" in final.index else None
    return {"D5.1": Measurement(float(decreasing[CONVERGING] - decreasing[DIVERGING]), at),
            "D5.2": Measurement(schedule, at)}
