"""Frank-Wolfe with exact, stochastic or projected forward gradients, with optional averaging.

.. math::
    d_k &= (1 - \\rho_k) d_{k-1} + \\rho_k g_k \\quad (d_k = g_k \\text{ without averaging}) \\\\
    s_k &= \\mathrm{LMO}_C(d_k) = \\arg\\min_{s \\in C} \\langle d_k, s \\rangle \\\\
    \\theta_{k+1} &= (1 - \\gamma_k) \\theta_k + \\gamma_k s_k

``g_k`` is whatever gradient estimate the caller puts in ``.grad``: the exact gradient (FW), a
mini-batch gradient (stochastic FW), a projected forward gradient (plain PFG-FW) or, with averaging,
averaged PFG-FW (Rostami & Kia, Alg. "Averaged PF-FW"; the averaging is Mokhtari et al.'s). The FW gap
``<d_k, theta_k - s_k>`` of the direction used is reported at each step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from .constraints import ConstraintSet

Schedule = Callable[[int], float]
Estimate = torch.Tensor | Callable[[torch.Tensor | None, float], torch.Tensor]  # g_k, or its fold (d, rho) -> d_k

# name -> (gamma_k, rho_k), k = 0, 1, 2, ...
SCHEDULES: dict[str, tuple[Schedule, Schedule]] = {
    "classic": (lambda k: 2.0 / (k + 2), lambda k: 1.0),
    "convex": (lambda k: 2.0 / (k + 8), lambda k: min(1.0, 4.0 / (k + 8) ** (2 / 3))),
    "nonconvex": (lambda k: 1.0 / (k + 1), lambda k: (k + 1) ** (-2 / 3)),
    "uniform-mean": (lambda k: 2.0 / (k + 8), lambda k: 1.0 / (k + 1)),
    # SFW practice (Pokutta, Spiegel & Zimmer 2020): a constant step (times step_scale, the learning
    # rate; with rescale="diameter" divided by each set's diameter) and momentum 0.9 as the averaging
    "sfw": (lambda k: 1.0, lambda k: 0.1),
}
RESCALES = (None, "diameter")


def named_schedule(name: str) -> tuple[Schedule, Schedule]:
    """The ``(gamma_k, rho_k)`` pair of a named schedule."""
    if name not in SCHEDULES:
        raise ValueError(f"invalid schedule {name!r}; expected one of {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


def frank_wolfe_update(
    params: Sequence[torch.Tensor],
    estimates: Iterable[Estimate],
    directions: Sequence[torch.Tensor | None],
    constraints: Sequence[ConstraintSet],
    *,
    gamma: float | Sequence[float],
    rho: float | Sequence[float],
    buffer: torch.Tensor | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One FW step in place on ``params``; returns the new directions ``d_k`` and the FW gap.

    ``directions[i]`` is ``d_{k-1}`` (``None`` on the first step, treated as 0) and is averaged in
    place; ``rho = 1`` means no averaging, and then ``d_k`` is the estimate itself (no copy).
    ``gamma`` and ``rho`` are one value for every tensor or one per tensor. ``estimates`` may be an iterator
    that makes each estimate when asked: then one estimate is alive at a time. An estimate may also be a fold,
    ``(d, rho) -> (1 - rho) d + rho g`` written into ``d`` (``g`` itself, new, for ``d = None``), for an estimate
    never made whole (e.g. :func:`~beyond_backprop.autodiff.forward_gradient.redrawn_folds`). A set with a sparse
    LMO (:meth:`~.constraints.ConstraintSet.sparse_lmo`) moves ``theta`` by a scale and a scatter; for the others
    ``buffer`` (at least as many entries as the largest such tensor, same dtype) receives each LMO vertex in turn.
    Either way the step allocates no parameter-sized tensor.
    """
    gammas = [gamma] * len(params) if isinstance(gamma, (int, float)) else list(gamma)
    if len(gammas) != len(params) or not all(0 <= g <= 1 for g in gammas):
        raise ValueError(f"invalid gamma {gamma!r}; expected 0 <= gamma <= 1, one value or one per tensor")
    rhos = [rho] * len(params) if isinstance(rho, (int, float)) else list(rho)
    if len(rhos) != len(params) or not all(0 < r <= 1 for r in rhos):
        raise ValueError(f"invalid rho {rho!r}; expected 0 < rho <= 1, one value or one per tensor")
    new_directions, gap = [], torch.zeros((), dtype=params[0].dtype, device=params[0].device)
    for p, g, d, c, step, weight in zip(params, estimates, directions, constraints, gammas, rhos):
        if callable(g):
            d = g(None if d is None or weight == 1 else d, weight)
        else:
            d = g if d is None or weight == 1 else d.mul_(1 - weight).add_(g, alpha=weight)
        flat = d.reshape(-1)
        vertex = c.sparse_lmo(d)
        if vertex is None:
            s = c.lmo(d, out=None if buffer is None else buffer[:d.numel()].view_as(d))
            gap = gap + (flat @ p.reshape(-1) - flat @ s.reshape(-1))
            p.mul_(1 - step).add_(s, alpha=step)
        else:
            index, values = vertex
            gap = gap + (flat @ p.reshape(-1) - flat[index] @ values)
            p.mul_(1 - step).view(-1).index_add_(0, index, values, alpha=step)
        new_directions.append(d)
    return new_directions, gap


