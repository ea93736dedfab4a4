"""Seconds per dlADMM iteration at width 1000 on Fashion-MNIST, beside its GEMM floor.

The floor is the time of the matrix products one iteration cannot avoid: per layer and sweep, the
gradient and one objective evaluation for W and for a (each an N×n_in×n_out product), timed in the
same run so the ratio holds on a noisy machine. KDD Table 2: 6.74 s per iteration on Fashion-MNIST
(width 1000, rho 1e-6, one GTX 1080 Ti).

    python benchmarks/dladmm_iteration.py --device cuda --train-size 60000
"""

from __future__ import annotations

import argparse

import torch

from beyond_backprop import data, runtime
from beyond_backprop.optim.dladmm import DLADMM


def gemm_floor(x: torch.Tensor, widths: list[int], repeats: int) -> float:
    """Seconds of the GEMMs of one iteration: 2 sweeps × (W: 2 products, a: 2 products) per layer."""
    generator = torch.Generator(device=x.device).manual_seed(0)
    inputs = [x] + [torch.rand(x.shape[0], w, generator=generator, device=x.device) for w in widths[1:-1]]
    weights = [torch.randn(n, m, generator=generator, device=x.device) for m, n in zip(widths[:-1], widths[1:])]
    with runtime.Timer(x.device) as timer:
        for _ in range(repeats):
            for a, w in zip(inputs, weights):
                for _ in range(2):  # backward and forward sweep
                    residual = a @ w.T
                    _ = residual.T @ a  # W gradient
                    _ = residual @ w  # a gradient
                    _ = a @ w.T  # one objective evaluation
    return timer.seconds / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: all 60,000)")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--rho", type=float, default=1e-6)
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args()
    device = runtime.resolve_device(args.device)
    images = data.load_images("fashion-mnist", args.data_dir, train_limit=args.train_size, test_limit=1).to(device)
    widths = [784, args.width, args.width, 10]
    solver = DLADMM(widths, rho=args.rho)
    state = solver.init(images.x_train, images.y_train, torch.Generator(device=device).manual_seed(0))
    state = solver.step(state, images.x_train, images.y_train)  # warm-up
    with runtime.Timer(device) as timer:
        for _ in range(args.iterations):
            state = solver.step(state, images.x_train, images.y_train)
    per_iteration = timer.seconds / args.iterations
    floor = gemm_floor(images.x_train, widths, args.iterations)
    print(f"device {runtime.device_name(device)}; {len(images.y_train)} samples; width {args.width}")
    print(f"dlADMM {per_iteration:.3f} s/iteration; GEMM floor {floor:.3f} s; ratio {per_iteration / floor:.1f}")
    print("paper (KDD Table 2, GTX 1080 Ti, Fashion-MNIST 60,000): 6.74 s/iteration")


if __name__ == "__main__":
    main()
