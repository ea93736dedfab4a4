"""Claims of paper B (Bolte et al., the cost of nonsmooth AD), declared as data (see ``claims.declaration``).

The paper is theoretical: its own claims (source ``paper``) are the cheap conservative gradient principle,
forward mode's factor p, the matrix-product relation and the conservative-vs-Clarke results, which the
notebooks illustrate at any size (no ``scale``). The precision claims B4.3-B4.5 are Bertoin et al.'s
(NeurIPS 2021), cited by the paper: their values hold for a sweep of the 60,000 MNIST training images.
A timing claim's slope is judged at the midpoint between the growth law it states and the one it
denies (``FLAT``, ``LINEAR``); the 90% bootstrap band of every slope, printed by the notebooks, was at most
about +-0.1 wide on the quick profile on a loaded 2-core CPU, so a verdict flips only for a slope within
about 0.1 of a midpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..results import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, AtLeast, AtMost, Between, NotTestable, Rule
from .declaration import CITED, DEMONSTRATION, DERIVED, Declaration

BAUR_STRASSEN = "5 (Baur & Strassen 1983, quoted in the introduction)"
BERTOIN = "Bertoin, Bolte, Gerchinovitz, Pauwels, NeurIPS 2021 (cited in paper B's introduction)"
BERTOIN_SCALE = {"dataset": "mnist", "samples": 60_000}  # the full MNIST training set, swept once
# 60,000 is the size of MNIST's training set, which Bertoin et al. sweep; neither paper B nor the spec states it
BERTOIN_SCALE_ORIGIN = {"samples": "MNIST's training set"}
MNIST_DIGITS = ("mnist", "mnist-subset")  # data.load_images names of real MNIST digits
# A log-log slope decides between two growth laws at their midpoint: flat (0) against linear (1) below 0.5,
# linear against quadratic (2) at 1.5.
FLAT = 0.5
LINEAR = (0.5, 1.5)


@dataclass(frozen=True)
class OneSided(Rule):
    """For a fraction that can only grow with the samples swept, measured on fewer samples than the paper's.

    Reaching ``reach`` already reproduces the claim and exceeding ``ceiling`` already contradicts it,
    because more samples could only raise the fraction; any other value is not testable at this budget.
    """

    reach: float | None = None
    ceiling: float | None = None

    def _evaluate(self, measured: float) -> tuple[str, str]:
        if self.reach is not None and measured >= self.reach:
            return REPRODUCED, f"{measured:.3g} >= {self.reach:.3g} already on fewer samples"
        if self.ceiling is not None and measured > self.ceiling:
            return NOT_REPRODUCED, f"{measured:.3g} > {self.ceiling:.3g} already on fewer samples"
        return NOT_TESTABLE, (f"{measured:.3g} on fewer samples than MNIST's 60,000 training images; more "
                              "samples could only raise it, so this budget cannot decide")

    def describe(self) -> str:
        parts = [f">= {self.reach:.3g} reproduces" if self.reach is not None else "",
                 f"> {self.ceiling:.3g} contradicts" if self.ceiling is not None else ""]
        return "below scale: " + ", ".join(p for p in parts if p) + "; otherwise undecided"


def _bertoin(claim_id: str, statement: str, paper_value: str, rule: Rule, below_scale: Rule,
             below_scale_value: str) -> Declaration:
    """A claim of Bertoin et al. about the fraction of random networks in S over the MNIST training set.

    Below their 60,000 images (real MNIST digits only) the fraction can only be lower, so ``below_scale``
    judges it against ``below_scale_value``; on other images it is not testable.
    """
    def at_budget(at: Mapping[str, Any]) -> tuple[Rule, str] | None:
        return (below_scale, below_scale_value) if at["dataset"] in MNIST_DIGITS else None

    return Declaration(claim_id, f"relu'(0) = 0 and = 1 backprops {statement}",
                       f"{paper_value} over the MNIST training set", rule, unit="fraction of networks in S",
                       source=CITED, citation=BERTOIN, scale=BERTOIN_SCALE, scale_origin=BERTOIN_SCALE_ORIGIN,
                       at_budget=at_budget)


CLAIMS: tuple[Declaration, ...] = (
    Declaration(
        "B1.1", "Backward mode gradient costs a bounded multiple of the function (tanh MLP)",
        f"<= omega_b * cost(f), dimension-free (main theorem); bound {BAUR_STRASSEN}",
        AtMost(5.0, partly=10.0), unit="max time ratio"),
    Declaration(
        "B1.2", "Backward mode gradient costs a bounded multiple of the function (ReLU MLP, nonsmooth)",
        f"<= omega_b * cost(f), dimension-free, for nonsmooth programs too (main theorem); bound {BAUR_STRASSEN}",
        AtMost(5.0, partly=10.0), unit="max time ratio"),
    Declaration(
        "B1.3", "The gradient/function time ratio does not grow with width",
        "independent of the dimension (abstract, main theorem)", AtMost(FLAT),
        unit="log-log slope vs width"),
    Declaration(
        "B1.4", "The gradient/function time ratio does not grow with depth",
        "independent of the program's size (main theorem)", AtMost(FLAT),
        unit="log-log slope vs depth"),
    Declaration(
        "B2.1", "Full gradient by forward mode (p looped JVPs) costs about p evaluations of f",
        "p * omega_f * cost(f) (main theorem (b))", Between(*LINEAR),
        unit="log-log slope vs p", source=DEMONSTRATION),  # a Python loop of p JVPs is linear in p by construction
    Declaration(
        "B2.2", "Gradient by one backward pass: its cost over cost(f) does not grow with p",
        "omega_b * cost(f), independent of p (main theorem (a))", AtMost(FLAT),
        unit="log-log slope vs p"),
    Declaration(
        "B2.3", "Batching the p JVPs (vmap) still grows linearly in p",
        "linear in p (spec E2 expectation, not a statement of the paper)", Between(*LINEAR),
        unit="log-log slope vs p", source=DERIVED),
    Declaration(
        "B2.4", "Backward-mode memory grows with depth (activations are kept)",
        "proportional to depth (spec E4, standard AD accounting)", AtLeast(FLAT),
        unit="log-log slope vs depth", source=DERIVED),
    Declaration(
        "B2.5", "Forward-mode (JVP) memory is flat in depth",
        "flat in depth (spec E4, standard AD accounting)", AtMost(FLAT),
        unit="log-log slope vs depth", source=DERIVED),
    Declaration(
        "B3.1", "p directional derivatives of an L-layer width-p stack cost about L p x p matrix products",
        "tied to the cost of p x p matrix multiplication (matrix-product theorem)",
        Between(0.5, 3.0, partly=(0.25, 6.0)), unit="time(JM)/(L GEMM)"),
    Declaration(
        "B3.2", "The cost of p directional derivatives grows like p times the cost of f",
        "no dimension-free constant unless omega = 2 (matrix-product theorem)",
        Between(*LINEAR), unit="log-log slope vs p"),
    Declaration(
        "B3.3", "Batched JVPs (matrix products) beat a loop of p JVPs",
        "matrix products are the efficient route (spec E3 expectation)", AtLeast(1.5, partly=1.0),
        unit="time(loop)/time(vmap)", source=DEMONSTRATION),  # vmap batches what the loop repeats
    Declaration(
        "B4.1", "Programs equal as functions get different AD derivatives at the kink",
        "AD depends on the program, not only on the function (Fig. 1 levels; relu(x) - relu(-x) = x)",
        AtLeast(1.0), unit="nonsmooth pairs with different AD", source=DEMONSTRATION),  # PyTorch's relu'(0) = 0
    Declaration(
        "B4.2", "Backprop returns a conservative, not a Clarke, subgradient",
        "AD of relu(x) - relu(-x) at 0 is 0 while the Clarke set is {1} (conservative calculus)",
        AtLeast(0.5), unit="distance to the Clarke set", source=DEMONSTRATION),  # PyTorch's relu'(0) = 0
    _bertoin("B4.3", "never differ in float64", "never in 64 bits", AtMost(0.0),
             OneSided(ceiling=0.0), "never over the training set, so never on part of it"),
    _bertoin("B4.4", "differ systematically in float16", "systematically in 16 bits",
             AtLeast(0.95, partly=0.8), OneSided(reach=0.95),
             "systematically over the training set; at most that on fewer"),
    _bertoin("B4.5", "differ for about half of the networks in float32",
             "about half of the time in 32 bits",
             Between(0.25, 0.65, partly=(0.15, 0.8)), OneSided(ceiling=0.65),
             "about half over the training set; at most that on fewer"),
    Declaration(
        "B5.1", "Two {-1,0,1} ReLU programs of one function give different AD vectors",
        "AD depends on the program (conservative calculus, hardness section)", AtLeast(0.5),
        unit="distance between AD vectors", source=DEMONSTRATION),  # PyTorch's relu'(0) = 0
    Declaration(
        "B5.2", "The conservative field of AD at 0 is strictly larger than the Clarke subdifferential",
        "D^a_F(0) contains the Clarke set (paper); strictly on random {-1,0,1} nets (spec E5c measurement)",
        AtLeast(0.9, partly=0.5), unit="fraction of networks", source=DERIVED),
    Declaration(
        "B5.3", "AD's output at a kink need not be a Clarke subgradient",
        "AD returns a conservative, not a Clarke, element (hardness section)", AtLeast(1.0),
        unit="networks with AD outside Clarke"),
    Declaration(
        "B5.4", "Finding two Clarke subgradients of a {-1,0,1} ReLU net at 0 is NP-hard",
        "NP-hard (hardness theorem); the AD conservative gradient is polynomial",
        NotTestable("a worst-case complexity statement; the notebook shows the exhaustive 2^n route on small "
                    "networks only")),
)