class FrankWolfe(torch.optim.Optimizer):
    """Frank-Wolfe over per-tensor constraint sets, in the ``torch.optim`` style.

    Args:
        params: parameter groups, each with a ``"constraint"`` (a :class:`ConstraintSet` bound to
            that group's single tensor), e.g. from :func:`~.constraints.initialization_constraints`.
        schedule: ``classic`` (gamma = 2/(k+2)), ``convex`` (gamma = 2/(k+8), rho = 4/(k+8)^(2/3)),
            ``nonconvex`` (gamma = 1/(k+1), rho = (k+1)^(-2/3)), ``uniform-mean`` (rho = 1/(k+1)),
            or a ``(gamma, rho)`` pair of callables of k.
        averaging: average the estimates with rho_k (averaged FW); without it, d_k = g_k.
        step_scale: multiplies gamma_k (clamped to [0, 1]), e.g. SFW's learning rate for deep nets.
        rescale: ``"diameter"`` divides each tensor's step by its set's L2 diameter, as SFW's
            ``rescale='diameter'``: ``gamma = min(1, gamma_k * step_scale / D)``, so that a step moves the
            tensor by about ``step_scale`` whatever the set's size. ``None``: the same step for all.

    Each tensor's schedule position is its optimiser state ``step`` (as in ``torch.optim.Adam``), so
    ``state_dict``/``load_state_dict`` resume the schedule where it was. After :meth:`step`, ``fw_gap`` holds
    the FW gap of the direction used (a 0-d tensor).
    """

    def __init__(self, params, schedule: str | tuple[Schedule, Schedule] = "convex", averaging: bool = False,
                 step_scale: float = 1.0, rescale: str | None = None) -> None:
        gamma, rho = named_schedule(schedule) if isinstance(schedule, str) else schedule
        if step_scale <= 0:
            raise ValueError(f"invalid step_scale {step_scale!r}; expected > 0")
        if rescale not in RESCALES:
            raise ValueError(f"invalid rescale {rescale!r}; expected None or 'diameter'")
        super().__init__(params, {"constraint": None})
        for group in self.param_groups:
            if len(group["params"]) != 1 or not isinstance(group["constraint"], ConstraintSet):
                raise ValueError("each parameter group needs one tensor and its 'constraint' (a ConstraintSet)")
            if group["constraint"].n != group["params"][0].numel():
                raise ValueError(f"constraint {group['constraint']!r} does not fit a tensor of "
                                 f"{group['params'][0].numel()} entries")
        self.schedule, self.gamma, self.rho = schedule, gamma, rho
        self.averaging, self.step_scale = averaging, step_scale
        self.rescale = rescale
        self._buffer: torch.Tensor | None = None  # one dense LMO vertex at a time (sets without a sparse LMO)
        self.fw_gap = torch.zeros(())

    def __getstate__(self) -> dict:
        """Everything but the schedule's functions, which a named schedule restores (``torch.save`` round trip)."""
        if not isinstance(self.schedule, str):
            raise TypeError("a FrankWolfe with a custom (gamma, rho) schedule cannot be pickled; use a named schedule")
        return {k: v for k, v in self.__dict__.items() if k not in ("gamma", "rho")}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.gamma, self.rho = named_schedule(self.schedule)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One FW step of every parameter with a ``.grad``, using ``.grad`` as its estimate."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        groups = [g for g in self.param_groups if g["params"][0].grad is not None]
        if groups:
            self._update(groups, (g["params"][0].grad for g in groups))
        return loss

    @torch.no_grad()
    def step_with(self, estimates: Iterable[Estimate]) -> None:
        """One FW step of every parameter, in ``param_groups`` order, with ``estimates`` instead of ``.grad``.

        An iterator of folds (e.g. :func:`~beyond_backprop.autodiff.forward_gradient.redrawn_folds`) is folded into
        the averaged direction tensor by tensor, ``d <- (1 - rho) d + rho phi``: no gradient buffer is ever
        allocated.
        """
        self._update(self.param_groups, estimates)

    def _update(self, groups: list[dict], estimates: Iterable[Estimate]) -> None:
        params = [g["params"][0] for g in groups]
        states = [self.state[p] for p in params]
        steps = [state.get("step", 0) for state in states]
        bases = [self.gamma(k) * self.step_scale for k in steps]
        gammas = [min(1.0, base / g["constraint"].diameter if self.rescale == "diameter" else base)
                  for base, g in zip(bases, groups)]
        rhos = [self.rho(k) if self.averaging else 1.0 for k in steps]
        new_directions, self.fw_gap = frank_wolfe_update(
            params, estimates, [state.get("direction") for state in states], [g["constraint"] for g in groups],
            gamma=gammas, rho=rhos, buffer=self._lmo_buffer(groups))
        for p, state, d, k in zip(params, states, new_directions, steps):
            state["step"] = k + 1
            if self.averaging:
                state["direction"] = d.clone() if d is p.grad else d  # the state never aliases .grad

    def _lmo_buffer(self, groups: list[dict]) -> torch.Tensor | None:
        """A buffer for the largest tensor whose set has dense vertices; None when every set has a sparse LMO."""
        dense = [g["params"][0] for g in groups if not g["constraint"].sparse_vertices]
        if not dense:
            return None
        size = max(p.numel() for p in dense)
        p = dense[0]
        if self._buffer is None or self._buffer.numel() < size or self._buffer.dtype != p.dtype \
                or self._buffer.device != p.device:
            self._buffer = torch.empty(size, dtype=p.dtype, device=p.device)
        return self._buffer
