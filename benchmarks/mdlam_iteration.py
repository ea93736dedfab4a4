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
from beyond_backprop.optim.mdlam import MDLAM

PAPER = "under 1 s/epoch at width 100 (Fig 3, Xeon CPU)"


def adam_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, task: paper_c.NodeTask) -> None:
    """One full-batch Adam step on the training nodes (mean cross-entropy)."""
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(task.x_train), task.y_train).backward()
    optimizer.step()


def benchmark(task: paper_c.NodeTask, width: int, repeats: int, seed: int) -> tuple[float, float]:
    """Median seconds of one mDLAM iteration and of one Adam epoch, timed alternately."""
    widths = [task.x_train.shape[1], width, width, task.classes]
    solver = MDLAM(widths, rho=paper_c.RHO[task.name])
    state = solver.init(task.x_train, task.onehot, torch.Generator().manual_seed(seed))
    model = models.mlp(widths).to(task.x_train.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=paper_c.LEARNING_RATES["adam"][task.name])
    mdlam_times, adam_times = [], []
    for _ in range(repeats):
        with runtime.Timer(task.x_train.device) as timer:
            state = solver.step(state, task.x_train, task.onehot)
        mdlam_times.append(timer.seconds)
        with runtime.Timer(task.x_train.device) as timer:
            adam_epoch(model, optimizer, task)
        adam_times.append(timer.seconds)
    return statistics.median(mdlam_times), statistics.median(adam_times)


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
