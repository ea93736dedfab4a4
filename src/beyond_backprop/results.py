"""Verdict rules, claims, tidy metric tables and their display (the ledger is :mod:`beyond_backprop.claims.ledger`).

A claim is data with a rule: the verdict is computed from the measurement by
the rule, never typed in.

>>> Claim("X1.1", paper="D", statement="accuracy about 0.9", paper_value="0.9 (Fig. 4)",
...       measured=0.91, rule=AtLeast(0.85, partly=0.8)).verdict
'reproduced'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

REPRODUCED = "reproduced"
PARTLY = "partly"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable here"
DEMONSTRATED = "demonstrated"  # a demonstration's check held: shown, never counted as a reproduction
FAILED = "failed"  # set by the report when a notebook did not finish
NEVER_MEASURED = "never measured"  # set by the report for a declared claim its notebook did not record
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTABLE)


def _fmt(value: float) -> str:
    return f"{value:.3g}"


@dataclass(frozen=True)
class Rule:
    """Base of the verdict rules: ``evaluate(measured) -> (verdict, reason)``."""

    def evaluate(self, measured: float | None) -> tuple[str, str]:
        if measured is None or (isinstance(measured, float) and math.isnan(measured)):
            return NOT_REPRODUCED, "no measurement was produced"
        return self._evaluate(float(measured))

    def _evaluate(self, measured: float) -> tuple[str, str]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class _Threshold(Rule):
    """Reproduced on the right side of ``threshold``; partly on the right side of ``partly``."""

    threshold: float
    partly: float | None = None
    symbol = ">="

    def _ok(self, measured: float, bound: float) -> bool:
        return measured >= bound if self.symbol == ">=" else measured <= bound

    def __post_init__(self) -> None:
        if self.partly is not None and self._ok(self.partly, self.threshold) and self.partly != self.threshold:
            raise ValueError(f"invalid partly {self.partly!r}; expected looser than threshold {self.threshold!r}")

    def _evaluate(self, measured: float) -> tuple[str, str]:
        other = "<" if self.symbol == ">=" else ">"
        if self._ok(measured, self.threshold):
            return REPRODUCED, f"{_fmt(measured)} {self.symbol} {_fmt(self.threshold)}"
        if self.partly is not None and self._ok(measured, self.partly):
            low, high = (self.partly, self.threshold) if self.symbol == ">=" else (self.threshold, self.partly)
            text = f"{_fmt(low)} <= {_fmt(measured)} < {_fmt(high)}" if self.symbol == ">=" \
                else f"{_fmt(low)} < {_fmt(measured)} <= {_fmt(high)}"
            return PARTLY, text
        bound = self.partly if self.partly is not None else self.threshold
        return NOT_REPRODUCED, f"{_fmt(measured)} {other} {_fmt(bound)}"

    def describe(self) -> str:
        extra = f" (partly {self.symbol} {_fmt(self.partly)})" if self.partly is not None else ""
        return f"{self.symbol} {_fmt(self.threshold)}{extra}"


@dataclass(frozen=True)
class AtLeast(_Threshold):
    """Reproduced when measured ≥ ``threshold``; partly when ≥ ``partly``."""

    symbol = ">="


@dataclass(frozen=True)
class AtMost(_Threshold):
    """Reproduced when measured ≤ ``threshold``; partly when ≤ ``partly``."""

    symbol = "<="


@dataclass(frozen=True)
class Between(Rule):
    """Reproduced when ``lo ≤ measured ≤ hi``; partly inside the looser ``partly=(lo, hi)``."""

    lo: float
    hi: float
    partly: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"invalid interval [{self.lo!r}, {self.hi!r}]; expected lo <= hi")
        if self.partly is not None and not (self.partly[0] <= self.lo and self.hi <= self.partly[1]):
            raise ValueError(f"invalid partly {self.partly!r}; expected an interval containing [{self.lo}, {self.hi}]")

    def _evaluate(self, measured: float) -> tuple[str, str]:
        if self.lo <= measured <= self.hi:
            return REPRODUCED, f"{_fmt(measured)} in [{_fmt(self.lo)}, {_fmt(self.hi)}]"
        if self.partly is not None and self.partly[0] <= measured <= self.partly[1]:
            return PARTLY, f"{_fmt(measured)} in [{_fmt(self.partly[0])}, {_fmt(self.partly[1])}] only"
        return NOT_REPRODUCED, f"{_fmt(measured)} outside [{_fmt(self.lo)}, {_fmt(self.hi)}]"

    def describe(self) -> str:
        extra = f" (partly in [{_fmt(self.partly[0])}, {_fmt(self.partly[1])}])" if self.partly else ""
        return f"in [{_fmt(self.lo)}, {_fmt(self.hi)}]{extra}"


@dataclass(frozen=True)
class Near(Rule):
    """Reproduced when |measured − target| ≤ rel·|target|; partly within ``partly``·|target|."""

    target: float
    rel: float
    partly: float | None = None

    def __post_init__(self) -> None:
        if self.rel < 0 or (self.partly is not None and self.partly < self.rel):
            raise ValueError(f"invalid tolerances rel={self.rel!r}, partly={self.partly!r}; "
                             "expected 0 <= rel <= partly")

    def _evaluate(self, measured: float) -> tuple[str, str]:
        gap = abs(measured - self.target) / abs(self.target) if self.target else abs(measured)
        text = f"{_fmt(measured)} vs {_fmt(self.target)} ({gap:.1%} off)"
        if gap <= self.rel:
            return REPRODUCED, f"{text} <= {self.rel:.0%}"
        if self.partly is not None and gap <= self.partly:
            return PARTLY, f"{text} <= {self.partly:.0%}"
        return NOT_REPRODUCED, f"{text} > {(self.partly or self.rel):.0%}"

    def describe(self) -> str:
        extra = f" (partly {self.partly:.0%})" if self.partly is not None else ""
        return f"within {self.rel:.0%} of {_fmt(self.target)}{extra}"


@dataclass(frozen=True)
class NotTestable(Rule):
    """The claim cannot be tested here; ``reason`` says why (missing data, no GPU, ...)."""

    reason: str

    def evaluate(self, measured: float | None) -> tuple[str, str]:
        return NOT_TESTABLE, self.reason

    def describe(self) -> str:
        return "not testable here"


@dataclass
class Claim:
    """One paper claim, its measurement, and the rule that gives the verdict.

    Notebooks do not build these by hand: :meth:`claims.ClaimLedger.measure` builds them from the claim's
    declaration in :mod:`beyond_backprop.claims`, with the ``setting`` actually run.
    """

    id: str
    paper: str
    statement: str
    paper_value: str
    measured: float | None
    rule: Rule
    unit: str = ""
    source: str = "paper"
    citation: str = ""
    setting: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.rule, Rule):
            raise TypeError(f"invalid rule {self.rule!r}; expected a results.Rule such as AtLeast(0.9)")
        if isinstance(self.measured, torch.Tensor):
            self.measured = float(self.measured)

    @property
    def verdict(self) -> str:
        """The rule's verdict; a demonstration that holds is ``demonstrated``, not ``reproduced``."""
        verdict = self.rule.evaluate(self.measured)[0]
        return DEMONSTRATED if verdict == REPRODUCED and self.source == "demonstration" else verdict

    @property
    def reason(self) -> str:
        return self.rule.evaluate(self.measured)[1]

    def line(self) -> str:
        """One stable line: id, verdict, measured (3 significant digits), reason."""
        measured = "-" if self.measured is None else _fmt(float(self.measured))
        unit = f" {self.unit}" if self.unit else ""
        setting = f" [{self.setting}]" if self.setting else ""
        return f"{self.id:<6} {self.verdict:<17} measured {measured}{unit}{setting}; {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "paper": self.paper,
            "statement": self.statement,
            "paper_value": self.paper_value,
            "measured": None if self.measured is None else float(self.measured),
            "unit": self.unit,
            "rule": self.rule.describe(),
            "verdict": self.verdict,
            "reason": self.reason,
            "source": self.source,
            "citation": self.citation,
            "setting": self.setting,
        }


