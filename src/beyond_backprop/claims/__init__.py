"""Every claim the package tests, declared once, by paper; notebooks only measure.

``DECLARATIONS`` maps claim id to :class:`Declaration`; :func:`declared_for` lists one
notebook's claims, which the report uses to show claims that failed or were never measured;
:class:`ClaimLedger` records a notebook's measurements.
"""

from __future__ import annotations

from .declaration import CITED, DEMONSTRATION, DERIVED, PAPER, SOURCES, Declaration, describe_setting
from .ledger import ClaimLedger
from .registry import DECLARATIONS, declaration, declared_for

__all__ = ["CITED", "ClaimLedger", "DEMONSTRATION", "DERIVED", "PAPER", "SOURCES", "Declaration", "DECLARATIONS",
           "declaration", "declared_for", "describe_setting"]
