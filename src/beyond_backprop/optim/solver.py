r"""One contract for every training method: a :class:`~beyond_backprop.problem.Problem`, a :class:`Solver`, and
:func:`run_history`.

Modelled on optax's ``init``/``update`` pair and torch.optim's class-plus-functional-core: a solver
holds only its hyperparameters; the data travel in a :class:`~beyond_backprop.problem.Problem` passed to
every call, and the iterates in a state value returned by ``init`` and ``step``::

    solver = DLADMM([784, 1000, 1000, 10])
    state = solver.init(problem, torch.Generator().manual_seed(0))
    state, history = run_history(solver, state, problem, iterations=30)

Every history that :func:`run_history` writes names its columns from :data:`METRICS`, so one column
means one thing whichever method wrote it.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import pandas as pd
import torch
from tqdm import tqdm

from ..problem import Problem, Split
from ..runtime import Timer

# The metric vocabulary: every column a history may carry, and what it means for every method.
METRICS: dict[str, str] = {
    "iteration": "steps taken so far (the state's ``k`` after the step)",
    "seconds": "cumulative wall-clock time of the steps alone, device-synchronised; evaluation is not counted",
    "train_loss": "mean softmax cross-entropy of the network's logits (current weights, plain forward pass) "
                  "on the training split",
    "lagrangian": "the augmented Lagrangian the ADMM-type solver minimises, after the step "
                  "(dlADMM: L_rho; dlADMM-GCN: CE + phi_1 + phi_2 + decay; Taylor et al.: their objective with "
                  "the multiplier term)",
    "penalty_objective": "mDLAM's penalised objective F, without the band indicator, after the step",
    "residual": "squared Frobenius norm of the output-layer constraint residual z_L - m_L after the step",
    "violation": "mDLAM's band violation, the sum over hidden layers of ||a_l - relu(z_l)||^2",
    "rho": "the penalty parameter rho after the step",
    "eps": "mDLAM's band half-width epsilon used in the step",
    "fallbacks": "mDLAM's safeguarded (non-extrapolated) block updates in the step",
    "fw_gap": "Frank-Wolfe gap sum <grad f, theta - LMO(grad f)> over the constrained tensors, with the exact "
              "gradient of the mean cross-entropy on the first training rows (paper A's solvers, ``gap_samples``)",
    "<split>_accuracy": "fraction of the split's labelled rows whose largest logit is the label",
}
FIXED_COLUMNS = ("iteration", "seconds", "train_loss")
SOLVER_METRICS = frozenset(METRICS) - {"<split>_accuracy", *FIXED_COLUMNS}


State = TypeVar("State")


class Solver(Protocol[State]):
    """What every training method implements. A solver keeps no data; ``state.k`` counts steps."""

    def init(self, problem: Problem, generator: torch.Generator) -> State:
        """The initial iterate, every random draw taken from ``generator``."""

    def step(self, state: State, problem: Problem) -> State:
        """One iteration (epoch) of the method: the new state.

        Pure, as optax's ``update``: ``step`` never changes ``state`` (no tensor, generator or field of it),
        so a caller may keep, re-step or compare the old state. Only what no step changes (data-derived
        constants, a module's non-persistent buffers) may be shared between the old and the new state.
        """

    def metrics(self, state: State, problem: Problem) -> dict[str, torch.Tensor]:
        """The solver's own diagnostics as 0-d tensors, named from :data:`METRICS` (no accuracy, no train_loss)."""

    def logits(self, state: State, problem: Problem, split: Split) -> torch.Tensor:
        """Logits of the current network on the scored rows of ``split``."""


def evaluate(solver: Solver, state, problem: Problem) -> dict[str, torch.Tensor]:
    """``train_loss``, the solver's metrics and ``<split>_accuracy`` for every split, as 0-d tensors (no sync)."""
    values: dict[str, torch.Tensor] = {}
    for name, split in problem.splits.items():
        logits = solver.logits(state, problem, split)
        if name == "train":
            values["train_loss"] = torch.nn.functional.cross_entropy(logits, split.targets)
            values.update(solver.metrics(state, problem))
        values[f"{name}_accuracy"] = (logits.argmax(dim=1) == split.targets).float().mean()
    unknown = set(values) - SOLVER_METRICS - {"train_loss"} - {f"{s}_accuracy" for s in problem.splits}
    if unknown:
        raise ValueError(f"metrics {sorted(unknown)} of {type(solver).__name__} are not in solver.METRICS")
    return values


def run_history(solver: Solver, state, problem: Problem, iterations: int | None = None, *,
                seconds: float | None = None, evaluate_every: int = 1, progress: bool = False,
                description: str | None = None) -> tuple[object, pd.DataFrame]:
    """Step ``solver`` until ``iterations`` more steps were taken or the steps' time reached ``seconds``.

    Only ``step`` is timed. After every ``evaluate_every``-th step and after the last one, the history
    gets a row: ``iteration``, ``seconds``, then :func:`evaluate`'s values. The metrics stay on the device
    until the end (one host transfer for the whole run, apart from the timer's synchronisation).
    With a ``seconds`` budget the run stops at the first step that ends at or past it, so it overruns
    the budget by less than one step.
    """
    if iterations is None and seconds is None:
        raise ValueError("run_history needs iterations, seconds, or both")
    if iterations is not None and iterations < 1:
        raise ValueError(f"invalid iterations {iterations!r}; expected >= 1")
    if seconds is not None and seconds <= 0:
        raise ValueError(f"invalid seconds {seconds!r}; expected > 0")
    if evaluate_every < 1:
        raise ValueError(f"invalid evaluate_every {evaluate_every!r}; expected >= 1")
    rows: list[tuple[int, float, dict[str, torch.Tensor]]] = []
    elapsed, taken = 0.0, 0
    bar = tqdm(total=iterations, desc=description or type(solver).__name__, disable=not progress, leave=False)
    while True:
        with Timer(problem.device) as timer:
            state = solver.step(state, problem)
        elapsed += timer.seconds
        taken += 1
        bar.update()
        done = (iterations is not None and taken >= iterations) or (seconds is not None and elapsed >= seconds)
        if done or taken % evaluate_every == 0:
            with torch.no_grad():
                rows.append((state.k, elapsed, evaluate(solver, state, problem)))
        if done:
            break
    bar.close()
    return state, _frame(rows)


def _frame(rows: list[tuple[int, float, dict[str, torch.Tensor]]]) -> pd.DataFrame:
    names = list(rows[0][2])
    table = torch.stack([torch.stack([values[n].detach().double().cpu() for n in names]) for *_, values in rows])
    history = pd.DataFrame(table.numpy(), columns=names)
    history.insert(0, "seconds", [elapsed for _, elapsed, _ in rows])
    history.insert(0, "iteration", [k for k, _, _ in rows])
    return history
