"""The fast dlADMM path against the straightforward block updates it replaced, and its closed-form test.

The reference below is the original implementation (every backtracking trial evaluates the objective
and tests ``f(x+) <= f(x) - ||g||^2/(2t)``; every product is recomputed). In float64 the fast path
must accept the same step sizes and reach the same iterates.
"""

from dataclasses import replace

import pytest
import torch

from beyond_backprop.optim import quadratic_blocks
from beyond_backprop.optim.admm_blocks import update_z_last
from beyond_backprop.optim.dladmm import DLADMM, OFFICIAL, PAPER, DLADMMOptions, DLADMMState
from beyond_backprop.optim.quadratic_blocks import (
    accepted_step, activation_gradient, activation_step, weight_gradient, weight_step,
)
from beyond_backprop.problem import Problem, Split

# the official-style options as they were before the presets: the OFFICIAL preset must step exactly like them
OFFICIAL_BEFORE = {"nu": None, "rho_rule": "code", "faithful": True, "z_last_init": "labels", "fista_step": 4.0}
LOW_START = {"theta0": 1e-9, "tau0": 1e-9}  # searches start far below the accepted t at rho = 1e-6


# ---- reference implementation (the straightforward block updates) ----

def ref_backtrack(objective, x, grad, t, log, factor=2.0, max_tries=60):
    f0, gg = objective(x), grad.square().sum()
    for _ in range(max_tries):
        step = x - grad / t
        if bool(objective(step) <= f0 - gg / (2.0 * t)):
            log.append(t)
            return step, t
        t *= factor
    log.append(t)
    return x, t


def ref_update_w(w, a_prev, target, weight, theta, log):
    grad = weight * (a_prev @ w.T - target).T @ a_prev
    return ref_backtrack(lambda v: 0.5 * weight * (target - a_prev @ v.T).square().sum(), w, grad, theta, log)


def ref_update_a(a, w_next, target_next, weight_next, h, weight, tau, log):
    grad = weight_next * (a @ w_next.T - target_next) @ w_next + weight * (a - h)

    def objective(v):
        return 0.5 * weight_next * (target_next - v @ w_next.T).square().sum() + 0.5 * weight * (v - h).square().sum()

    return ref_backtrack(objective, a, grad, tau, log)


def ref_z_relu(m, a):
    z_neg, z_pos = m.clamp(max=0.0), ((m + a) / 2.0).clamp(min=0.0)

    def cost(z):
        return (z - m).square() + (a - torch.relu(z)).square()

    return torch.where(cost(z_pos) < cost(z_neg), z_pos, z_neg)


def reference_step(solver: DLADMM, state: DLADMMState, problem: Problem, log) -> DLADMMState:
    """The original ``DLADMM.step`` (rows layout, quadratic subproblems)."""
    x, y, opts = problem.x, problem.y, solver.options
    y1 = torch.nn.functional.one_hot(y, solver.widths[-1]).to(x.dtype)
    s = replace(state, weights=list(state.weights), biases=list(state.biases), z=list(state.z), a=list(state.a),
                theta=list(state.theta), tau=list(state.tau), losses=list(state.losses))
    last = len(s.weights) - 1
    nu = lambda: s.rho if opts.nu is None else opts.nu  # noqa: E731
    inp = lambda l: x if l == 0 else s.a[l - 1]  # noqa: E731

    def start(previous, base):
        base = base * s.boost
        return base if opts.faithful else max(base, previous / 2.0)

    def target(l):
        return s.z[l] - s.biases[l] + (s.u / s.rho if l == last else 0.0), (s.rho if l == last else nu())

    def w_(l):
        t, c = target(l)
        s.weights[l], s.theta[l] = ref_update_w(s.weights[l], inp(l), t, c, start(s.theta[l], opts.theta0), log)

    def b_(l):
        shift = s.u / s.rho if l == last else 0.0
        s.biases[l] = (s.z[l] + shift - inp(l) @ s.weights[l].T).mean(dim=0)

    def z_(l):
        m = inp(l) @ s.weights[l].T + s.biases[l]
        if l == last:
            s.z[l] = update_z_last(s.z[l], m - s.u / s.rho, y1, s.rho, step=opts.fista_step)
        else:
            s.z[l] = ref_z_relu(m, s.a[l])

    def a_(l):
        t, c = target(l + 1)
        s.a[l], s.tau[l] = ref_update_a(s.a[l], s.weights[l + 1], t, c, torch.relu(s.z[l]), nu(),
                                        start(s.tau[l], opts.tau0), log)

    z_(last), b_(last), w_(last)
    for l in range(last - 1, -1, -1):
        a_(l), z_(l), b_(l), w_(l)
    for l in range(last):
        w_(l), b_(l), z_(l), a_(l)
    w_(last), b_(last), z_(last)
    s.u = s.u + s.rho * (s.z[last] - inp(last) @ s.weights[last].T - s.biases[last])
    s.k += 1
    solver._adapt(s, problem)
    return s


