"""Feasibility restoration: reduce the constraint violation when the line search cannot.

From the current point ``v_R``, minimize

    psi(v) = 1/2 ||r(v)||^2 + zeta/2 ||D_R (v - v_R)||^2 - rho sum log(bound slacks)

by Gauss-Newton steps (``A^T A + Sigma + zeta D_R^2`` is positive definite),
with ``zeta = sqrt(mu)`` and ``D_R = min(1, 1/|v_R|)`` as in IPOPT section 3.3,
until the violation has fallen to ``0.9 theta_R`` at a point the filter
accepts; the main iteration then resumes there. If instead the violation
settles at a positive value, the point is a stationary point of the
violation, and only a *minimizer* is evidence of infeasibility (the origin
is a stationary point, a maximum, of the violation of the unit sphere):

- linear rows: the Farkas LP of `certificates` decides (INFEASIBLE with its
  certificate, or a feasible point to resume from);
- convex rows (declared): the same LP on the rows linearized there;
- otherwise the curvature of the violation decides: along a direction of
  negative curvature the restoration escapes and goes on; at a local
  minimizer the problem is LOCALLY_INFEASIBLE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._backend.host import to_numpy
from ..._errors import FactorizationError, NestoptError
from ..._linalg.ldl import factor_positive
from .barrier_form import evaluation_failed
from .certificates import farkas
from .filter import Filter
from .iterate import Iterate, Space, to_boundary
from .nlp import EngineStatus
from .start import least_squares_multipliers, push_inside

__all__ = ["RestorationFailed", "restore"]

KAPPA_RESTO = 0.9
MAX_STEPS = 300
MAX_ESCAPES = 3


class RestorationFailed(Exception):
    """The restoration ends the solve: infeasible (proved or local) or stalled."""

    def __init__(self, it: Iterate, status: EngineStatus, certificate: Any = None) -> None:
        super().__init__(status.message)
        self.it, self.status, self.certificate = it, status, certificate


def restore(
    space: Space, it: Iterate, mu: float, flt: Filter, tol: float, counts: dict[str, Any]
) -> Iterate:
    """A point with less violation that the filter accepts, or `RestorationFailed`."""
    xp, form = space.xp, space.form
    eps = float(xp.finfo(form.dtype).eps)
    v_R, theta_R = it.v, space.theta(it.point, it.v)
    D2 = xp.minimum(xp.ones_like(v_R), 1.0 / xp.maximum(xp.abs(v_R), xp.ones_like(v_R))) ** 2
    zeta = math.sqrt(max(mu, eps))
    rho = max(mu, 1e-2 * min(theta_R, 1.0), eps)
    v, point = it.v, it.point
    escapes = 0
    for _ in range(MAX_STEPS):
        counts["restoration_steps"] = counts.get("restoration_steps", 0) + 1
        theta = space.theta(point, v)
        if theta <= KAPPA_RESTO * theta_R and flt.acceptable(theta, space.barrier(point, v, mu)):
            return _resume(space, it, v, point, mu)
        if theta <= 1e-2 * tol and theta < theta_R:
            return _resume(space, it, v, point, mu)
        r = space.rows(point, v)
        dv = _newton_step(space, point, v, v_R, r, D2, zeta, rho)
        size = float(xp.max(xp.abs(dv))) if dv.shape[0] else 0.0
        psi = _psi(space, point, v, v_R, D2, zeta, rho)
        alpha = space.primal_step_limit(v, dv, max(0.99, 1.0 - rho))
        moved = False
        while alpha * size > 10.0 * eps * max(1.0, float(xp.max(xp.abs(v)))):
            trial_v = v + alpha * dv
            try:
                trial = form.evaluate(trial_v[: space.n])
            except NestoptError as exc:
                if not evaluation_failed(exc):
                    raise
                alpha *= 0.5
                continue
            if _psi(space, trial, trial_v, v_R, D2, zeta, rho) < psi:
                v, point, moved = trial_v, trial, True
                break
            alpha *= 0.5
        if moved and alpha * size > 1e-3 * math.sqrt(eps) * max(1.0, _size(xp, v)):
            continue
        if rho > 10.0 * eps or zeta > 10.0 * eps:
            rho, zeta = max(rho / 10.0, eps), max(zeta / 10.0, eps)
            continue
        # Stationary for the violation: feasible after all, infeasible, or a saddle.
        if space.theta(point, v) <= tol:
            return _resume(space, it, v, point, mu)
        if not _stationary(space, point, v):
            break  # no progress short of a stationary point: no claim either way
        decision = _at_stationary_violation(space, it, v, point, counts)
        if isinstance(decision, tuple):
            v, point = decision
            if escapes >= MAX_ESCAPES:
                break
            escapes += 1
            rho = max(mu, eps)
            zeta = math.sqrt(max(mu, eps))
            v_R = v
            continue
        return decision
    raise RestorationFailed(_resume(space, it, v, point, mu), EngineStatus.STALLED)


def _size(xp: Any, a: Any) -> float:
    return max(float(xp.max(xp.abs(a))) if a.shape[0] else 0.0, 1.0)


def _psi(space: Space, point: Any, v: Any, v_R: Any, D2: Any, zeta: float, rho: float) -> float:
    xp = space.xp
    r = space.rows(point, v)
    dL, dU = space.dL(v), space.dU(v)
    if bool(xp.any(dL <= 0)) or bool(xp.any(dU <= 0)):
        return float("inf")
    logs = xp.sum(space.hasL * xp.log(dL)) + xp.sum(space.hasU * xp.log(dU))
    value = 0.5 * xp.sum(r * r) + 0.5 * zeta * xp.sum(D2 * (v - v_R) ** 2) - rho * logs
    return float(value)


def _normal_matrix(space: Space, point: Any) -> Any:
    """``A^T A`` for ``A = [[J_E, 0], [J_I, -I]]`` (dense ``N x N``)."""
    xp = space.xp
    mT = xp.matrix_transpose
    JE, JI = point.JE, point.JI
    top_left = mT(JE) @ JE + mT(JI) @ JI
    mI = JI.shape[0]
    eye = xp.eye(mI, dtype=JI.dtype)
    top = xp.concat([top_left, -mT(JI)], axis=1)
    bottom = xp.concat([-JI, eye], axis=1)
    return xp.concat([top, bottom], axis=0)


def _newton_step(
    space: Space, point: Any, v: Any, v_R: Any, r: Any, D2: Any, zeta: float, rho: float
) -> Any:
    """Newton's step on ``psi``, its Hessian shifted until positive definite."""
    xp, form, n = space.xp, space.form, space.n
    dL, dU = space.dL(v), space.dU(v)
    grad = (
        space.At(point, r) + zeta * D2 * (v - v_R) - rho * space.hasL / dL + rho * space.hasU / dU
    )
    diag = rho * (space.hasL / dL**2 + space.hasU / dU**2) + zeta * D2
    H = _normal_matrix(space, point)
    if not form.nlp.linear_rows:
        # The rows' own curvature, weighted by their residuals: sum_i r_i hess c_i.
        curvature = form.hessian(point, r) - form.hessian(point, xp.zeros_like(r))
        pad = xp.zeros((n, space.N - n), dtype=H.dtype)
        low = xp.zeros((space.N - n, space.N), dtype=H.dtype)
        H = H + xp.concat([xp.concat([curvature, pad], axis=1), low], axis=0)
    eye = xp.eye(space.N, dtype=H.dtype)
    scale = max(float(xp.max(xp.abs(H))) if space.N else 1.0, 1.0)
    shift = 0.0
    for _ in range(24):
        try:
            factor = factor_positive(H + (diag + shift)[:, None] * eye, xp)
            return -factor.solve(grad)
        except FactorizationError:
            shift = 1e-8 * scale if shift == 0.0 else 10.0 * shift
    return xp.zeros_like(v)