@dataclass(frozen=True)
class Measurement:
    """A claim's measured value and the setting it was measured at (``at``), or why it could not be measured."""

    value: float | None
    at: dict[str, Any] = field(default_factory=dict)
    not_testable: str = ""


def significant(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``table`` for display: every float column as text with ``digits`` significant digits.

    Float32 results differ in their last digits between machines and thread counts (kernel choice,
    summation order), so notebooks print only the digits that are stable and nbval compares what a
    number means. The magnitude is always kept (24190.27 shows as ``2.419e+04``), so a diverging
    value stays visible.
    """
    return table.apply(lambda column: column.map(lambda v: f"{v:.{digits}g}")
                       if pd.api.types.is_float_dtype(column) else column)


def below(value: float, floor: float) -> str:
    """``value`` for display, or ``below <floor>`` when it is at round-off level (its digits are noise)."""
    return f"below {floor:g}" if abs(value) < floor else f"{value:.1e}"


class MetricTable:
    """Tidy rows (one measurement per row) saved as CSV."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        self._rows.append({k: float(v) if isinstance(v, torch.Tensor) else v for k, v in row.items()})

    def extend(self, frame: pd.DataFrame, **constant: Any) -> None:
        """Add every row of ``frame`` with the ``constant`` columns set."""
        for row in frame.to_dict("records"):
            self.add(**constant, **row)

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self._rows)

    def save(self, output_dir: Path, name: str = "metrics") -> None:
        """Write ``output_dir/<name>.csv`` (returns nothing, so a notebook cell shows no path)."""
        self.frame.to_csv(Path(output_dir) / f"{name}.csv", index=False)
