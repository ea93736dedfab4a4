"""Fits that turn a sweep into one number for a claim."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (1 = linear growth, 0 = flat)."""
    if len(x) < 2:
        raise ValueError(f"invalid sweep of {len(x)} point(s); a slope needs at least 2")
    return float(np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)[0])
