"""The notebook catalogue: one entry per paper result, with its profile parameters.

Each notebook's ``parameters`` cell holds the smoke profile. The ``profiles``
mapping of an entry holds what papermill injects for the other profiles
(``profile``, ``device``, ``seed``, ``data_dir`` and ``output_dir`` are added
by the pipeline). ``minutes`` is the expected wall time per profile on the
reference machine (2 CPU cores for smoke and quick, one H100 for full).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROFILES = ("smoke", "quick", "full")
PAPERS = {
    "A": "Rostami & Kia, Frank-Wolfe with projected forward gradients (arXiv 2403.12511)",
    "B": "Bolte, Boustany, Pauwels, Pesquet-Popescu, nonsmooth AD complexity (arXiv 2206.01730)",
    "C": "Wang, Li, Zhao, mDLAM (Neurocomputing 2022)",
    "D": "Wang, Li, Zhao, dlADMM (KDD 2019; arXiv 2112.11619)",
    "X": "the project's own cross-paper comparison",
}


@dataclass(frozen=True)
class Entry:
    """One paper result: its notebook, cost per profile, required datasets, profile parameters.

    ``datasets`` are the ones the notebook cannot run without (checked before
    anything runs); optional ones (PubMed, full MNIST, ...) are reported by the
    notebook as not testable when missing. ``any_datasets``: the notebook runs on
    those of these it finds and needs at least one (narrowed to its ``datasets``
    parameter when it has one; also checked before anything runs). ``loops``: the parameters that are
    loop lengths (iterations, epochs, repeats, networks, seeds), each with the small value that the
    shape check runs instead of the full one.
    """

    id: str
    title: str
    notebook: str
    minutes: dict[str, float]
    wants_gpu: bool = False
    datasets: tuple[str, ...] = ()
    any_datasets: tuple[str, ...] = ()
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    loops: dict[str, Any] = field(default_factory=dict)

    @property
    def paper(self) -> str:
        return self.id[0]

    def parameters(self, profile: str) -> dict[str, Any]:
        """Profile-specific parameters; smoke is the notebook's own defaults."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
        return dict(self.profiles.get(profile, {}))

    def shape_parameters(self) -> dict[str, Any]:
        """The full profile with every loop length capped (``loops``): full-size data, widths and task
        lists, a few iterations; what ``reproduce.py --shape-check`` runs."""
        return {**self.parameters("full"), **self.loops}


GRAPHS = ("cora", "citeseer", "pubmed", "coauthor-cs", "coauthor-physics")

