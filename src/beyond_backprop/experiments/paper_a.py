"""Paper A, experiment E1: l1-constrained least squares (Rostami & Kia; spec section 3.2).

f(theta) = (1/2n) ||A theta - b||^2 over ||theta||_1 <= tau, with A_ij ~ N(0, 1/n), a 10-sparse
theta_true, b = A theta_true + 0.01 N(0, 1) and tau = 0.5 ||theta_true||_1 so that the constraint is
active and grad f(theta*) != 0. Every method uses gamma_k = 2/(k+8); averaged PFG-FW also uses
rho_k = 4/(k+8)^(2/3) (the "convex" schedule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from ..autodiff.forward_gradient import forward_gradient_of_known
from ..fits import loglog_slope
from ..optim.constraints import L1Ball, least_squares_on_l1_ball
from ..optim.frank_wolfe import frank_wolfe_update, named_schedule
from ..results import Measurement

METHODS = ("exact", "stochastic", "pfg", "averaged-pfg")
LABELS = {"exact": "FW, exact gradient", "stochastic": "stochastic FW (batch 64)",
          "pfg": "PFG-FW (plain)", "averaged-pfg": "averaged PFG-FW"}


@dataclass(frozen=True)
class LeastSquares:
    """The E1 problem and its reference solution."""

    a: torch.Tensor
    b: torch.Tensor
    theta_true: torch.Tensor
    ball: L1Ball
    theta_star: torch.Tensor
    f_star: float

    @property
    def dimension(self) -> int:
        return self.a.shape[1]

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((self.a @ theta - self.b) ** 2).mean()

    def gradient(self, theta: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        a, b = (self.a, self.b) if rows is None else (self.a[rows], self.b[rows])
        return a.T @ (a @ theta - b) / a.shape[0]

    @cached_property
    def gram(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(A^T A / n, A^T b / n, ||b||^2 / 2n)``: f and grad f in O(d^2), or O(d) along a FW vertex."""
        n = self.a.shape[0]
        return self.a.T @ self.a / n, self.a.T @ self.b / n, float(self.b @ self.b) / (2 * n)

    def loss_from(self, theta: torch.Tensor, gram_theta: torch.Tensor) -> torch.Tensor:
        """f(theta) from ``gram_theta = A^T A theta / n`` (no pass over A)."""
        _, moment, offset = self.gram
        return 0.5 * theta @ gram_theta - moment @ theta + offset

    @property
    def initial_gap(self) -> float:
        """f(theta_0) - f* at the start theta_0 = 0."""
        return float(self.loss(torch.zeros(self.dimension, dtype=self.a.dtype))) - self.f_star

    def fw_gap(self, theta: torch.Tensor) -> torch.Tensor:
        """<grad f(theta), theta - LMO(grad f(theta))> with the exact gradient."""
        g = self.gradient(theta)
        return g @ (theta - self.ball.lmo(g))


def least_squares_problem(n: int, d: int, *, sparsity: int = 10, noise: float = 0.01,
                          radius_fraction: float = 0.5, seed: int = 0,
                          reference_iterations: int = 5000) -> LeastSquares:
    """Draw the E1 problem (float64) and solve it to high accuracy."""
    if not 1 <= sparsity <= d:
        raise ValueError(f"invalid sparsity {sparsity!r}; expected 1 <= sparsity <= d = {d}")
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=gen, dtype=torch.float64) / n ** 0.5
    theta_true = torch.zeros(d, dtype=torch.float64)
    support = torch.randperm(d, generator=gen)[:sparsity]
    theta_true[support] = torch.randn(sparsity, generator=gen, dtype=torch.float64)
    b = a @ theta_true + noise * torch.randn(n, generator=gen, dtype=torch.float64)
    radius = radius_fraction * float(theta_true.abs().sum())
    ball = L1Ball(d, radius=radius)
    theta_star = least_squares_on_l1_ball(a, b, ball, reference_iterations)
    problem = LeastSquares(a, b, theta_true, ball, theta_star, 0.0)
    return LeastSquares(a, b, theta_true, ball, theta_star, float(problem.loss(theta_star)))


RESYNC_EVERY = 1000  # iterations between exact recomputations of A^T A theta / n (float round-off)


