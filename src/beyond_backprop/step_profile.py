"""Where one solver step spends its time: torch's profiler over one call, its operators sorted into
matrix products, elementwise and reduction passes, and the rest, with the allocations it made.

The profiler's times are the operators' own (self) CPU times; a pass that writes a freshly allocated
block also pays for faulting that block in, so allocation shows up both as a count and byte total and
inside the time of the operators that allocate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

GEMMS = frozenset({"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::linalg_pinv",
                   "aten::linalg_cholesky_ex", "aten::cholesky_solve"})
ALLOCATIONS = frozenset({"aten::empty", "aten::empty_like", "aten::empty_strided", "aten::resize_"})
LARGE = 2**20  # an allocation of at least this many bytes counts as large


def breakdown(program: Callable[[], Any], device: torch.device | str = "cpu") -> dict[str, Any]:
    """Profile one call of ``program``: seconds of GEMMs, of allocation calls and of every other operator
    (elementwise and reductions), the five costliest of those, and the allocations (count, large count, bytes).
    """
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.device(device).type == "cuda" else [])
    with profile(activities=activities, profile_memory=True) as prof:
        program()
    seconds = {"gemm": 0.0, "allocation": 0.0, "elementwise": 0.0}
    others: dict[str, float] = {}
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        own = event.self_cpu_time_total / 1e6
        kind = "gemm" if event.key in GEMMS else "allocation" if event.key in ALLOCATIONS else "elementwise"
        seconds[kind] += own
        if kind == "elementwise":
            others[event.key] = others.get(event.key, 0.0) + own
    sizes = [e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0]
    total = sum(seconds.values())
    return {"seconds": seconds, "share": {k: v / total for k, v in seconds.items()} if total else {},
            "costliest_elementwise": dict(sorted(others.items(), key=lambda kv: -kv[1])[:5]),
            "allocations": len(sizes), "large_allocations": sum(s >= LARGE for s in sizes),
            "allocated_bytes": sum(sizes)}


def describe(result: dict[str, Any]) -> str:
    """``breakdown``'s result as a few printable lines."""
    seconds, share = result["seconds"], result["share"]
    lines = ["profile (operators' own CPU time): " + ", ".join(
        f"{kind} {seconds[kind]:.3f} s ({share.get(kind, 0.0):.0%})" for kind in ("gemm", "elementwise", "allocation"))]
    lines.append("costliest elementwise: " + ", ".join(
        f"{name.removeprefix('aten::')} {value:.3f} s" for name, value in result["costliest_elementwise"].items()))
    lines.append(f"allocations: {result['allocations']} ({result['large_allocations']} of at least 1 MiB), "
                 f"{result['allocated_bytes'] / 2**20:.0f} MiB in all")
    return "\n".join(lines)
