"""The registry of declared claims, gathered from one module per paper."""

from __future__ import annotations

from .declaration import Declaration


def _gather() -> dict[str, Declaration]:
    from . import equal_budget, paper_a, paper_b, paper_c, paper_d

    table: dict[str, Declaration] = {}
    for module in (paper_a, paper_b, paper_c, paper_d, equal_budget):
        for item in module.CLAIMS:
            if item.id in table:
                raise ValueError(f"claim {item.id!r} is declared twice")
            table[item.id] = item
    return table


DECLARATIONS: dict[str, Declaration] = _gather()


def declaration(claim_id: str) -> Declaration:
    """The declaration of ``claim_id``; a KeyError that says where claims are declared."""
    try:
        return DECLARATIONS[claim_id]
    except KeyError:
        module = "equal_budget" if claim_id.startswith("X") else f"paper_{claim_id[0].lower()}"
        raise KeyError(f"claim {claim_id!r} is not declared; declare it in beyond_backprop/claims/"
                       f"{module}.py") from None


def declared_for(notebook_id: str) -> list[Declaration]:
    """The declared claims of one notebook, in id order."""
    found = [d for d in DECLARATIONS.values() if d.notebook == notebook_id]
    return sorted(found, key=lambda d: int(d.id.split(".")[1]))
