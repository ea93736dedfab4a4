"""X1: every training method on the same task, at the same wall-clock budget.

Tasks (:mod:`.tasks`): **M**, an MLP ``784-width-width-10`` on Fashion-MNIST and the MNIST subset; **G**,
node classification on Cora and Citeseer, where the MLP methods train ``d-100-100-C`` on mDLAM's
augmented features (paper C) and dlADMM-GCN trains the two-layer GCN on the graph (paper D, journal).
The methods (:mod:`.methods`) run for equal seconds of training steps (:mod:`.runs`); the memory of one
step is measured apart (:mod:`.memory`); :mod:`.ranking` ranks what may be ranked, :mod:`.measures`
turns the runs into X1's claims, and :mod:`.figures` draws them.
"""

from .figures import accuracy_vs_seconds, memory_vs_seconds_to_target
from .measures import x1_claims
from .memory import step_cost, tensor_bytes
from .methods import Method, admm_methods, gradient_methods
from .ranking import leaderboard, leaderboard_markdown, save_leaderboard
from .runs import Comparison, choose, compare, finals, train_once
from .tasks import TARGETS, Task, load_tasks

__all__ = ["TARGETS", "Comparison", "Method", "Task", "accuracy_vs_seconds", "admm_methods", "choose", "compare",
           "finals", "gradient_methods", "leaderboard", "leaderboard_markdown", "load_tasks",
           "memory_vs_seconds_to_target", "save_leaderboard", "step_cost", "tensor_bytes", "train_once",
           "x1_claims"]
