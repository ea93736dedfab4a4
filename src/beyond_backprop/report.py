"""REPORT.md for one profile, gathered from every notebook's ``claims.json`` and ``manifest.json``."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from .catalogue import CATALOGUE, PAPERS
from .claims import DEMONSTRATION, PAPER, SOURCES, declared_for
from .results import DEMONSTRATED, FAILED, NEVER_MEASURED, VERDICTS

UNFINISHED = "did not finish"
ALL_VERDICTS = (DEMONSTRATED,) + VERDICTS + (FAILED, UNFINISHED, NEVER_MEASURED)
SOURCE_NAMES = {"paper": "the paper's own claims", "cited": "claims of other papers it cites",
                "derived": "the project's derived checks",
                "demonstration": "demonstrations (hold by construction; not evidence about the paper)"}

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _unrecorded(declared: Any, verdict: str) -> dict[str, Any]:
    reason = {FAILED: "its notebook failed (see logs/)",
              UNFINISHED: "its notebook was interrupted before it finished; rerun to measure it"}.get(
        verdict, "declared, but the notebook did not record it: a defect of the notebook")
    return {"id": declared.id, "paper": declared.paper, "statement": declared.statement,
            "paper_value": declared.paper_value, "measured": None, "unit": declared.unit,
            "rule": declared.rule.describe(), "verdict": verdict, "reason": reason, "source": declared.source,
            "citation": declared.citation, "setting": ""}


def notebook_state(output: Path, notebook_id: str) -> dict[str, Any]:
    """What the output folder says about one notebook: status, manifest, and every declared claim.

    A claim of a notebook that failed has the verdict ``failed``; a declared claim that a complete
    notebook did not record has ``never measured``.
    """
    folder = output / notebook_id
    manifest = _read_json(folder / "manifest.json")
    claims = _read_json(folder / "claims.json")
    if manifest is None:
        return {"status": "not run", "claims": [], "manifest": None}
    status = manifest.get("status", "unknown")
    if status == "complete" and claims is None:
        status = FAILED
    recorded = (claims or {}).get("claims", []) if status == "complete" else []
    seen = {c["id"] for c in recorded}
    missing = FAILED if status != "complete" else NEVER_MEASURED
    rows = recorded + [_unrecorded(d, missing) for d in declared_for(notebook_id) if d.id not in seen]
    rows.sort(key=lambda c: int(c["id"].split(".")[1]) if c["id"].split(".")[1].isdigit() else 0)
    return {"status": status, "claims": rows, "manifest": manifest}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _measured(claim: dict[str, Any]) -> str:
    if claim["measured"] is None:
        return "-"
    unit = f" {claim['unit']}" if claim.get("unit") else ""
    return f"{claim['measured']:.3g}{unit}"


def _source(claim: dict[str, Any]) -> str:
    source = claim.get("source", PAPER)
    return _cell(f"cited: {claim['citation']}") if source == "cited" else source


def _count_text(counts: Counter) -> str:
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in ALL_VERDICTS
                     if counts.get(v, 0) or (v in VERDICTS and v != DEMONSTRATED))


def _source_count_text(source: str, counts: Counter) -> str:
    """A demonstration is never reproduced: its line shows only the verdicts it got."""
    if source == DEMONSTRATION:
        return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none"
    return _count_text(counts)


def summary_by_source(states: dict[str, dict[str, Any]]) -> list[str]:
    """One line per claim source (paper, cited, derived) and demonstrations apart, each with its verdicts."""
    claims = [c for state in states.values() for c in state["claims"]]
    lines = []
    for source in SOURCES:
        counts = Counter(c["verdict"] for c in claims if c.get("source", PAPER) == source)
        if counts or source == PAPER:
            lines.append(f"- {SOURCE_NAMES[source]} ({sum(counts.values())}): {_source_count_text(source, counts)}")
    return lines


def verdict_counts(states: dict[str, dict[str, Any]]) -> Counter:
    counts: Counter = Counter()
    for state in states.values():
        for claim in state["claims"]:
            counts[claim["verdict"]] += 1
    return counts


def revisions_of(states: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The git revisions that produced the notebooks' outputs, each with the notebook ids it produced."""
    found: dict[str, list[str]] = {}
    for notebook_id, state in states.items():
        if state["manifest"]:
            found.setdefault(state["manifest"].get("git_revision", "unknown"), []).append(notebook_id)
    return found


