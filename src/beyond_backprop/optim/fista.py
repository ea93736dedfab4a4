"""The FISTA momentum sequence, shared by every accelerated loop of the package."""

from __future__ import annotations

import math


def fista_momentum(lam: float) -> float:
    """The next term ``(1 + sqrt(1 + 4 lam^2)) / 2`` of the FISTA sequence (Beck and Teboulle 2009) after ``lam``."""
    return (1.0 + math.sqrt(1.0 + 4.0 * lam * lam)) / 2.0
