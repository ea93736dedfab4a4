"""Paper B experiments (Bolte et al., the cost of nonsmooth AD): one function per notebook sweep.

Timing sweeps use random inputs of the right shape: the measured quantity is
cost, not accuracy. Every ratio is taken between programs timed interleaved in
one run (``cost.median_times``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from .. import models, train
from ..autodiff import cost, hardness, kinks
from ..data import ImageData
from ..fits import loglog_slope  # noqa: F401  (notebooks call paper_b.loglog_slope)
from ..runtime import Timer

BAUR_STRASSEN_BOUND = 5.0  # derivative ≤ 5 × cost of the function (Baur & Strassen 1983, quoted in the paper)


def _cheap_gradient_point(activation: str, width: int, depth: int, batch: int, device: torch.device,
                          repeats: int, warmup: int) -> dict[str, float]:
    model = models.mlp([width] * (depth + 1) + [10], activation).to(device)
    x = torch.randn(batch, width, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def evaluate() -> torch.Tensor:
        with torch.no_grad():
            return loss(model(x))

    times = cost.median_times({"f": evaluate, "gradient": lambda: cost.parameter_gradient(model, loss, x)},
                              device, repeats, warmup)
    return {"time_f": times["f"], "time_gradient": times["gradient"], "ratio": times["gradient"] / times["f"]}


def cheap_gradient_sweep(activations: Sequence[str], widths: Sequence[int], depths: Sequence[int],
                         base_width: int, base_depth: int, batch: int, device: torch.device,
                         repeats: int, warmup: int) -> pd.DataFrame:
    """time(f + backward)/time(f) of a cross-entropy MLP, parameter gradient, over width
    (at ``base_depth``) and over depth (at ``base_width``), per activation."""
    rows = []
    for activation in activations:
        for sweep, points in (("width", [(w, base_depth) for w in widths]),
                              ("depth", [(base_width, d) for d in depths])):
            for width, depth in points:
                rows.append({"activation": activation, "sweep": sweep, "width": width, "depth": depth,
                             **_cheap_gradient_point(activation, width, depth, batch, device, repeats, warmup)})
    return pd.DataFrame(rows)


def forward_mode_sweep(dimensions: Sequence[int], hidden: int, depth: int, device: torch.device,
                       repeats: int, warmup: int) -> pd.DataFrame:
    """Input gradient of f = sum(MLP(x)), x ∈ R^p, tanh: time of f, of one backward pass, of p looped
    JVPs and of p vmapped JVPs, with each time divided by time(f)."""
    rows = []
    for p in dimensions:
        model = models.mlp([p] + [hidden] * depth + [1], "tanh").to(device).requires_grad_(False)
        x = torch.randn(p, device=device)

        def f(inputs: torch.Tensor) -> torch.Tensor:
            return model(inputs).sum()

        def evaluate() -> torch.Tensor:
            with torch.no_grad():
                return f(x)

        times = cost.median_times({
            "f": evaluate,
            "backward": lambda: cost.gradient_backward(f, x),
            "forward_loop": lambda: cost.gradient_forward(f, x, batched=False),
            "forward_vmap": lambda: cost.gradient_forward(f, x, batched=True),
        }, device, repeats, warmup)
        rows.append({"p": p, **{f"time_{k}": v for k, v in times.items()},
                     **{f"ratio_{k}": v / times["f"] for k, v in times.items() if k != "f"}})
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


def directional_sweep(sizes: Sequence[int], depth: int, loop_limit: int, device: torch.device,
                      repeats: int, warmup: int) -> pd.DataFrame:
    """J(x) M for a depth-L, width-p ReLU stack and M ∈ R^{p×p}: p JVPs looped (p ≤ ``loop_limit``)
    and batched with vmap, against one p×p×p matrix product and against f."""
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
        times = cost.median_times(programs, device, repeats, warmup)
        rows.append({"p": p, **{f"time_{k}": v for k, v in times.items()},
                     "vmap_over_gemms": times["jvp_vmap"] / (depth * times["gemm"]),
                     "vmap_over_f": times["jvp_vmap"] / times["f"],
                     "loop_over_vmap": times.get("jvp_loop", float("nan")) / times["jvp_vmap"]})
    return pd.DataFrame(rows)


def bifurcation_on_images(images: ImageData, hidden: Sequence[int], iterations: int, lr: float,
                          batch_size: int, dtypes: Sequence[str], device: torch.device
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train a ReLU MLP (Adam, full batch) on ``images``, then compare backprop with relu'(0) = 0
    and 1 on the test minibatches in each dtype. Returns (training history, bifurcation table)."""
    model = models.mlp([images.x_train.shape[1], *hidden, 10], "relu").to(device)
    history = train.train_full_batch(
        model, "adam", lr, train.Split(images.x_train.to(device), images.y_train.to(device)),
        {"test": train.Split(images.x_test.to(device), images.y_test.to(device))},
        iterations=iterations, progress=False)
    table = kinks.bifurcation(model, images.x_test.to(device), images.y_test.to(device), batch_size,
                              [getattr(torch, name) for name in dtypes])
    return history, table


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
