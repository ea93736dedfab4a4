"""Claims declared as data: ids, sources, scale gating, and the report's failed / never-measured rows."""

import json

import pytest

from beyond_backprop import claims, report, results
from beyond_backprop.claims import CITED, DEMONSTRATION, DERIVED, ClaimLedger, Declaration
from beyond_backprop.results import AtLeast, NotTestable


def declared(**kwargs):
    base = dict(id="C2.1", statement="accuracy after 200 epochs", paper_value="0.742 (Table 4)",
                rule=AtLeast(0.7), unit="test accuracy", scale={"epochs": 200})
    return Declaration(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs", [
    {"id": "C2"}, {"id": "A3.2b"}, {"id": "c2.1"},
    {"source": "folklore"},
    {"source": CITED},  # a cited claim names its citation
    {"citation": "Bertoin et al. 2021"},  # and only a cited claim has one
    {"rule": "reproduced"},
    {"scale_origin": {"width": "spec E3 [R]"}},  # names no scale entry
])
def test_bad_declarations_are_refused(kwargs):
    with pytest.raises((ValueError, TypeError)):
        declared(**kwargs)


def test_at_scale_the_paper_rule_decides_both_ways():
    spec = declared()
    assert spec.judge(0.75, {"epochs": 200}).verdict == results.REPRODUCED
    assert spec.judge(0.40, {"epochs": 200}).verdict == results.NOT_REPRODUCED
    assert spec.judge(0.75, {"epochs": 300}).verdict == results.REPRODUCED  # above scale is at scale


def test_a_demonstration_that_holds_is_demonstrated_never_reproduced():
    spec = declared(source=DEMONSTRATION)
    assert spec.judge(0.75, {"epochs": 200}).verdict == results.DEMONSTRATED
    assert spec.judge(0.40, {"epochs": 200}).verdict == results.NOT_REPRODUCED  # a broken self-check shows
    assert declared().judge(0.75, {"epochs": 200}).verdict == results.REPRODUCED


def test_a_scale_entry_from_the_spec_is_never_labelled_the_papers():
    spec = declared(scale={"epochs": 10}, scale_origin={"epochs": "spec E3 [R]"})
    claim = spec.judge(0.10, {"epochs": 8})
    assert claim.setting == "epochs 8 (spec E3 [R]: 10)"
    assert "paper" not in claim.setting and "epochs 8 of 10 (spec E3 [R])" in claim.reason
    assert declared().judge(0.75, {"epochs": 150}).setting == "epochs 150 (paper 200)"


def test_below_scale_without_a_budget_value_is_not_testable_never_not_reproduced():
    claim = declared().judge(0.10, {"epochs": 15, "dataset": "cora"})
    assert claim.verdict == results.NOT_TESTABLE
    assert "epochs 15 of the paper's 200" in claim.reason
    assert claim.setting == "epochs 15 (paper 200), dataset cora"


def test_below_scale_with_a_budget_value_compares_with_the_paper_at_that_budget():
    table = {40: 0.70, 80: 0.72}

    def at_budget(at):
        value = table.get(at["epochs"])
        return None if value is None else (AtLeast(value - 0.02), f"{value} at epoch {at['epochs']} (Table 5)")

    spec = declared(at_budget=at_budget)
    assert spec.judge(0.60, {"epochs": 40}).verdict == results.NOT_REPRODUCED
    assert spec.judge(0.69, {"epochs": 40}).verdict == results.REPRODUCED
    assert spec.judge(0.69, {"epochs": 40}).paper_value == "0.7 at epoch 40 (Table 5)"
    assert spec.judge(0.99, {"epochs": 30}).verdict == results.NOT_TESTABLE


def test_a_measurement_must_name_every_scale_entry():
    with pytest.raises(ValueError, match="epochs"):
        declared().judge(0.9, {})


def test_non_numeric_scale_entries_must_match():
    spec = declared(scale={"dataset": "mnist"})
    assert spec.judge(0.9, {"dataset": "mnist"}).verdict == results.REPRODUCED
    assert spec.judge(0.9, {"dataset": "fashion-mnist"}).verdict == results.NOT_TESTABLE


def test_every_declared_claim_is_well_formed_and_belongs_to_a_catalogued_notebook():
    from beyond_backprop.catalogue import CATALOGUE

    ids = {e.id for e in CATALOGUE}
    for spec in claims.DECLARATIONS.values():
        assert spec.notebook in ids, spec.id
        assert spec.statement and spec.paper_value, spec.id


