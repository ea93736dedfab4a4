"""Seconds per dlADMM iteration at width 1000 on Fashion-MNIST, beside its GEMM floor.

The floor is the time of the matrix products one iteration cannot avoid: per layer and sweep, the
gradient and one objective evaluation for W and for a (each an N×n_in×n_out product), timed in the
same run, alternately with the iterations, so the ratio of the medians holds on a noisy machine. On a
CPU both are the process's CPU time (``autodiff.cost.elapsed``), which time slices given to other
processes do not inflate; with one torch thread it is the single-thread cost. KDD Table 2: 6.74 s per
iteration on Fashion-MNIST (width 1000, rho 1e-6, one GTX 1080 Ti). ``--preset official`` times the
official code's options (:data:`~beyond_backprop.optim.dladmm.OFFICIAL`). The peak tensor memory of one
iteration (``runtime.PeakMemory``) is recorded beside the time. ``--profile`` also prints where one
iteration's time goes (GEMMs, elementwise passes, allocations: :mod:`beyond_backprop.step_profile`) and
the backtracking trials of every W- and a-block. The figures go to
``outputs/benchmarks/dladmm_iteration_<device>_<train size>_<preset>.json`` and the README table.

    python benchmarks/dladmm_iteration.py --device cuda --train-size 60000 --profile
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
from collections.abc import Callable

import torch

from beyond_backprop import benchmark_records, data, runtime, step_profile
from beyond_backprop.autodiff.cost import elapsed
from beyond_backprop.optim import quadratic_blocks
from beyond_backprop.optim.dladmm import DLADMM, OFFICIAL, PAPER, DLADMMState
from beyond_backprop.problem import Problem, Split

PRESETS = {"paper": PAPER, "official": OFFICIAL}
PAPER_TIME = "6.74 s (KDD Table 2, 60,000 images, GTX 1080 Ti)"


def gemm_floor(x: torch.Tensor, widths: list[int]) -> Callable[[], None]:
    """The GEMMs of one iteration: 2 sweeps × (W: 2 products, a: 2 products) per layer, on random data."""
    generator = torch.Generator(device=x.device).manual_seed(0)
    inputs = [x] + [torch.rand(x.shape[0], w, generator=generator, device=x.device) for w in widths[1:-1]]
    weights = [torch.randn(n, m, generator=generator, device=x.device) for m, n in itertools.pairwise(widths)]

    def products() -> None:
        for a, w in zip(inputs, weights):
            for _ in range(2):  # backward and forward sweep
                residual = a @ w.T
                _ = residual.T @ a  # W gradient
                _ = residual @ w  # a gradient
                _ = a @ w.T  # one objective evaluation

    return products


def backtracking_trials(solver: DLADMM, state: DLADMMState, problem: Problem) -> list[int]:
    """The trials each block's backtracking took in one step, in call order (a trial is one tested t;
    the test is closed-form, so every trial costs a few scalar operations, not a product)."""
    trials: list[int] = []
    original = quadratic_blocks.accepted_step

    def counting(gg, ghg, t0, **kwargs):
        t, divisor = original(gg, ghg, t0, **kwargs)
        trials.append(round(math.log2(float(t) / float(t0))) + 1 if math.isfinite(float(divisor))
                      else quadratic_blocks.MAX_TRIES)
        return t, divisor

    quadratic_blocks.accepted_step = counting
    try:
        solver.step(state, problem)
    finally:
        quadratic_blocks.accepted_step = original
    return trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: all 60,000)")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations (median reported)")
    parser.add_argument("--rho", type=float, default=1e-6)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="paper (default) or official")
    parser.add_argument("--profile", action="store_true", help="print where one iteration's time goes")
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args()
    device = runtime.device_or_exit(parser, args.device)
    images = data.load_images("fashion-mnist", args.data_dir, train_limit=args.train_size, test_limit=1).to(device)
    widths = [784, args.width, args.width, 10]
    solver = DLADMM(widths, options=PRESETS[args.preset], rho=args.rho)
    problem = Problem(Split(images.x_train, images.y_train), classes=10)
    state = solver.init(problem, torch.Generator(device=device).manual_seed(0))
    state = solver.step(state, problem)  # warm-up
    floor_products = gemm_floor(images.x_train, widths)
    current = [state]

    def advance() -> None:
        current[0] = solver.step(current[0], problem)

    steps, floors = [], []
    for _ in range(args.iterations):  # interleaved, so both see the same machine load
        steps.append(elapsed(advance, device))
        floors.append(elapsed(floor_products, device))
    state = current[0]
    with runtime.PeakMemory(device) as memory:
        solver.step(state, problem)
    per_iteration, floor = statistics.median(steps), statistics.median(floors)
    samples = len(images.y_train)
    print(f"device {runtime.device_name(device)}; {torch.get_num_threads()} threads; {samples} samples; "
          f"width {args.width}; preset {args.preset}")
    print(f"dlADMM {per_iteration:.3f} s/iteration; GEMM floor {floor:.3f} s; ratio {per_iteration / floor:.2f}; "
          f"peak memory of one iteration {memory.bytes / 2**20:.0f} MiB")
    print("paper (KDD Table 2, GTX 1080 Ti, Fashion-MNIST 60,000): 6.74 s/iteration")
    extra = {}
    if args.profile:
        profiled = step_profile.breakdown(lambda: solver.step(state, problem), device)
        trials = backtracking_trials(solver, state, problem)
        print(step_profile.describe(profiled))
        print(f"backtracking trials per block (W and a, in call order): {trials}")
        extra = {"profile": {**profiled, "backtracking_trials": trials}}
    row = {"setting": f"{args.preset} preset, {samples:,} images, width {args.width}, rho {args.rho:g}",
           "seconds": per_iteration, "beside": "GEMM floor", "beside_seconds": floor, "ratio": per_iteration / floor,
           "paper": PAPER_TIME if args.width == 1000 and args.rho == 1e-6 else ""}
    path = benchmark_records.save(f"dladmm_iteration_{device.type}_{samples}_{args.preset}", "dlADMM iteration",
                                  [row], device, train_size=samples, width=args.width, rho=args.rho,
                                  preset=args.preset, iterations=args.iterations, peak_memory_bytes=memory.bytes,
                                  **extra)
    print(f"wrote {path.relative_to(runtime.project_root())}")


if __name__ == "__main__":
    main()
