"""X1's leaderboard: per dataset and method, what the runs reached, at what cost, and a rank only where it means
something (no flagged row, and some method at the target)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .runs import MIN_STEPS, MIN_STEPS_ADMM, OVERRUN

NOT_INFORMATIVE = "no method reached the target: ranks not informative"
UNRANKED = "–"


def seed_ranks(final: pd.DataFrame) -> pd.DataFrame:
    """Each unflagged run's rank by final test accuracy among the unflagged runs of its dataset and seed
    (1 = best; equals share); flagged runs get no rank (NaN)."""
    ranked = final["flag"] == ""
    ranks = final[ranked].groupby(["dataset", "seed"])["test_accuracy"].rank(ascending=False, method="min")
    return final.assign(rank=ranks.reindex(final.index))


def rank_text(ranks: pd.Series) -> str:
    """``2`` when every seed ranks the method the same, else ``2-4 (tie)``: a rank that changes is no win."""
    low, high = int(ranks.min()), int(ranks.max())
    return f"{low}" if low == high else f"{low}-{high} (tie)"


def informative(final: pd.DataFrame, dataset: str) -> bool:
    """Whether some unflagged run on ``dataset`` reached the target (else its ranks order nothing useful)."""
    part = final[(final["dataset"] == dataset) & (final["flag"] == "")]
    return bool(np.isfinite(part["seconds_to_target"].to_numpy(dtype=float)).any())


def leaderboard(final: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method: final test accuracy (mean, std over seeds), final train accuracy, median
    steps and training seconds spent, median seconds to the target (an unreached seed counts as never),
    peak step memory and kept state (NaN: not measured), the flags of its runs, and its rank (``–`` for a
    flagged row, or on a dataset where no unflagged run reached the target)."""
    ranked = seed_ranks(final)
    rows = []
    for (dataset, method), runs in ranked.groupby(["dataset", "method"], sort=False):
        times = runs["seconds_to_target"].fillna(math.inf)
        cost = costs[(costs["dataset"] == dataset) & (costs["method"] == method)].iloc[0]
        flags = ", ".join(sorted(set(runs["flag"]) - {""}))
        rank = rank_text(runs["rank"]) if not flags and informative(final, dataset) else UNRANKED
        rows.append({"dataset": dataset, "method": method, "family": runs["family"].iloc[0],
                     "test_accuracy": runs["test_accuracy"].mean(), "spread": runs["test_accuracy"].std(ddof=0),
                     "train_accuracy": runs["train_accuracy"].mean(), "steps": int(runs["steps"].median()),
                     "fewest_steps": int(runs["steps"].min()), "seconds": float(runs["seconds"].median()),
                     "target": float(runs["target"].iloc[0]), "seconds_to_target": float(times.median()),
                     "reached": f"{int(np.isfinite(times).sum())}/{len(times)}",
                     "peak_mib": cost["peak_bytes"] / 2**20, "state_mib": cost["state_bytes"] / 2**20,
                     "flag": flags, "rank": rank})
    table = pd.DataFrame(rows)
    order = {name: n for n, name in enumerate(dict.fromkeys(final["dataset"]))}
    table = table.assign(_order=table["dataset"].map(order), _flagged=table["flag"] != "")
    return table.sort_values(["_order", "_flagged", "test_accuracy"], ascending=[True, True, False]) \
        .drop(columns=["_order", "_flagged"]).reset_index(drop=True)


def _mib(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "n/a"


def leaderboard_markdown(table: pd.DataFrame, budgets: Mapping[str, float], seeds: int, resolution: int = 0) -> str:
    """The leaderboard as Markdown, one table per dataset (for the notebook's folder and REPORT.md);
    ``resolution``: the evaluations per budget before a run reaches the target (0: every step)."""
    lines = [(f"Equal wall-clock budget per method: {', '.join(f'task {k} {v:g} s' for k, v in budgets.items())} "
             f"of training steps; {seeds} seed(s); mean ± std over seeds. A run stops at the first step that ends "
             f"past the budget. Seconds to target: median over seeds, at the first evaluation at or above it "
             f"({'after every step' if not resolution else f'every 1/{resolution} of the budget until then'}; "
             "inf: not reached). A rank that changes between seeds is a tie. Unranked (–): a run that diverged, "
             f"took fewer than {MIN_STEPS} steps ({MIN_STEPS_ADMM} for ADMM-type methods) or spent more than "
             f"{OVERRUN:g}× the budget; and every row of a dataset where no such run reached the target. "
             "Step peak: above the memory in use before the step; a pure step's includes the copy of the state it "
             "makes (all but paper A's FW and forward-gradient methods, measured in place); n/a: the CPU profiler "
             "saw no allocation (not a measurement).")]
    for dataset, part in table.groupby("dataset", sort=False):
        lines += ["", f"**{dataset}** (target test accuracy {part['target'].iloc[0]:.2f})", ""]
        if not any(row.flag == "" and not row.reached.startswith("0/") for row in part.itertuples()):
            lines += [f"*{NOT_INFORMATIVE}.*", ""]
        lines += [("| rank | method | test accuracy | train accuracy | steps | seconds spent | seconds to target | "
                  "reached | step peak MiB | state MiB | flag |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in part.itertuples():
            lines.append(f"| {row.rank} | {row.method} | {row.test_accuracy:.3f} ± {row.spread:.3f} | "
                         f"{row.train_accuracy:.3f} | {row.steps} | {row.seconds:.3g} | {row.seconds_to_target:.3g} | "
                         f"{row.reached} | {_mib(row.peak_mib)} | {_mib(row.state_mib)} | {row.flag} |")
    return "\n".join(lines) + "\n"


def save_leaderboard(table: pd.DataFrame, out: Path, budgets: Mapping[str, float], seeds: int,
                     resolution: int = 0) -> None:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` (REPORT.md embeds the latter)."""
    table.to_csv(Path(out) / "leaderboard.csv", index=False)
    (Path(out) / "leaderboard.md").write_text(leaderboard_markdown(table, budgets, seeds, resolution))