# ---- helpers ----

def _double(state: DLADMMState) -> DLADMMState:
    return replace(state, weights=[w.double() for w in state.weights], biases=[b.double() for b in state.biases],
                   z=[z.double() for z in state.z], a=[a.double() for a in state.a], u=state.u.double())


def _problem(seed: int = 0, n: int = 96, dtype: torch.dtype = torch.float64) -> Problem:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 12, generator=g, dtype=torch.float64)
    y = (x[:, :4].sum(1) > 2).long() + (x[:, 4] > 0.5).long() + (x[:, 5] > 0.7).long()
    return Problem(Split(x.to(dtype), y), classes=4)


def _record_fast_steps(monkeypatch) -> list[float]:
    log: list[torch.Tensor] = []

    def recording(*args, **kwargs):
        t, divisor = accepted_step(*args, **kwargs)
        log.append(t)
        return t, divisor

    monkeypatch.setattr(quadratic_blocks, "accepted_step", recording)
    return log


# ---- tests ----

@pytest.mark.parametrize("options", [PAPER, OFFICIAL, DLADMMOptions(**OFFICIAL_BEFORE),
                                     DLADMMOptions(rho=1e-2, nu=1e-2, rho_rule="fixed")],
                         ids=["paper", "official", "official-before-presets", "rho-1e-2"])
def test_fast_path_moves_in_lockstep_with_the_reference_in_float64(monkeypatch, options):
    problem = _problem()
    solver = DLADMM([12, 16, 16, 4], options, **LOW_START)
    fast = ref = _double(solver.init(_problem(dtype=torch.float32), torch.Generator().manual_seed(1)))
    fast_log = _record_fast_steps(monkeypatch)
    ref_log: list[float] = []
    for _ in range(6):
        fast = solver.step(fast, problem)
        ref = reference_step(solver, ref, problem, ref_log)
        assert [float(t) for t in fast_log] == ref_log  # every accepted step size, in order
        for name in ("weights", "biases", "z", "a"):
            for mine, theirs in zip(getattr(fast, name), getattr(ref, name)):
                assert torch.allclose(mine, theirs, rtol=1e-9, atol=1e-12), name
        assert torch.allclose(fast.u, ref.u, rtol=1e-9, atol=1e-15)
        assert (fast.theta, fast.tau, fast.rho, fast.boost) == (ref.theta, ref.tau, ref.rho, ref.boost)
    assert len(set(ref_log)) > 3  # the searches did not all stop at their first trial


def _weight_case(seed: int, noise: float):
    """A float32 W-subproblem (and an a-subproblem on the same data) whose residual is ``noise`` beside
    products of order 1. The entries are dyadic, so ``a_prev W^T`` is exact in float32 and float64
    evaluates the very same quadratic; at ``noise=1e-6`` the residual is a few float32 ulps, as in
    dlADMM's hidden layers at rho = 1e-6."""
    g = torch.Generator().manual_seed(seed)
    a_prev = torch.randint(0, 17, (400, 60), generator=g) / 16.0
    w = torch.randint(-8, 9, (30, 60), generator=g) / 64.0
    target = a_prev @ w.T + noise * torch.randn(400, 30, generator=g)
    a, h = torch.randint(0, 17, (400, 60), generator=g) / 16.0, torch.rand(400, 60, generator=g)
    return w, a_prev, target, a, h


def _float64_weight_search(w, a_prev, target, penalty, t0, dtype=torch.float64):
    """Backtracking that evaluates ``phi_W`` in ``dtype`` along the float32 gradient the fast path uses."""
    grad = weight_gradient(a_prev, target - a_prev @ w.T, penalty)
    w, a_prev, target, grad = (v.to(dtype) for v in (w, a_prev, target, grad))
    log: list[float] = []
    step, _ = ref_backtrack(lambda v: 0.5 * penalty * (target - a_prev @ v.T).square().sum(), w, grad, t0, log)
    return step, log[0]


T0 = 1e-9  # far below every accepted t, so each search runs through many trials


