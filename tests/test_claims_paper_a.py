"""Paper A's claims can fail: hand-made runs that contradict each claim give *not reproduced*, runs that
agree give *reproduced*, and each function that turns a run into a claim's number has a known answer."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from beyond_backprop import claims, results
from beyond_backprop.autodiff.forward_gradient import projected_forward_gradient
from beyond_backprop.experiments import paper_a, paper_a_training
from beyond_backprop.optim.frank_wolfe import named_schedule
from beyond_backprop.results import Measurement

K = 3000


def verdict(claim_id, value, at=None):
    spec = claims.declaration(claim_id)
    return spec.judge(value, at if at is not None else dict(spec.scale)).verdict


def run(values, column="optimality_gap", **extra):
    k = np.arange(1, len(values) + 1)
    return pd.DataFrame({"iteration": k, column: values, **extra})


def test_every_paper_a_claim_is_declared_with_a_source_and_belongs_to_its_notebook():
    ids = sorted(d.id for d in claims.DECLARATIONS.values() if d.paper == "A")
    assert ids == ["A1.1", "A1.2", "A1.3", "A1.4", "A1.5", "A1.6", "A2.1", "A2.2", "A2.3", "A2.4",
                   "A3.1", "A3.2", "A3.3"]
    sources = {d.id: d.source for d in claims.DECLARATIONS.values() if d.paper == "A"}
    assert {i for i, s in sources.items() if s == claims.DERIVED} == {"A1.4", "A3.2", "A3.3"}
    assert {i for i, s in sources.items() if s == claims.DEMONSTRATION} == {"A1.6"}


# A1.1: progress, then a stall ------------------------------------------------------------------

def test_stall_share_known_answer():
    values = np.full(100, 0.4)
    values[49:] = 0.1  # windows: [5, 10] at 0.4, [50, 100] at 0.1
    assert paper_a.stall_share(run(values), initial_gap=1.0) == pytest.approx(math.log(4) / math.log(10))


def test_a1_1_progress_then_plateau_is_reproduced():
    k = np.arange(1, K + 1)
    values = np.maximum(k ** -1.0, 0.2)  # falls to 0.2 by k = 5, then flat
    share = paper_a.stall_share(run(values), initial_gap=1.0)
    assert share == pytest.approx(0.0, abs=1e-12)
    assert verdict("A1.1", share, {"iterations": K}) == results.REPRODUCED


@pytest.mark.parametrize("exponent", [0.2, 0.5, 2.0])
def test_a1_1_a_method_still_converging_is_not_a_stall(exponent):
    k = np.arange(1, K + 1)
    share = paper_a.stall_share(run(k ** -exponent), initial_gap=1.0)
    assert share == pytest.approx(1 / math.log10(K), abs=0.05)
    assert verdict("A1.1", share, {"iterations": K}) == results.NOT_REPRODUCED


def test_a1_1_a_method_that_barely_moves_is_not_a_stall():
    noise = np.random.default_rng(0).normal(0, 0.01, K)
    share = paper_a.stall_share(run(0.97 + noise), initial_gap=1.0)  # today's plain PFG-FW: 97% of its start
    assert share == math.inf
    assert verdict("A1.1", share, {"iterations": K}) == results.NOT_REPRODUCED


# A1.2, A1.3: the averaged method's gap and direction error keep falling -------------------------

@pytest.mark.parametrize("claim_id, column", [("A1.2", "optimality_gap"), ("A1.3", "estimate_error")])
def test_a1_2_a1_3_decay_is_reproduced_and_a_plateau_is_not(claim_id, column):
    k = np.arange(1, K + 1, dtype=float)
    falling = paper_a.tail_slope(run(k ** -0.7, column), column)
    assert falling == pytest.approx(-0.7)
    assert verdict(claim_id, falling) == results.REPRODUCED
    plateau = paper_a.tail_slope(run(np.maximum(k ** -0.7, 5e-2), column), column)  # flat from k = 72
    assert plateau == pytest.approx(0.0, abs=1e-12)
    assert verdict(claim_id, plateau) == results.NOT_REPRODUCED


# A1.4: the floor grows like sqrt(d/m) ------------------------------------------------------------

def sweep(floor_of_ratio, initial_gap=1.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"dimension": d, "directions": m, "initial_gap": initial_gap, "stall_share": 0.0,
             "floor": floor_of_ratio(d / m) * math.exp(noise * rng.standard_normal())}
            for d in (50, 200, 1000) for m in (1, 4, 16)]
    return pd.DataFrame(rows)


def test_a1_4_sqrt_growth_is_reproduced_and_a_flat_floor_is_not():
    grows, why = paper_a.floor_exponent(sweep(lambda r: 0.01 * r ** 0.5))
    assert grows == pytest.approx(0.5) and why == ""
    assert verdict("A1.4", grows) == results.REPRODUCED
    flat, _ = paper_a.floor_exponent(sweep(lambda r: 0.004))
    assert verdict("A1.4", flat) == results.NOT_REPRODUCED


@pytest.mark.parametrize("seed", range(5))
def test_a1_4_a_noisy_flat_floor_is_not_reproduced(seed):
    exponent, why = paper_a.floor_exponent(sweep(lambda r: 0.004, noise=0.3, seed=seed))
    assert why == "" and verdict("A1.4", exponent) == results.NOT_REPRODUCED


def test_a1_4_floors_near_their_start_are_left_out_and_too_few_clear_ones_are_not_testable():
    """Saturated floors (84-100% of the initial gap, as A1 at full once measured) gave a spurious exponent."""
    saturated = sweep(lambda r: min(0.95, 0.02 * r ** 0.5), initial_gap=1.0, noise=0.05)
    clear = paper_a.clear_floors(saturated)
    assert 2 * clear.sum() >= len(saturated)
    exponent, why = paper_a.floor_exponent(saturated)
    assert why == "" and exponent == pytest.approx(0.5, abs=0.1)
    mostly_saturated = sweep(lambda r: min(0.95, 0.2 * r ** 0.5))
    exponent, why = paper_a.floor_exponent(mostly_saturated)
    assert math.isnan(exponent) and "initial gap" in why


def test_a1_runs_match_a_direct_implementation_with_jvp_forward_gradients():
    """The O(d) Gram update and the closed-form phi against passes over A and torch.func.jvp."""
    problem = paper_a.least_squares_problem(60, 12, seed=3, reference_iterations=2000)
    for method, m in (("exact", 1), ("stochastic", 1), ("pfg", 4), ("averaged-pfg", 1)):
        fast = paper_a.run_frank_wolfe(problem, method, 40, directions=m, seed=5)
        torch.testing.assert_close(torch.tensor(fast["optimality_gap"].to_numpy()),
                                   direct_frank_wolfe(problem, method, 40, m, seed=5), rtol=1e-9, atol=1e-12)


def direct_frank_wolfe(problem, method, iterations, directions, seed):
    gen = torch.Generator().manual_seed(seed)
    gamma, rho = named_schedule("convex")
    theta, d, gaps = torch.zeros(problem.dimension, dtype=torch.float64), None, []
    for k in range(iterations):
        if method == "exact":
            g = problem.gradient(theta)
        elif method == "stochastic":
            g = problem.gradient(theta, torch.randint(0, len(problem.b), (64,), generator=gen))
        else:
            g = projected_forward_gradient(lambda p: problem.loss(p["theta"]), {"theta": theta},
                                           directions=directions, generator=gen)[1]["theta"]
        d = g if d is None or method != "averaged-pfg" else (1 - rho(k)) * d + rho(k) * g
        theta = (1 - gamma(k)) * theta + gamma(k) * problem.ball.lmo(d)
        gaps.append(float(problem.loss(theta)) - problem.f_star)
    return torch.tensor(gaps, dtype=torch.float64)


# A1.5: the rate after the transient --------------------------------------------------------------

def plateau_then_power(n, until, exponent, floor=None):
    k = np.arange(1, n + 1, dtype=float)
    values = np.where(k <= until, 1.0, (k / until) ** -exponent)
    return run(values if floor is None else np.maximum(values, floor))


def test_a1_5_known_answer_and_verdicts():
    n = 100_000
    slope = paper_a.rate_after_transient(plateau_then_power(n, 100, 0.5), initial_gap=1.0)
    assert slope == pytest.approx(-0.5)
    assert verdict("A1.5", slope, {"iterations": n}) == results.REPRODUCED
    stalled = paper_a.rate_after_transient(plateau_then_power(n, 100, 0.5, floor=0.05), initial_gap=1.0)
    assert verdict("A1.5", stalled, {"iterations": n}) == results.NOT_REPRODUCED


def test_a1_5_a_plateau_then_drop_transient_gives_no_rate():
    """Today's failure: a slope of -1.39 read off a drop that ends the run."""
    transient = paper_a.rate_after_transient(plateau_then_power(100_000, 40_000, 3.0), initial_gap=1.0)
    assert math.isnan(transient)
    assert verdict("A1.5", transient, {"iterations": 100_000}) == results.NOT_REPRODUCED


