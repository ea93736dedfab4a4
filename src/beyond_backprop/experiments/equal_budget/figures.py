"""X1's figures: one hue per method family, one shared legend outside the panels, the budget marked, and
flagged runs (diverged, too few steps, over budget) drawn hollow."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from ... import plotting
from .methods import FAMILIES, Method
from .tasks import TARGETS

FAMILY_COLOURS = dict(zip(FAMILIES, ("tab:blue", "tab:green", "tab:orange", "tab:purple")))
LINESTYLES, MARKERS = ("-", "--", ":", "-."), ("o", "s", "^", "D")
FLAGGED_NOTE = "flagged, not ranked (diverged, too few steps, over budget)"


def styles(methods: Sequence[Method]) -> dict[str, dict[str, str]]:
    """Per method: its family's colour, and a line style and marker of its own within the family."""
    out, within = {}, {family: 0 for family in FAMILIES}
    for method in methods:
        n = within[method.family]
        within[method.family] += 1
        out[method.name] = {"color": FAMILY_COLOURS[method.family], "linestyle": LINESTYLES[n % len(LINESTYLES)],
                            "marker": MARKERS[n % len(MARKERS)]}
    return out


def _legend(fig: plt.Figure, methods: Sequence[Method], shown: set[str], target: bool) -> None:
    style = styles(methods)
    handles = [Line2D([], [], label=m.name, **style[m.name]) for m in methods if m.name in shown]
    handles += [Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="none",
                       label=FLAGGED_NOTE.replace(" (", "\n(")),
                Line2D([], [], color="black", linestyle="--", linewidth=0.8, label="budget")]
    if target:
        handles.append(Line2D([], [], color="grey", linestyle=":", linewidth=1, label="target"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)


def accuracy_vs_seconds(histories: pd.DataFrame, final: pd.DataFrame, methods: Sequence[Method],
                        budgets: Mapping[str, float]) -> plt.Figure:
    """Test accuracy against training seconds, one panel per dataset: every run, the target dotted, the
    budget dashed; a flagged run hollow and faint."""
    datasets = list(dict.fromkeys(histories["dataset"]))
    fig, axes = plotting.figure(ncols=max(1, len(datasets)), squeeze=False)
    style, flags = styles(methods), final.set_index(["dataset", "method", "seed"])["flag"]
    for ax, dataset in zip(axes[0], datasets):
        runs = histories[histories["dataset"] == dataset]
        for (method, seed), run in runs.groupby(["method", "seed"], sort=False):
            flagged = flags.get((dataset, method, seed), "") != ""
            ax.plot(run["seconds"], run["test_accuracy"], markersize=2, linewidth=0.8 if flagged else 1.2,
                    alpha=0.35 if flagged else 0.8, markerfacecolor="none" if flagged else None,
                    **style[method])
        ax.axhline(TARGETS[dataset], color="grey", linestyle=":", linewidth=1)
        ax.axvline(budgets[runs["task"].iloc[0]], color="black", linestyle="--", linewidth=0.8)
        ax.set(xscale="log", title=f"{dataset} (task {runs['task'].iloc[0]})",
               xlabel="training seconds", ylabel="test accuracy")
        ax.minorticks_off()
    _legend(fig, methods, set(histories["method"]), target=True)
    return fig


def memory_vs_seconds_to_target(board: pd.DataFrame, methods: Sequence[Method], kinds: Mapping[str, str],
                                budgets: Mapping[str, float]) -> plt.Figure:
    """Per dataset, each method's step peak plus kept state against its median seconds to the target
    (right of the budget line: not reached); a peak the profiler did not see is left out (noted)."""
    datasets = list(dict.fromkeys(board["dataset"]))
    fig, axes = plotting.figure(ncols=max(1, len(datasets)), squeeze=False)
    style = styles(methods)
    for ax, dataset in zip(axes[0], datasets):
        budget = budgets[kinds[dataset]]
        part = board[board["dataset"] == dataset]
        unmeasured = [row.method for row in part.itertuples() if not math.isfinite(row.peak_mib)]
        for n, row in enumerate(part.itertuples()):
            if row.method in unmeasured:
                continue
            hit = math.isfinite(row.seconds_to_target)
            colour = style[row.method]["color"]
            missed = budget * (1.15 + 0.6 * n / len(part))  # spread right of the budget line, one x per method
            ax.scatter(row.seconds_to_target if hit else missed, row.peak_mib + row.state_mib,
                       marker=style[row.method]["marker"], edgecolors=colour,
                       facecolors="none" if row.flag else colour)
        ax.axvline(budget, color="black", linestyle="--", linewidth=0.8)
        note = f"\nnot measured (left out): {', '.join(unmeasured)}" if unmeasured else ""
        ax.set(xscale="log", yscale="log", xlim=(0.01 * budget, 2 * budget),
               title=f"{dataset}: target {TARGETS[dataset]:.2f}\n(right of the budget: not reached){note}",
               xlabel="seconds to target (median)")
        ax.title.set_fontsize(8)
        ax.minorticks_off()
    axes[0][0].set_ylabel("step peak + kept state (MiB)")  # once: the panels' own scales sit beside each other
    _legend(fig, methods, set(board["method"]), target=False)
    return fig
