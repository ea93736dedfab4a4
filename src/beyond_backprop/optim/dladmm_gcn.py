r"""dlADMM for the two-layer GCN ``Z_2 = Â relu(Â X W_1) W_2`` (journal, reconstructed from the official code).

With ``T`` the training nodes, ``P = Â_T X`` (training rows of ``Â X``) and
``Â_T Z_1 = Â_{T,T} Z_1[T] + Â_{T,\bar T} Z_1[\bar T]``:

.. math::
    \min\ CE(Z_2) + \tfrac{\rho}{2}\|Z_1[T] - \mathrm{relu}(P W_1)\|^2 + \mu(\|W_1\|^2 + \|W_2\|^2)
    \quad\text{s.t.}\quad Z_2 = Â_T Z_1 W_2

One epoch::

    backward: Z_2 <- FISTA (at most 50 steps); W_2, Z_1[T], W_1 <- BT
    forward:  W_1, Z_1[T], W_2 <- BT; Z_2 <- FISTA
    dual:     u <- u + rho (Z_2 - Â_T Z_1 W_2)
    every ``rho_every`` epochs: rho <- min(10 rho, rho_max)

``BT`` is one gradient step with backtracking (:func:`~.admm_blocks.backtrack`), started at the code's
constant (W_1: 1, W_2: 1e-2, Z_1: 1e-3) or at half the last accepted value if that is larger, at most
32 tries (``faithful`` and ``max_tries`` switch to the code's rule). Only ``Â``'s training rows enter
the updates: :func:`gcn_operators` takes them from the sparse ``Â`` (``Â_{T,T}`` as a dense n_T×n_T
block), so memory is O(nnz(Â) + n_T·F + N·H), never N×N.

.. note::
    As in the code, ν ≡ ρ, and only the training rows of ``Z_1`` are variables: the other rows keep
    their initial forward values, and the rows of the evaluated splits (the code's test rows) are 0.
    The journal's text is not available; :data:`PAPER` is the algorithm as the spec reconstructs it
    and :data:`OFFICIAL` the published ``GCN/pytorch_version`` in full. They share ρ0 = 1e-3, the
    schedule ×10 every 50 epochs capped at 1 and μ (per dataset), and differ in the switches of
    :class:`GCNOptions`: ``decay="code"`` (the code's ``mu/2 ||W ⊙ W||_F``); ``faithful`` restarts
    every backtracking search at the code's constant instead of half the last accepted value;
    ``max_tries=33`` (the code's ``count > 32`` allows 33 tests); ``fista="code"`` with
    ``fista_step=5``, ``fista_check_every=1`` (the code's Z_2 loop, :func:`update_z2_code`);
    ``z2_init="forward"`` (Z_2 from the forward pass before the test rows of Z_1 are zeroed);
    ``shared_init`` (the seed is reset before W_1 and before W_2). Not reproduced: the code's
    ``torch.norm(x**2)`` in the logged objective (``lagrangian`` uses ``||x||^2``) and its ``+1e-10``
    inside the logarithm (a stable log-softmax here).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import torch

from ..models import cross_entropy_sum
from ..problem import Problem, Split
from .admm_blocks import backtrack, update_z_last
from .fista import fista_momentum

DECAYS = ("squared", "code")
FISTA_LOOPS = ("project", "code")
Z2_INITS = ("constraint", "forward")
GCN_T0 = {"w1": 1.0, "w2": 1e-2, "z1": 1e-3}  # the code's initial backtracking constants
FISTA_STEPS = 50  # the code's cap on the Z_2 FISTA iterations
FISTA_TOLERANCE = 1e-3  # the code's stopping tolerance of the Z_2 FISTA


def training_rows(adjacency: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The rows ``index`` of ``adjacency`` (sparse COO/CSR or dense) as a sparse CSR n_T×N tensor."""
    csr = adjacency if adjacency.layout == torch.sparse_csr else adjacency.to_sparse_csr()
    crow, col, values = csr.crow_indices(), csr.col_indices(), csr.values()
    starts, counts = crow[index], crow[index + 1] - crow[index]
    new_crow = torch.zeros(len(index) + 1, dtype=crow.dtype, device=crow.device)
    new_crow[1:] = torch.cumsum(counts, dim=0)
    offsets = torch.arange(int(new_crow[-1]), dtype=crow.dtype, device=crow.device)
    positions = offsets + torch.repeat_interleave(starts - new_crow[:-1], counts)
    return _csr(new_crow, col[positions], values[positions], (len(index), csr.shape[1]))


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():  # torch warns that sparse CSR is beta (see models.sparse_tensor)
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