CATALOGUE: tuple[Entry, ...] = (
    Entry(
        "A1", "Convex constrained least squares: PFG-FW floor vs averaged PFG-FW",
        "A1_convex_frank_wolfe.ipynb",
        loops={"iterations": 300, "sweep_iterations": 200},
        minutes={"smoke": 0.5, "quick": 1.3, "full": 15.0},
        profiles={
            "quick": {"samples": 1000, "dimension": 200, "iterations": 2000, "sweep_dimensions": [50, 200, 1000],
                      "sweep_directions": [1, 4, 16], "sweep_iterations": 500},
            "full": {"samples": 2000, "dimension": 1000, "iterations": 100000, "sweep_dimensions": [50, 200, 1000],
                     "sweep_directions": [1, 4, 16], "sweep_iterations": 20000},
        },
    ),
    Entry(
        "A2", "Nonconvex MLP training under per-layer constraints",
        "A2_nonconvex_mlp_frank_wolfe.ipynb",
        loops={"iterations": 20, "gap_every": 10},
        minutes={"smoke": 0.3, "quick": 1.3, "full": 60.0}, datasets=("fashion-mnist", "mnist-subset"),
        profiles={  # quick: 18 runs (both rules, m in 1, 4, 16) for 1.3 min of CPU (the old 8 runs: 0.7 min): 320 steps
            # on 4,000 images (10.2 epochs at batch 128), the FW gap every 10 steps (8 records a quarter for A2.1/A2.2)
            "quick": {"hidden": 64, "iterations": 320, "train_samples": 4000, "test_samples": 0,
                      "gap_samples": 1000, "gap_every": 10, "learning_rate": 0.1},
            "full": {"hidden": 256, "iterations": 20000, "train_samples": 0, "test_samples": 0,
                     "gap_samples": 5000, "gap_every": 250, "learning_rate": 0.1},
        },
    ),
    Entry(
        "A3", "Memory and time: forward-gradient vs backprop training",
        "A3_memory_and_time.ipynb",
        loops={"repeats": 1},
        minutes={"smoke": 0.3, "quick": 0.5, "full": 5.0}, wants_gpu=True,
        profiles={
            "quick": {"width": 512, "depths": [2, 4, 8, 16], "batches": [1, 64, 1024], "repeats": 3},
            "full": {"width": 2048, "depths": [2, 4, 8, 16], "batches": [1, 256, 1024, 4096], "repeats": 5},
        },
    ),
    Entry(
        "B1", "Cheap gradient principle: backward time over function time",
        "B1_cheap_gradient.ipynb",
        loops={"repeats": 1, "warmup": 1},
        minutes={"smoke": 0.2, "quick": 0.35, "full": 5.0}, wants_gpu=True,
        profiles={"quick": {"widths": [64, 128, 256, 512, 1024, 2048], "depths": [1, 2, 4, 8, 16], "base_width": 256,
                            "base_depth": 4, "batch": 64, "repeats": 10, "warmup": 3},
                  "full": {"widths": [64, 128, 256, 512, 1024, 2048, 4096, 8192], "depths": [2, 4, 8, 16, 32],
                           "base_width": 1024, "base_depth": 4, "batch": 1024, "repeats": 8, "warmup": 1,
                           "cpu_threads": 0}},
    ),
    Entry(
        "B2", "Forward mode: full gradient costs about p evaluations",
        "B2_forward_mode_cost.ipynb",
        loops={"repeats": 1, "warmup": 1},
        minutes={"smoke": 0.2, "quick": 0.4, "full": 5.0}, wants_gpu=True,
        profiles={"quick": {"dimensions": [16, 32, 64, 128, 256, 512, 1024, 2048], "hidden": 128, "depth": 3,
                            "loop_limit": 256, "memory_depths": [1, 2, 4, 8, 16], "memory_width": 256,
                            "memory_batch": 64, "repeats": 10, "warmup": 2},
                  "full": {"dimensions": [16, 64, 256, 1024, 4096], "hidden": 1024, "depth": 4, "loop_limit": 1024,
                           "memory_depths": [1, 2, 4, 8, 16, 32], "memory_width": 1024, "memory_batch": 256,
                           "repeats": 20, "warmup": 5, "cpu_threads": 0}},
    ),
    Entry(
        "B3", "Many directional derivatives vs one matrix product",
        "B3_directional_derivatives.ipynb",
        loops={"repeats": 1, "warmup": 1},
        minutes={"smoke": 0.2, "quick": 0.4, "full": 5.0}, wants_gpu=True,
        profiles={"quick": {"sizes": [128, 256, 512, 1024, 2048], "depth": 3, "loop_limit": 256, "repeats": 5,
                            "warmup": 1},
                  "full": {"sizes": [128, 256, 512, 1024, 2048, 4096, 8192], "depth": 4, "loop_limit": 1024,
                           "repeats": 8, "warmup": 1, "cpu_threads": 0}},
    ),
    Entry(
        "B4", "Kinks: what AD returns at nondifferentiable points",
        "B4_kinks.ipynb",
        loops={"networks": 2},
        minutes={"smoke": 0.2, "quick": 0.6, "full": 5.0},
        profiles={"quick": {"train_limit": 8000, "test_limit": 2000, "networks": 30},
                  "full": {"train_limit": 8000, "test_limit": 2000, "networks": 200, "cpu_threads": 0}},
    ),
    Entry(
        "B5", "Hardness: same function, different AD outputs",
        "B5_hardness.ipynb",
        loops={"instances": 1},
        minutes={"smoke": 0.2, "quick": 0.35, "full": 5.0},
        profiles={"quick": {"hidden_sizes": [2, 3, 4, 5], "instances": 3, "points": 4000},
                  "full": {"hidden_sizes": [2, 3, 4, 5, 6], "instances": 10, "points": 20000}},
    ),
    Entry(
        "C1", "mDLAM convergence: monotone objective with and without acceleration",
        "C1_mdlam_convergence.ipynb",
        loops={"iterations": 2},
        minutes={"smoke": 0.2, "quick": 1.2, "full": 3.0}, any_datasets=GRAPHS,
        profiles={"quick": {"datasets": ["cora", "citeseer", "pubmed", "coauthor-cs"], "iterations": 200},
                  "full": {"datasets": ["cora", "citeseer", "pubmed", "coauthor-cs"], "iterations": 200}},
    ),
    Entry(
        "C2", "mDLAM accuracy against gradient baselines and dlADMM",
        "C2_mdlam_accuracy.ipynb",
        loops={"iterations": 2},
        minutes={"smoke": 0.2, "quick": 2.4, "full": 5.0}, any_datasets=GRAPHS,
        profiles={"quick": {"datasets": ["cora", "citeseer", "pubmed", "coauthor-cs"], "iterations": 200},
                  "full": {"datasets": ["cora", "citeseer", "pubmed", "coauthor-cs"], "iterations": 200}},
    ),
    Entry(
        "C3", "mDLAM runtime against width and rho",
        "C3_mdlam_runtime.ipynb",
        loops={"repeats": 1},
        minutes={"smoke": 0.2, "quick": 0.8, "full": 10.0}, any_datasets=GRAPHS,
        profiles={"quick": {"datasets": ["cora", "citeseer"],
                            "widths": [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
                            "rhos": [1e-06, 1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0], "repeats": 3},
                  "full": {"datasets": ["cora", "citeseer"],
                           "widths": [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
                           "rhos": [1e-06, 1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0], "repeats": 20}},
    ),
    Entry(
        "C4", "mDLAM sensitivity to rho and epsilon0",
        "C4_mdlam_sensitivity.ipynb",
        loops={"iterations": 2},
        minutes={"smoke": 0.1, "quick": 2.7, "full": 8.0}, any_datasets=GRAPHS,
        profiles={"quick": {"datasets": ["cora", "citeseer"], "rhos": [0.0001, 0.001, 0.01],
                            "eps0s": [1.0, 10.0, 100.0], "iterations": 200},
                  "full": {"datasets": ["cora", "citeseer"], "rhos": [0.0001, 0.001, 0.01],
                           "eps0s": [1.0, 10.0, 100.0], "iterations": 200}},
    ),
    Entry(
        "D1", "dlADMM convergence at rho=1 and rho=1e-6",
        "D1_dladmm_convergence.ipynb",
        loops={"iterations": 2},
        minutes={"smoke": 0.2, "quick": 1.1, "full": 10.0}, wants_gpu=True, datasets=("fashion-mnist", "mnist-subset"),
        profiles={"quick": {"train_size": 1000, "test_size": 1000, "width": 1000, "iterations": 30},
                  "full": {"train_size": 60000, "test_size": 10000, "width": 1000, "iterations": 200}},
    ),
    Entry(
        "D2", "dlADMM accuracy against five baselines",
        "D2_dladmm_accuracy.ipynb",
        loops={"iterations": 2, "evaluate_every": 1},
        minutes={"smoke": 0.2, "quick": 4.0, "full": 15.0}, wants_gpu=True, datasets=("fashion-mnist", "mnist-subset"),
        profiles={"quick": {"datasets": ["fashion-mnist"], "train_size": 10000, "test_size": 10000, "width": 1000,
                            "iterations": 30, "evaluate_every": 5},
                  "full": {"train_size": 60000, "test_size": 10000, "width": 1000, "iterations": 200}},
    ),
    Entry(
        "D3", "dlADMM runtime against width and training size",
        "D3_dladmm_runtime.ipynb",
        loops={"iterations": 1, "repeats": 1},
        minutes={"smoke": 0.2, "quick": 1.2, "full": 8.0}, wants_gpu=True, datasets=("fashion-mnist",),
        profiles={"quick": {"widths": [200, 400, 600, 800, 1000], "sizes": [1000, 2000, 3000, 4000, 5000],
                            "width_size": 1000, "iterations": 2, "repeats": 3, "exact_width": 1000},
                  "full": {"widths": [200, 400, 600, 800, 1000], "sizes": [12000, 24000, 36000, 48000, 60000],
                           "width_size": 60000, "iterations": 1, "repeats": 2, "exact_width": 1000}},
    ),
    Entry(
        "D4", "dlADMM for a two-layer GCN on Cora and Citeseer",
        "D4_dladmm_gcn.ipynb",
        loops={"iterations": 3, "evaluate_every": 1},
        minutes={"smoke": 0.2, "quick": 1.5, "full": 3.0}, any_datasets=GRAPHS,
        profiles={"quick": {"hidden": 128, "iterations": 500, "rho_every": 50, "evaluate_every": 5},
                  "full": {"hidden": 128, "iterations": 500, "rho_every": 50}},
    ),
    Entry(
        "D5", "dlADMM sensitivity to rho and its schedule",
        "D5_dladmm_rho.ipynb",
        loops={"iterations": 2},
        minutes={"smoke": 0.2, "quick": 1.3, "full": 15.0}, wants_gpu=True, datasets=("fashion-mnist",),
        profiles={"quick": {"train_size": 1000, "test_size": 1000, "width": 1000, "iterations": 30},
                  "full": {"train_size": 60000, "test_size": 10000, "width": 1000, "iterations": 200}},
    ),
    Entry(
        "X1", "Every method at an equal wall-clock budget (the project's cross-paper comparison)",
        "X1_equal_budget.ipynb",
        loops={"max_steps": 2, "seeds": 1},
        minutes={"smoke": 1.3, "quick": 7.0, "full": 45.0}, wants_gpu=True,
        any_datasets=("fashion-mnist", "mnist-subset", "cora", "citeseer"),
        profiles={"quick": {"image_datasets": ["fashion-mnist"], "graph_datasets": ["cora"], "train_size": 1500,
                            "test_size": 1000, "width": 256, "graph_width": 100, "gcn_hidden": 128, "batch": 1024,
                            "practitioner_batch": 256, "image_seconds": 4.0, "graph_seconds": 5.0, "max_steps": 0,
                            "seeds": 3, "points": 4, "resolution": 40},
                  # full: the training accuracy scored on 10,000 of the 60,000 images and 25 evaluations before the
                  # target (0.6 s resolution): scoring every image 100 times a run took CPU hours (README, X1)
                  "full": {"train_size": 0, "test_size": 0, "train_scored": 10000, "width": 1000, "graph_width": 100,
                           "gcn_hidden": 128, "batch": 1024, "practitioner_batch": 256, "image_seconds": 15.0,
                           "graph_seconds": 8.0, "max_steps": 0, "seeds": 5, "points": 8, "resolution": 25}},
    ),
)


def entry(identifier: str) -> Entry:
    """The entry for an id (``A1``) or notebook name (``A1_convex_frank_wolfe``)."""
    key = identifier.removesuffix(".ipynb").lower()
    for candidate in CATALOGUE:
        if key in (candidate.id.lower(), candidate.notebook.removesuffix(".ipynb").lower()):
            return candidate
    known = ", ".join(e.id for e in CATALOGUE)
    raise KeyError(f"unknown notebook {identifier!r}; expected one of {known} (see --list)")
