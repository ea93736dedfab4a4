"""One seaborn style for every figure; figures saved as PNG and PDF and shown inline."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

PANEL_SIZE = (4.2, 3.2)


def set_style() -> None:
    """The project's one style: seaborn ``whitegrid``, colour-blind palette, fixed sizes."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                         "pdf.fonttype": 42, "axes.titlesize": "medium"})


def figure(nrows: int = 1, ncols: int = 1, **kwargs) -> tuple[plt.Figure, object]:
    """A figure of fixed size per panel (stable ``text/plain`` output for nbval)."""
    set_style()
    size = (PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows)
    return plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kwargs)


def save_figure(fig: plt.Figure, output_dir: Path, name: str, show: bool = True) -> None:
    """Save ``fig`` as ``<name>.png`` and ``<name>.pdf`` in ``output_dir``; show it inline once.

    Returns nothing, so that a notebook cell ending with it displays no path.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(output_dir / f"{name}.png")
    fig.savefig(output_dir / f"{name}.pdf")
    if show:
        plt.show()
    plt.close(fig)
