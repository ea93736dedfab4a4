"""Claims of paper A (Rostami & Kia, arXiv 2403.12511), declared as data (see ``claims.declaration``).

Only the abstracts (v1, v3) of the paper were available [V]; its rates and memory figures come from
third-party summaries [S] (spec ``fw_projected_fg.md`` section 0). Checks the spec reconstructs [R]
or the project derives (closed forms, sanity checks) are ``derived``, not the paper's.
The functions that turn runs into these numbers are in ``experiments.paper_a`` (A1) and
``experiments.paper_a_training`` (A2, A3).
"""

from __future__ import annotations

from ..results import AtLeast, AtMost, Between, Near, Rule
from .declaration import DEMONSTRATION, DERIVED, PAPER, Declaration

A2_DATASETS = ("Fashion-MNIST", "MNIST subset")


def _per_dataset(first: int, statement: str, paper_value: str, rule: Rule, **options) -> tuple[Declaration, ...]:
    """One A2 claim per data set, numbered from ``A2.<first>`` in the order of :data:`A2_DATASETS`."""
    return tuple(Declaration(f"A2.{first + n}", f"{statement} ({label})", paper_value, rule, source=PAPER, **options)
                 for n, label in enumerate(A2_DATASETS))


CLAIMS: tuple[Declaration, ...] = (
    Declaration(
        "A1.1", "FW fed with projected forward gradients (no averaging over time) makes progress, then stalls "
        "at a non-vanishing error (the floor-sweep run with the smallest d/m)",
        "fails to converge to the optimum; non-vanishing error (v1, v3 abstracts) [V]",
        AtMost(0.1, partly=0.2), unit="share of the log-decrease made in the last decade", source=PAPER),
    Declaration(
        "A1.2", "Averaged PF-FW converges to f* on a convex problem: its optimality gap keeps falling",
        "converges to the optimum at a sub-linear rate (v1, v3 abstracts) [V]",
        AtMost(-0.25, partly=-0.1), unit="log-log slope over the last decade", source=PAPER),
    Declaration(
        "A1.3", "Averaging drives the direction error ||d_k - grad f||^2 to 0 (variance reduction)",
        "variance reduction by aggregating historical directions (v3 abstract) [V]; k^-2/3 [R]",
        AtMost(-0.3, partly=-0.1), unit="log-log slope over the last decade", source=PAPER),
    Declaration(
        "A1.4", "The floor of plain PFG-FW grows like sqrt(d/m) (runs whose floor is below half their initial gap)",
        "sqrt(d/m) from the one-step bound (spec reconstruction [R], not the paper's)",
        Between(0.3, 0.7, partly=(0.15, 1.0)), unit="exponent of d/m", source=DERIVED),
    Declaration(
        "A1.5", "Averaged PF-FW converges at O(1/sqrt(k)) on a convex problem (slope over the tail after the "
        "transient)", "O(1/sqrt k) with suitable tuning [S: summaries]",
        AtMost(-0.45, partly=-0.3), unit="log-log slope after the transient", source=PAPER,
        scale={"iterations": 100_000}, scale_origin={"iterations": "spec E1 [R]"}),
    Declaration(
        "A1.6", "E||phi - grad f||^2 = (d+1)||grad f||^2 for Gaussian directions",
        "(d+1)||grad f||^2 (closed form; the project's check of the estimator)",
        Near(1.0, rel=0.15, partly=0.3), unit="measured / closed form", source=DEMONSTRATION),
    *_per_dataset(
        1, "Nonconvex: averaged PF-FW's FW gap keeps falling towards 0 at least like 1/log k while plain PF-FW's "
        "plateaus (theory step, one direction; robust levels: medians of the second and last quarters)",
        "stationary point (v3 abstract) [V]; FW gap O(1/log K) [S]; plain PF-FW plateaus (spec E2 [R])",
        AtLeast(0.5, partly=0.25), unit="share of the fall a 1/log k decay predicts, averaged minus plain"),
    *_per_dataset(
        3, "Under K-sparse constraints, averaged PF-FW's test accuracy is within a few points of backprop FW's "
        "at an equal number of steps, each method at its best step rule and number of directions (lowest final "
        "training loss)", "competitive accuracy under sparsity constraints [S]; 10 epochs (spec E3 [R])",
        AtMost(0.05, partly=0.15), unit="accuracy points behind", scale={"epochs": 10},
        scale_origin={"epochs": "spec E3 [R]"}),
    Declaration(
        "A3.1", "Forward-gradient FW training needs about half the memory of backprop FW (whole step, weights, "
        "batch and optimiser state included)", "1000 vs 2150 MiB per epoch, ratio 0.47 [S]",
        AtMost(0.55, partly=0.8), unit="memory ratio", source=PAPER, scale={"batch": 1024},
        scale_origin={"batch": "spec E3 [R]"}),
    Declaration(
        "A3.2", "The forward-gradient step's peak above the resident tensors is at most 0.6x the backprop step's "
        "(no activation tape)", "no activation history in forward mode (v1 abstract) [V]; the 0.6 threshold is "
        "the project's", AtMost(0.6, partly=0.8), unit="memory ratio", source=DERIVED, scale={"batch": 1024},
        scale_origin={"batch": "spec E3 [R]"}),
    Declaration(
        "A3.3", "The saving comes from activations: the forward step's activation buffers (a fixed number, "
        "whatever the depth) are at most half of backprop's activation tape (one per layer; deepest network, "
        "largest batch)",
        "no activation history in forward mode (v1 abstract) [V]; the project's check (spec section 4)",
        AtMost(0.5, partly=0.8), unit="activation bytes ratio", source=DERIVED),
)