def render_report(output: Path, profile: str, unfinished: Sequence[str] = ()) -> str:
    """The Markdown of ``REPORT.md`` for the notebooks found under ``output``.

    ``unfinished``: notebooks of this run stopped by Ctrl-C; whatever an earlier run left for them is not reported.
    """
    states = {e.id: notebook_state(output, e.id) for e in CATALOGUE}
    for notebook_id in unfinished:
        states[notebook_id] = {"status": UNFINISHED, "manifest": None,
                               "claims": [_unrecorded(d, UNFINISHED) for d in declared_for(notebook_id)]}
    failed = [i for i, s in states.items() if s["status"] == FAILED]
    lines = [f"# Claims report: profile `{profile}`", ""]
    if unfinished:
        lines += [f"**INCOMPLETE: interrupted; {len(unfinished)} notebook(s) did not finish "
                  f"({', '.join(unfinished)}); their claims are listed as not finished. Rerun to complete.**", ""]
    if failed:
        lines += [f"**INCOMPLETE: {len(failed)} notebook(s) failed ({', '.join(failed)}); "
                  "their claims are listed as failed. See `logs/`.**", ""]
    not_run = [i for i, s in states.items() if s["status"] == "not run"]
    if not_run:
        lines += [f"**PARTIAL: this report covers {len(states) - len(not_run)} of {len(states)} notebooks; "
                  f"not run in this profile: {', '.join(not_run)}.**", ""]
    revisions = revisions_of(states)
    if len(revisions) > 1:
        lines += ["**Revisions: these outputs come from " + str(len(revisions)) + " git revisions: " +
                  "; ".join(f"`{rev}` ({', '.join(ids)})" for rev, ids in revisions.items()) + ".**", ""]
    unmeasured = [c["id"] for s in states.values() for c in s["claims"] if c["verdict"] == NEVER_MEASURED]
    if unmeasured:
        lines += [f"**DEFECT: {len(unmeasured)} declared claim(s) were never measured ({', '.join(unmeasured)}).**",
                  ""]
    lines += ["Generated by `python reproduce.py` from each notebook's `claims.json` and the claims declared in "
              "`beyond_backprop.claims`; verdicts are computed from measurements by the stated rule, never typed. "
              "A claim run below the scale at which the paper states it is compared with the paper's value at "
              "that budget where the paper gives one, and is otherwise not testable here.", ""]
    lines += ["Verdicts, by whose claim it is (demonstrations counted apart from all three):", "",
              *summary_by_source(states)]
    lines += ["", "## Notebooks", "",
              "| id | title | status | minutes | device | git | notebook | figures |",
              "|---|---|---|---|---|---|---|---|"]
    for entry in CATALOGUE:
        state = states[entry.id]
        manifest = state["manifest"] or {}
        figures = sorted((output / entry.id).glob("*.png")) if state["status"] == "complete" else []
        links = " ".join(f"[{p.stem}]({entry.id}/{p.name})" for p in figures) or "-"
        minutes = f"{manifest['minutes']:.1f}" if "minutes" in manifest else "-"
        executed = output / entry.id / f"{entry.id}.ipynb"
        notebook = f"[{executed.name}]({entry.id}/{executed.name})" if executed.is_file() else "-"
        lines.append(f"| {entry.id} | {_cell(entry.title)} | {state['status']} | {minutes} | "
                     f"{_cell(manifest.get('device_name', '-'))} | {manifest.get('git_revision', '-')} | "
                     f"{notebook} | {links} |")
    for paper in dict.fromkeys(e.paper for e in CATALOGUE):
        title = PAPERS.get(paper, paper)
        rows = [(e, c) for e in CATALOGUE if e.paper == paper for c in states[e.id]["claims"]]
        lines += ["", f"## Paper {paper}: {title}", ""]
        if not rows:
            lines.append("No claims recorded in this profile yet.")
            continue
        for source in SOURCES:
            mine = Counter(c["verdict"] for _, c in rows if c.get("source", PAPER) == source)
            if mine:
                lines.append(f"- {SOURCE_NAMES[source]}: {_source_count_text(source, mine)}")
        lines += ["", "| claim | source | statement | setting run | paper | measured | rule | verdict | reason |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for entry, claim in rows:
            lines.append(f"| [{claim['id']}]({entry.id}/claims.json) | {_source(claim)} | "
                         f"{_cell(claim['statement'])} | {_cell(claim.get('setting') or '-')} | "
                         f"{_cell(claim['paper_value'])} | {_measured(claim)} | {_cell(claim['rule'])} | "
                         f"**{claim['verdict']}** | {_cell(claim['reason'])} |")
    for entry in CATALOGUE:  # a generated leaderboard (X1) is shown as its notebook wrote it
        board = output / entry.id / "leaderboard.md"
        if states[entry.id]["status"] == "complete" and board.is_file():
            lines += ["", f"## {entry.id} leaderboard: {entry.title}", "", board.read_text().strip()]
    lines += ["", "Environment of each run: `<id>/manifest.json` (versions, device, seed, git revision, "
              "wall time, parameters)."]
    return "\n".join(lines) + "\n"


def write_report(output: Path, profile: str, unfinished: Sequence[str] = ()) -> Path:
    """Write ``output/REPORT.md`` (see :func:`render_report`)."""
    path = output / "REPORT.md"
    path.write_text(render_report(output, profile, unfinished))
    return path


def results_table(output: Path) -> str:
    """A compact table for the README: claim, verdict, measured, paper value."""
    rows = ["| claim | source | statement | setting run | paper | measured | verdict |",
            "|---|---|---|---|---|---|---|"]
    for entry in CATALOGUE:
        for claim in notebook_state(output, entry.id)["claims"]:
            rows.append(f"| {claim['id']} | {_source(claim)} | {_cell(claim['statement'])} | "
                        f"{_cell(claim.get('setting') or '-')} | {_cell(claim['paper_value'])} | "
                        f"{_measured(claim)} | {claim['verdict']} |")
    return "\n".join(rows)


def replace_readme_block(readme: Path, start: str, end: str, body: str) -> bool:
    """Replace what lies between the markers ``start`` and ``end`` in ``readme`` with ``body``;
    False if the file or the markers are absent."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        return False
    readme.write_text(pattern.sub(lambda _: f"{start}\n{body}\n{end}", text))
    return True


def update_readme(readme: Path, output: Path, profile: str) -> bool:
    """Replace the README's block between the results markers; False if the markers are absent."""
    states = {e.id: notebook_state(output, e.id) for e in CATALOGUE}
    summary = "\n".join(summary_by_source(states))
    body = (f"Generated from `outputs/{output.name}/REPORT.md` (profile `{profile}`) by "
            f"`python reproduce.py`; do not edit by hand. Each notebook's executed copy is "
            f"`outputs/{output.name}/<id>/<id>.ipynb`.\n\n{summary}\n\n{results_table(output)}")
    return replace_readme_block(readme, README_START, README_END, body)
