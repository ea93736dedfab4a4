"""What every solver's constructor and ``init`` share: ``Solver(widths, options=PRESET, **overrides)``.

:func:`with_overrides` applies keyword overrides to an options preset and refuses unknown names in one
line; :func:`check_widths` checks a solver's layer widths against a problem's features and classes.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import TypeVar

from ..problem import Problem

Options = TypeVar("Options")


def with_overrides(options: Options, overrides: dict[str, object]) -> Options:
    """``options`` with the fields named in ``overrides`` replaced; an unknown name is a one-line ValueError."""
    names = [f.name for f in fields(options)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {type(options).__name__}; "
                         f"expected some of {', '.join(names)}")
    return replace(options, **overrides)


def check_widths(widths: list[int], problem: Problem) -> None:
    """Raise a one-line ValueError unless ``widths[0]`` is the problem's feature count and ``widths[-1]`` its
    class count."""
    features = problem.train.inputs.shape[1]
    if widths[0] != features or widths[-1] != problem.classes:
        raise ValueError(f"invalid widths {widths!r} for {features} features and {problem.classes} classes; "
                         f"expected widths [{features}, ..., {problem.classes}]")
