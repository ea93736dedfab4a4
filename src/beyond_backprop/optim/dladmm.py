r"""dlADMM: deep learning ADMM (Wang, Yu, Chen, Zhao, KDD 2019), for an MLP of any depth.

Rows are samples (``x`` is N×n_0, ``z_l`` and ``a_l`` are N×n_l, ``W_l`` is n_l×n_{l-1}; the paper
writes the transposes). The relaxed problem P2 and its augmented Lagrangian, with
``m_l = a_{l-1} W_l^T + b_l`` and ``r = z_L - m_L``:

.. math::
    L_\rho = R(z_L; y) + \tfrac{\nu}{2}\sum_{l<L}\big(\|z_l - m_l\|^2 + \|a_l - f(z_l)\|^2\big)
        + \langle u, r\rangle + \tfrac{\rho}{2}\|r\|^2

``R`` is the softmax cross-entropy summed over samples. One iteration (Alg. 1)::

    backward: z_L <- FISTA; b_L <- mean(z_L + u/rho - a_{L-1} W_L^T); W_L <- BT_W
              for l = L-1..1: a_l <- BT_a; z_l <- Zrelu; b_l <- mean(z_l - a_{l-1} W_l^T); W_l <- BT_W
    forward:  for l = 1..L-1: W_l <- BT_W; b_l; z_l <- Zrelu; a_l <- BT_a
              W_L <- BT_W; b_L; z_L <- FISTA
    dual:     u <- u + rho (z_L - a_{L-1} W_L^T - b_L)

``BT`` is one gradient step ``x+ = x - g/t`` on the block's quadratic subproblem, ``t`` doubled until
``f(x+) <= f(x) + <g, x+ - x> + t/2 ||x+ - x||^2`` (Alg. 2-4). The test is evaluated in closed form
and each layer's product ``a_{l-1} W_l^T`` is kept current instead of recomputed
(:mod:`.quadratic_blocks`): about four GEMMs per block update, no host sync until the end of a step.

.. note::
    The official code differs from the paper in the switches of :class:`DLADMMOptions`; the preset
    :data:`OFFICIAL` sets all of them, :data:`PAPER` none: ``nu=None`` ties ν to ρ instead of a fixed ν;
    ``rho_rule="code"`` multiplies ρ by 10 (capped at 0.1), and the backtracking starts θ, τ by 10, when
    the training loss rose three iterations in a row, where the paper's ``rho_rule="paper"`` multiplies
    ρ by 10 every 100 iterations; ``z_last_init="labels"`` starts ``z_L`` at ``2y - 1`` instead of the
    forward pass; ``restart_backtracking=True`` restarts every backtracking search at the global θ/τ
    instead of half the last accepted value; ``fista_step=4`` is the code's z_L step; ``shared_init=True``
    draws every W and b from the same seed. Not reproduced: the code's backtracking has no cap on its trials
    (here 60, then the block is kept), and its exp/log clamping (here a stable log-softmax).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ..models import cross_entropy_sum, draw_normal, mlp_logits
from ..problem import Problem, Split
from .admm_blocks import exact_a, exact_w, update_z_last, update_z_relu
from .construction import check_widths, with_overrides
from .quadratic_blocks import activation_step, weight_step
from .workspace import INNER_2, OUTER, Workspace

RHO_RULES = ("fixed", "paper", "code")
Z_LAST_INITS = ("forward", "labels")
SUBPROBLEMS = ("quadratic", "exact")


@dataclass(frozen=True)
class DLADMMOptions:
    """Every switch of dlADMM (see the module docstring); :data:`PAPER` and :data:`OFFICIAL` are the presets.

    Args:
        rho: initial penalty ρ. nu: hidden penalty ν; ``None`` ties ν to ρ (code).
        rho_rule: ``paper`` (ρ×10 every 100 iterations), ``code`` or ``fixed``.
        restart_backtracking: start every backtracking search at ``theta0``/``tau0`` (times the state's
            ``backtracking_scale``; code) instead of the larger of that and half the last accepted t.
        z_last_init: ``forward`` or ``labels`` (``2y - 1``, code).
        subproblem: ``quadratic`` (backtracking) or ``exact`` (least squares and linear solves, cubic cost).
        init_std: standard deviation of the N(0, std²) initial W and b (0.1, code).
        shared_init: draw every W and b from the generator's state at ``init`` (the code resets seed 13
            before each tensor) instead of one after the other.
        theta0, tau0: initial backtracking constants of the W- and a-steps.
        fista_step: step of the z_L FISTA (2 = 1/H for the cross-entropy; the code uses 4).
    """

    rho: float = 1e-6
    nu: float | None = 1e-6
    rho_rule: str = "paper"
    restart_backtracking: bool = False
    z_last_init: str = "forward"
    subproblem: str = "quadratic"
    init_std: float = 0.1
    shared_init: bool = False
    theta0: float = 1.0
    tau0: float = 1.0
    fista_step: float = 2.0

    def __post_init__(self) -> None:
        for name in ("rho", "init_std", "theta0", "tau0", "fista_step"):
            if getattr(self, name) <= 0:
                raise ValueError(f"invalid {name} {getattr(self, name)!r}; expected > 0")
        if self.nu is not None and self.nu <= 0:
            raise ValueError(f"invalid nu {self.nu!r}; expected > 0 or None")
        for name, allowed in (("rho_rule", RHO_RULES), ("z_last_init", Z_LAST_INITS), ("subproblem", SUBPROBLEMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"invalid {name} {getattr(self, name)!r}; expected one of {allowed}")


# KDD 2019 Algorithm 1: fixed nu = 1e-6, rho = 1e-6 raised x10 every 100 iterations; the forward pass starts z_L
PAPER = DLADMMOptions()
# the published code (spec §4): nu tied to rho, the adaptive rho rule, backtracking restarted at the global
# theta/tau, z_L = 2y - 1, FISTA step 4, every tensor drawn from the same seed
OFFICIAL = DLADMMOptions(nu=None, rho_rule="code", restart_backtracking=True, z_last_init="labels",
                         fista_step=4.0, shared_init=True)


@dataclass
class DLADMMState:
    """All blocks: ``weights[l]`` (n_l×n_{l-1}), ``biases[l]``, ``z[l]`` (N×n_l), ``a[l]`` (l < L; the output of
    hidden layer l+1, never the input), dual ``u``; the backtracking state ``theta``, ``tau`` (last accepted
    t per layer) and ``backtracking_scale``, the factor on ``theta0``/``tau0`` that ``rho_rule="code"`` raises
    ×10 with ρ (the code's θ, τ restart); ``losses``, the training losses that rule watches."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    z: list[torch.Tensor]
    a: list[torch.Tensor]
    u: torch.Tensor
    rho: float
    theta: list[float]
    tau: list[float]
    k: int = 0
    backtracking_scale: float = 1.0
    losses: list[float] = field(default_factory=list)


class DLADMM:
    """dlADMM for the ReLU MLP ``widths = [n_0, ..., n_L]`` (see the module docstring), through the solver contract.

    ``DLADMM(widths)`` runs :data:`PAPER`; ``DLADMM(widths, options=OFFICIAL)`` the published code;
    keyword overrides replace single fields of :class:`DLADMMOptions`, e.g.
    ``DLADMM(widths, options=OFFICIAL, rho=1.0)``.
    """

    def __init__(self, widths: list[int], *, options: DLADMMOptions = PAPER, **overrides) -> None:
        if len(widths) < 2 or any(w < 1 for w in widths):
            raise ValueError(f"invalid widths {widths!r}; expected at least two positive widths")
        self.widths, self.options = list(widths), with_overrides(options, overrides)

    def init(self, problem: Problem, generator: torch.Generator) -> DLADMMState:
        """W, b ~ N(0, std²); z, a by the forward pass; ``z_L`` per ``z_last_init``; ``u = 0``."""
        check_widths(self.widths, problem)
        opts, x = self.options, problem.x
        start = generator.get_state()

        def draw(*shape: int) -> torch.Tensor:
            if opts.shared_init:
                generator.set_state(start)
            return draw_normal(shape, opts.init_std, generator, x)

        weights, biases = [], []
        for m, n in zip(self.widths[:-1], self.widths[1:]):
            weights.append(draw(n, m))
        for n in self.widths[1:]:
            biases.append(draw(n))
        z, a, h = [], [], x
        for w, b in zip(weights, biases):
            z.append(h @ w.T + b)
            h = torch.relu(z[-1])
            a.append(h)
        if opts.z_last_init == "labels":
            z[-1] = 2.0 * problem.onehot - 1.0
        layers = len(weights)
        return DLADMMState(weights, biases, z, a[:-1], torch.zeros_like(z[-1]), opts.rho,
                           [opts.theta0] * layers, [opts.tau0] * layers)

    def _nu(self, state: DLADMMState) -> float:
        return state.rho if self.options.nu is None else self.options.nu

    def _start(self, s: DLADMMState, previous: torch.Tensor, base: float) -> torch.Tensor | float:
        base = base * s.backtracking_scale
        return base if self.options.restart_backtracking else torch.clamp(previous / 2.0, min=base)

    def _target(self, s: DLADMMState, ws: Workspace, l: int) -> tuple[torch.Tensor, float]:
        """``(z_l - b_l (+ u/rho), weight)`` of layer l's linear constraint, in the workspace's ``OUTER``."""
        target = torch.sub(s.z[l], s.biases[l], out=ws.like(OUTER, s.z[l]))
        if l == len(s.weights) - 1:
            return target.add_(s.u / s.rho), s.rho
        return target, self._nu(s)

    def _input(self, s: DLADMMState, x: torch.Tensor, l: int) -> torch.Tensor:
        return x if l == 0 else s.a[l - 1]

    def _w(self, s: DLADMMState, ws: Workspace, x: torch.Tensor, products: list[torch.Tensor], l: int) -> None:
        a_prev, (target, weight) = self._input(s, x, l), self._target(s, ws, l)
        if self.options.subproblem == "exact":
            s.weights[l] = exact_w(a_prev, target)
            products[l] = a_prev @ s.weights[l].T
            return
        s.weights[l], products[l], s.theta[l] = weight_step(s.weights[l], a_prev, products[l], target, weight,
                                                            self._start(s, s.theta[l], self.options.theta0),
                                                            workspace=ws)

    def _b(self, s: DLADMMState, products: list[torch.Tensor], l: int) -> None:
        s.biases[l] = s.z[l].mean(dim=0) - products[l].mean(dim=0)
        if l == len(s.weights) - 1:
            s.biases[l] += s.u.mean(dim=0) / s.rho

    def _z(self, s: DLADMMState, ws: Workspace, onehot: torch.Tensor, products: list[torch.Tensor], l: int) -> None:
        m = torch.add(products[l], s.biases[l], out=ws.like(OUTER, products[l]))
        if l == len(s.weights) - 1:
            s.z[l] = update_z_last(s.z[l], m.sub_(s.u / s.rho), onehot, s.rho, step=self.options.fista_step)
        else:
            s.z[l] = update_z_relu(m, s.a[l], workspace=ws)

    def _a(self, s: DLADMMState, ws: Workspace, products: list[torch.Tensor], l: int) -> None:
        target, weight_next = self._target(s, ws, l + 1)
        h = torch.clamp_min(s.z[l], 0.0, out=ws.like(INNER_2, s.z[l]))  # relu(z_l)
        if self.options.subproblem == "exact":
            s.a[l] = exact_a(s.weights[l + 1], target, weight_next, h, self._nu(s))
            products[l + 1] = s.a[l] @ s.weights[l + 1].T
            return
        s.a[l], products[l + 1], s.tau[l] = activation_step(s.a[l], s.weights[l + 1], products[l + 1], target,
                                                            weight_next, h, self._nu(s),
                                                            self._start(s, s.tau[l], self.options.tau0),
                                                            workspace=ws)

    def step(self, state: DLADMMState, problem: Problem) -> DLADMMState:
        """One backward sweep, one forward sweep and the dual step (Alg. 1); returns a new state.

        Each layer's product ``a_{l-1} W_l^T`` is computed once and then kept current by the block
        updates (see :mod:`.quadratic_blocks`); the step sizes stay on the device until the end; the
        N×width temporaries of the block updates are allocated once per step (:class:`.Workspace`).
        """
        x, onehot = problem.x, problem.onehot
        s = replace(state, weights=list(state.weights), biases=list(state.biases), z=list(state.z),
                    a=list(state.a), losses=list(state.losses))
        s.theta, s.tau = ([torch.full((), t, dtype=torch.float64, device=x.device) for t in ts]
                          for ts in (state.theta, state.tau))
        products = [self._input(s, x, l) @ w.T for l, w in enumerate(s.weights)]
        last, ws = len(s.weights) - 1, Workspace()
        self._z(s, ws, onehot, products, last)
        self._b(s, products, last)
        self._w(s, ws, x, products, last)
        for l in range(last - 1, -1, -1):
            self._a(s, ws, products, l)
            self._z(s, ws, onehot, products, l)
            self._b(s, products, l)
            self._w(s, ws, x, products, l)
        for l in range(last):
            self._w(s, ws, x, products, l)
            self._b(s, products, l)
            self._z(s, ws, onehot, products, l)
            self._a(s, ws, products, l)
        self._w(s, ws, x, products, last)
        self._b(s, products, last)
        self._z(s, ws, onehot, products, last)
        s.u = s.u + s.rho * (s.z[last] - products[last] - s.biases[last])
        steps = torch.stack(s.theta + s.tau).tolist()  # the one host sync of the step
        s.theta, s.tau = steps[:len(s.theta)], steps[len(s.theta):]
        s.k += 1
        self._adapt(s, problem, products[0])
        return s

    def _adapt(self, s: DLADMMState, problem: Problem, first_product: torch.Tensor | None = None) -> None:
        """The ρ rule after a step. The code's rule needs the training loss of the network ``(W, b)``; its
        first layer's product ``x W_1^T`` is ``first_product`` when given (kept current by the step)."""
        if self.options.rho_rule == "paper" and s.k % 100 == 0:
            s.rho *= 10.0
        elif self.options.rho_rule == "code":
            if first_product is None:
                logits = mlp_logits(s.weights, s.biases, problem.x)
            else:
                logits = first_product + s.biases[0]
                if len(s.weights) > 1:
                    logits = mlp_logits(s.weights[1:], s.biases[1:], logits.relu_())
            loss = torch.nn.functional.cross_entropy(logits, problem.y)
            s.losses.append(float(loss))
            recent = s.losses[-4:]
            if len(recent) == 4 and recent[0] < recent[1] < recent[2] < recent[3]:
                s.rho = min(10.0 * s.rho, 0.1)
                if min(self.widths[1:-1], default=0) >= 100:
                    s.backtracking_scale *= 10.0

    def residual_matrix(self, s: DLADMMState, problem: Problem) -> torch.Tensor:
        """``r = z_L - a_{L-1} W_L^T - b_L``."""
        return s.z[-1] - self._input(s, problem.x, len(s.weights) - 1) @ s.weights[-1].T - s.biases[-1]

    def lagrangian(self, s: DLADMMState, problem: Problem) -> torch.Tensor:
        """The augmented Lagrangian ``L_rho`` of the module docstring."""
        x, r = problem.x, self.residual_matrix(s, problem)
        value = cross_entropy_sum(s.z[-1], problem.onehot) + (s.u * r).sum() + 0.5 * s.rho * r.square().sum()
        for l in range(len(s.weights) - 1):
            m = self._input(s, x, l) @ s.weights[l].T + s.biases[l]
            value = value + 0.5 * self._nu(s) * ((s.z[l] - m).square().sum()
                                                 + (s.a[l] - torch.relu(s.z[l])).square().sum())
        return value

    def metrics(self, state: DLADMMState, problem: Problem) -> dict[str, torch.Tensor]:
        """``lagrangian`` (L_rho), ``residual`` (``||r||^2``) and ``rho``, after the step."""
        return {"lagrangian": self.lagrangian(state, problem),
                "residual": self.residual_matrix(state, problem).square().sum(),
                "rho": torch.tensor(state.rho, dtype=torch.float64)}

    @staticmethod
    def logits(state: DLADMMState, problem: Problem, split: Split) -> torch.Tensor:
        """Logits of the plain network with the current ``(W, b)`` on the scored rows of ``split``."""
        out = mlp_logits(state.weights, state.biases, split.inputs)
        return out if split.index is None else out[split.index]

