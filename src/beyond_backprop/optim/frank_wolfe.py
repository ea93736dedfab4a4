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

from collections.abc import Callable, Sequence

import torch

from .constraints import ConstraintSet

Schedule = Callable[[int], float]

# name -> (gamma_k, rho_k), k = 0, 1, 2, ...
SCHEDULES: dict[str, tuple[Schedule, Schedule]] = {
    "classic": (lambda k: 2.0 / (k + 2), lambda k: 1.0),
    "convex": (lambda k: 2.0 / (k + 8), lambda k: min(1.0, 4.0 / (k + 8) ** (2 / 3))),
    "nonconvex": (lambda k: 1.0 / (k + 1), lambda k: (k + 1) ** (-2 / 3)),
    "uniform-mean": (lambda k: 2.0 / (k + 8), lambda k: 1.0 / (k + 1)),
}


def named_schedule(name: str) -> tuple[Schedule, Schedule]:
    """The ``(gamma_k, rho_k)`` pair of a named schedule."""
    if name not in SCHEDULES:
        raise ValueError(f"invalid schedule {name!r}; expected one of {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


def frank_wolfe_update(
    params: Sequence[torch.Tensor],
    estimates: Sequence[torch.Tensor],
    directions: Sequence[torch.Tensor | None],
    constraints: Sequence[ConstraintSet],
    *,
    gamma: float,
    rho: float,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One FW step in place on ``params``; returns the new directions ``d_k`` and the FW gap.

    ``directions[i]`` is ``d_{k-1}`` (``None`` on the first step, treated as 0). ``rho = 1`` means
    no averaging.
    """
    if not 0 <= gamma <= 1:
        raise ValueError(f"invalid gamma {gamma!r}; expected 0 <= gamma <= 1")
    if not 0 < rho <= 1:
        raise ValueError(f"invalid rho {rho!r}; expected 0 < rho <= 1")
    new_directions, gap = [], torch.zeros((), dtype=params[0].dtype, device=params[0].device)
    for p, g, d, c in zip(params, estimates, directions, constraints):
        d = g.clone() if d is None or rho == 1 else d.mul(1 - rho).add_(g, alpha=rho)
        s = c.lmo(d)
        gap = gap + torch.sum(d * (p - s))
        p.mul_(1 - gamma).add_(s, alpha=gamma)
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

    After :meth:`step`, ``fw_gap`` holds the FW gap of the direction used (a 0-d tensor).
    """

    def __init__(self, params, schedule: str | tuple[Schedule, Schedule] = "convex", averaging: bool = False,
                 step_scale: float = 1.0) -> None:
        gamma, rho = named_schedule(schedule) if isinstance(schedule, str) else schedule
        if step_scale <= 0:
            raise ValueError(f"invalid step_scale {step_scale!r}; expected > 0")
        super().__init__(params, {"constraint": None})
        for group in self.param_groups:
            if len(group["params"]) != 1 or not isinstance(group["constraint"], ConstraintSet):
                raise ValueError("each parameter group needs one tensor and its 'constraint' (a ConstraintSet)")
            if group["constraint"].n != group["params"][0].numel():
                raise ValueError(f"constraint {group['constraint']!r} does not fit a tensor of "
                                 f"{group['params'][0].numel()} entries")
        self.gamma, self.rho, self.averaging, self.step_scale = gamma, rho, averaging, step_scale
        self.iteration = 0
        self.fw_gap = torch.zeros(())

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        groups = [g for g in self.param_groups if g["params"][0].grad is not None]
        if not groups:
            return loss
        params = [g["params"][0] for g in groups]
        directions = [self.state[p].get("direction") for p in params]
        gamma = min(1.0, self.gamma(self.iteration) * self.step_scale)
        rho = self.rho(self.iteration) if self.averaging else 1.0
        new_directions, self.fw_gap = frank_wolfe_update(
            params, [p.grad for p in params], directions, [g["constraint"] for g in groups], gamma=gamma, rho=rho)
        if self.averaging:
            for p, d in zip(params, new_directions):
                self.state[p]["direction"] = d
        self.iteration += 1
        return loss
