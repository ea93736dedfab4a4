"""The data of one training problem: a :class:`Split` (inputs, labels, scored rows) and a :class:`Problem`.

Below both :mod:`beyond_backprop.data` (which builds problems) and :mod:`beyond_backprop.optim` (whose
solvers train on them), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import torch


@dataclass(frozen=True, eq=False)
class Split:
    """Inputs, integer labels, and the rows of the model's output that the labels label.

    ``index=None``: every row (an MLP on its own data). A graph model sees every node's features
    and is scored on the nodes in ``index``.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        rows = self.inputs.shape[0]
        if self.inputs.dim() != 2 or self.labels.dim() != 1 or self.labels.shape[0] != rows:
            raise ValueError(f"invalid split: inputs {tuple(self.inputs.shape)}, labels {tuple(self.labels.shape)};"
                             " expected N×d inputs and N integer labels")
        if self.labels.is_floating_point():
            raise ValueError("invalid split: labels must be integer class indices, not one-hot or float")

    @cached_property
    def targets(self) -> torch.Tensor:
        """The labels of the scored rows."""
        return self.labels if self.index is None else self.labels[self.index]


@dataclass(frozen=True, eq=False)
class Problem:
    """The data of one training problem: the training split, further splits to evaluate, and for a
    graph model the propagation matrix ``adjacency`` (sparse, N×N over ``train.inputs``' rows).

    ``x`` and ``y`` are the training rows and their labels, computed once. ``train_scored`` (an MLP's
    problem only) names the training rows its training loss and accuracy are scored on; every row is trained on.
    """

    train: Split
    evaluate: Mapping[str, Split] = field(default_factory=dict)
    adjacency: torch.Tensor | None = None
    classes: int = 0
    train_scored: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if "train" in self.evaluate:
            raise ValueError("invalid evaluate split name 'train'; the training split is always evaluated")
        if self.train_scored is not None and (self.train_scored.dim() != 1 or self.train.index is not None):
            raise ValueError("invalid train_scored: expected a 1-d tensor of row indices of an MLP's training split")
        if self.classes <= 0:
            labels = [self.train.labels, *(s.labels for s in self.evaluate.values())]
            object.__setattr__(self, "classes", int(max(int(t.max()) for t in labels)) + 1)

    @cached_property
    def x(self) -> torch.Tensor:
        """Training inputs (the rows of ``train.index``, or all rows)."""
        return self.train.inputs if self.train.index is None else self.train.inputs[self.train.index]

    @property
    def y(self) -> torch.Tensor:
        """Integer labels of the training rows."""
        return self.train.targets

    @cached_property
    def onehot(self) -> torch.Tensor:
        """One-hot training labels (float, like ``x``)."""
        return torch.nn.functional.one_hot(self.y, self.classes).to(self.x.dtype)

    @cached_property
    def scored_train(self) -> Split:
        """The training split, restricted to ``train_scored`` when it is set."""
        if self.train_scored is None:
            return self.train
        return Split(self.train.inputs[self.train_scored], self.train.labels[self.train_scored])

    @property
    def splits(self) -> dict[str, Split]:
        """``train`` (its scored rows) and every evaluated split, in that order."""
        return {"train": self.scored_train, **self.evaluate}

    @property
    def device(self) -> torch.device:
        return self.train.inputs.device