def run_frank_wolfe(problem: LeastSquares, method: str, iterations: int, *, directions: int = 1,
                    batch: int = 64, seed: int = 0) -> pd.DataFrame:
    """One run from theta_0 = 0; one row per iteration k = 1..K.

    Columns: ``optimality_gap`` f(theta_k) - f*, ``fw_gap`` (exact gradient), ``estimate_error``
    ||d_k - grad f(theta_{k-1})||^2 of the direction the LMO saw, ``gradient_norm2`` ||grad f||^2.

    Each FW step moves theta towards one vertex ``±tau e_i`` of the l1 ball, so ``A^T A theta / n`` is
    updated with one row of the (symmetric) Gram matrix: O(d) per iteration instead of passes over A (recomputed
    exactly every :data:`RESYNC_EVERY` iterations). The forward gradient of this quadratic is
    :func:`~beyond_backprop.autodiff.forward_gradient.forward_gradient_of_known` of the exact gradient:
    the same draws and the same phi as a JVP, without the JVP's pass over A.
    """
    if method not in METHODS:
        raise ValueError(f"invalid method {method!r}; expected one of {', '.join(METHODS)}")
    gen = torch.Generator().manual_seed(seed)
    gamma, rho = named_schedule("convex")
    gram, moment, _ = problem.gram
    theta = torch.zeros(problem.dimension, dtype=torch.float64)
    vertex = torch.empty_like(theta)
    direction: list[torch.Tensor | None] = [None]
    records = torch.empty(iterations, 4, dtype=torch.float64)
    for k in range(iterations):
        if k % RESYNC_EVERY == 0:
            gram_theta = gram @ theta
        exact = gram_theta - moment
        if method == "exact":
            estimate = exact.clone()
        elif method == "stochastic":
            estimate = problem.gradient(theta, torch.randint(0, len(problem.b), (batch,), generator=gen))
        else:
            estimate = forward_gradient_of_known(exact, directions=directions, generator=gen)
        step, step_rho = gamma(k), rho(k) if method == "averaged-pfg" else 1.0
        direction, _ = frank_wolfe_update([theta], [estimate], direction, [problem.ball], gamma=step, rho=step_rho,
                                          buffer=vertex)
        i = int(vertex.abs().argmax())
        gram_theta.mul_(1 - step).add_(gram[i], alpha=step * float(vertex[i]))
        gradient = gram_theta - moment
        records[k] = torch.stack([problem.loss_from(theta, gram_theta) - problem.f_star,
                                  gradient @ theta + problem.ball.radius * gradient.abs().max(),  # FW gap
                                  ((direction[0] - exact) ** 2).sum(), (exact ** 2).sum()])
    frame = pd.DataFrame(records.numpy(), columns=["optimality_gap", "fw_gap", "estimate_error", "gradient_norm2"])
    frame.insert(0, "iteration", np.arange(1, iterations + 1))
    return frame


def compare_methods(problem: LeastSquares, iterations: int, *, seed: int = 0) -> pd.DataFrame:
    """Every method of :data:`METHODS` on one problem, stacked with a ``method`` column."""
    runs = [run_frank_wolfe(problem, m, iterations, seed=seed).assign(method=m) for m in METHODS]
    return pd.concat(runs, ignore_index=True)


