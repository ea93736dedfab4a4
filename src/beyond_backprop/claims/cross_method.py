"""Claims of X1, the project's own cross-paper comparison, declared as data.

Each claim is a statement one of the four papers makes about other methods, tested here at an
equal wall-clock budget on one named task: the setting run (dataset, seconds of training steps per
method, seeds) is recorded beside each verdict. The papers compare per iteration; none gives a value
at a time budget, so the rules read the statements' direction ("competitive", "beats", "less",
"faster"), and a ranking that changes between seeds counts as a tie, never as a win.
"""

from __future__ import annotations

from ..results import AtLeast, AtMost
from .declaration import CITED, Declaration

KDD = "Wang, Yu, Chen, Zhao, dlADMM (KDD 2019), §5.3, Figs 4-5"
MDLAM = "Wang, Li, Zhao, mDLAM (Neurocomputing 2022), §5.3, Fig 3 and Table 6"
PAPER_A = "Rostami & Kia, arXiv 2403.12511, abstract (1000 vs 2150 MiB)"
ADMM_MOTIVATION = "Wang, Yu, Chen, Zhao, dlADMM (KDD 2019), §1; Taylor et al. (ICML 2016), §1"

COMPETITIVE = 0.05  # "only Adam ends slightly better": within 5 points of accuracy
ONE_NODE = 0.001  # one of Cora's or Citeseer's 1000 test nodes: a win by at least one node in every seed


def _beats(number: int, dataset: str) -> Declaration:
    return Declaration(
        f"X1.{number}", f"Task G, {dataset}, equal wall-clock budget: mDLAM's final test accuracy beats dlADMM's, "
        "Adam's and SGD's in every seed (MLP on the augmented features)",
        "mDLAM above dlADMM and the gradient baselines (Fig 3, Table 6)",
        AtLeast(ONE_NODE, partly=-0.02), unit="worst-seed accuracy margin", source=CITED, citation=MDLAM,
        scale={"dataset": dataset})


def _faster(number: int, dataset: str) -> Declaration:
    return Declaration(
        f"X1.{number}", f"Task {'M' if dataset == 'fashion-mnist' else 'G'}, {dataset}, equal wall-clock budget: "
        "the fastest ADMM-type method (dlADMM, Taylor's ADMM, mDLAM) reaches the target test accuracy in less "
        "training time than gradient descent (full-batch SGD), in every seed",
        "gradient-free ADMM-type training is faster than gradient descent (the papers' motivation)",
        AtMost(0.9, partly=1.1), unit="worst-seed time ratio (ADMM / SGD)", source=CITED,
        citation=ADMM_MOTIVATION, scale={"dataset": dataset})


CLAIMS: tuple[Declaration, ...] = (
    Declaration(
        "X1.1", "Task M, Fashion-MNIST, equal wall-clock budget: dlADMM's final test accuracy is competitive with "
        "Adam's (mean over seeds of dlADMM minus Adam)",
        "dlADMM close to Adam, which ends only slightly better (Figs 4-5)",
        AtLeast(-COMPETITIVE, partly=-2 * COMPETITIVE), unit="accuracy difference", source=CITED, citation=KDD,
        scale={"dataset": "fashion-mnist"}),
    _beats(2, "cora"),
    _beats(3, "citeseer"),
    Declaration(
        "X1.4", "Task M, Fashion-MNIST: the forward-gradient methods' training step (averaged PFG-FW, "
        "forward-gradient SGD) peaks at less memory than backprop FW's at the same batch (the larger of the two "
        "ratios; A3's measure)", "forward mode keeps no activation tape: about half the memory",
        AtMost(0.6, partly=0.8), unit="step peak memory ratio", source=CITED, citation=PAPER_A,
        scale={"dataset": "fashion-mnist", "batch": 1024}),
    _faster(5, "fashion-mnist"),
    _faster(6, "cora"),
)