def test_a1_5_below_the_spec_scale_is_not_testable():
    assert verdict("A1.5", -0.5, {"iterations": 3000}) == results.NOT_TESTABLE


# A1.6: the closed-form variance ------------------------------------------------------------------

def test_a1_6_closed_form_is_demonstrated_and_half_of_it_is_not():
    d = 20
    gradient_norm2 = np.linspace(1.0, 2.0, 50)
    exact = run(np.zeros(50), estimate_error=(d + 1) * gradient_norm2, gradient_norm2=gradient_norm2)
    assert paper_a.variance_ratio(exact, d) == pytest.approx(1.0)
    assert verdict("A1.6", paper_a.variance_ratio(exact, d)) == results.DEMONSTRATED
    half = exact.assign(estimate_error=exact["estimate_error"] / 2)
    assert verdict("A1.6", paper_a.variance_ratio(half, d)) == results.NOT_REPRODUCED


# A2.1, A2.2: averaged PF-FW's gap falls like 1/log k, plain PF-FW's plateaus ---------------------------

ITERATIONS = np.arange(10, 321, 10)


def gap_run(values, method="averaged-pfg", label="MNIST subset"):
    return pd.DataFrame({"iteration": ITERATIONS, "fw_gap": values, "dataset": label, "method": method,
                         "step_rule": "theory", "directions": 1})


