"""One seaborn style for every figure; figures saved as PNG and PDF and shown inline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from . import method_names as names

PANEL_SIZE = (4.2, 3.2)
_PALETTE = sns.color_palette("colorblind")
# one colour per method in every figure; of the palette's orange, vermillion and brown only vermillion is used
METHOD_COLOURS = {names.ADAM: _PALETTE[0], names.ADAGRAD: _PALETTE[2], names.DLADMM: _PALETTE[3],
                  names.DLADMM_GCN: _PALETTE[3], names.MDLAM: _PALETTE[4], names.ADADELTA: _PALETTE[9],
                  names.GD: _PALETTE[7], names.TAYLOR_ADMM: "black"}


def set_style() -> None:
    """The project's one style: seaborn ``whitegrid``, colour-blind palette, fixed sizes."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                         "pdf.fonttype": 42, "axes.titlesize": "medium"})


def sequential_colours(count: int) -> list[tuple[float, float, float]]:
    """``count`` colours of one hue from light to dark, for an ordered parameter such as rho."""
    return sns.cubehelix_palette(count, start=2.0, rot=0.0, light=0.8, dark=0.15)


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


def curves(runs: pd.DataFrame, by: str, columns: str | list[str], *, dashed: str | None = None,
           bold: str | None = None, xlabel: str = "epoch", **axes_options: Any) -> tuple[plt.Figure, list[plt.Axes]]:
    """One panel per dataset of ``runs`` (a row of panels per entry of ``columns``): the column against the
    iteration, one line per value of ``by`` (a method in its :data:`METHOD_COLOURS` colour; ``dashed``'s
    dashed and drawn on top, ``bold``'s thicker); ``axes_options`` go to every panel's ``set``."""
    columns = [columns] if isinstance(columns, str) else list(columns)
    datasets = list(dict.fromkeys(runs["dataset"]))
    fig, axes = figure(nrows=len(columns), ncols=len(datasets), squeeze=False)
    for row, column in zip(axes, columns):
        evaluated = runs.dropna(subset=[column])
        for ax, name in zip(row, datasets):
            for label, run in evaluated[evaluated["dataset"] == name].groupby(by, sort=False):
                ax.plot(run["iteration"], run[column], label=label, color=METHOD_COLOURS.get(label),
                        linestyle="--" if label == dashed else "-", zorder=3 if label == dashed else 2,
                        linewidth=2.5 if label == bold else None)
            ax.set(xlabel=xlabel, title=name, **({"ylabel": column.replace("_", " ")} | axes_options))
    return fig, list(axes.flat)
