"""The claims ledger: rules give verdicts from measurements; nothing is typed."""

import json

import pytest
import torch

from beyond_backprop import results
from beyond_backprop.claims import ClaimLedger
from beyond_backprop.results import AtLeast, AtMost, Between, Claim, Near, NotTestable


@pytest.mark.parametrize("rule, measured, verdict", [
    (AtLeast(0.9, partly=0.8), 0.95, results.REPRODUCED),
    (AtLeast(0.9, partly=0.8), 0.85, results.PARTLY),
    (AtLeast(0.9, partly=0.8), 0.5, results.NOT_REPRODUCED),
    (AtLeast(0.9), 0.85, results.NOT_REPRODUCED),
    (AtMost(5.0, partly=8.0), 2.0, results.REPRODUCED),
    (AtMost(5.0, partly=8.0), 6.0, results.PARTLY),
    (AtMost(5.0, partly=8.0), 9.0, results.NOT_REPRODUCED),
    (Between(0.9, 1.1, partly=(0.7, 1.3)), 1.0, results.REPRODUCED),
    (Between(0.9, 1.1, partly=(0.7, 1.3)), 1.2, results.PARTLY),
    (Between(0.9, 1.1, partly=(0.7, 1.3)), 0.2, results.NOT_REPRODUCED),
    (Near(0.742, rel=0.05, partly=0.1), 0.75, results.REPRODUCED),
    (Near(0.742, rel=0.05, partly=0.1), 0.68, results.PARTLY),
    (Near(0.742, rel=0.05, partly=0.1), 0.5, results.NOT_REPRODUCED),
    (NotTestable("PubMed is not available"), None, results.NOT_TESTABLE),
    (AtLeast(0.9), None, results.NOT_REPRODUCED),
    (AtLeast(0.9), float("nan"), results.NOT_REPRODUCED),
])
def test_rule_verdicts(rule, measured, verdict):
    claim = Claim("X1.1", paper="D", statement="s", paper_value="p", measured=measured, rule=rule)
    assert claim.verdict == verdict
    assert claim.reason


@pytest.mark.parametrize("make", [
    lambda: AtLeast(0.9, partly=0.95),
    lambda: AtMost(0.9, partly=0.5),
    lambda: Between(2.0, 1.0),
    lambda: Between(1.0, 2.0, partly=(1.5, 3.0)),
    lambda: Near(1.0, rel=0.2, partly=0.1),
])
def test_inconsistent_rules_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_claim_refuses_a_typed_verdict():
    with pytest.raises(TypeError):
        Claim("X1.1", paper="A", statement="s", paper_value="p", measured=1.0, rule="reproduced")


def test_ledger_writes_json_and_prints_stable_lines(tmp_path, capsys):
    ledger = ClaimLedger("X1", profile="smoke", device="cpu")
    ledger.add(Claim("X1.1", paper="A", statement="s", paper_value="0.47", measured=torch.tensor(0.4666666),
                     rule=AtMost(0.55)))
    with pytest.raises(ValueError):
        ledger.add(Claim("X1.1", paper="A", statement="again", paper_value="", measured=1.0, rule=AtMost(1)))
    ledger.save(tmp_path)
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert saved["status"] == "complete"
    assert saved["claims"][0]["verdict"] == results.REPRODUCED
    assert saved["claims"][0]["measured"] == pytest.approx(0.4666666)
    assert "X1.1   reproduced        measured 0.467" in capsys.readouterr().out


def test_metric_table_is_tidy(tmp_path):
    table = results.MetricTable()
    table.add(method="fw", iteration=1, metric="gap", value=torch.tensor(0.5))
    table.add(method="fw", iteration=2, metric="gap", value=0.25)
    frame = results.MetricTable.frame.fget(table)
    assert list(frame.columns) == ["method", "iteration", "metric", "value"]
    table.save(tmp_path)
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1] == "fw,1,gap,0.5"


def test_significant_keeps_four_stable_digits_and_the_magnitude():
    import pandas as pd

    machine_a = pd.DataFrame({"variant": ["rho=1e-06", "rho=1"], "residual": [24190.27, 0.81231], "runs": [3, 4]})
    machine_b = machine_a.assign(residual=[24190.25, 0.81233])  # the same run, other summation order
    shown = results.significant(machine_a)
    assert shown.to_string() == results.significant(machine_b).to_string()
    assert list(shown["residual"]) == ["2.419e+04", "0.8123"] and list(shown["runs"]) == [3, 4]
    diverged = machine_a.assign(residual=[3.1e12, float("nan")])
    assert list(results.significant(diverged)["residual"]) == ["3.1e+12", "nan"], "a diverging value stays visible"


def test_below_shows_round_off_as_a_bound_and_real_values_as_numbers():
    assert results.below(8.7e-19, 1e-12) == results.below(1.7e-18, 1e-12) == "below 1e-12"
    assert results.below(3.2e-5, 1e-12) == "3.2e-05"
