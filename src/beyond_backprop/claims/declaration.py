"""Claims declared as data: what a paper says, at what scale, and the rule that judges a measurement.

A notebook never builds a claim by hand. It measures, and says at which setting:

>>> ledger.measure("C2.1", accuracy, at={"epochs": 200, "dataset": "cora"})   # doctest: +SKIP

The declaration decides the verdict. ``scale`` lists the settings the paper's value depends on
(epochs or iterations, training size, width); a measurement below that scale is compared with the
paper's value *at the budget run* when the declaration knows one (``at_budget``), and is otherwise
``not testable here``, never ``not reproduced`` for lack of budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..results import Claim, NotTestable, Rule

PAPER = "paper"
CITED = "cited"
DERIVED = "derived"
DEMONSTRATION = "demonstration"  # holds by construction (an identity, a convention, a safeguard): counted apart
SOURCES = (PAPER, CITED, DERIVED, DEMONSTRATION)
CLAIM_ID = re.compile(r"^[A-Z]\d+\.\d+$")

BudgetRule = Callable[[Mapping[str, Any]], "tuple[Rule, str] | None"]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    return f"{value:,}" if _number(value) and float(value).is_integer() else f"{value}"


def describe_setting(at: Mapping[str, Any], scale: Mapping[str, Any],
                     scale_origin: Mapping[str, str] | None = None) -> str:
    """``epochs 15 (paper 200), dataset cora``: the setting run, beside the scale of the claim's value.

    A scale entry is labelled ``paper`` only when the number is in the paper; ``scale_origin`` names
    the others (``{"epochs": "spec E3 [R]"}`` prints ``epochs 8 (spec E3 [R]: 10)``).
    """
    origin = scale_origin or {}
    parts = []
    for key, value in at.items():
        name = key.replace("_", " ")
        if key in scale and scale[key] != value:
            label = f"{origin[key]}: " if key in origin else "paper "
            parts.append(f"{name} {_shown(value)} ({label}{_shown(scale[key])})")
        else:
            parts.append(f"{name} {_shown(value)}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Declaration:
    """One claim: id ``<result>.<n>``, statement, the paper's value and where it comes from, the rule.

    Args:
        source: ``paper`` (the paper's own claim), ``cited`` (another paper's, named in ``citation``),
            ``derived`` (the project's own check of a consequence of the paper, e.g. a closed form) or
            ``demonstration`` (holds by construction: a moment identity, a PyTorch convention, a safeguard
            that enforces descent; shown, and counted apart from the verdicts about the paper, which
            then reads ``demonstrated`` instead of ``reproduced``).
        scale: the setting at which ``paper_value`` holds, e.g. ``{"epochs": 200}``. Numeric entries
            gate the verdict (a smaller measured setting is below scale); others must match exactly.
        scale_origin: for each scale entry that is not a number from the paper, where it comes from
            (``{"epochs": "spec E3 [R]"}``); the setting column then never calls it the paper's.
        at_budget: for a run below scale, the paper's value at that budget when the paper gives one
            (a table row, a curve read at that iteration): ``at -> (rule, paper value text)`` or None.
    """

    id: str
    statement: str
    paper_value: str
    rule: Rule
    unit: str = ""
    source: str = PAPER
    citation: str = ""
    scale: Mapping[str, Any] = field(default_factory=dict)
    at_budget: BudgetRule | None = None
    scale_origin: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not CLAIM_ID.match(self.id):
            raise ValueError(f"invalid claim id {self.id!r}; expected <result>.<n> such as 'C2.1'")
        if self.source not in SOURCES:
            raise ValueError(f"invalid source {self.source!r} for {self.id}; expected one of {', '.join(SOURCES)}")
        if (self.source == CITED) != bool(self.citation):
            raise ValueError(f"{self.id}: a citation goes with source 'cited', and only with it")
        if not isinstance(self.rule, Rule):
            raise TypeError(f"{self.id}: invalid rule {self.rule!r}; expected a results.Rule")
        if set(self.scale_origin) - set(self.scale):
            raise ValueError(f"{self.id}: scale_origin names {sorted(set(self.scale_origin) - set(self.scale))}, "
                             "which are not scale entries")

    @property
    def notebook(self) -> str:
        """The result this claim belongs to: ``C2`` for ``C2.1``."""
        return self.id.split(".")[0]

    @property
    def paper(self) -> str:
        return self.id[0]

    def below_scale(self, at: Mapping[str, Any]) -> list[str]:
        """The scale entries that ``at`` does not reach (raises when ``at`` omits one)."""
        missing = [key for key in self.scale if key not in at]
        if missing:
            raise ValueError(f"{self.id} holds at {dict(self.scale)}; measure it with at= naming "
                             f"{', '.join(missing)}")
        short = []
        for key, paper in self.scale.items():
            value = at[key]
            if (value < paper) if _number(paper) and _number(value) else (value != paper):
                short.append(key)
        return short

    def judge(self, measured: float | None, at: Mapping[str, Any]) -> Claim:
        """The claim with the rule that applies at setting ``at``."""
        rule, paper_value = self.rule, self.paper_value
        short = self.below_scale(at)
        if short:
            budget = self.at_budget(at) if self.at_budget is not None else None
            if budget is not None:
                rule, paper_value = budget
            else:
                gaps = "; ".join(f"runs {k.replace('_', ' ')} {at[k]} of " + (
                    f"{self.scale[k]} ({self.scale_origin[k]})" if k in self.scale_origin
                    else f"the paper's {self.scale[k]}") for k in short)
                rule = NotTestable(f"{gaps}; the paper gives no value at this budget "
                                   "(`--profile full` runs the paper's setting)")
        return Claim(self.id, paper=self.paper, statement=self.statement, paper_value=paper_value,
                     measured=measured, rule=rule, unit=self.unit, source=self.source, citation=self.citation,
                     setting=self.setting(at))

    def setting(self, at: Mapping[str, Any]) -> str:
        """The setting run, beside the claim's scale (see :func:`describe_setting`)."""
        return describe_setting(at, self.scale, self.scale_origin)
