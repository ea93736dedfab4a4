"""The claims of one notebook: measurements judged by their declarations, saved as ``claims.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..results import NEVER_MEASURED, Claim, Measurement, NotTestable
from .registry import declaration, declared_for


@dataclass
class ClaimLedger:
    """The claims of one notebook, saved as ``claims.json``."""

    notebook: str
    profile: str
    device: str | torch.device
    claims: list[Claim] = field(default_factory=list)

    def add(self, claim: Claim) -> Claim:
        if any(existing.id == claim.id for existing in self.claims):
            raise ValueError(f"duplicate claim id {claim.id!r} in notebook {self.notebook}")
        if claim.id.split(".")[0] != self.notebook:
            raise ValueError(f"claim {claim.id!r} belongs to {claim.id.split('.')[0]}, not to {self.notebook}")
        self.claims.append(claim)
        return claim

    def measure(self, claim_id: str, measured: float | torch.Tensor | None, *,
                at: dict[str, Any] | None = None) -> Claim:
        """Record a measurement of a declared claim, made at setting ``at`` (e.g. ``{"epochs": 200}``)."""
        return self.add(declaration(claim_id).judge(measured, at or {}))

    def not_testable(self, claim_id: str, reason: str, *, at: dict[str, Any] | None = None) -> Claim:
        """Record that a declared claim cannot be tested here (missing data, no GPU), and why."""
        spec = declaration(claim_id)
        return self.add(Claim(spec.id, paper=spec.paper, statement=spec.statement, paper_value=spec.paper_value,
                              measured=None, rule=NotTestable(reason), unit=spec.unit, source=spec.source,
                              citation=spec.citation, setting=spec.setting(at or {})))

    def record(self, measurements: dict[str, Measurement]) -> None:
        """Record each measurement by claim id: :meth:`measure`, or :meth:`not_testable` with its reason."""
        for claim_id, item in measurements.items():
            if item.not_testable:
                self.not_testable(claim_id, item.not_testable, at=dict(item.at))
            else:
                self.measure(claim_id, item.value, at=dict(item.at))

    def never_measured(self) -> list[str]:
        """Declared claims of this notebook that were not recorded (a defect the report calls out)."""
        recorded = {c.id for c in self.claims}
        return [d.id for d in declared_for(self.notebook) if d.id not in recorded]

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "profile": self.profile,
            "device": str(self.device),
            "status": "complete",
            "claims": [c.to_dict() for c in self.claims],
            "never_measured": self.never_measured(),
        }

    def save(self, output_dir: Path, show: bool = True) -> None:
        """Write ``output_dir/claims.json`` and print one line per claim (returns nothing, for notebooks)."""
        (Path(output_dir) / "claims.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        if show:
            for claim in self.claims:
                print(claim.line())
            for claim_id in self.never_measured():
                print(f"{claim_id:<6} {NEVER_MEASURED}: declared but not recorded by this notebook")
