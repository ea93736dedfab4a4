"""X1's method catalogue: every training method of the four papers, and the practitioner's mini-batch baselines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ... import method_names as names
from ... import models
from ...optim.admm_taylor import TaylorADMM
from ...optim.dladmm import DLADMM, PAPER
from ...optim.dladmm_gcn import DLADMMGCN
from ...optim.gradient import TorchOptimizer
from ...optim.mdlam import MDLAM
from ...optim.minibatch import Minibatch
from ...optim.solver import Solver
from ...optim.stochastic import BATCH, MinibatchMLP
from ...problem import Problem
from .. import paper_c, paper_d
from .tasks import Task

FULL_BATCH, MINI_BATCH, FORWARD, ADMM = "backprop, full batch", "backprop, mini-batch", "forward gradient", "ADMM-type"
FAMILIES = (FULL_BATCH, MINI_BATCH, FORWARD, ADMM)
GRAPH_WIDTH = 100  # mDLAM's MLP on the augmented features (paper C, §5.1)
GCN_HIDDEN = 128  # dlADMM-GCN's official code
# forward-gradient SGD has no published rate: a grid, the value chosen per dataset on training accuracy
FORWARD_SGD_RATES = (1e-4, 1e-3, 1e-2)
# the practitioner's baselines: Adam at Kingma & Ba's default rate; SGD with momentum 0.9, its rate chosen on
# training accuracy; both on mini-batches of PRACTITIONER_BATCH rows
PRACTITIONER_BATCH = 256
ADAM_RATE = 1e-3
MOMENTUM, MOMENTUM_RATES = 0.9, (1e-2, 1e-1)
# averaged PFG-FW's step rule and directions per step: A2's best run at quick on both datasets (lowest final
# training loss of the rules x m in {1, 4, 16}) is the theory schedule with 16 directions
PFG_FW_SCHEDULE, PFG_FW_DIRECTIONS = "nonconvex", 16
# mDLAM's paper has graphs only; on images its Cora value (the middle of Table 4's grid)
MDLAM_IMAGE_RHO = 1e-3
TAYLOR_RHO = 1.0  # Taylor et al.'s ADMM as dlADMM's comparison runs it (D2)


@dataclass(frozen=True)
class Method:
    """A training method: its family (one of :data:`FAMILIES`), how to make its solver for a task with one
    tuned value (from ``grids[task.kind]``; None when the kind has no grid), and whether it trains the GCN
    on the graph."""

    name: str
    family: str
    make: Callable[[Task, Any], Solver]
    grids: Mapping[str, tuple] = field(default_factory=dict)
    on_graph: bool = False

    def problem(self, task: Task) -> Problem:
        """The problem the method trains on: the graph for a GCN, else the MLP's."""
        return task.graph if self.on_graph else task.mlp

    def grid(self, task: Task) -> tuple:
        """The values to choose from on this task (empty: nothing to choose)."""
        return tuple(self.grids.get(task.kind, ()))


def mlp_widths(task: Task, width: int, graph_width: int) -> list[int]:
    """The MLP of the task: ``n_0-w-w-C`` with ``w = width`` on task M and ``graph_width`` on task G."""
    hidden = width if task.kind == "M" else graph_width
    return [task.mlp.x.shape[1], hidden, hidden, task.mlp.classes]


