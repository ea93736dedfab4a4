"""X1's claims: every rule says `not reproduced` on data that contradicts the claim and `reproduced` on data
that agrees; a dataset or method not run, or a step-capped run, is not testable with the reason."""

from __future__ import annotations

import pandas as pd
import pytest

from beyond_backprop import claims, results
from beyond_backprop.experiments import equal_budget as eb

REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE = results.REPRODUCED, results.NOT_REPRODUCED, results.NOT_TESTABLE
METHODS = ("Adam", "SGD", "FW, backprop gradient", "averaged PFG-FW", "forward-gradient SGD", "dlADMM",
           "Taylor's ADMM", "mDLAM")
DATASETS = {"fashion-mnist": "M", "cora": "G", "citeseer": "G"}
BUDGET = 4.0


def runs(accuracy: dict[str, list[float]] | None = None, seconds: dict[str, list[float]] | None = None,
         seeds: int = 3) -> pd.DataFrame:
    """Final rows of every method on every dataset: 0.5 accuracy and an unreached target unless given."""
    rows = []
    for dataset in DATASETS:
        for method in METHODS:
            for seed in range(seeds):
                rows.append({"dataset": dataset, "method": method, "seed": seed, "steps": 5, "seconds": BUDGET,
                             "train_accuracy": 0.5,
                             "test_accuracy": (accuracy or {}).get(method, [0.5] * seeds)[seed],
                             "target": eb.TARGETS[dataset],
                             "seconds_to_target": (seconds or {}).get(method, [float("nan")] * seeds)[seed]})
    return pd.DataFrame(rows)


def comparison(peaks: dict[str, float] | None = None, capped: int | None = None,
               not_run: dict | None = None) -> eb.Comparison:
    costs = pd.DataFrame([{"dataset": d, "method": m, "peak_bytes": (peaks or {}).get(m, 100.0), "state_bytes": 1.0}
                          for d in DATASETS for m in METHODS])
    return eb.Comparison(pd.DataFrame(), costs, pd.DataFrame(), not_run or {}, {"M": BUDGET, "G": BUDGET},
                         dict(DATASETS), capped)


def verdicts(final: pd.DataFrame, c: eb.Comparison | None = None, batch: int = 1024,
             skipped: dict | None = None) -> dict[str, str]:
    ledger = claims.ClaimLedger("X1", profile="quick", device="cpu")
    ledger.record(eb.x1_claims(c or comparison(), final, skipped or {}, batch=batch))
    return {claim.id: claim.verdict for claim in ledger.claims}


def test_every_declared_claim_is_measured_and_names_its_dataset():
    declared = claims.declared_for("X1")
    assert [d.id for d in declared] == [f"X1.{n}" for n in range(1, 7)]
    assert all(d.source == claims.CITED and d.scale["dataset"] in DATASETS for d in declared)
    assert set(verdicts(runs())) == {d.id for d in declared}


@pytest.mark.parametrize("dladmm, verdict", [([0.5, 0.5, 0.5], NOT_REPRODUCED), ([0.79, 0.78, 0.8], REPRODUCED)])
def test_dladmm_competitive_with_adam(dladmm, verdict):
    assert verdicts(runs({"Adam": [0.8, 0.8, 0.8], "dlADMM": dladmm}))["X1.1"] == verdict


def test_mdlam_must_win_in_every_seed():
    wins = runs({"mDLAM": [0.7, 0.7, 0.7], "Adam": [0.6, 0.65, 0.6]})
    assert verdicts(wins)["X1.2"] == REPRODUCED and verdicts(wins)["X1.3"] == REPRODUCED
    loses = runs({"mDLAM": [0.5, 0.5, 0.5], "dlADMM": [0.7, 0.7, 0.7]})
    assert verdicts(loses)["X1.2"] == NOT_REPRODUCED
    # ahead on average, behind in one seed: a tie, not a win
    swaps = runs({"mDLAM": [0.8, 0.8, 0.69], "SGD": [0.6, 0.6, 0.7]})
    assert verdicts(swaps)["X1.3"] != REPRODUCED


