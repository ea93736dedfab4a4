"""Time per mDLAM iteration against one full-batch Adam epoch on the same augmented features.

Both are measured in the same run, interleaved, at the paper's width (100-100) on Cora and Citeseer,
and reported with their ratio, so the ratio holds on a noisy machine. The figures go to
``outputs/benchmarks/mdlam_iteration_<device>.json`` and the README table:

    python benchmarks/mdlam_iteration.py --device auto --repeats 20
"""

from __future__ import annotations

import argparse
import statistics

import torch

from beyond_backprop import benchmark_records, models, runtime
from beyond_backprop.experiments import paper_c
from beyond_backprop.optim.gradient import TorchOptimizer

PAPER = "under 1 s/epoch at width 100 (Fig 3, Xeon CPU)"


def benchmark(task: paper_c.NodeTask, width: int, repeats: int, seed: int) -> tuple[float, float]:
    """Median seconds of one mDLAM iteration (paper preset) and of one full-batch Adam epoch, timed alternately."""
    problem = task.problem
    adam = TorchOptimizer(lambda p: models.mlp(task.widths(width)), "adam",
                          lr=paper_c.LEARNING_RATES["adam"][task.name])
    solvers = {"mdlam": paper_c.mdlam_solver(task, width=width), "adam": adam}
    states = {name: solver.init(problem, torch.Generator().manual_seed(seed)) for name, solver in solvers.items()}
    times: dict[str, list[float]] = {name: [] for name in solvers}
    for _ in range(repeats):
        for name, solver in solvers.items():
            with runtime.Timer(problem.device) as timer:
                states[name] = solver.step(states[name], problem)
            times[name].append(timer.seconds)
    return statistics.median(times["mdlam"]), statistics.median(times["adam"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"], help="Planetoid graphs")
    parser.add_argument("--width", type=int, default=100, help="hidden width of both hidden layers")
    parser.add_argument("--repeats", type=int, default=20, help="timed iterations of each method")
    parser.add_argument("--data-dir", default="", help="data root holding planetoid/")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        device = runtime.resolve_device(args.device)
    except (ValueError, runtime.DeviceUnavailable) as error:
        parser.exit(2, f"error: {error}\n")
    print(f"device: {runtime.device_name(device)}; width {args.width}; median of {args.repeats}")
    rows = []
    for name in args.datasets:
        task = paper_c.load_task(name, args.data_dir, device)
        mdlam, adam = benchmark(task, args.width, args.repeats, args.seed)
        print(f"{name:<9} mDLAM {mdlam * 1e3:8.2f} ms/iter   Adam {adam * 1e3:8.2f} ms/epoch   ratio {mdlam / adam:6.1f}x")
        rows.append({"setting": f"{name}, width {args.width}", "seconds": mdlam, "beside": "Adam epoch",
                     "beside_seconds": adam, "ratio": mdlam / adam, "paper": PAPER if args.width == 100 else ""})
    path = benchmark_records.save(f"mdlam_iteration_{device.type}", "mDLAM iteration", rows, device,
                                  width=args.width, repeats=args.repeats)
    print(f"wrote {path.relative_to(runtime.project_root())}")


if __name__ == "__main__":
    main()
