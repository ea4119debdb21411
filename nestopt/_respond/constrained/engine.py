"""Solve one `ConstrainedNLP`: start, iterate, resolve troubles, report (DESIGN 9).

``solve_nlp`` scales the problem, pushes the start inside its bounds, picks
the iteration (Mehrotra's predictor-corrector for a convex quadratic with
linear rows, IPOPT's monotone filter method otherwise), and turns its ending
into an `EngineResult` in the problem's own units and nestopt's signs, with
the active set guessed per row and per bound.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat as compat
import numpy as np

from ..._backend.host import to_numpy
from .barrier_form import BarrierForm
from .certificates import farkas
from .iterate import Iterate, Space
from .monotone import Outcome, run_monotone
from .newton_system import InertiaCorrection
from .nlp import ConstrainedNLP, EngineOptions, EngineResult, EngineStatus, Evaluation, WarmStart
from .predictor_corrector import run_predictor_corrector
from .refine import refine
from .start import least_squares_multipliers, push_inside

__all__ = ["solve_nlp", "default_tol"]


def default_tol(dtype: Any, xp: Any) -> float:
    """``10 eps^(2/3)``: 3.7e-10 in float64, 2.4e-4 (about ``sqrt(eps)``) in float32."""
    return float(10.0 * float(xp.finfo(dtype).eps) ** (2.0 / 3.0))


def solve_nlp(
    nlp: ConstrainedNLP,
    x0: Any,
    *,
    options: EngineOptions | None = None,
    warm: WarmStart | None = None,
) -> EngineResult:
    """Minimize ``nlp`` from ``x0`` (or from ``warm``), returning an `EngineResult`.

    Raises `ValueError` for a bound or row with ``lower > upper``, and
    `NonFiniteError` when the problem returns NaN or Inf at the start.
    """
    options = EngineOptions() if options is None else options
    xp = compat.array_namespace(x0)
    tol = options.tol if options.tol is not None else default_tol(x0.dtype, xp)
    xl = np.asarray(_host(nlp.x_lower), dtype=float).reshape(-1)
    xu = np.asarray(_host(nlp.x_upper), dtype=float).reshape(-1)
    if np.any(xl > xu):
        raise ValueError(f"bound {int(np.argmax(xl > xu))} has x_lower > x_upper")
    form = BarrierForm(nlp, x0, options.scale_limit)
    if np.any(form.cl > form.cu):
        raise ValueError(f"row {int(np.argmax(form.cl > form.cu))} has c_lower > c_upper")
    start = x0 if warm is None else warm.x
    x = push_inside(xp, start, xl, xu, options.kappa_1, options.kappa_2)
    raw = Evaluation(*nlp.evaluate(x))
    form.set_scaling(raw, x)
    point = form.evaluate(x, raw)
    space = Space(form, xl, xu)
    lo_s, up_s = space.lower_host[space.n :], space.upper_host[space.n :]
    s = push_inside(xp, point.cI, lo_s, up_s, options.kappa_1, options.kappa_2)
    v = xp.concat([x, s])
    counts: dict[str, Any] = {}
    if warm is None:
        mu = options.mu_init
        zL, zU = space.hasL * xp.ones_like(v), space.hasU * xp.ones_like(v)
        y = least_squares_multipliers(space, point, zL, zU, options.multiplier_cap)
        correction = InertiaCorrection()
    else:
        y, zL, zU, mu = _warm_multipliers(space, form, warm, v, tol)
        correction = InertiaCorrection(warm.delta_w)
    it = Iterate(v, y, zL, zU, point)
    outcome = _iterate(space, it, mu, tol, options, correction, counts, bool(nlp.convex))
    return _result(space, outcome, tol, correction, counts)


def _iterate(
    space: Space, it: Iterate, mu: float, tol: float, options: EngineOptions,
    correction: InertiaCorrection, counts: dict[str, Any], convex: bool,
) -> Outcome:  # fmt: skip
    if not convex:
        return run_monotone(space, it, mu, tol, options.max_iter, correction, counts)
    outcome = run_predictor_corrector(space, it, tol, options.max_iter, correction, counts)
    if outcome.status is not EngineStatus.STALLED:
        return outcome
    # Stalled: infeasible rows, or trouble the monotone method with its restoration handles.
    decided = _farkas(space, outcome)
    if decided is not None:
        return decided
    counts["fallback"] = "monotone"
    rest = max(options.max_iter - outcome.iterations, 1)
    it = _recentred(space, outcome.it, max(outcome.mu, tol))
    again = run_monotone(space, it, max(outcome.mu, tol), tol, rest, correction, counts)
    again.iterations += outcome.iterations
    return again


def _farkas(space: Space, outcome: Outcome) -> Outcome | None:
    form, n = space.form, space.n
    point = outcome.it.point
    J = np.asarray(_host(point.ev.jac), dtype=float).reshape(form.m, n)
    c = np.asarray(_host(point.ev.c), dtype=float).reshape(form.m)
    x = np.asarray(_host(outcome.it.v[:n]), dtype=float)
    result = farkas(J, c - J @ x, form.cl, form.cu, space.lower_host[:n], space.upper_host[:n])
    if result is None or not result.infeasible:
        return None
    return Outcome(outcome.it, EngineStatus.INFEASIBLE, outcome.iterations, outcome.mu, result.y)


def _recentred(space: Space, it: Iterate, mu: float) -> Iterate:
    zL = space.hasL * mu / space.dL(it.v)
    zU = space.hasU * mu / space.dU(it.v)
    y = least_squares_multipliers(space, it.point, zL, zU, 1e3)
    return Iterate(it.v, y, zL, zU, it.point)


def _warm_multipliers(
    space: Space, form: BarrierForm, warm: WarmStart, v: Any, tol: float
) -> tuple[Any, Any, Any, float]:
    """Scaled ``(y, z_L, z_U, mu)`` from a warm start; ``mu`` is the complementarity there."""
    xp = space.xp
    y = form.scaled_rows(xp.asarray(warm.y, dtype=form.dtype, device=form.device))
    z = xp.asarray(warm.z, dtype=form.dtype, device=form.device) * form.f_scale
    # The slacks' multipliers are the inequality rows' (y_I = z_U - z_L in the slack).
    yI = y[form.mE :]
    zx_l, zx_u = xp.maximum(-z, 0.0 * z), xp.maximum(z, 0.0 * z)
    zs_l, zs_u = xp.maximum(-yI, 0.0 * yI), xp.maximum(yI, 0.0 * yI)
    zL0, zU0 = xp.concat([zx_l, zs_l]), xp.concat([zx_u, zs_u])
    dL, dU = space.dL(v), space.dU(v)
    gaps = xp.sum(space.hasL * dL * zL0) + xp.sum(space.hasU * dU * zU0)
    mu = max(tol / 10.0, float(gaps) / max(space.bounds_count, 1))
    # Bounds that were inactive get mu / slack: strictly positive, centred.
    zL = space.hasL * xp.maximum(zL0, mu / dL)
    zU = space.hasU * xp.maximum(zU0, mu / dU)
    return y, zL, zU, mu


def _result(
    space: Space,
    outcome: Outcome,
    tol: float,
    correction: InertiaCorrection,
    counts: dict[str, Any],
) -> EngineResult:
    form, n = space.form, space.n
    it = outcome.it
    if outcome.status is EngineStatus.SOLVED:
        active, weak = _activity_v(space, it, tol)
        refined = refine(space, it, active & ~weak, tol)
        if refined is not None:
            it = refined
            counts["refined"] = True
    x = it.v[:n]
    y = form.unscaled_rows(it.y)
    z = (it.zU[:n] - it.zL[:n]) / form.f_scale
    active_rows, weak_rows, active_bounds, weak_bounds = _activity(space, it, tol)
    kkt = space.kkt_error(it, 0.0)
    violation = space.theta(it.point, it.v)
    certificate = outcome.certificate
    if outcome.status is EngineStatus.UNBOUNDED and certificate is not None:
        certificate = certificate[:n]
    stats = dict(counts)
    stats["mu"] = outcome.mu
    return EngineResult(
        x=x,
        y=y,
        z=z,
        status=outcome.status,
        iterations=outcome.iterations,
        kkt_error=kkt,
        active_rows=active_rows,
        active_bounds=active_bounds,
        weak_rows=weak_rows,
        weak_bounds=weak_bounds,
        delta_w=correction.delta_w_last,
        violation=violation,
        certificate=certificate,
        f=float(it.point.ev.f),
        stats=stats,
        point=it.point.ev.point,
    )


def _activity(space: Space, it: Iterate, tol: float) -> tuple[Any, Any, Any, Any]:
    """Active and weakly active rows and bounds (see `_activity_v`)."""
    form, n = space.form, space.n
    active, weak = _activity_v(space, it, tol)
    active_bounds, weak_bounds = active[:n], weak[:n]
    active_rows = np.zeros(form.m, dtype=bool)
    weak_rows = np.zeros(form.m, dtype=bool)
    active_rows[form.eq_rows] = True
    active_rows[form.ineq_rows] = active[n:]
    weak_rows[form.ineq_rows] = weak[n:]
    return active_rows, weak_rows, active_bounds & ~weak_bounds, weak_bounds


def _activity_v(space: Space, it: Iterate, tol: float) -> tuple[Any, Any]:
    """Active and weakly active bounds of ``v = (x, s)``, each judged in its own scale.

    A side is active when its scaled multiplier exceeds its scaled slack, and
    weakly active when both are below ``sqrt(tol)``. A bound's slack is relative
    to ``max(1, |bound|)``; its multiplier to that variable's own share of the
    gradient (at the start and at the solution, and of the rows' terms), so a
    bound held by a weak curvature next to a stiff one is judged against its own
    curvature, not the stiff one's.
    """
    form, n = space.form, space.n
    v = np.asarray(_host(it.v), dtype=float)
    zL = np.asarray(_host(it.zL), dtype=float)
    zU = np.asarray(_host(it.zU), dtype=float)
    lo, up = space.lower_host, space.upper_host
    with np.errstate(invalid="ignore"):
        slack_l = np.where(space.has_l_host, (v - lo) / np.maximum(1.0, np.abs(lo)), np.inf)
        slack_u = np.where(space.has_u_host, (up - v) / np.maximum(1.0, np.abs(up)), np.inf)
    g = np.abs(np.asarray(_host(it.point.g), dtype=float))
    y = np.asarray(_host(it.y), dtype=float)
    JE = np.asarray(_host(it.point.JE), dtype=float)
    JI = np.asarray(_host(it.point.JI), dtype=float)
    row_terms = np.abs(np.vstack([JE, JI]) * y[:, None]).sum(axis=0) if y.size else 0.0
    dual_scale = np.maximum(g, row_terms)
    if form.start_gradient is not None:
        dual_scale = np.maximum(dual_scale, form.start_gradient)
    dual_scale = np.concatenate([np.maximum(dual_scale, 1e-8), np.ones(v.size - n)])
    mult_l, mult_u = zL / dual_scale, zU / dual_scale
    threshold = math.sqrt(tol)
    active = (space.has_l_host & (mult_l > slack_l)) | (space.has_u_host & (mult_u > slack_u))
    weak_l = space.has_l_host & (mult_l <= threshold) & (slack_l <= threshold)
    weak_u = space.has_u_host & (mult_u <= threshold) & (slack_u <= threshold)
    return active, weak_l | weak_u


def _host(a: Any) -> Any:
    return to_numpy(a)