@pytest.mark.parametrize("forward, verdict", [(100.0, NOT_REPRODUCED), (40.0, REPRODUCED)])
def test_forward_gradient_memory(forward, verdict):
    peaks = {"FW, backprop gradient": 100.0, "averaged PFG-FW": 30.0, "forward-gradient SGD": forward}
    assert verdicts(runs(), comparison(peaks))["X1.4"] == verdict


def test_memory_below_the_batch_is_not_testable():
    peaks = {"FW, backprop gradient": 100.0, "averaged PFG-FW": 30.0, "forward-gradient SGD": 30.0}
    assert verdicts(runs(), comparison(peaks), batch=64)["X1.4"] == NOT_TESTABLE


def test_admm_faster_than_gradient_descent():
    faster = runs(seconds={"dlADMM": [1.0, 1.0, 1.2], "SGD": [3.0, 2.0, 3.0]})
    assert verdicts(faster)["X1.5"] == REPRODUCED
    slower = runs(seconds={"mDLAM": [3.0, 3.0, 3.0], "SGD": [1.0, 1.0, 1.0]})
    assert verdicts(slower)["X1.5"] == NOT_REPRODUCED
    only_sgd = runs(seconds={"SGD": [1.0, 1.0, 1.0]})  # no ADMM-type method reached it in the budget
    assert verdicts(only_sgd)["X1.6"] == NOT_REPRODUCED
    assert verdicts(runs())["X1.5"] == NOT_TESTABLE  # nobody reached the target: says nothing
    once = runs(seconds={"mDLAM": [0.5, float("nan"), float("nan")]})  # two seeds where neither reached it
    assert verdicts(once)["X1.6"] != REPRODUCED


def test_missing_dataset_method_or_capped_steps_are_not_testable():
    final = runs({"Adam": [0.8, 0.8, 0.8], "dlADMM": [0.8, 0.8, 0.8]})
    capped = verdicts(final, comparison(capped=2))
    assert capped["X1.1"] == NOT_TESTABLE and capped["X1.5"] == NOT_TESTABLE
    without = final[final["method"] != "mDLAM"]
    c = comparison(not_run={("cora", "mDLAM"): "mDLAM is not merged"})
    ledger = claims.ClaimLedger("X1", profile="quick", device="cpu")
    ledger.record(eb.x1_claims(c, without, {}, batch=1024))
    x12 = next(claim for claim in ledger.claims if claim.id == "X1.2")
    assert x12.verdict == NOT_TESTABLE and "mDLAM is not merged" in x12.reason
    no_citeseer = final[final["dataset"] != "citeseer"]
    assert verdicts(no_citeseer, skipped={"citeseer": "citeseer is not available"})["X1.3"] == NOT_TESTABLE


def test_a_method_with_too_few_steps_makes_its_comparisons_not_testable():
    final = runs({"Adam": [0.8, 0.8, 0.8], "dlADMM": [0.5, 0.5, 0.5]})  # contradicts X1.1 ...
    assert verdicts(final)["X1.1"] == NOT_REPRODUCED
    short = final.copy()
    short.loc[(short["method"] == "dlADMM") & (short["seed"] == 1), "steps"] = eb.MIN_STEPS - 1  # ... in one step
    found = verdicts(short)
    assert found["X1.1"] == NOT_TESTABLE and found["X1.5"] == NOT_TESTABLE  # dlADMM is compared in both
    assert found["X1.4"] != NOT_TESTABLE  # memory is a per-step measure: the number of steps does not matter
    reason = eb.too_few_steps(short, "fashion-mnist", ["dlADMM", "Adam"])
    assert f"dlADMM {eb.MIN_STEPS - 1}" in reason and "Adam" not in reason
