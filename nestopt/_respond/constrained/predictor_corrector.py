"""Mehrotra's predictor-corrector for a convex level: a convex quadratic with linear rows.

Each iteration factors the Newton system once and solves it twice: an
affine step (complementarity target zero) measures how far the iterate can
go, ``sigma = (mu_aff / mu)^3`` sets the centring, and the corrector aims at
``sigma mu`` less the affine step's second-order term. Primal and dual move
by one common step (the dual residual of a QP involves ``x``), shortened by
the fraction to the boundary ``tau = max(0.99, 1 - mu)``. With linear rows
the violation falls by exactly ``1 - alpha`` per step, so no merit function
is needed. Signs of trouble (no progress, multipliers or iterates running
off) end the run with a status the engine resolves: a Farkas LP for
infeasibility, a recession direction for unboundedness, or the monotone
method for anything else.
"""

from __future__ import annotations

from typing import Any

from ..._errors import FactorizationError, NestoptError
from .barrier_form import evaluation_failed
from .iterate import Iterate, Space
from .monotone import DIVERGED, Outcome
from .newton_system import InertiaCorrection, factor_newton_system
from .nlp import EngineStatus

__all__ = ["run_predictor_corrector"]

STALL_STEPS = 8
NO_PROGRESS = 15


def run_predictor_corrector(
    space: Space, it: Iterate, tol: float, max_iter: int, correction: InertiaCorrection,
    counts: dict[str, Any],
) -> Outcome:  # fmt: skip
    """Mehrotra's predictor-corrector on a convex QP from ``it``, until the scaled KKT
    error is below ``tol`` (or ``max_iter``, or a cycle hands over to the monotone method).

    (One function of about 65 lines: the affine predictor, the centering corrector and the
    step share the iteration's state, and read in that order as the method does in the
    literature.)
    """
    xp, form, n = space.xp, space.form, space.n
    W = form.hessian(it.point, it.y)  # constant for a quadratic with linear rows
    x0_size = _size(xp, it.v[:n])
    f0 = abs(it.point.f)
    short = 0
    mu = space.average_complementarity(it)
    best, since_best = float("inf"), 0
    for k in range(max_iter):
        error = space.kkt_error(it, 0.0)
        if error <= tol:
            return Outcome(it, EngineStatus.SOLVED, k, mu)
        # Mehrotra's heuristic can cycle; without progress the monotone method takes over.
        best, since_best = (error, 0) if error < 0.9 * best else (best, since_best + 1)
        if since_best >= NO_PROGRESS:
            return Outcome(it, EngineStatus.STALLED, k, mu)
        theta = space.theta(it.point, it.v)
        x_size = _size(xp, it.v[:n])
        if theta <= tol * max(1.0, x_size) and (
            x_size > DIVERGED * x0_size or it.point.f < -DIVERGED * max(1.0, f0)
        ):
            return Outcome(it, EngineStatus.UNBOUNDED, k, mu, it.v[:n] / x_size)
        mu = space.average_complementarity(it)
        multipliers = _size(xp, xp.concat([it.y, it.zL, it.zU]))
        if multipliers > DIVERGED or short >= STALL_STEPS:
            # Multipliers running off with the rows unsatisfied: a sign of infeasibility.
            return Outcome(it, EngineStatus.STALLED, k, mu)
        sigma_x, sigma_s = space.sigmas(it)
        try:
            system = factor_newton_system(
                W, sigma_x, sigma_s, it.point.JE, it.point.JI, mu, correction
            )
        except FactorizationError:
            return Outcome(it, EngineStatus.STALLED, k, mu)
        r_d = space.dual_residual(it)
        r_p = space.rows(it.point, it.v)
        dL, dU = space.dL(it.v), space.dU(it.v)
        zero = xp.zeros_like(dL)
        # Predictor: complementarity target zero.
        try:
            dv_a, _, dzL_a, dzU_a = _step(space, system, it, r_d, r_p, dL, dU, zero, zero)
        except FactorizationError:  # the solve gave NaN: the monotone method takes over
            return Outcome(it, EngineStatus.STALLED, k, mu)
        a_p = space.primal_step_limit(it.v, dv_a, 1.0)
        a_d = space.dual_step_limit(it, dzL_a, dzU_a, 1.0)
        mu_aff = _average(
            space,
            (dL + a_p * dv_a) * (it.zL + a_d * dzL_a),
            (dU - a_p * dv_a) * (it.zU + a_d * dzU_a),
        )
        centring = (mu_aff / mu) ** 3 if mu > 0 else 0.0
        # Corrector: aim at sigma mu less the predictor's second-order term.
        tL = space.hasL * (centring * mu - dv_a * dzL_a)
        tU = space.hasU * (centring * mu + dv_a * dzU_a)
        try:
            dv, dy, dzL, dzU = _step(space, system, it, r_d, r_p, dL, dU, tL, tU)
        except FactorizationError:
            return Outcome(it, EngineStatus.STALLED, k, mu)
        tau = max(0.99, 1.0 - mu)
        alpha = min(
            space.primal_step_limit(it.v, dv, tau), space.dual_step_limit(it, dzL, dzU, tau)
        )
        short = short + 1 if alpha < 1e-6 else 0
        v = it.v + alpha * dv
        try:
            point = form.evaluate(v[:n])
        except NestoptError as exc:
            if not evaluation_failed(exc):
                raise
            return Outcome(it, EngineStatus.STALLED, k, mu)
        counts["evaluations"] = counts.get("evaluations", 0) + 1
        it = Iterate(v, it.y + alpha * dy, it.zL + alpha * dzL, it.zU + alpha * dzU, point)
    return Outcome(it, EngineStatus.MAX_ITER, max_iter, mu)


def _step(
    space: Space, system: Any, it: Iterate, r_d: Any, r_p: Any, dL: Any, dU: Any, tL: Any,
    tU: Any,
) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """The Newton step for complementarity targets ``(d_L z_L, d_U z_U) -> (tL, tU)``."""
    xp, n, mE = space.xp, space.n, space.form.mE
    rL = space.hasL * (tL - dL * it.zL)
    rU = space.hasU * (tU - dU * it.zU)
    rhs_v = -r_d + rL / dL - rU / dU
    rhs_y = -r_p
    dx, ds, dyE, dyI = system.solve(rhs_v[:n], rhs_v[n:], rhs_y[:mE], rhs_y[mE:])
    dv, dy = xp.concat([dx, ds]), xp.concat([dyE, dyI])
    dzL = space.hasL * (rL - it.zL * dv) / dL
    dzU = space.hasU * (rU + it.zU * dv) / dU
    return dv, dy, dzL, dzU


def _average(space: Space, productL: Any, productU: Any) -> float:
    xp = space.xp
    if not space.bounds_count:
        return 0.0
    total = xp.sum(space.hasL * productL) + xp.sum(space.hasU * productU)
    return float(total) / space.bounds_count


def _size(xp: Any, a: Any) -> float:
    return max(float(xp.max(xp.abs(a))) if a.shape[0] else 0.0, 1.0)
