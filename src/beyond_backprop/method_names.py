"""One spelling of every method's name, the papers' own, used in histories, claims, tables and legends."""

from __future__ import annotations

GD = "GD"  # full-batch gradient descent: KDD's "SGD" runs full batch, the journal and paper C say GD
ADAGRAD = "Adagrad"
ADADELTA = "Adadelta"
ADAM = "Adam"
MDLAM = "mDLAM"
DLADMM = "dlADMM"
DLADMM_GCN = "dlADMM-GCN"
TAYLOR_ADMM = "Taylor's ADMM"

# ``torch.optim`` names of the gradient baselines (as ``TorchOptimizer`` takes them) -> the papers' names
OPTIMIZERS = {"gd": GD, "adagrad": ADAGRAD, "adadelta": ADADELTA, "adam": ADAM}
