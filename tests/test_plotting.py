"""The shared figure helpers: one panel per dataset and column, one colour per method."""

import matplotlib.pyplot as plt
import pandas as pd

from beyond_backprop import method_names, plotting


def test_curves_draw_a_panel_per_dataset_and_a_line_per_group_without_missing_points():
    runs = pd.DataFrame({"dataset": ["a"] * 4 + ["b"] * 2, "method": ["m", "m", "n", "n", "m", "m"],
                         "iteration": [1, 2, 1, 2, 1, 2], "test_accuracy": [0.1, 0.2, None, 0.4, 0.5, 0.6]})
    fig, axes = plotting.curves(runs, "method", "test_accuracy", dashed="n", bold="m")
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    lines = {line.get_label(): line for line in axes[0].get_lines()}
    assert list(lines["n"].get_xdata()) == [2] and lines["n"].get_linestyle() == "--"
    assert lines["m"].get_linewidth() == 2.5
    plt.close(fig)


def test_curves_give_a_row_per_column_and_each_method_its_one_colour():
    runs = pd.DataFrame({"dataset": "a", "method": [method_names.ADAM] * 2 + [method_names.DLADMM] * 2,
                         "iteration": [1, 2, 1, 2], "train_accuracy": 0.5, "test_accuracy": 0.4})
    fig, axes = plotting.curves(runs, "method", ["train_accuracy", "test_accuracy"])
    assert [ax.get_ylabel() for ax in axes] == ["train accuracy", "test accuracy"]
    colours = {line.get_label(): line.get_color() for line in axes[1].get_lines()}
    assert colours[method_names.DLADMM] == plotting.METHOD_COLOURS[method_names.DLADMM]
    plt.close(fig)


def test_method_colours_are_distinct_within_each_papers_methods():
    d2 = [method_names.DLADMM, method_names.TAYLOR_ADMM, *method_names.OPTIMIZERS.values()]
    c2 = [method_names.MDLAM, method_names.DLADMM, *method_names.OPTIMIZERS.values()]
    for methods in (d2, c2):
        assert len({tuple(plotting.METHOD_COLOURS[m]) if not isinstance(plotting.METHOD_COLOURS[m], str)
                    else plotting.METHOD_COLOURS[m] for m in methods}) == len(methods)
