"""IPOPT's iteration: monotone barrier rule, filter line search, second-order corrections.

For a falling barrier parameter ``mu`` (``mu <- max(mu_min, min(kappa_mu mu,
mu^theta_mu))`` once the barrier problem is solved to ``kappa_eps mu``), take
Newton steps on the barrier problem's primal-dual equations, shortened by
the fraction to the boundary ``tau = max(0.99, 1 - mu)`` and accepted by the
filter of `filter`; a rejected full step that worsened the violation first
tries up to four second-order corrections (Wachter & Biegler 2006, Algorithm
A). When the step gets too short, the feasibility restoration of
`restoration` takes over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..._errors import FactorizationError, NestoptError
from .barrier_form import evaluation_failed
from .filter import Filter, StepTest
from .iterate import Iterate, Space
from .newton_system import InertiaCorrection, NewtonSystem, factor_newton_system
from .nlp import EngineStatus
from .restoration import RestorationFailed, restore

__all__ = ["Outcome", "run_monotone"]

KAPPA_EPS, KAPPA_MU, THETA_MU = 10.0, 0.2, 1.5
KAPPA_SOC, SOC_MAX = 0.99, 4
DIVERGED = 1e15


@dataclass
class Outcome:
    it: Iterate
    status: EngineStatus
    iterations: int
    mu: float
    certificate: Any = None


def run_monotone(
    space: Space, it: Iterate, mu: float, tol: float, max_iter: int,
    correction: InertiaCorrection, counts: dict[str, Any],
) -> Outcome:  # fmt: skip
    xp, form, n = space.xp, space.form, space.n
    mu_min = tol / 10.0
    eps = float(xp.finfo(form.dtype).eps)
    theta0 = space.theta(it.point, it.v)
    theta_max, theta_min = 1e4 * max(1.0, theta0), 1e-4 * max(1.0, theta0)
    f0, x0_size = abs(it.point.f), _size(xp, it.v[:n])
    flt = Filter()
    for k in range(max_iter):
        if space.kkt_error(it, 0.0) <= tol:
            return Outcome(it, EngineStatus.SOLVED, k, mu)
        theta = space.theta(it.point, it.v)
        if theta <= tol and (
            it.point.f < -DIVERGED * max(1.0, f0) or _size(xp, it.v[:n]) > DIVERGED * x0_size
        ):
            return Outcome(it, EngineStatus.UNBOUNDED, k, mu, it.v[:n] / _size(xp, it.v[:n]))
        while mu > mu_min and space.kkt_error(it, mu) <= KAPPA_EPS * mu:
            mu = max(mu_min, min(KAPPA_MU * mu, mu**THETA_MU))
            flt.reset()
        tau = max(0.99, 1.0 - mu)
        try:
            system = _factor(space, it, mu, correction)
            step = _direction(space, it, mu, system)
        except FactorizationError:  # a singular system, or a solve that gave NaN
            system = None
        accepted = None
        if system is not None:
            accepted = _line_search(
                space, it, mu, tau, system, step, flt, theta_min, theta_max, eps, counts
            )
        if accepted is None:
            counts["restorations"] = counts.get("restorations", 0) + 1
            flt.add(theta, space.barrier(it.point, it.v, mu))
            try:
                it = restore(space, it, mu, flt, tol, counts)
            except RestorationFailed as failure:
                # Stalled: report the last accepted iterate, not where restoration wandered
                # (an infeasibility verdict keeps restoration's point, its evidence).
                last = it if failure.status is EngineStatus.STALLED else failure.it
                return Outcome(last, failure.status, k + 1, mu, failure.certificate)
            continue
        it = space.cap_multipliers(accepted, mu)
    return Outcome(it, EngineStatus.MAX_ITER, max_iter, mu)


def _size(xp: Any, a: Any) -> float:
    return max(float(xp.max(xp.abs(a))) if a.shape[0] else 0.0, 1.0)


def _factor(space: Space, it: Iterate, mu: float, correction: InertiaCorrection) -> NewtonSystem:
    W = space.form.hessian(it.point, it.y)
    sigma_x, sigma_s = space.sigmas(it)
    return factor_newton_system(W, sigma_x, sigma_s, it.point.JE, it.point.JI, mu, correction)


@dataclass
class _Step:
    dv: Any
    dy: Any
    grad_phi: Any
    rhs_v: Any


def _direction(space: Space, it: Iterate, mu: float, system: NewtonSystem) -> _Step:
    grad_phi = space.barrier_grad(it.point, it.v, mu)
    rhs_v = -(grad_phi + space.At(it.point, it.y))
    dv, dy = _solve(space, system, rhs_v, -space.rows(it.point, it.v))
    return _Step(dv, dy, grad_phi, rhs_v)


def _solve(space: Space, system: NewtonSystem, rhs_v: Any, rhs_y: Any) -> tuple[Any, Any]:
    xp, n, mE = space.xp, space.n, space.form.mE
    dx, ds, dyE, dyI = system.solve(rhs_v[:n], rhs_v[n:], rhs_y[:mE], rhs_y[mE:])
    return xp.concat([dx, ds]), xp.concat([dyE, dyI])


def _trial(space: Space, v: Any, counts: dict[str, Any]) -> Any:
    """The problem at ``v``; None when it cannot be evaluated there."""
    counts["evaluations"] = counts.get("evaluations", 0) + 1
    try:
        return space.form.evaluate(v[: space.n])
    except NestoptError as exc:
        if not evaluation_failed(exc):
            raise
        return None


def _line_search(
    space: Space, it: Iterate, mu: float, tau: float, system: NewtonSystem, step: _Step,
    flt: Filter, theta_min: float, theta_max: float, eps: float, counts: dict[str, Any],
) -> Iterate | None:  # fmt: skip
    """Backtrack from the fraction to the boundary until the filter accepts (with SOC)."""
    xp = space.xp
    theta = space.theta(it.point, it.v)
    phi = space.barrier(it.point, it.v, mu)
    slope = float(xp.sum(step.grad_phi * step.dv))
    test = StepTest(theta, phi, slope, theta_min, theta_max)
    alpha_max = space.primal_step_limit(it.v, step.dv, tau)
    dzL, dzU = space.bound_steps(it, step.dv, mu)
    alpha_z = space.dual_step_limit(it, dzL, dzU, tau)
    tiny = float(xp.max(xp.abs(step.dv))) <= 10.0 * eps * _size(xp, it.v)
    floor = max(test.alpha_min(), 1e-3 * eps)
    alpha = alpha_max
    first = True
    while alpha >= floor or tiny:
        v = it.v + alpha * step.dv
        point = _trial(space, v, counts)
        if point is not None:
            theta_t, phi_t = space.theta(point, v), space.barrier(point, v, mu)
            ok, f_type = test.accept(alpha, theta_t, phi_t, flt)
            if ok or tiny:
                if not f_type:
                    flt.add(theta, phi)
                return _moved(it, v, point, alpha, step.dy, alpha_z, dzL, dzU)
            if first and theta_t >= theta:
                accepted = _second_order(space, it, mu, tau, system, step, test, flt, alpha, point)
                if accepted is not None:
                    soc_v, soc_point, soc_alpha, soc_dy, f_type = accepted
                    if not f_type:
                        flt.add(theta, phi)
                    counts["second_order"] = counts.get("second_order", 0) + 1
                    return _moved(it, soc_v, soc_point, soc_alpha, soc_dy, alpha_z, dzL, dzU)
        first = False
        alpha *= 0.5
        if tiny:
            break
    return None


def _moved(
    it: Iterate, v: Any, point: Any, alpha: float, dy: Any, alpha_z: float, dzL: Any, dzU: Any
) -> Iterate:
    return Iterate(v, it.y + alpha * dy, it.zL + alpha_z * dzL, it.zU + alpha_z * dzU, point)


def _second_order(
    space: Space, it: Iterate, mu: float, tau: float, system: NewtonSystem, step: _Step,
    test: StepTest, flt: Filter, alpha: float, point: Any,
) -> tuple[Any, Any, float, Any, bool] | None:  # fmt: skip
    """Up to ``SOC_MAX`` corrections ``c_soc <- a c_soc + c(x_soc)`` of the rows (IPOPT A-5.5)."""
    c_soc = alpha * space.rows(it.point, it.v) + space.rows(point, it.v + alpha * step.dv)
    theta_old = space.theta(point, it.v + alpha * step.dv)
    for _ in range(SOC_MAX):
        dv, dy = _solve(space, system, step.rhs_v, -c_soc)
        a = space.primal_step_limit(it.v, dv, tau)
        v = it.v + a * dv
        try:
            trial = space.form.evaluate(v[: space.n])
        except NestoptError as exc:
            if not evaluation_failed(exc):
                raise
            return None
        theta_t, phi_t = space.theta(trial, v), space.barrier(trial, v, mu)
        ok, f_type = test.accept(alpha, theta_t, phi_t, flt)
        if ok:
            return v, trial, a, dy, f_type
        if theta_t > KAPPA_SOC * theta_old:
            return None
        theta_old = theta_t
        c_soc = a * c_soc + space.rows(trial, v)
    return None
