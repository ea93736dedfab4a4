"""Time per mDLAM iteration against one full-batch Adam epoch on the same augmented features.

Both are measured in the same run, interleaved, at the paper's width (100-100) on Cora and Citeseer,
and reported with their ratio, so the ratio holds on a noisy machine. On a CPU both are the process's
CPU time (``autodiff.cost.elapsed``), which other processes' load does not inflate. The official code's
s/epoch on the same 2-core machine (issue 25: Cora 0.087, Citeseer 0.231, width 100, median of 20
epochs) is printed and recorded beside the speed-up. ``--profile`` prints where one epoch's time goes
(:mod:`beyond_backprop.step_profile`). The figures go to ``outputs/benchmarks/mdlam_iteration_<device>.json``
and the README table:

    python benchmarks/mdlam_iteration.py --device auto --repeats 20 --profile
"""

from __future__ import annotations

import argparse
import statistics

import torch

from beyond_backprop import benchmark_records, models, runtime, step_profile
from beyond_backprop.autodiff.cost import elapsed
from beyond_backprop.experiments import paper_c
from beyond_backprop.optim.gradient import TorchOptimizer

PAPER = "under 1 s/epoch at width 100 (Fig 3, Xeon CPU)"
OFFICIAL_CODE = {"cora": 0.087, "citeseer": 0.231}  # s/epoch of the published mDLAM.py, width 100 (issue 25)


def benchmark(task: paper_c.NodeTask, width: int, repeats: int, seed: int) -> tuple[float, float]:
    """Median seconds of one mDLAM iteration (paper preset) and of one full-batch Adam epoch, timed alternately."""
    problem = task.problem
    adam = TorchOptimizer(lambda p: models.mlp(task.widths(width)), "adam",
                          lr=paper_c.LEARNING_RATES["adam"][task.name])
    solvers = {"mdlam": paper_c.mdlam_solver(task, width=width), "adam": adam}
    states = {name: solver.init(problem, torch.Generator().manual_seed(seed)) for name, solver in solvers.items()}
    times: dict[str, list[float]] = {name: [] for name in solvers}

    def advance(name: str) -> None:
        states[name] = solvers[name].step(states[name], problem)

    for _ in range(repeats):
        for name in solvers:
            times[name].append(elapsed(lambda name=name: advance(name), problem.device))
    return statistics.median(times["mdlam"]), statistics.median(times["adam"])


def profile_epoch(task: paper_c.NodeTask, width: int, seed: int) -> dict:
    """:func:`step_profile.breakdown` of one mDLAM epoch (the fourth, past the first extrapolations)."""
    solver, problem = paper_c.mdlam_solver(task, width=width), task.problem
    state = solver.init(problem, torch.Generator().manual_seed(seed))
    for _ in range(3):
        state = solver.step(state, problem)
    return step_profile.breakdown(lambda: solver.step(state, problem), problem.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"], help="Planetoid graphs")
    parser.add_argument("--width", type=int, default=100, help="hidden width of both hidden layers")
    parser.add_argument("--repeats", type=int, default=20, help="timed iterations of each method")
    parser.add_argument("--data-dir", default="", help="data root holding planetoid/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="print where one epoch's time goes")
    args = parser.parse_args()
    device = runtime.device_or_exit(parser, args.device)
    print(f"device: {runtime.device_name(device)}; width {args.width}; median of {args.repeats}")
    rows = []
    for name in args.datasets:
        task = paper_c.load_task(name, args.data_dir, device)
        mdlam, adam = benchmark(task, args.width, args.repeats, args.seed)
        print(f"{name:<9} mDLAM {mdlam * 1e3:8.2f} ms/iter   Adam {adam * 1e3:8.2f} ms/epoch   "
              f"ratio {mdlam / adam:6.1f}x")
        row = {"setting": f"{name}, width {args.width}", "seconds": mdlam, "beside": "Adam epoch",
               "beside_seconds": adam, "ratio": mdlam / adam, "paper": PAPER if args.width == 100 else ""}
        if name in OFFICIAL_CODE and args.width == 100:
            row["official_code_seconds"] = OFFICIAL_CODE[name]
            row["speedup_over_official_code"] = OFFICIAL_CODE[name] / mdlam
            print(f"{'':<9} official code {OFFICIAL_CODE[name]:.3f} s/epoch: {OFFICIAL_CODE[name] / mdlam:.1f}x faster")
        if args.profile:
            row["profile"] = profile_epoch(task, args.width, args.seed)
            print(step_profile.describe(row["profile"]))
        rows.append(row)
    path = benchmark_records.save(f"mdlam_iteration_{device.type}", "mDLAM iteration", rows, device,
                                  width=args.width, repeats=args.repeats)
    print(f"wrote {path.relative_to(runtime.project_root())}")


if __name__ == "__main__":
    main()