def _stationary(space: Space, point: Any, v: Any) -> bool:
    """Is ``v`` a first-order stationary point of ``1/2 |r|^2`` within the bounds?

    The natural residual ``|v - clip(v - A^T r, l, u)|`` must be small against the
    violation (rows are scaled to unit gradients).
    """
    r = np.asarray(_host(space.rows(point, v)), dtype=float)
    g = np.asarray(_host(space.At(point, space.rows(point, v))), dtype=float)
    vh = np.asarray(_host(v), dtype=float)
    natural = vh - np.clip(vh - g, space.lower_host, space.upper_host)
    size = max(float(np.max(np.abs(r), initial=0.0)), 1.0)
    return float(np.max(np.abs(natural), initial=0.0)) <= 1e-6 * size


def _resume(space: Space, it: Iterate, v: Any, point: Any, mu: float) -> Iterate:
    """The main iteration's iterate at ``v``: central bound multipliers, least-squares rows."""
    zL = space.hasL * mu / space.dL(v)
    zU = space.hasU * mu / space.dU(v)
    y = least_squares_multipliers(space, point, zL, zU, 1e3)
    return Iterate(v, y, zL, zU, point)


def _at_stationary_violation(
    space: Space, it: Iterate, v: Any, point: Any, counts: dict[str, Any]
) -> Iterate | tuple[Any, Any]:
    """Decide at a stationary point of the violation (see the module's docstring).

    Returns an iterate to resume from (a feasible point of the LP), a new
    ``(v, point)`` past a saddle, or raises `RestorationFailed`.
    """
    form, n = space.form, space.n
    nlp = form.nlp
    J = np.asarray(_host(point.ev.jac), dtype=float).reshape(form.m, n)
    c = np.asarray(_host(point.ev.c), dtype=float).reshape(form.m)
    x = np.asarray(_host(v[:n]), dtype=float)
    xl, xu = space.lower_host[:n], space.upper_host[:n]
    linear = bool(nlp.linear_rows)
    convex = linear or bool(getattr(nlp, "convex_rows", False))
    here = _resume(space, it, v, point, 0.0)
    resolved = _farkas_decision(space, here, J, c - J @ x, xl, xu, convex, linear, counts)
    if resolved is not None:
        return resolved
    if linear:
        raise RestorationFailed(here, EngineStatus.STALLED)
    return _curvature_decision(space, it, v, point)


