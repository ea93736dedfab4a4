"""Full-batch training of gradient baselines, recording a per-iteration history.

The history has the same columns as the ADMM-type solvers record:
``iteration, seconds, objective, <split>_accuracy`` for each evaluated split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from .runtime import Timer

OPTIMIZERS = {
    "gd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "adam": torch.optim.Adam,
}


@dataclass(frozen=True)
class Split:
    """Inputs, integer targets, and the rows of ``model(inputs)`` that the targets label.

    ``index=None`` means every row (an MLP on its own data); a graph model
    takes all node features and an index of the labelled nodes.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    index: torch.Tensor | None = None

    def logits(self, model: nn.Module) -> torch.Tensor:
        out = model(self.inputs)
        return out if self.index is None else out[self.index]

    def labels(self) -> torch.Tensor:
        return self.targets if self.index is None else self.targets[self.index]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max equals the label (a 0-d tensor)."""
    return (logits.argmax(dim=1) == labels).float().mean()


def train_full_batch(
    model: nn.Module,
    optimizer: str,
    lr: float,
    train: Split,
    evaluate: Mapping[str, Split] | None = None,
    *,
    iterations: int,
    reduction: str = "mean",
    weight_decay: float = 0.0,
    progress: bool = True,
) -> pd.DataFrame:
    """Train ``model`` with one full-batch step of ``optimizer`` per iteration.

    Args:
        optimizer: one of ``gd``, ``adagrad``, ``adadelta``, ``adam`` (torch defaults otherwise).
        lr: learning rate.
        train: the training split; ``evaluate``: further splits, e.g. ``{"test": ...}``.
        reduction: ``mean`` or ``sum`` of the cross-entropy over samples.
    Returns:
        one row per iteration: ``iteration`` (1-based), ``seconds`` (cumulative training time,
        excluding evaluation), ``objective`` (training loss before the step) and
        ``<split>_accuracy`` for ``train`` and every evaluated split (after the step).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"invalid optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"invalid reduction {reduction!r}; expected 'mean' or 'sum'")
    if iterations < 1:
        raise ValueError(f"invalid iterations {iterations!r}; expected >= 1")
    device = train.inputs.device
    splits = {"train": train, **(evaluate or {})}
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss(reduction=reduction)
    records, losses, accuracies, elapsed = [], [], [], 0.0
    for it in tqdm(range(1, iterations + 1), desc=optimizer, disable=not progress, leave=False):
        model.train()
        with Timer(device) as timer:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(train.logits(model), train.labels())
            loss.backward()
            opt.step()
        elapsed += timer.seconds
        model.eval()
        with torch.no_grad():
            accuracies.append(torch.stack([accuracy(s.logits(model), s.labels()) for s in splits.values()]))
        losses.append(loss.detach())
        records.append({"iteration": it, "seconds": elapsed})
    history = pd.DataFrame(records)
    history["objective"] = torch.stack(losses).cpu().numpy()
    table = torch.stack(accuracies).cpu().numpy()
    for column, name in enumerate(splits):
        history[f"{name}_accuracy"] = table[:, column]
    return history