def floor_sweep(dimensions: list[int], direction_counts: list[int], *, n: int, iterations: int,
                seed: int = 0) -> pd.DataFrame:
    """Plain PFG-FW per (d, m): its floor (mean optimality gap over the second half of the run) and
    :func:`stall_share` of its optimality gap."""
    rows = []
    for d in dimensions:
        problem = least_squares_problem(n, d, seed=seed)
        for m in direction_counts:
            run = run_frank_wolfe(problem, "pfg", iterations, directions=m, seed=seed)
            rows.append({"dimension": d, "directions": m, "initial_gap": problem.initial_gap,
                         "floor": float(run["optimality_gap"].iloc[iterations // 2:].mean()),
                         "stall_share": stall_share(run, problem.initial_gap)})
    return pd.DataFrame(rows)


def log_spaced(frame: pd.DataFrame, points: int = 80) -> pd.DataFrame:
    """Rows at about ``points`` log-spaced iterations (for plots and metrics files)."""
    last = int(frame["iteration"].max())
    keep = np.unique(np.geomspace(1, last, points).round().astype(int))
    return frame[frame["iteration"].isin(keep)]


def tail_slope(frame: pd.DataFrame, column: str, decade: float = 10.0) -> float:
    """Least-squares slope of log(column) against log(iteration) over the last decade of iterations.

    Entries at or below 0 (a gap that reached f* to machine precision) are left out; NaN if fewer
    than 10 remain.
    """
    last = frame["iteration"].max()
    tail = frame[(frame["iteration"] >= last / decade) & (frame[column] > 0)]
    if len(tail) < 10:
        return float("nan")
    return loglog_slope(tail["iteration"], tail[column])


CLEAR_FLOOR = 0.5  # a floor counts for A1.4 when it sits below this share of its run's initial gap


def clear_floors(sweep: pd.DataFrame, level: float = CLEAR_FLOOR) -> pd.Series:
    """Which sweep runs end clearly below their start: floor < ``level`` x initial gap (a floor near the
    initial gap measures the start, not the noise of the estimate)."""
    return sweep["floor"] < level * sweep["initial_gap"]


def floor_exponent(sweep: pd.DataFrame) -> tuple[float, str]:
    """(slope of log(floor) against log(d/m) over the :func:`clear_floors` runs, reason it is not measured or "").

    The theory bound predicts 1/2. Not measured (NaN) when fewer than half of the runs have a clear floor or
    those span fewer than two values of d/m.
    """
    clear = sweep[clear_floors(sweep)]
    ratio = clear["dimension"] / clear["directions"]
    if 2 * len(clear) < len(sweep) or ratio.nunique() < 2:
        return float("nan"), (f"only {len(clear)} of {len(sweep)} floor-sweep runs end below {CLEAR_FLOOR:g} x their "
                              "initial gap: the others measure the start, not a floor")
    return loglog_slope(ratio, clear["floor"]), ""


def variance_ratio(run: pd.DataFrame, dimension: int, directions: int = 1) -> float:
    """Mean ||phi - grad f||^2 over the run, divided by its Gaussian closed form (d+1)/m ||grad f||^2."""
    return float(run["estimate_error"].mean() / ((dimension + 1) / directions * run["gradient_norm2"]).mean())


def stall_share(run: pd.DataFrame, initial_gap: float, column: str = "optimality_gap",
                min_progress: float = 0.5) -> float:
    """Share of the run's log-decrease of ``column`` made in its last decade of iterations.

    Levels are medians over windows, since the estimate is noisy: before the last decade over
    iterations [K/20, K/10], at the end over [K/2, K]. A run that stalls after making progress gives
    about 0; a power law k^-a gives about 1/log10(K) whatever a (0.3 at K = 3000); a run whose end
    level is above ``(1 - min_progress)`` times ``initial_gap`` made no progress to stall after: inf.
    """
    k = run["iteration"]
    last = k.max()
    before = float(run.loc[(k >= last / 20) & (k <= last / 10), column].median())
    end = float(run.loc[k >= last / 2, column].median())
    if not 0 < end <= (1 - min_progress) * initial_gap:
        return math.inf
    return math.log(before / end) / math.log(initial_gap / end)


def rate_after_transient(run: pd.DataFrame, initial_gap: float, column: str = "optimality_gap",
                         level: float = 0.5, min_decades: float = 0.5) -> float:
    """Log-log slope of ``column`` over the tail after the transient.

    The transient ends at k_t, the last iteration at which the gap is at or above ``level`` times
    ``initial_gap`` (the plateau before the drop); the fit runs from max(K/10, 10 k_t) to K, so the
    drop itself is left out. NaN when that tail spans under ``min_decades`` decades or holds under
    10 positive entries: the run is too short to show a rate.
    """
    k = run["iteration"]
    above = k[run[column] >= level * initial_gap]
    start = max(k.max() / 10, 10 * (above.max() if len(above) else 0))
    tail = run[(k >= start) & (run[column] > 0)]
    if len(tail) < 10 or math.log10(k.max() / start) < min_decades:
        return float("nan")
    return loglog_slope(tail["iteration"], tail[column])


def claim_measurements(runs: pd.DataFrame, sweep: pd.DataFrame, problem: LeastSquares,
                       sweep_iterations: int) -> dict[str, Measurement]:
    """A1's claims from the method comparison (:func:`compare_methods`) and the floor sweep."""
    by_method = {m: r for m, r in runs.groupby("method")}
    at = {"iterations": int(runs["iteration"].max()), "dimension": problem.dimension}
    least_noisy = sweep.assign(ratio=sweep["dimension"] / sweep["directions"]).sort_values(
        ["ratio", "directions"], ascending=[True, False]).iloc[0]
    averaged = by_method["averaged-pfg"]
    exponent, why = floor_exponent(sweep)
    return {
        "A1.1": Measurement(float(least_noisy["stall_share"]), {
            "iterations": sweep_iterations, "dimension": int(least_noisy["dimension"]),
            "directions": int(least_noisy["directions"])}),
        "A1.2": Measurement(tail_slope(averaged, "optimality_gap"), at),
        "A1.3": Measurement(tail_slope(averaged, "estimate_error"), at),
        "A1.4": Measurement(exponent, {"iterations": sweep_iterations}, not_testable=why),
        "A1.5": Measurement(rate_after_transient(averaged, problem.initial_gap), at),
        "A1.6": Measurement(variance_ratio(by_method["pfg"], problem.dimension), at),
    }
