"""Benchmark figures as JSON under ``outputs/benchmarks/``, and the README performance table made from them.

One file per benchmark run: the environment (device, threads, torch version, git revision) and rows of
``setting, seconds, beside, beside_seconds, ratio, paper``: the measured seconds, what they were timed
beside in the same run (a GEMM floor, an Adam epoch, a backprop step) and the ratio of the two.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from . import report, runtime

README_START = "<!-- benchmarks:start -->"
README_END = "<!-- benchmarks:end -->"
ROW_KEYS = ("setting", "seconds", "beside", "beside_seconds", "ratio", "paper")


def default_folder() -> Path:
    """``<project>/outputs/benchmarks``."""
    return runtime.project_root() / "outputs" / "benchmarks"


def environment(device: torch.device) -> dict[str, Any]:
    """What a timing depends on: device, its name, torch threads, torch version, git revision (``+dirty``
    when code changed since it, not when only benchmark outputs and the README did)."""
    return {"device": device.type, "device_name": runtime.device_name(device), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "git_revision": runtime.git_revision()}


def write_record(name: str, benchmark: str, rows: list[dict[str, Any]], device: torch.device,
                 folder: Path | None = None, **extra: Any) -> Path:
    """Write ``<folder>/<name>.json`` (``benchmark``, the environment, ``extra``, ``rows``); returns its path."""
    for row in rows:
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise ValueError(f"benchmark row {row!r} lacks {missing}; give every row {', '.join(ROW_KEYS)}")
    folder = Path(folder) if folder is not None else default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    record = {"benchmark": benchmark, **environment(device), **extra, "rows": rows}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def performance_table(folder: Path | None = None) -> str:
    """A markdown table with one line per row of every ``*.json`` in ``folder``, sorted by file name."""
    folder = Path(folder) if folder is not None else default_folder()
    lines = ["| benchmark | setting | measured s | timed beside | its s | ratio | paper | device | threads "
             "| revision |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        for row in record["rows"]:
            lines.append(f"| {record['benchmark']} | {row['setting']} | {row['seconds']:.4g} | {row['beside']} | "
                         f"{row['beside_seconds']:.4g} | {row['ratio']:.2f} | {row['paper']} | "
                         f"{record['device_name']} | {record['threads']} | {record['git_revision']} |")
    return "\n".join(lines)


def profile_lines(folder: Path | None = None) -> list[str]:
    """One line per profiled setting (``--profile``): the time shares, the costliest elementwise passes,
    the large allocations, the backtracking trials and the peak memory, where recorded."""
    folder = Path(folder) if folder is not None else default_folder()
    lines = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        for row in record["rows"]:
            profile = row.get("profile") or record.get("profile")
            if profile is None:
                continue
            shares = ", ".join(f"{kind} {share:.0%}" for kind, share in profile["share"].items())
            passes = ", ".join(name.removeprefix("aten::") for name in profile["costliest_elementwise"])
            text = (f"- {record['benchmark']}, {row['setting']}: {shares}; costliest elementwise: {passes}; "
                    f"{profile['large_allocations']} allocations of at least 1 MiB")
            if "backtracking_trials" in profile:
                text += f"; backtracking trials per block {profile['backtracking_trials']}"
            if "peak_memory_bytes" in record:
                text += f"; peak memory {record['peak_memory_bytes'] / 2**20:.0f} MiB"
            lines.append(text)
    return lines


def update_readme(readme: Path, folder: Path | None = None) -> bool:
    """Replace the README's block between the benchmark markers; False if the file or markers are absent."""
    body = ("Generated from `outputs/benchmarks/*.json` by the scripts in `benchmarks/`; do not edit by hand.\n\n"
            + performance_table(folder))
    profiles = profile_lines(folder)
    if profiles:
        heading = "Where the time goes (`--profile`; shares of the operators' own CPU time):"
        body += f"\n\n{heading}\n\n" + "\n".join(profiles)
    return report.replace_readme_block(readme, README_START, README_END, body)


def save(name: str, benchmark: str, rows: list[dict[str, Any]], device: torch.device, **extra: Any) -> Path:
    """:func:`write_record` into ``outputs/benchmarks`` and refresh the README table; returns the JSON path."""
    path = write_record(name, benchmark, rows, device, **extra)
    update_readme(runtime.project_root() / "README.md")
    return path