def _farkas_decision(
    space: Space, it: Iterate, J: Any, c0: Any, xl: Any, xu: Any, convex: bool, linear: bool,
    counts: dict[str, Any],
) -> Iterate | None:  # fmt: skip
    if not convex:
        return None
    form = space.form
    counts["farkas"] = counts.get("farkas", 0) + 1
    result = farkas(J, c0, form.cl, form.cu, xl, xu)
    if result is None:
        return None
    if result.infeasible:
        raise RestorationFailed(it, EngineStatus.INFEASIBLE, result.y)
    if not linear or counts.get("farkas", 0) > 2:
        return None
    # The LP found a feasible point: resume from it, pushed inside the bounds.
    xp = space.xp
    x = push_inside(xp, form.arr(result.x), xl, xu, 1e-2, 1e-2)
    point = form.evaluate(x)
    lo_s, up_s = space.lower_host[space.n :], space.upper_host[space.n :]
    s = push_inside(xp, point.cI, lo_s, up_s, 1e-2, 1e-2)
    return _resume(space, it, xp.concat([x, s]), point, 1e-2)


def _curvature_decision(space: Space, it: Iterate, v: Any, point: Any) -> tuple[Any, Any]:
    """A minimizer of the violation (LOCALLY_INFEASIBLE) or a way down past a saddle."""
    xp, form, n = space.xp, space.form, space.n
    r = space.rows(point, v)
    # Curvature of 1/2 ||r||^2 in v: A^T A + sum_i r_i hess r_i (rows only curve in x).
    curvature = form.hessian(point, r) - form.hessian(point, xp.zeros_like(r))
    H = np.asarray(_host(_normal_matrix(space, point)), dtype=float)
    H[:n, :n] += np.asarray(_host(curvature), dtype=float)
    vh = np.asarray(_host(v), dtype=float)
    lo, up = space.lower_host, space.upper_host
    room = np.minimum(vh - lo, up - vh)
    free = room > 1e-6 * np.maximum(1.0, np.abs(vh))
    Hf = H[np.ix_(free, free)]
    here = _resume(space, it, v, point, 0.0)
    if Hf.size == 0:
        raise RestorationFailed(here, EngineStatus.LOCALLY_INFEASIBLE)
    values, vectors = np.linalg.eigh(0.5 * (Hf + Hf.T))  # once, at the end: not per iteration
    if values[0] >= -1e-8 * max(1.0, float(np.max(np.abs(values)))):
        raise RestorationFailed(here, EngineStatus.LOCALLY_INFEASIBLE)
    direction = np.zeros(vh.size)
    direction[free] = vectors[:, 0]
    best = None
    for t in (1.0, -1.0):
        d = form.arr(t * direction)
        step = to_boundary(xp, space.dL(v), d, 0.99, space.hasL)
        step = min(step, to_boundary(xp, space.dU(v), -d, 0.99, space.hasU))
        length = min(step, 0.5 * _size(xp, v))
        trial_v = v + length * d
        trial = form.evaluate(trial_v[:n])
        theta = space.theta(trial, trial_v)
        if best is None or theta < best[0]:
            best = (theta, trial_v, trial)
    assert best is not None  # the first trial always becomes the best
    return best[1], best[2]


def _host(a: Any) -> Any:
    return to_numpy(a)