def noisy(values, noise, seed):
    return np.asarray(values) * np.exp(noise * np.random.default_rng(seed).standard_normal(len(ITERATIONS)))


def test_log_decay_share_known_answer():
    y = 3.0 / np.log(ITERATIONS + 1)
    assert paper_a_training.log_decay_share(gap_run(y))[0] == pytest.approx(1.0, abs=0.02)
    assert paper_a_training.log_decay_share(gap_run(np.full(len(ITERATIONS), 4.0))) == (0.0, 0.0)


def contrast(averaged, plain):
    """The verdict's input: the measure, or None when it is not testable."""
    history = pd.concat([gap_run(averaged), gap_run(plain, method="pfg")])
    value, why = paper_a_training.gap_contrast(history, "MNIST subset")
    return None if why else value


@pytest.mark.parametrize("claim_id", ["A2.1", "A2.2"])
def test_a2_gap_heading_to_zero_beside_a_plain_plateau_is_reproduced(claim_id):
    value = contrast(noisy(3.0 / np.log(ITERATIONS + 1), 0.02, 0), noisy(np.full(len(ITERATIONS), 90.0), 0.1, 1))
    assert verdict(claim_id, value) == results.REPRODUCED


@pytest.mark.parametrize("claim_id", ["A2.1", "A2.2"])
@pytest.mark.parametrize("averaged", [
    np.full(len(ITERATIONS), 89.0),  # a plateau, as averaged PF-FW's gap on Fashion-MNIST once was
    np.where(ITERATIONS < 100, 95.0, 89.0),  # one drop early on, then flat: the running minimum passed it
    np.where(ITERATIONS == 300, 1.0, 89.0),  # a single low record near the end
])
def test_a2_a_plateau_is_not_reproduced(claim_id, averaged):
    assert verdict(claim_id, contrast(averaged, np.full(len(ITERATIONS), 90.0))) == results.NOT_REPRODUCED


@pytest.mark.parametrize("claim_id", ["A2.1", "A2.2"])
@pytest.mark.parametrize("noise", [0.03, 0.1])
def test_a2_a_noisy_plateau_is_rarely_reproduced(claim_id, noise):
    """Flat gaps with record-to-record noise (the old running-minimum rule passed 11-34% of them): at 3% they are
    not reproduced, at 10% the measure is too noisy to judge; at most 5% of them pass."""
    measured = [contrast(noisy(np.full(len(ITERATIONS), 89.0), noise, seed),
                         noisy(np.full(len(ITERATIONS), 90.0), noise, seed + 1000)) for seed in range(200)]
    verdicts = [verdict(claim_id, value) if value is not None else results.NOT_TESTABLE for value in measured]
    assert verdicts.count(results.REPRODUCED) <= 10
    if noise == 0.03:
        assert verdicts.count(results.NOT_REPRODUCED) >= 170  # the rest: partly or not testable


