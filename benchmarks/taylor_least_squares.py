"""Taylor ADMM's weight update: ``torch.linalg.pinv`` vs the Gram-eigendecomposition least squares, side by side.

Both solve ``W = (pinv(ã) z)^T`` on Fashion-MNIST inputs: the pixels with a ones column (layer 1) and
ReLU activations of width ``--width`` (layers 2 and 3); the difference of their squared residuals, as a fraction of
``||z||^2``, shows they agree up to round-off. Then whole steps of the solver (the inputs' pseudo-inverse cached in
the state)
against steps that call ``torch.linalg.pinv`` for every layer. Each pair is timed alternately so the
ratio of the medians holds on a noisy machine. Printed only (no record is written)::

    python benchmarks/taylor_least_squares.py --train-size 10000 --width 1000
"""

from __future__ import annotations

import argparse
import statistics

import torch

from beyond_backprop import data, runtime
from beyond_backprop.optim.admm_taylor import TaylorADMM, TaylorState, least_squares
from beyond_backprop.problem import Problem, Split


class PinvEveryLayer(TaylorADMM):
    """The solver before the change: ``torch.linalg.pinv`` of every layer's inputs in every step."""

    def update_weights(self, s: TaylorState, problem: Problem, l: int) -> None:
        s.weights[l] = (torch.linalg.pinv(self._input(s, problem, l)) @ s.z[l]).T


def alternate(calls: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each call, the calls interleaved."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            with runtime.Timer(device) as timer:
                call()
            times[name].append(timer.seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each (median reported)")
    args = parser.parse_args()
    device = runtime.device_or_exit(parser, args.device)
    # the data root is $BEYOND_BACKPROP_DATA or the project's default
    images = data.load_images("fashion-mnist", train_limit=args.train_size, test_limit=1).to(device)
    x = images.x_train
    generator = torch.Generator(device=device).manual_seed(0)
    ones = torch.ones(x.shape[0], 1, device=device)
    hidden = torch.relu(x @ (0.1 * torch.randn(784, args.width, generator=generator, device=device)))
    layers = {"pixels": torch.cat([x, ones], 1), "hidden": torch.cat([hidden, ones], 1)}
    target = torch.randn(x.shape[0], args.width, generator=generator, device=device)
    print(f"device {runtime.device_name(device)}; {x.shape[0]} samples; width {args.width}")
    for name, inputs in layers.items():
        solves = {"pinv": lambda: (torch.linalg.pinv(inputs) @ target).T,
                  "least_squares": lambda: least_squares(inputs, target)}
        seconds = alternate(solves, args.repeats, device)
        fits = {method: (target - inputs @ solve().T).double().square().sum() for method, solve in solves.items()}
        difference = float((fits["least_squares"] - fits["pinv"]).abs() / target.double().square().sum())
        print(f"{name} {tuple(inputs.shape)}: pinv {seconds['pinv']:.3f} s, "
              f"least_squares {seconds['least_squares']:.3f} s, "
              f"ratio {seconds['pinv'] / seconds['least_squares']:.1f}; "
              f"fits differ by {difference:.1e} of ||z||^2")
    problem = Problem(Split(x, images.y_train))
    widths = [784, args.width, args.width, 10]
    solvers = {"pinv every layer": PinvEveryLayer(widths), "cached pinv + least_squares": TaylorADMM(widths)}
    states = {name: solver.init(problem, torch.Generator(device=device).manual_seed(0))
              for name, solver in solvers.items()}

    def stepper(name: str):
        def step() -> None:
            states[name] = solvers[name].step(states[name], problem)
        return step

    seconds = alternate({name: stepper(name) for name in solvers}, args.repeats, device)
    old, new = seconds["pinv every layer"], seconds["cached pinv + least_squares"]
    logits = [solver.logits(states[name], problem, problem.train) for name, solver in solvers.items()]
    difference = float((logits[0] - logits[1]).abs().max() / logits[0].abs().max())
    print(f"step: pinv every layer {old:.3f} s, cached pinv + least_squares {new:.3f} s, ratio {old / new:.1f}; "
          f"logits after {args.repeats} steps differ by {difference:.1e} (relative to their largest)")

if __name__ == "__main__":
    main()