def weight_decay(w: torch.Tensor, mu: float, decay: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The W-subproblem's decay term and its gradient: ``mu ||W||^2`` (``squared``), or the code's
    ``mu/2 ||W ⊙ W||_F = mu/2 sqrt(sum W^4)`` (``code``: its ``mu / 2 * torch.norm(w ** 2)``)."""
    if decay == "squared":
        return mu * w.square().sum(), 2.0 * mu * w
    norm = w.square().square().sum().sqrt()
    return 0.5 * mu * norm, mu * w.pow(3) / norm.clamp(min=torch.finfo(w.dtype).tiny)


def update_z2_code(z: torch.Tensor, target: torch.Tensor, y: torch.Tensor, rho: float, *, step: float = 5.0,
                   check_every: int = 1, tol: float = FISTA_TOLERANCE, max_iter: int = FISTA_STEPS) -> torch.Tensor:
    """The code's ``update_z2``: FISTA for ``min_z CE(z; y) + rho/2 ||z - target||^2`` from ``z``.

    The iteration is :func:`~.admm_blocks.update_z_last`'s, but the stopping test is made before a step, on
    the momentum point ``z`` (every ``check_every`` steps; the code: every step), with the code's
    ``rho/2 torch.norm((z - target) ** 2)`` (``rho/2 sqrt(sum r^4)``) as the quadratic term, and the
    momentum point is returned.
    """
    def objective(v: torch.Tensor) -> torch.Tensor:
        return cross_entropy_sum(v, y) + 0.5 * rho * (v - target).square().square().sum().sqrt()

    zeta, lam, f_old = z, 1.0, math.inf
    for i in range(max_iter):
        if i % check_every == 0:
            f_new = float(objective(z))
            if abs(f_new - f_old) < tol:
                break
            f_old = f_new
        lam_next = fista_momentum(lam)
        gamma, lam, zeta_prev = (1.0 - lam) / lam_next, lam_next, zeta
        zeta = (rho * target + z / step - (torch.softmax(z, dim=1) - y)) / (rho + 1.0 / step)
        z = (1.0 - gamma) * zeta + gamma * zeta_prev
    return z


@dataclass(frozen=True)
class GCNOptions:
    """Every switch of dlADMM-GCN (see the module docstring); :data:`PAPER` and :data:`OFFICIAL` are the presets.

    Args:
        rho: initial penalty ρ (code: 1e-3); ν ≡ ρ.
        mu: weight decay μ (code: 0 on Cora and PubMed, 100 on Citeseer, 10 on Coauthor).
        rho_every: epochs between ρ ← min(10ρ, rho_max) (code: 50). rho_max: the cap (code: 1).
        decay: the W-subproblems' decay, ``squared`` (``mu ||W||^2``, as in the objective) or ``code``
            (the code's ``mu/2 ||W ⊙ W||_F``, about ``2 sqrt(size/3)`` times weaker for Gaussian-like
            entries: the code's μ = 100 on Citeseer and 10 on Coauthor were set with it). The
            ``lagrangian`` metric uses ``mu ||W||^2`` either way.
        faithful: start every backtracking search at :data:`GCN_T0` (code) instead of the larger of it
            and half the last accepted value.
        max_tries: backtracking tests before the old value is kept (code: 33).
        fista: the Z_2 loop, ``project`` (:func:`~.admm_blocks.update_z_last`: tests and returns the prox
            point) or ``code`` (:func:`update_z2_code`).
        fista_step: the Z_2 FISTA step (2 = 1/H for the cross-entropy; code: 5).
        fista_check_every: steps between the Z_2 FISTA's stopping tests (code: 1).
        z2_init: ``constraint`` (``Â_T Z_1 W_2`` with the Z_1 that ADMM holds: zero residual) or
            ``forward`` (the code's forward pass, taken before the evaluated rows of Z_1 are zeroed).
        shared_init: draw W_1 and W_2 from the generator's state at ``init`` (the code resets the seed
            before each) instead of one after the other.
    """

    rho: float = 1e-3
    mu: float = 0.0
    rho_every: int = 50
    rho_max: float = 1.0
    decay: str = "squared"
    faithful: bool = False
    max_tries: int = 32
    fista: str = "project"
    fista_step: float = 2.0
    fista_check_every: int = 5
    z2_init: str = "constraint"
    shared_init: bool = False

    def __post_init__(self) -> None:
        for name in ("rho", "rho_max", "fista_step"):
            if getattr(self, name) <= 0:
                raise ValueError(f"invalid {name} {getattr(self, name)!r}; expected > 0")
        if self.mu < 0:
            raise ValueError(f"invalid mu {self.mu!r}; expected >= 0")
        for name in ("rho_every", "max_tries", "fista_check_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"invalid {name} {getattr(self, name)!r}; expected >= 1")
        for name, allowed in (("decay", DECAYS), ("fista", FISTA_LOOPS), ("z2_init", Z2_INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"invalid {name} {getattr(self, name)!r}; expected one of {allowed}")


# the journal's algorithm as the spec reconstructs it (§1.2, §2.5): the code's schedule, the squared decay
PAPER = GCNOptions()
# the published GCN/pytorch_version in full (spec §2.5, §4)
OFFICIAL = GCNOptions(decay="code", faithful=True, max_tries=33, fista="code", fista_step=5.0, fista_check_every=1,
                      z2_init="forward", shared_init=True)


@dataclass(frozen=True, eq=False)
class GCNOperators:
    """The constant operators of the training rows, computed once by :meth:`DLADMMGCN.init`.

    ``p = Â_T X`` (dense n_T×F), ``a_tt = Â_{T,T}`` (dense n_T×n_T), ``fixed = Â_{T,\\bar T} Z_1[\\bar T]``
    (n_T×H, the contribution of the rows of ``Z_1`` that ADMM never updates) and ``targets``, the
    training labels one-hot (n_T×C).
    """

    p: torch.Tensor
    a_tt: torch.Tensor
    fixed: torch.Tensor
    targets: torch.Tensor

    def mixed(self, z1: torch.Tensor) -> torch.Tensor:
        """``Â_T Z_1`` for training rows ``z1`` of ``Z_1``."""
        return self.a_tt @ z1 + self.fixed


def gcn_operators(adjacency: torch.Tensor, features: torch.Tensor, index: torch.Tensor, hidden: torch.Tensor,
                  targets: torch.Tensor) -> GCNOperators:
    """:class:`GCNOperators` for training nodes ``index`` from the sparse ``Â``, the features (dense or
    sparse), the initial ``Z_1`` (N×H) and the one-hot training labels."""
    rows = training_rows(adjacency, index)
    n = adjacency.shape[0]
    position = torch.full((n,), -1, dtype=torch.long, device=features.device)
    position[index] = torch.arange(len(index), device=features.device)
    crow = rows.crow_indices()
    row_of = torch.repeat_interleave(torch.arange(len(index), device=features.device), crow[1:] - crow[:-1])
    column = position[rows.col_indices()]
    inside = column >= 0
    a_tt = torch.zeros(len(index), len(index), dtype=hidden.dtype, device=hidden.device)
    a_tt.index_put_((row_of[inside], column[inside]), rows.values()[inside].to(hidden.dtype), accumulate=True)
    outside = hidden.clone()
    outside[index] = 0.0
    p = rows @ features
    return GCNOperators(p if p.layout == torch.strided else p.to_dense(), a_tt, rows @ outside, targets)


@dataclass
class GCNState:
    """GCN blocks: ``w1`` (F×H), ``w2`` (H×C), ``z1`` (training rows of the hidden output, n_T×H),
    ``z2`` (training logits, n_T×C), dual ``u`` (n_T×C); the constant ``operators``; backtracking ``t``."""

    w1: torch.Tensor
    w2: torch.Tensor
    z1: torch.Tensor
    z2: torch.Tensor
    u: torch.Tensor
    rho: float
    operators: GCNOperators
    k: int = 0
    t: dict[str, float] = field(default_factory=lambda: dict(GCN_T0))


def propagation(problem: Problem) -> torch.Tensor:
    """``problem.adjacency``, or for a problem without one the graph without edges: a sparse ``Â = I``."""
    if problem.adjacency is not None:
        return problem.adjacency
    n, dev = problem.train.inputs.shape[0], problem.device
    rows = torch.arange(n + 1, device=dev)
    return _csr(rows, rows[:-1], torch.ones(n, dtype=problem.train.inputs.dtype, device=dev), (n, n))


class DLADMMGCN:
    """dlADMM for the two-layer GCN ``widths = [features, hidden, classes]`` (see the module docstring).

    ``DLADMMGCN(widths)`` runs :data:`PAPER`; ``DLADMMGCN(widths, OFFICIAL, mu=100.0)`` the published
    code with Citeseer's μ; keyword overrides replace single switches of :class:`GCNOptions`.

    A graph problem carries ``adjacency`` (the normalised Â, sparse) and ``train.index`` (the training
    nodes), and ``train.inputs`` holds every node's features (dense, or sparse CSR for bag-of-words).
    Without ``adjacency`` the graph has no edges (``Â = I``: a bias-free two-layer MLP), and without
    ``train.index`` every row is a training node.
    """

    def __init__(self, widths: list[int], options: GCNOptions = PAPER, **overrides) -> None:
        if len(widths) != 3 or any(w < 1 for w in widths):
            raise ValueError(f"invalid widths {widths!r}; a two-layer GCN takes [in, hidden, classes]")
        self.widths, self.options = list(widths), replace(options, **overrides)

    def _check(self, problem: Problem) -> None:
        features = problem.train.inputs.shape[1]
        if features != self.widths[0] or problem.classes != self.widths[-1]:
            raise ValueError(f"invalid widths {self.widths!r} for {features} features and {problem.classes} classes")

    def init(self, problem: Problem, generator: torch.Generator) -> GCNState:
        """Glorot W; ``Z_1 = relu(Â X W_1)`` with the evaluated splits' rows 0; ``Z_2`` per ``z2_init``; ``u = 0``."""
        self._check(problem)
        features, dev, dtype = problem.train.inputs, problem.device, problem.train.inputs.dtype
        adjacency, index = propagation(problem), problem.train.index
        if index is None:
            index = torch.arange(features.shape[0], device=dev)
        opts, start = self.options, generator.get_state()
        w1, w2 = (torch.empty(m, n, dtype=dtype, device=dev) for m, n in zip(self.widths[:-1], self.widths[1:]))
        for w in (w1, w2):
            if opts.shared_init:
                generator.set_state(start)
            bound = math.sqrt(6.0 / sum(w.shape))
            drawn = torch.rand(w.shape, generator=generator, dtype=dtype, device=generator.device)  # generator rule
            w.copy_(drawn * 2 * bound - bound)
        hidden = torch.relu(adjacency @ (features @ w1))
        forward = (adjacency @ hidden)[index] @ w2 if opts.z2_init == "forward" else None
        for split in problem.evaluate.values():
            if split.index is not None:
                hidden[split.index] = 0.0
        targets = torch.nn.functional.one_hot(problem.y, problem.classes).to(dtype)
        operators = gcn_operators(adjacency, features, index, hidden, targets)
        z1 = hidden[index]
        z2 = operators.mixed(z1) @ w2 if forward is None else forward
        return GCNState(w1, w2, z1, z2, torch.zeros_like(z2), opts.rho, operators)

    @staticmethod
    def _phi1(s: GCNState, w1: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        return 0.5 * s.rho * (z1 - torch.relu(s.operators.p @ w1)).square().sum()

    @staticmethod
    def _phi2(s: GCNState, z1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        r = s.z2 - s.operators.mixed(z1) @ w2
        return (s.u * r).sum() + 0.5 * s.rho * r.square().sum()

    def _start(self, s: GCNState, block: str) -> float:
        return GCN_T0[block] if self.options.faithful else max(GCN_T0[block], s.t[block] / 2.0)

    def _decay(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return weight_decay(w, self.options.mu, self.options.decay)

    def _w1(self, s: GCNState) -> None:
        p = s.operators.p
        m = p @ s.w1
        grad = s.rho * p.T @ ((torch.relu(m) - s.z1) * (m > 0)) + self._decay(s.w1)[1]
        s.w1, s.t["w1"] = backtrack(lambda v: self._phi1(s, v, s.z1) + self._decay(v)[0], s.w1, grad,
                                    self._start(s, "w1"), max_tries=self.options.max_tries)

    def _w2(self, s: GCNState) -> None:
        h = s.operators.mixed(s.z1)
        grad = -h.T @ (s.u + s.rho * (s.z2 - h @ s.w2)) + self._decay(s.w2)[1]
        s.w2, s.t["w2"] = backtrack(lambda v: self._phi2(s, s.z1, v) + self._decay(v)[0], s.w2, grad,
                                    self._start(s, "w2"), max_tries=self.options.max_tries)

    def _z1(self, s: GCNState) -> None:
        r = s.z2 - s.operators.mixed(s.z1) @ s.w2
        grad = s.rho * (s.z1 - torch.relu(s.operators.p @ s.w1)) - s.operators.a_tt.T @ (s.u + s.rho * r) @ s.w2.T
        s.z1, s.t["z1"] = backtrack(lambda v: self._phi1(s, s.w1, v) + self._phi2(s, v, s.w2), s.z1, grad,
                                    self._start(s, "z1"), max_tries=self.options.max_tries)

    def _z2(self, s: GCNState) -> None:
        opts = self.options
        solve = update_z2_code if opts.fista == "code" else update_z_last
        s.z2 = solve(s.z2, s.operators.mixed(s.z1) @ s.w2 - s.u / s.rho, s.operators.targets, s.rho,
                     step=opts.fista_step, check_every=opts.fista_check_every, tol=FISTA_TOLERANCE,
                     max_iter=FISTA_STEPS)

    def step(self, state: GCNState, problem: Problem) -> GCNState:
        """One backward and forward sweep, the dual step and the ρ schedule; returns a new state."""
        s = replace(state, t=dict(state.t))
        for update in (self._z2, self._w2, self._z1, self._w1, self._w1, self._z1, self._w2, self._z2):
            update(s)
        s.u = s.u + s.rho * self.residual_matrix(s)
        s.k += 1
        if s.k % self.options.rho_every == 0:
            s.rho = min(10.0 * s.rho, self.options.rho_max)
        return s

    @staticmethod
    def residual_matrix(s: GCNState) -> torch.Tensor:
        """``r = Z_2 - Â_T Z_1 W_2``."""
        return s.z2 - s.operators.mixed(s.z1) @ s.w2

    def lagrangian(self, s: GCNState) -> torch.Tensor:
        """``CE + phi_1 + phi_2 + mu (||W_1||^2 + ||W_2||^2)``."""
        return (cross_entropy_sum(s.z2, s.operators.targets) + self._phi1(s, s.w1, s.z1)
                + self._phi2(s, s.z1, s.w2) + self.options.mu * (s.w1.square().sum() + s.w2.square().sum()))

    def metrics(self, state: GCNState, problem: Problem) -> dict[str, torch.Tensor]:
        """``lagrangian``, ``residual`` (``||r||^2``) and ``rho``."""
        return {"lagrangian": self.lagrangian(state),
                "residual": self.residual_matrix(state).square().sum(),
                "rho": torch.tensor(state.rho, dtype=state.z2.dtype, device=state.z2.device)}

    @staticmethod
    def logits(state: GCNState, problem: Problem, split: Split) -> torch.Tensor:
        """The GCN's forward pass on every node with the current ``W_1, W_2``; rows ``split.index``."""
        hidden = split.inputs @ state.w1
        if problem.adjacency is None:
            out = torch.relu(hidden) @ state.w2
        else:
            out = problem.adjacency @ (torch.relu(problem.adjacency @ hidden) @ state.w2)
        return out if split.index is None else out[split.index]