@pytest.mark.parametrize("noise", [1e-6, 1e-2])
@pytest.mark.parametrize("penalty", [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
def test_closed_form_test_accepts_what_a_float64_evaluation_accepts(penalty, noise):
    for seed in range(3):
        w, a_prev, target, a, h = _weight_case(seed, noise)
        w_fast, product, t = weight_step(w, a_prev, a_prev @ w.T, target.clone(), penalty, T0)
        w_ref, t_ref = _float64_weight_search(w, a_prev, target, penalty, T0)
        assert float(t) == t_ref > 2 * T0
        assert torch.allclose(w_fast.double(), w_ref, rtol=1e-6, atol=1e-6)  # float32 rounding of order-1 values
        assert torch.allclose(product.double(), a_prev.double() @ w_fast.double().T, rtol=1e-4, atol=1e-5)
        a_fast, _, t = activation_step(a, w, a @ w.T, target.clone(), penalty, h, penalty, T0)
        grad = activation_gradient(a, w, target - a @ w.T, penalty, h, penalty).double()
        a64, w64, target64, h64 = (v.double() for v in (a, w, target, h))

        def phi_a(v):
            return 0.5 * penalty * ((target64 - v @ w64.T).square().sum() + (v - h64).square().sum())

        log: list[float] = []
        a_ref, _ = ref_backtrack(phi_a, a64, grad, T0, log)
        assert float(t) == log[0] > 2 * T0
        assert torch.allclose(a_fast.double(), a_ref, rtol=1e-6, atol=1e-6)  # float32 rounding of order-1 values


def test_float32_evaluated_test_overshoots_at_tiny_penalties():
    """Why the closed form: evaluated in float32 at rounding-level residuals, the test accepts a far larger t."""
    w, a_prev, target, _, _ = _weight_case(0, noise=1e-6)
    _, t32 = _float64_weight_search(w, a_prev, target, 1e-6, T0, dtype=torch.float32)
    _, t64 = _float64_weight_search(w, a_prev, target, 1e-6, T0)
    assert t32 > 4 * t64


def test_accepted_step_edge_cases():
    zero = torch.zeros((), dtype=torch.float64)
    t, divisor = accepted_step(zero, zero, 0.5)  # zero gradient: the first trial passes and x stays
    assert float(t) == 0.5 and float(divisor) == 0.5
    t, divisor = accepted_step(torch.tensor(1.0, dtype=torch.float64), torch.tensor(1e30, dtype=torch.float64), 1.0)
    assert float(t) == 2.0 ** 60 and float(divisor) == float("inf")  # none of 60 trials passes: x is kept
    t, _ = accepted_step(torch.tensor(2.0, dtype=torch.float64), torch.tensor(9.0, dtype=torch.float64), 1.0)
    assert float(t) == 8.0  # first t with 2t >= 9
    with pytest.raises(ValueError):
        accepted_step(zero, zero, 0.0)


def test_block_steps_need_no_host_sync(monkeypatch):
    """No ``bool``/``float``/``item``/``tolist`` on a tensor inside a block update (CPU-visible syncs)."""
    calls = []
    for name in ("__bool__", "__float__", "__int__", "item", "tolist"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _o=original, _n=name: calls.append(_n) or _o(self, *a))
    w, a_prev, target, _, _ = _weight_case(0, noise=1e-3)
    weight_step(w, a_prev, a_prev @ w.T, target.clone(), 1e-6, torch.tensor(1.0, dtype=torch.float64))
    activation_step(a_prev, w, a_prev @ w.T, target.clone(), 1e-6, a_prev, 1e-6, 1.0)
    assert calls == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_block_steps_do_not_synchronize_cuda():
    w, a_prev, target, _, _ = (v.cuda() for v in _weight_case(0, noise=1e-3))
    torch.cuda.set_sync_debug_mode("error")
    try:
        weight_step(w, a_prev, a_prev @ w.T, target.clone(), 1e-6, 1.0)
        activation_step(a_prev, w, a_prev @ w.T, target.clone(), 1e-6, a_prev, 1e-6, 1.0)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_official_preset_steps_like_the_former_official_options():
    """OFFICIAL adds one switch to the former official-style options, and that switch acts on ``init`` only:
    from the same state both take the same steps (the lockstep above then pins them to the reference)."""
    assert replace(OFFICIAL, shared_init=False) == DLADMMOptions(**OFFICIAL_BEFORE)
    problem = _problem(dtype=torch.float32)
    new, old = DLADMM([12, 16, 16, 4], OFFICIAL), DLADMM([12, 16, 16, 4], **OFFICIAL_BEFORE)
    start = old.init(problem, torch.Generator().manual_seed(2))
    a = b = start
    for _ in range(4):
        a, b = new.step(a, problem), old.step(b, problem)
    assert all(torch.equal(x, y) for x, y in zip(a.weights + a.biases + a.z + a.a, b.weights + b.biases + b.z + b.a))
    for split in problem.splits.values():
        assert torch.equal(new.logits(a, problem, split).argmax(1), old.logits(b, problem, split).argmax(1))
