"""X1's claims measured from the runs (declared in :mod:`beyond_backprop.claims.equal_budget`).

Each claim names what it measures, the methods it needs, and whether it compares runs at equal time
(then a step cap, or a needed method's run that took too few steps or overran the budget, makes it not
testable) or a single step's memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ... import method_names as names
from ...claims import declared_for
from ...results import Measurement
from .runs import DIVERGED, Comparison
from .tasks import TARGETS

ADMM_TYPE = (names.DLADMM, names.TAYLOR_ADMM, names.MDLAM)
GRAPH_RIVALS = (names.DLADMM, names.ADAM, names.GD)  # mDLAM's baselines among X1's methods
FORWARD_GRADIENT = ("averaged PFG-FW", "forward-gradient SGD")
BACKPROP_FW = "FW, backprop gradient"


@dataclass(frozen=True)
class Evidence:
    """The runs of one dataset that a claim reads: final rows (one per run) and the step costs."""

    final: pd.DataFrame
    costs: pd.DataFrame
    budget: float

    def wide(self, column: str) -> pd.DataFrame:
        """``column`` per seed (rows) and method (columns)."""
        return self.final.pivot(index="seed", columns="method", values=column)

    def ranked(self, methods: Sequence[str]) -> list[str]:
        """Those of ``methods`` whose every run was judged at equal time (no flag but ``diverged``)."""
        flagged = set(self.final[~self.final["flag"].isin(["", DIVERGED])]["method"])
        return [m for m in methods if m in set(self.final["method"]) and m not in flagged]


def median_difference(evidence: Evidence, method: str, other: str) -> float:
    """Median over seeds of ``method``'s final test accuracy minus ``other``'s."""
    wide = evidence.wide("test_accuracy")
    return float((wide[method] - wide[other]).median())


def worst_seed_margin(evidence: Evidence, method: str, rivals: Sequence[str]) -> float:
    """The smallest, over seeds, of ``method``'s final test accuracy minus the best rival's: > 0 only
    when it wins in every seed."""
    wide = evidence.wide("test_accuracy")
    return float((wide[method] - wide[list(rivals)].max(axis=1)).min())


def time_ratio(evidence: Evidence, fast: Sequence[str], slow: str) -> float:
    """The largest, over seeds, of (fastest of ``fast`` to the target) / (``slow`` to the target).

    A method that does not reach the target is censored at the budget: a seed where only one side
    reaches it gives a bound (below 1 when ``fast`` reached it, above 1 when only ``slow`` did), and a
    seed where neither does is a tie (1), never a win. NaN when no seed reaches the target at all.
    """
    wide = evidence.wide("seconds_to_target")
    quick, slower = wide[list(fast)].min(axis=1).fillna(math.inf), wide[slow].fillna(math.inf)
    if not (np.isfinite(quick) | np.isfinite(slower)).any():
        return float("nan")
    return float(max(min(q, evidence.budget) / min(s, evidence.budget) for q, s in zip(quick, slower)))


def peak_ratio(evidence: Evidence, methods: Sequence[str], reference: str) -> float:
    """The largest of ``methods``' step peaks over ``reference``'s (NaN when a peak was not measured)."""
    peaks = evidence.costs.set_index("method")["peak_bytes"][[*methods, reference]]
    return float("nan") if peaks.isna().any() else float(peaks[list(methods)].max() / peaks[reference])


@dataclass(frozen=True)
class ClaimMeasure:
    """What a claim measures, the methods it needs (all of ``needs``; at least one of ``any_of``, of which
    the runs judged at equal time are compared), and whether it compares runs at equal time."""

    measure: Callable[[Evidence, Sequence[str]], float]
    needs: tuple[str, ...]
    any_of: tuple[str, ...] = ()
    at_equal_time: bool = True


CLAIM_MEASURES: dict[str, ClaimMeasure] = {
    "X1.1": ClaimMeasure(lambda e, _: median_difference(e, names.DLADMM, names.ADAM),
                         (names.DLADMM, names.ADAM)),
    "X1.2": ClaimMeasure(lambda e, _: worst_seed_margin(e, names.MDLAM, GRAPH_RIVALS),
                         (names.MDLAM, *GRAPH_RIVALS)),
    "X1.3": ClaimMeasure(lambda e, _: worst_seed_margin(e, names.MDLAM, GRAPH_RIVALS),
                         (names.MDLAM, *GRAPH_RIVALS)),
    "X1.4": ClaimMeasure(lambda e, _: peak_ratio(e, FORWARD_GRADIENT, BACKPROP_FW), (BACKPROP_FW, *FORWARD_GRADIENT),
                         at_equal_time=False),
    "X1.5": ClaimMeasure(lambda e, admm: time_ratio(e, admm, names.GD), (names.GD,), ADMM_TYPE),
    "X1.6": ClaimMeasure(lambda e, admm: time_ratio(e, admm, names.GD), (names.GD,), ADMM_TYPE),
}


def unequal(final: pd.DataFrame, methods: Sequence[str]) -> str:
    """Why runs of ``methods`` are not at equal time (flagged too few steps or over budget), or ``""``."""
    part = final[final["method"].isin(list(methods)) & ~final["flag"].isin(["", DIVERGED])]
    if part.empty:
        return ""
    worst = part.groupby("method").agg(flag=("flag", "first"), steps=("steps", "min"), seconds=("seconds", "max"))
    listed = ", ".join(f"{m} {r.flag} ({r.steps} steps, {r.seconds:.3g} s)" for m, r in worst.iterrows())
    return (f"not at equal time at this budget: {listed}; a larger budget per run is needed "
            "(parameters image_seconds, graph_seconds)")


def x1_claims(comparison: Comparison, final: pd.DataFrame, skipped: Mapping[str, str], *,
              batch: int, width: int) -> dict[str, Measurement]:
    """X1's measurements, each with its dataset and budget and seed count (a memory claim: the batch and
    the task M width it was measured at); a dataset or method not run, a step-capped run, or a needed
    run not at equal time makes a claim not testable, with why."""
    out = {}
    for declared in declared_for("X1"):
        spec = CLAIM_MEASURES[declared.id]
        dataset = declared.scale["dataset"]
        part = final[final["dataset"] == dataset]
        evidence = Evidence(part, comparison.costs[comparison.costs["dataset"] == dataset] if len(comparison.costs)
                            else comparison.costs, comparison.budget(dataset))
        at: dict[str, Any] = {"dataset": dataset, "batch": batch, "width": width}
        if part.empty:  # not run: no budget or seed count to state
            at = {"dataset": dataset}
        elif spec.at_equal_time:
            at = {"dataset": dataset, "seconds": evidence.budget, "seeds": int(part["seed"].nunique())}
            if spec.any_of:
                at["target"] = TARGETS[dataset]
        ran = set(part["method"])
        compared = evidence.ranked(spec.any_of) if spec.at_equal_time else [m for m in spec.any_of if m in ran]
        absent = [m for m in spec.needs if m not in ran] + ([] if not spec.any_of or set(spec.any_of) & ran
                                                           else list(spec.any_of))
        why = ""
        if part.empty:
            why = skipped.get(dataset, f"{dataset} is not run in this profile")
        elif absent:
            why = "; ".join(comparison.not_run.get((dataset, m), f"{m} was not run") for m in absent)
        elif spec.at_equal_time and comparison.capped:
            why = f"steps were capped at {comparison.capped} (smoke): not an equal wall-clock budget"
        elif spec.at_equal_time:
            why = unequal(part, spec.needs if compared else (*spec.needs, *spec.any_of))
        value = float("nan") if why else spec.measure(evidence, compared)
        if not why and not math.isfinite(value):
            why = (f"neither side reached test accuracy {TARGETS[dataset]} within the budget in any seed"
                   if spec.any_of else "a step peak was not measured (the CPU profiler saw no allocation)")
        out[declared.id] = Measurement(None if why else value, at, why)
    return out