@pytest.mark.parametrize("claim_id", ["A2.1", "A2.2"])
def test_a2_plain_pf_fw_falling_as_fast_is_not_reproduced(claim_id):
    falling = 3.0 / np.log(ITERATIONS + 1)
    assert verdict(claim_id, contrast(noisy(falling, 0.05, 2), noisy(falling, 0.05, 3))) == results.NOT_REPRODUCED


def test_a2_too_few_records_in_a_quarter_give_no_share():
    short = pd.DataFrame({"iteration": [100, 200, 300], "fw_gap": [4.0, 3.0, 2.0]})
    assert math.isnan(paper_a_training.log_decay_share(short)[0])


# A2.3, A2.4: competitive accuracy, each method at its best (rule, m) ----------------------------------

def summary(reference, averaged, label="MNIST subset", rival_loss=0.5):
    return pd.DataFrame([
        {"dataset": label, "method": "backprop-fw", "step_rule": "sfw", "directions": 1, "test_accuracy": reference,
         "train_loss": 0.3},
        {"dataset": label, "method": "backprop-fw", "step_rule": "theory", "directions": 1, "test_accuracy": 0.1,
         "train_loss": 2.0},
        {"dataset": label, "method": "averaged-pfg", "step_rule": "theory", "directions": 16,
         "test_accuracy": averaged, "train_loss": 0.4},
        {"dataset": label, "method": "averaged-pfg", "step_rule": "sfw", "directions": 4, "test_accuracy": 0.95,
         "train_loss": rival_loss},  # best on test accuracy, never chosen unless its training loss is lowest
        {"dataset": label, "method": "averaged-pfg", "step_rule": "sfw", "directions": 1, "test_accuracy": 0.99,
         "train_loss": float("nan")},  # diverged: never chosen
    ])


def measured_a2(reference, averaged, iterations=800):
    history = pd.concat([gap_run(3.0 / np.log(ITERATIONS + 1)), gap_run(np.full(len(ITERATIONS), 9.0), "pfg")])
    return paper_a_training.claim_measurements(
        history, summary(reference, averaged), iterations=iterations, batch=128,
        train_sizes={"MNIST subset": 8_000})  # one data set: it takes the first ids, A2.1 and A2.3


def test_accuracy_behind_reads_each_method_at_its_lowest_training_loss():
    value, why, runs = paper_a_training.accuracy_behind(summary(0.9, 0.85), "MNIST subset")
    assert value == pytest.approx(0.05) and why == ""
    assert runs == {"backprop_fw_run": "sfw step, m 1", "averaged_pf_fw_run": "theory step, m 16"}
    value, _, runs = paper_a_training.accuracy_behind(summary(0.9, 0.85, rival_loss=0.35), "MNIST subset")
    assert value == pytest.approx(-0.05) and runs["averaged_pf_fw_run"] == "sfw step, m 4"
    value, why, _ = paper_a_training.accuracy_behind(summary(0.2, 0.1), "MNIST subset")
    assert value is None and "0.20" in why


@pytest.mark.parametrize("claim_id", ["A2.3", "A2.4"])
def test_a2_accuracy_close_is_reproduced_and_far_behind_is_not(claim_id):
    at = {"epochs": 12.8}
    assert verdict(claim_id, paper_a_training.accuracy_behind(summary(0.9, 0.88), "MNIST subset")[0], at) \
        == results.REPRODUCED
    assert verdict(claim_id, paper_a_training.accuracy_behind(summary(0.9, 0.10), "MNIST subset")[0], at) \
        == results.NOT_REPRODUCED
    assert verdict(claim_id, 0.0, {"epochs": 4.0}) == results.NOT_TESTABLE


def test_a2_claim_measurements_name_the_setting_and_the_runs_read():
    measured = measured_a2(0.9, 0.2)
    assert measured["A2.1"].value == pytest.approx(1.0, abs=0.05)
    assert measured["A2.3"].value == pytest.approx(0.7)
    assert measured["A2.3"].at == {"epochs": 12.8, "iterations": 800, "dataset": "MNIST subset",
                                   "backprop_fw_run": "sfw step, m 1", "averaged_pf_fw_run": "theory step, m 16"}
    claim = claims.declaration("A2.3").judge(measured["A2.3"].value, measured["A2.3"].at)
    assert "theory step, m 16" in claim.setting and "paper" not in claim.setting
    assert measured_a2(0.3, 0.2)["A2.3"].not_testable


def test_a2_below_the_spec_epochs_names_the_spec_not_the_paper():
    claim = claims.declaration("A2.4").judge(0.0, {"epochs": 4.0, "iterations": 100})
    assert claim.verdict == results.NOT_TESTABLE and "spec E3 [R]: 10" in claim.setting and "paper" not in claim.setting


