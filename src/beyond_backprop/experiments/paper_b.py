"""Paper B experiments (Bolte et al., the cost of nonsmooth AD): one function per notebook sweep, and
one function per notebook that turns its runs into the numbers its claims are judged on.

Timing sweeps use random inputs of the right shape: the measured quantity is cost, not accuracy. Every
sweep returns one row per size and timed round (``cost.interleaved_times``): a ratio is taken between
programs timed in the same round, its median over rounds is the measurement, and a bootstrap over rounds
gives the noise band of every fitted slope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from .. import data, models
from ..autodiff import cost, hardness, kinks
from ..data import ImageData
from ..fits import loglog_slope
from ..runtime import Timer

BAUR_STRASSEN_BOUND = 5.0  # derivative ≤ 5 × cost of the function (Baur & Strassen 1983, quoted in the paper)
ACTIVATIONS = ("tanh", "relu")  # B1.1 and B1.2, in this order
BAND = (5.0, 95.0)  # percentiles of the bootstrap band of a slope
TAIL = 3  # slopes are fitted over the three largest sizes, past the per-call overhead of small ones (spec E1)


def size_axis(ax: Any, values: Sequence[float]) -> None:
    """A base-2 log x axis with one plain label per swept size and no minor labels (no overlapping ticks)."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(values)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def _rounds(times: dict[str, list[float]], **point: object) -> list[dict[str, object]]:
    """One row per timed round: the point's settings and each program's time."""
    count = len(next(iter(times.values())))
    return [{**point, "round": r, **{f"time_{name}": values[r] for name, values in times.items()}}
            for r in range(count)]


def with_ratio(rounds: pd.DataFrame, numerator: str, denominator: str, scale: float = 1.0) -> pd.Series:
    """time_numerator / (scale · time_denominator), round by round."""
    return rounds[f"time_{numerator}"] / (scale * rounds[f"time_{denominator}"])


def median_ratio(rounds: pd.DataFrame, by: str, numerator: str, denominator: str, scale: float = 1.0) -> pd.Series:
    """Per value of ``by``: the median over rounds of the within-round ratio."""
    return with_ratio(rounds, numerator, denominator, scale).groupby(rounds[by]).median()


def slope_band(rounds: pd.DataFrame, by: str, numerator: str, denominator: str, tail: int = TAIL,
               draws: int = 400, seed: int = 0) -> tuple[float, float, float]:
    """Log-log slope of the median ratio against ``by`` over its ``tail`` largest values, with its
    bootstrap band over rounds.

    Small sizes measure per-call overhead, not the cost the paper counts, so they are left out of the
    fit. Each draw resamples the rounds of every point with replacement and refits; the band is the
    ``BAND`` percentiles of the refitted slopes. Returns (slope, low, high).
    """
    ratio = with_ratio(rounds, numerator, denominator).dropna()
    sizes = rounds.loc[ratio.index, by]
    groups = [(x, ratio[sizes == x].to_numpy()) for x in sorted(sizes.unique())[-tail:]]
    xs = np.array([x for x, _ in groups], dtype=float)
    slope = loglog_slope(xs, [float(np.median(values)) for _, values in groups])
    rng = np.random.default_rng(seed)
    medians = np.stack([np.median(rng.choice(values, (draws, len(values))), axis=1) for _, values in groups], axis=1)
    log_x = np.log(xs) - np.log(xs).mean()
    fits = (np.log(medians) @ log_x) / (log_x @ log_x)  # least-squares slope of every draw at once
    low, high = np.percentile(fits, BAND)
    return slope, float(low), float(high)


