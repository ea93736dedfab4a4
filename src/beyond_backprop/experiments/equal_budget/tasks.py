"""X1's tasks: an MLP on images (task M) and node classification on a Planetoid graph (task G)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ... import data
from ...problem import Problem
from .. import paper_c, paper_d

# The fixed test accuracy whose first crossing is timed, per dataset: above the plateau of the slow
# methods and below what the fast ones reach within the quick budget, so that it separates them.
TARGETS = {"fashion-mnist": 0.75, "mnist-subset": 0.85, "cora": 0.65, "citeseer": 0.5}


def score_on_sample(problem: Problem, rows: int, seed: int = 0) -> Problem:
    """``problem`` scored on ``rows`` training rows drawn without replacement by a generator seeded with
    ``seed`` (the same rows for every run); ``problem`` itself when ``rows`` is 0 or covers every row.

    At width 1000 a forward pass over 60,000 training and 10,000 test images took 7.2 s at one CPU thread,
    against X1's 15 s of steps per run and its evaluations before the target."""
    if problem.train.index is not None:
        raise ValueError("invalid problem: a graph's training nodes are scored whole; expected an MLP problem")
    total = problem.train.labels.shape[0]
    if rows <= 0 or rows >= total:
        return problem
    generator = torch.Generator().manual_seed(seed)
    scored = torch.randperm(total, generator=generator)[:rows].sort().values.to(problem.train.labels.device)
    return dataclasses.replace(problem, train_scored=scored)


@dataclass(frozen=True)
class Task:
    """One dataset of task M or G: the MLP problem, and for a graph the GCN's problem on the whole graph."""

    name: str
    kind: str
    mlp: Problem
    graph: Problem | None = None

    @property
    def label(self) -> str:
        """``task M, fashion-mnist (3,000 train / 2,000 test, 784 features)``."""
        tested = next(iter(self.mlp.evaluate.values())).targets.shape[0]
        scored = self.mlp.splits["train"].targets.shape[0]
        sampled = f" (accuracy on {scored:,} of them)" if scored < self.mlp.x.shape[0] else ""
        sizes = f"{self.mlp.x.shape[0]:,} train{sampled} / {tested:,} test"
        return f"task {self.kind}, {self.name} ({sizes}, {self.mlp.x.shape[1]} features)"


def image_task(name: str, data_dir: str, device: torch.device, *, train_size: int = 0, test_size: int = 0,
               train_scored: int = 0) -> Task:
    """Task M on an image dataset, the first ``train_size``/``test_size`` images (0: all), its training
    accuracy scored on ``train_scored`` of them (0: all; :func:`score_on_sample`); raises DataMissing."""
    images = data.load_images(name, data_dir or None, train_limit=train_size or None,
                              test_limit=test_size or None).to(device)
    return Task(name, "M", score_on_sample(images.problem(classes=10), train_scored))


def graph_task(name: str, data_dir: str, device: torch.device) -> Task:
    """Task G on a Planetoid graph (public split): mDLAM's augmented features of the training and test
    nodes for the MLPs (paper C), every node's features and the normalised graph for the GCN (paper D)."""
    return Task(name, "G", paper_c.load_task(name, data_dir, device).problem,
                paper_d.gcn_problem(name, data_dir or None, device))


def load_tasks(image_names: Sequence[str], graph_names: Sequence[str], data_dir: str, device: torch.device, *,
               train_size: int = 0, test_size: int = 0, train_scored: int = 0
               ) -> tuple[dict[str, Task], dict[str, str]]:
    """The tasks whose data load, and for each other dataset asked for, why it is not run."""
    tasks, skipped = {}, {}
    loaders = [(name, lambda n: image_task(n, data_dir, device, train_size=train_size, test_size=test_size,
                                           train_scored=train_scored))
               for name in image_names] + [(name, lambda n: graph_task(n, data_dir, device)) for name in graph_names]
    for name, load in loaders:
        try:
            tasks[name] = load(name)
        except data.DataMissing:
            skipped[name] = f"{name} is not available offline (data.DataMissing)"
    return tasks, skipped
