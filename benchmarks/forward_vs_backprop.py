#!/usr/bin/env python
"""Time per step and peak memory of projected-forward-gradient (JVP) vs backprop training, side by side.

One Frank-Wolfe training step of an MLP (784 -> width x depth -> 10) with each gradient, measured in the
same run and printed as PFG / backprop ratios; the figures go to
``outputs/benchmarks/forward_vs_backprop_<device>.json``
and the README table. Example: ``python benchmarks/forward_vs_backprop.py --device cuda``.
"""

import argparse

from beyond_backprop import benchmark_records, runtime
from beyond_backprop.experiments.paper_a_training import cost_ratios, cost_sweep

PAPER = "memory 1000 vs 2150 MiB/epoch, ratio 0.47 (MNIST)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--width", type=int, default=512, help="hidden width (default 512)")
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 8], help="hidden layers (default 2 8)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256, 1024], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, median reported (default 5)")
    args = parser.parse_args()
    device = runtime.device_or_exit(parser, args.device)
    runtime.seed_everything(0)
    sweep = cost_sweep(args.depths, args.batches, width=args.width, device=device, repeats=args.repeats)
    print(f"device: {runtime.device_name(device)}; width {args.width}")
    sweep = sweep.assign(ms_per_step=sweep["seconds"] * 1e3, gradient_MiB=sweep["gradient_peak_bytes"] / 2**20,
                         step_MiB=sweep["total_bytes"] / 2**20)
    table = sweep.pivot_table(index=["depth", "batch"], columns="method",
                              values=["ms_per_step", "gradient_MiB", "step_MiB"])
    print(table.round(2).to_string())
    print()
    ratios = cost_ratios(sweep)
    print(ratios.round(3).to_string(index=False))
    seconds = sweep.pivot_table(index=["depth", "batch"], columns="method", values="seconds")
    rows = [{"setting": f"depth {r.depth}, batch {r.batch}, width {args.width}; step memory ratio {r.total_ratio:.2f}",
             "seconds": float(seconds.loc[(r.depth, r.batch), "averaged-pfg"]), "beside": "backprop FW step",
             "beside_seconds": float(seconds.loc[(r.depth, r.batch), "backprop-fw"]), "ratio": float(r.time_ratio),
             "paper": PAPER} for r in ratios.itertuples()]
    path = benchmark_records.save(f"forward_vs_backprop_{device.type}", "PFG-FW step", rows, device,
                                  width=args.width, repeats=args.repeats)
    print(f"wrote {path.relative_to(runtime.project_root())}")


if __name__ == "__main__":
    main()