def _ledger_with(monkeypatch, *specs):
    table = {s.id: s for s in specs}
    monkeypatch.setattr("beyond_backprop.claims.registry.DECLARATIONS", table)
    return ClaimLedger("C2", profile="smoke", device="cpu")


def test_ledger_measures_declared_claims_and_lists_the_unrecorded(monkeypatch, tmp_path, capsys):
    ledger = _ledger_with(monkeypatch, declared(), declared(id="C2.2", source=DERIVED),
                          declared(id="C2.3", source=CITED, citation="Bertoin et al. 2021"))
    ledger.measure("C2.1", 0.75, at={"epochs": 200})
    ledger.not_testable("C2.3", "PubMed is not available", at={"epochs": 200})
    with pytest.raises(KeyError, match="not declared"):
        ledger.measure("C2.9", 0.5, at={"epochs": 200})
    with pytest.raises(ValueError, match="belongs to"):
        ledger.add(results.Claim("A2.1", paper="A", statement="s", paper_value="p", measured=1.0,
                                 rule=NotTestable("x")))
    assert ledger.never_measured() == ["C2.2"]
    ledger.save(tmp_path)
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert saved["never_measured"] == ["C2.2"]
    assert [c["source"] for c in saved["claims"]] == ["paper", "cited"]
    assert "C2.2   never measured" in capsys.readouterr().out


def _write_run(output, notebook_id, status, claim_dicts=None):
    folder = output / notebook_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"status": status, "minutes": 0.1}))
    if claim_dicts is not None:
        (folder / "claims.json").write_text(json.dumps({"claims": claim_dicts}))


def test_report_lists_claims_of_a_failed_notebook_as_failed_and_calls_out_unmeasured(monkeypatch, tmp_path):
    specs = [declared(), declared(id="C2.2"), declared(id="C1.1")]
    monkeypatch.setattr(report, "declared_for", lambda nb: [s for s in specs if s.notebook == nb])
    measured = declared().judge(0.75, {"epochs": 200}).to_dict()
    _write_run(tmp_path, "C2", "complete", [measured])
    _write_run(tmp_path, "C1", "failed")
    rows = {c["id"]: c["verdict"] for nb in ("C1", "C2") for c in report.notebook_state(tmp_path, nb)["claims"]}
    assert rows == {"C1.1": results.FAILED, "C2.1": results.REPRODUCED, "C2.2": results.NEVER_MEASURED}
    text = report.render_report(tmp_path, "smoke")
    assert "INCOMPLETE" in text and "DEFECT" in text and "C2.2" in text
    assert "the paper's own claims: 1 reproduced" in text
    assert f"**PARTIAL: this report covers 2 of {len(report.CATALOGUE)} notebooks; not run in this profile: A1," in text


def test_a_report_of_every_notebook_is_not_partial(monkeypatch, tmp_path):
    monkeypatch.setattr(report, "declared_for", lambda nb: [])
    for entry in report.CATALOGUE:
        _write_run(tmp_path, entry.id, "complete", [])
    assert "PARTIAL" not in report.render_report(tmp_path, "quick")


def test_report_counts_sources_apart_and_demonstrations_apart_from_all_three(monkeypatch, tmp_path):
    specs = [declared(), declared(id="C2.2", source=DERIVED), declared(id="C2.3", source=DEMONSTRATION),
             declared(id="C2.4", source=DEMONSTRATION)]
    monkeypatch.setattr(report, "declared_for", lambda nb: [s for s in specs if s.notebook == nb])
    measured = [s.judge(0.75, {"epochs": 200}).to_dict() for s in specs]
    _write_run(tmp_path, "C2", "complete", measured)
    (tmp_path / "C2" / "C2.ipynb").write_text("{}")
    text = report.render_report(tmp_path, "quick")
    head = text.split("## Notebooks")[0]
    assert "- the paper's own claims (1): 1 reproduced, 0 partly, 0 not reproduced, 0 not testable here" in head
    assert "- the project's derived checks (1): 1 reproduced" in head
    assert "- demonstrations (hold by construction; not evidence about the paper) (2): 2 demonstrated" in head
    assert "cited" not in head.split("Verdicts")[1], "a source without claims is not listed (but the paper's is)"
    assert "| [C2.ipynb](C2/C2.ipynb) |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.README_START}\n{report.README_END}\n")
    report.update_readme(readme, tmp_path, "quick")
    assert "(2): 2 demonstrated" in readme.read_text() and "C2/C2.ipynb" not in readme.read_text()
