"""Claims of paper C, declared as data (see ``claims.declaration``)."""

from __future__ import annotations

from ..results import AtLeast, AtMost, Between, Near  # noqa: F401
from .declaration import CITED, DERIVED, PAPER, Declaration  # noqa: F401

CLAIMS: tuple[Declaration, ...] = ()