def _cheap_gradient_point(activation: str, width: int, depth: int, batch: int, device: torch.device,
                          repeats: int, warmup: int) -> dict[str, list[float]]:
    model = models.mlp([width] * (depth + 1) + [10], activation).to(device)
    x = torch.randn(batch, width, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def evaluate() -> torch.Tensor:
        with torch.no_grad():
            return loss(model(x))

    return cost.interleaved_times({"f": evaluate, "gradient": lambda: cost.parameter_gradient(model, loss, x)},
                                  device, repeats, warmup)


def cheap_gradient_sweep(widths: Sequence[int], depths: Sequence[int], base_width: int, base_depth: int,
                         batch: int, device: torch.device, repeats: int, warmup: int) -> pd.DataFrame:
    """Times of a cross-entropy MLP's loss (f) and of loss + backward for all parameters (gradient), per
    round, over width (at ``base_depth``) and over depth (at ``base_width``), for tanh and ReLU."""
    rows = []
    for activation in ACTIVATIONS:
        for sweep, points in (("width", [(w, base_depth) for w in widths]),
                              ("depth", [(base_width, d) for d in depths])):
            for width, depth in points:
                times = _cheap_gradient_point(activation, width, depth, batch, device, repeats, warmup)
                rows += _rounds(times, activation=activation, sweep=sweep, width=width, depth=depth)
    return pd.DataFrame(rows)


def cheap_gradient_slopes(rounds: pd.DataFrame) -> pd.DataFrame:
    """Per activation and sweep: the log-log slope of time(gradient)/time(f) and its noise band."""
    rows = []
    for (activation, sweep), part in rounds.groupby(["activation", "sweep"], sort=False):
        slope, low, high = slope_band(part, sweep, "gradient", "f")
        rows.append({"activation": activation, "sweep": sweep, "slope": slope, "band_low": low, "band_high": high,
                     "max_ratio": float(median_ratio(part, sweep, "gradient", "f").max())})
    return pd.DataFrame(rows)


def cheap_gradient_measurements(rounds: pd.DataFrame) -> dict[str, float]:
    """B1.1/B1.2: the largest median ratio of each activation; B1.3/B1.4: the steepest slope against
    width and against depth over the activations."""
    slopes = cheap_gradient_slopes(rounds)
    worst = slopes.groupby("activation")["max_ratio"].max()
    steepest = slopes.groupby("sweep")["slope"].max()
    return {"B1.1": float(worst["tanh"]), "B1.2": float(worst["relu"]),
            "B1.3": float(steepest["width"]), "B1.4": float(steepest["depth"])}


def forward_mode_sweep(dimensions: Sequence[int], hidden: int, depth: int, loop_limit: int, device: torch.device,
                       repeats: int, warmup: int) -> pd.DataFrame:
    """Input gradient of f = sum(MLP(x)), x ∈ R^p, tanh, per round: times of f, of one backward pass, of
    p vmapped JVPs and (p ≤ ``loop_limit``) of p looped JVPs; NaN where not run."""
    rows = []
    for p in dimensions:
        model = models.mlp([p] + [hidden] * depth + [1], "tanh").to(device).requires_grad_(False)
        x = torch.randn(p, device=device)

        def f(inputs: torch.Tensor) -> torch.Tensor:
            return model(inputs).sum()

        def evaluate() -> torch.Tensor:
            with torch.no_grad():
                return f(x)

        programs = {"f": evaluate, "backward": lambda: cost.gradient_backward(f, x),
                    "forward_vmap": lambda: cost.gradient_forward(f, x, batched=True)}
        if p <= loop_limit:
            programs["forward_loop"] = lambda: cost.gradient_forward(f, x, batched=False)
        rows += _rounds(cost.interleaved_times(programs, device, repeats, warmup), p=p)
    return pd.DataFrame(rows)


def memory_by_depth(depths: Sequence[int], width: int, batch: int, device: torch.device) -> pd.DataFrame:
    """Peak memory of the input gradient by one backward pass vs one JVP, over depth (tanh MLP)."""
    rows = []
    for depth in depths:
        model = models.mlp([width] * (depth + 1) + [1], "tanh").to(device).requires_grad_(False)
        x = torch.randn(batch, width, device=device)
        v = torch.randn(batch, width, device=device)

        def f(inputs: torch.Tensor) -> torch.Tensor:
            return model(inputs).sum()

        rows.append({"depth": depth,
                     "backward_bytes": cost.peak_memory(lambda: cost.gradient_backward(f, x), device),
                     "jvp_bytes": cost.peak_memory(lambda: cost.jvp(f, x, v), device)})
    return pd.DataFrame(rows)


FORWARD_MODE_PROGRAMS = {"B2.1": "forward_loop", "B2.2": "backward", "B2.3": "forward_vmap"}


def forward_mode_slopes(rounds: pd.DataFrame) -> pd.DataFrame:
    """Per derivative program: the log-log slope of time/time(f) against p and its noise band."""
    rows = []
    for program in FORWARD_MODE_PROGRAMS.values():
        slope, low, high = slope_band(rounds, "p", program, "f")
        rows.append({"program": program, "slope": slope, "band_low": low, "band_high": high})
    return pd.DataFrame(rows)


def forward_mode_measurements(rounds: pd.DataFrame, memory: pd.DataFrame) -> dict[str, float]:
    """B2.1-B2.3: slopes against p of looped JVPs, backward, vmapped JVPs (each over f); B2.4/B2.5: the
    log-log slopes of backward and JVP peak memory against depth (``TAIL`` largest depths)."""
    slopes = forward_mode_slopes(rounds).set_index("program")["slope"]
    tail = memory.sort_values("depth").tail(TAIL)
    return {**{claim: float(slopes[program]) for claim, program in FORWARD_MODE_PROGRAMS.items()},
            "B2.4": loglog_slope(tail["depth"], tail["backward_bytes"]),
            "B2.5": loglog_slope(tail["depth"], tail["jvp_bytes"])}


def directional_sweep(sizes: Sequence[int], depth: int, loop_limit: int, device: torch.device,
                      repeats: int, warmup: int) -> pd.DataFrame:
    """J(x) M for a depth-L, width-p ReLU stack and M ∈ R^{p×p}, per round: times of f, of one p×p×p matrix
    product, of the p JVPs batched with vmap and (p ≤ ``loop_limit``) looped; NaN where not run."""
    rows = []
    for p in sizes:
        model = models.mlp([p] * (depth + 1), "relu").to(device).requires_grad_(False)
        x = torch.randn(p, device=device)
        directions = torch.randn(p, p, device=device)
        a, b = torch.randn(p, p, device=device), torch.randn(p, p, device=device)

        def evaluate() -> torch.Tensor:
            with torch.no_grad():
                return model(x)

        programs = {"f": evaluate, "gemm": lambda: a @ b,
                    "jvp_vmap": lambda: cost.directional_derivatives(model, x, directions, batched=True)}
        if p <= loop_limit:
            programs["jvp_loop"] = lambda: cost.directional_derivatives(model, x, directions, batched=False)
        rows += _rounds(cost.interleaved_times(programs, device, repeats, warmup), p=p)
    return pd.DataFrame(rows)


def directional_summary(rounds: pd.DataFrame, depth: int) -> pd.DataFrame:
    """Per p: median over rounds of time(JM)/(L·time(GEMM)), time(JM)/time(f) and time(loop)/time(vmap)."""
    return pd.DataFrame({"vmap_over_gemms": median_ratio(rounds, "p", "jvp_vmap", "gemm", scale=depth),
                         "vmap_over_f": median_ratio(rounds, "p", "jvp_vmap", "f"),
                         "loop_over_vmap": median_ratio(rounds, "p", "jvp_loop", "jvp_vmap")})


def directional_measurements(rounds: pd.DataFrame, depth: int) -> dict[str, float]:
    """B3.1: time(JM)/(L GEMM) at the largest p; B3.2: the log-log slope of time(JM)/time(f) against p;
    B3.3: time(loop)/time(vmap) at the largest p timed both ways."""
    summary = directional_summary(rounds, depth)
    looped = summary["loop_over_vmap"].dropna()
    return {"B3.1": float(summary["vmap_over_gemms"].iloc[-1]),
            "B3.2": slope_band(rounds, "p", "jvp_vmap", "f")[0],
            "B3.3": float(looped.iloc[-1])}


def kink_measurements(pairs: pd.DataFrame, tolerance: float = 1e-12) -> dict[str, float | None]:
    """B4.1: the nonsmooth pairs (every pair but the smooth control) whose AD derivatives at 0 differ,
    counted only when every pair is one function (gap ≤ ``tolerance``) and the control agrees;
    B4.2: the distance from AD's derivative of relu(x) - relu(-x) at 0 to the Clarke set {1}."""
    table = pairs.set_index("pair")
    control = table.index.str.contains("smooth control")
    valid = bool((table["max_gap"] <= tolerance).all()) and not table.loc[control, "ad_differs"].any()
    return {"B4.1": float(table.loc[~control, "ad_differs"].sum()) if valid else None,
            "B4.2": abs(float(table.loc["relu(x) - relu(-x) = x", "derivative"]) - 1.0)}


def load_sweep_images(dataset: str, data_dir: str, train_limit: int | None, test_limit: int | None
                      ) -> tuple[ImageData | None, str]:
    """The images of B4's precision sweep, or None and the reason they are skipped (the dataset is missing)."""
    try:
        return data.load_images(dataset, data_dir, train_limit=train_limit, test_limit=test_limit), ""
    except data.DataMissing as missing:
        return None, f"{dataset} is missing: {missing}"


def bifurcation_on_images(images: ImageData, networks: int, width: int, hidden_layers: int, batch_size: int,
                          dtypes: Sequence[str], device: torch.device) -> pd.DataFrame:
    """Bertoin et al.'s volume estimate on every image of ``images`` (train, then test), in order:
    ``kinks.bifurcation_volume`` for their MLP (``kinks.bertoin_mlp``) at random initialisations."""
    x = torch.cat([images.x_train, images.x_test]).to(device)
    y = torch.cat([images.y_train, images.y_test]).to(device)

    def make_network() -> torch.nn.Sequential:
        return kinks.bertoin_mlp(x.shape[1], width, hidden_layers).to(device)

    return kinks.bifurcation_volume(make_network, x, y, batch_size, [getattr(torch, d) for d in dtypes], networks)


def bifurcation_fractions(volume: pd.DataFrame) -> pd.DataFrame:
    """Per dtype: networks run, the fraction whose backprops differed (θ ∈ S), exact zeros met, samples swept."""
    return volume.groupby("dtype", sort=False).agg(
        networks=("network", "size"), fraction_in_s=("differs", "mean"), zeros=("zeros", "sum"),
        samples_swept=("samples", "sum")).reset_index()


def bifurcation_measurements(volume: pd.DataFrame) -> dict[str, float | None]:
    """B4.3-B4.5: the fraction of networks in S in float64, float16 and float32 (None where not run).

    "Never in float64" is only measured when the same networks and images did bifurcate in a lower
    precision: otherwise the sweep never reached a kink and the zero would be vacuous.
    """
    fractions = bifurcation_fractions(volume).set_index("dtype")["fraction_in_s"]
    lower = [fractions[d] for d in ("float16", "bfloat16", "float32") if d in fractions]
    reached = bool(lower) and max(lower) > 0
    return {"B4.3": float(fractions["float64"]) if "float64" in fractions and reached else None,
            "B4.4": float(fractions["float16"]) if "float16" in fractions else None,
            "B4.5": float(fractions["float32"]) if "float32" in fractions else None}


def ternary_pair_table(points: int, generator: torch.Generator) -> pd.DataFrame:
    """The two {−1, 0, 1} programs of max(x1, x2) (``hardness.MAX_PAIR``): their largest gap on random
    points, and their AD outputs at the kink x = (1, 1) for relu'(0) ∈ {0, 1}."""
    x = torch.randn(points, 2, generator=generator, dtype=torch.float64)
    kink = torch.ones(2, dtype=torch.float64)
    rows = []
    for name, network in zip(("x2 + relu(x1 - x2)", "x1 + relu(x2 - x1)"), hardness.MAX_PAIR):
        rows.append({"program": name,
                     "max_gap_to_max": float((hardness.evaluate(network, x) - x.max(dim=1).values).abs().max()),
                     **{f"ad_s{int(s)}": tuple(hardness.ad_gradient(network, kink, s).tolist()) for s in (0.0, 1.0)}})
    return pd.DataFrame(rows)


def hardness_instances(hidden_sizes: Sequence[int], inputs: int, instances: int, points: int,
                       generator: torch.Generator) -> pd.DataFrame:
    """Random {−1, 0, 1} networks [inputs, h, h, 1] for each h: exact Clarke generators at 0 (one LP per
    sign pattern), sampled ones, conservative products, and whether AD(0) with s ∈ {0, 1} is Clarke."""
    zero = torch.zeros(inputs, dtype=torch.float64)
    rows = []
    for h in hidden_sizes:
        for instance in range(instances):
            network = hardness.random_ternary_network([inputs, h, h, 1], generator)
            with Timer("cpu") as exact_timer:
                exact, solved = hardness.clarke_generators_exact(network)
            with Timer("cpu") as ad_timer:
                ad = {s: hardness.ad_gradient(network, zero, s) for s in (0.0, 1.0)}
            sampled = hardness.clarke_generators_sampled(network, points, generator)
            found = sum(bool((row == exact).all(dim=1).any()) for row in sampled)
            rows.append({"hidden": h, "neurons": 2 * h, "instance": instance, "lps": solved,
                         "exact_seconds": exact_timer.seconds, "ad_seconds": ad_timer.seconds,
                         "clarke_exact": len(exact), "clarke_sampled": len(sampled),
                         "sampled_outside_exact": len(sampled) - found,
                         "conservative": len(hardness.conservative_products(network, zero)),
                         "ad_s0_in_clarke": hardness.in_convex_hull(ad[0.0], exact),
                         "ad_s1_in_clarke": hardness.in_convex_hull(ad[1.0], exact)})
    return pd.DataFrame(rows)


def hardness_measurements(pair: pd.DataFrame, instances: pd.DataFrame, tolerance: float = 1e-12
                          ) -> dict[str, float | None]:
    """B5.1: the distance between the two programs' AD vectors at the tie (relu'(0) = 0), when both equal
    max on every sampled point; B5.2: the fraction of networks whose conservative set at 0 has more
    {0,1}-choices than the Clarke set has generators; B5.3: networks with an AD output outside Clarke."""
    same_function = bool((pair["max_gap_to_max"] <= tolerance).all())
    first, second = (torch.tensor(v, dtype=torch.float64) for v in pair["ad_s0"])
    outside = ~(instances["ad_s0_in_clarke"].astype(bool) & instances["ad_s1_in_clarke"].astype(bool))
    return {"B5.1": float((first - second).norm()) if same_function else None,
            "B5.2": float((instances["conservative"] > instances["clarke_exact"]).mean()),
            "B5.3": float(outside.sum())}
