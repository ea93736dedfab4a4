"""Reading histories: what a claim takes from the rows that :func:`~beyond_backprop.optim.solver.run_history` wrote."""

from __future__ import annotations

import pandas as pd


def final_accuracy(frame: pd.DataFrame, by: str, column: str = "test_accuracy") -> pd.Series:
    """``column`` in the row of the largest iteration of each group of ``by`` (each run's last row)."""
    last = frame.loc[frame.groupby(by, sort=False)["iteration"].idxmax()]
    return last.set_index(by)[column].astype(float)