# A3: memory ---------------------------------------------------------------------------------------

def ratios(peak_large, total_large, activation_large):
    return pd.DataFrame([
        {"depth": 16, "batch": 1, "peak_ratio": 1.0, "total_ratio": 1.0, "activation_ratio": 1.0},
        {"depth": 16, "batch": 1024, "peak_ratio": peak_large, "total_ratio": total_large,
         "activation_ratio": activation_large},
        {"depth": 2, "batch": 1024, "peak_ratio": 0.1, "total_ratio": 0.1, "activation_ratio": 0.1},
    ])


def a3_verdicts(table):
    measured = paper_a_training.memory_claims(table, width=512)
    return {claim_id: verdict(claim_id, m.value, m.at) for claim_id, m in measured.items()}


def test_a3_memory_claims_read_the_deepest_network_at_the_largest_batch():
    measured = paper_a_training.memory_claims(ratios(0.5, 0.47, 0.2), width=512)
    assert measured["A3.1"] == Measurement(0.47, {"depth": 16, "width": 512, "batch": 1024})
    assert measured["A3.3"] == Measurement(0.2, {"depth": 16, "width": 512, "batch": 1024})


def test_a3_agreeing_profile_is_reproduced():
    assert a3_verdicts(ratios(0.5, 0.47, 0.2)) == dict.fromkeys(["A3.1", "A3.2", "A3.3"], results.REPRODUCED)


def test_a3_a_flat_memory_profile_is_not_reproduced():
    """A profile of 1.000 everywhere (once set by the FW update's temporaries, not activations)."""
    assert set(a3_verdicts(ratios(1.0, 1.0, 1.0)).values()) == {results.NOT_REPRODUCED}


def test_a3_3_fails_when_the_forward_step_keeps_a_tape():
    assert a3_verdicts(ratios(0.5, 0.47, 0.95))["A3.3"] == results.NOT_REPRODUCED


def test_cost_ratios_and_breakdown_known_answer():
    rows = []
    for method, peak, total, activation in (("backprop-fw", 100, 300, 80), ("averaged-pfg", 40, 240, 8)):
        rows.append({"method": method, "width": 8, "depth": 2, "batch": 4, "seconds": 1.0, "peak_bytes": peak,
                     "total_bytes": total, "gradient_peak_bytes": peak, "floor_bytes": 150,
                     **{name: 2**20 for name in paper_a_training.BREAKDOWN}, "activation_bytes": activation})
    table = pd.DataFrame(rows)
    ratio = paper_a_training.cost_ratios(table).iloc[0]
    assert ratio["peak_ratio"] == pytest.approx(0.4) and ratio["total_ratio"] == pytest.approx(0.8)
    assert ratio["floor_ratio"] == pytest.approx(0.5) and ratio["activation_ratio"] == pytest.approx(0.1)
    breakdown = paper_a_training.memory_breakdown(table, 2, 4)
    assert breakdown.loc["tangent", "averaged-pfg"] == pytest.approx(1.0)


# the ledger ---------------------------------------------------------------------------------------

def test_record_measures_or_marks_not_testable():
    ledger = claims.ClaimLedger("A2", profile="quick", device="cpu")
    ledger.record({
        "A2.2": Measurement(1.0, {"iterations": 800, "dataset": "MNIST subset"}),
        "A2.4": Measurement(None, {"epochs": 12.8, "iterations": 800, "dataset": "MNIST subset"},
                            not_testable="the backprop FW reference reached only 0.10 test accuracy"),
    })
    by_id = {c.id: c for c in ledger.claims}
    assert by_id["A2.2"].verdict == results.REPRODUCED
    assert by_id["A2.4"].verdict == results.NOT_TESTABLE and "0.10" in by_id["A2.4"].reason
    assert "dataset MNIST subset" in by_id["A2.2"].setting


def test_a2_a_run_too_short_to_fit_is_not_testable_rather_than_failed():
    history = pd.DataFrame({"iteration": [10, 20], "fw_gap": [2.0, 1.0], "dataset": "MNIST subset",
                            "method": "averaged-pfg", "step_rule": "theory", "directions": 1})
    measured = paper_a_training.claim_measurements(history, summary(0.9, 0.8), iterations=20, batch=128,
                                                   train_sizes={"MNIST subset": 8_000})
    assert "fewer than 3" in measured["A2.1"].not_testable