def gradient_methods(width: int, graph_width: int = GRAPH_WIDTH, batch: int = BATCH, *,
                     practitioner_batch: int = PRACTITIONER_BATCH, pfg_fw_schedule: str = PFG_FW_SCHEDULE,
                     pfg_fw_directions: int = PFG_FW_DIRECTIONS) -> list[Method]:
    """Adam and GD on the full batch (the ADMM papers' baselines, their learning rates), Adam and SGD with
    momentum on mini-batches of ``practitioner_batch`` rows, and paper A's three mini-batch methods (batch
    ``batch``, SFW's step, K-sparse polytopes of 5% per tensor; averaged PFG-FW with the step rule
    ``pfg_fw_schedule`` and ``pfg_fw_directions`` directions per step)."""

    def full_batch(name: str) -> Callable[[Task, Any], Solver]:
        def make(task: Task, _: Any) -> Solver:
            shape = mlp_widths(task, width, graph_width)
            if task.kind == "M":  # KDD §5.1: GD on the summed loss
                lr, reduction = paper_d.BASELINES[name], "sum" if name == "gd" else "mean"
            else:  # mDLAM Table 3, mean loss
                lr, reduction = paper_c.LEARNING_RATES[name][task.name], "mean"
            return TorchOptimizer(lambda _: models.mlp(shape), name, lr=lr, reduction=reduction)
        return make

    def practitioner(name: str, rate: float | None = None, **hyper: float) -> Callable[[Task, Any], Solver]:
        def make(task: Task, lr: float | None) -> Solver:  # lr: the grid's value, None for a fixed rate
            shape = mlp_widths(task, width, graph_width)
            inner = TorchOptimizer(lambda _: models.mlp(shape), name, lr=rate if lr is None else lr, **hyper)
            return Minibatch(inner, practitioner_batch)
        return make

    def paper_a(gradient: str, update: str, **options: Any) -> Callable[[Task, Any], Solver]:
        return lambda task, lr: MinibatchMLP(mlp_widths(task, width, graph_width), gradient=gradient, update=update,
                                             lr=lr, batch=batch, **options)

    rates = {"M": FORWARD_SGD_RATES, "G": FORWARD_SGD_RATES}
    return [
        Method(names.ADAM, FULL_BATCH, full_batch("adam")),
        Method(names.GD, FULL_BATCH, full_batch("gd")),
        Method("Adam, mini-batch", MINI_BATCH, practitioner("adam", ADAM_RATE)),
        Method("SGD + momentum, mini-batch", MINI_BATCH, practitioner("gd", momentum=MOMENTUM),
               grids={"M": MOMENTUM_RATES, "G": MOMENTUM_RATES}),
        Method("FW, backprop gradient", MINI_BATCH, paper_a("backprop", "frank-wolfe")),
        Method("averaged PFG-FW", FORWARD, paper_a("forward", "frank-wolfe", schedule=pfg_fw_schedule,
                                                     directions=pfg_fw_directions)),
        Method("forward-gradient SGD", FORWARD, paper_a("forward", "sgd"), grids=rates),
    ]


def admm_methods(width: int, graph_width: int = GRAPH_WIDTH, gcn_hidden: int = GCN_HIDDEN) -> list[Method]:
    """dlADMM (KDD's schedule), Taylor et al.'s ADMM (rho = 1, as D2), mDLAM (Table 3 on graphs,
    :data:`MDLAM_IMAGE_RHO` on images, eps0 = 100) and dlADMM-GCN (the official code's rho0 = 1e-3 raised
    every 50 epochs, mu per dataset, on the graph)."""

    def mdlam(task: Task, _: Any) -> Solver:
        rho = paper_c.RHO[task.name] if task.kind == "G" else MDLAM_IMAGE_RHO
        return MDLAM(mlp_widths(task, width, graph_width), rho=rho, eps0=100.0, eps_min=paper_c.EPS_MIN)

    def gcn(task: Task, _: Any) -> Solver:
        shape = [task.graph.train.inputs.shape[1], gcn_hidden, task.graph.classes]
        return DLADMMGCN(shape, rho=1e-3, mu=paper_d.GCN_MU[task.name], rho_every=50)

    return [
        Method(names.DLADMM, ADMM, lambda task, _: DLADMM(mlp_widths(task, width, graph_width), options=PAPER)),
        Method(names.TAYLOR_ADMM, ADMM,
               lambda task, _: TaylorADMM(mlp_widths(task, width, graph_width), rho=TAYLOR_RHO)),
        Method(names.MDLAM, ADMM, mdlam),
        Method(names.DLADMM_GCN, ADMM, gcn, on_graph=True),
    ]
