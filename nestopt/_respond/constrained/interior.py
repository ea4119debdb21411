"""A primal-dual interior-point Newton method on one constrained level's reduced problem.

Rows ``lb <= c(x) <= ub`` become inequalities ``g_i = sign_i (c_i - b_i) >= 0``
with slacks ``s > 0`` and multipliers ``z > 0``, and equalities ``h = c - b``
with multipliers ``y``; the barrier problem ``F - mu sum log s`` is solved
inexactly for a falling ``mu`` by Newton steps on its primal-dual equations
(reduced to ``x`` and ``y``), with fraction-to-the-boundary step lengths and
a backtracking search on an l1 merit function. The lower levels are re-solved
at every trial point, started from their predicted response. The objective
and every row are scaled by their gradients at the start, so scaling ``F``
or a constraint does not change the iterates. What the method returns is a
point close to the solution and a guess of the active set; the polish
(``_polish``) makes both exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._errors import ConvergenceError, FactorizationError, InfeasibleError, NestoptError
from ..._linalg.factor import factorize_shifted
from .reduced import LevelModel, LevelPoint
from .scaling import RowSets, Scaled, host

__all__ = ["RowSets", "interior_point", "InteriorResult"]


@dataclass
class InteriorResult:
    """Where the interior point stopped: the point, multipliers per row, the active guess."""

    point: LevelPoint
    lam: Any  # multipliers per row (DESIGN's sign: L = F + lam^T c)
    active: Any  # host bool array per row
    iterations: int


def interior_point(model: LevelModel, xs: tuple[Any, ...], mode: str, maxiter: int) -> Any:
    """Run the interior point from ``xs`` until the barrier parameter is small.

    (Longer than this package's usual functions: the iteration's state, ``x, s, z,
    y, mu, nu``, is updated in one place, which is how the method reads in the
    literature; its pieces are the helpers below.)
    """
    xp, j, text = model.xp, model.j, model.text
    sets = RowSets.of(host(model.rows.lb), host(model.rows.ub))
    point = model.at(xs)
    if point.fun is None:
        raise ValueError(f"{text} has constraints: its value callable is needed for line searches")
    zero = xp.zeros((model.rows.m,), dtype=point.g.dtype)
    sc = Scaled(model, sets, point, model.lagrangian_rows(point, zero, mode)[:, model.own])
    m = model.rows.m
    p, q = sc.ineq.size, sets.eq.size
    g0 = sc.g(point)
    s = xp.maximum(g0, 1e-2 * xp.maximum(xp.abs(g0), xp.ones_like(g0)))
    z = xp.ones_like(s)
    y = xp.zeros((q,), dtype=sc.dtype, device=sc.device)
    mu = 0.1 * max(float(xp.mean(s * z)) if p else 0.1, 1e-2)
    nu = 10.0
    iterations = 0
    for iterations in range(1, maxiter + 1):  # noqa: B007 (the count is returned)
        model.nest.check_time()
        lam = sc.lam_rows(z, y, m)
        W = model.lagrangian_rows(point, lam, mode)[:, model.own] / sc.f_scale
        G, JE = sc.G(point), sc.JE(point)
        r_I = sc.g(point) - s if p else s
        h = sc.h(point)
        r_d = point.g_own / sc.f_scale - _mT(xp, G) @ z + _mT(xp, JE) @ y
        error = _kkt_error(xp, r_d, r_I, h, s, z, 0.0)
        if mu <= 1e-9 and error <= 1e-8:
            break
        if _kkt_error(xp, r_d, r_I, h, s, z, mu) <= 10.0 * mu:
            mu = max(1e-11, min(0.2 * mu, mu**1.5))
        largest = float(xp.max(xp.abs(xp.concat([z, y])))) if p + q else 0.0
        if largest > 1e10 or not largest < float("inf"):
            # In scaled units a regular solution has multipliers of order one: these grow
            # without bound when no point satisfies the rows.
            violation = float(xp.max(xp.abs(xp.concat([r_I, h])))) if p + q else 0.0
            raise InfeasibleError(
                f"{text}: its constraints could not be satisfied: the interior-point "
                f"multipliers diverge (largest {largest:.1e}, scaled violation "
                f"{violation:.2e}). Check that the level has a feasible point for these "
                "upper variables (compare its lb and ub, and the constraints together)",
                level=j,
            )
        dx, dy, ds, dz = _newton_step(xp, W, G, JE, r_d, r_I, h, s, z, mu, text, j)
        nu = max(nu, float(xp.max(xp.abs(xp.concat([z, y])))) + 1.0 if p + q else nu)
        alpha_s, alpha_z = _to_boundary(xp, s, ds, mu), _to_boundary(xp, z, dz, mu)
        point, s, alpha = _search(model, sc, xs, point, s, dx, ds, alpha_s, mu, nu, text, j)
        xs = point.xs
        z = z + alpha_z * dz
        y = y + alpha * dy
        if p:  # keep the slacks consistent where the constraints are satisfied
            s = xp.maximum(s, sc.g(point))
    else:
        raise ConvergenceError(
            f"{text}: the interior-point method did not converge in {maxiter} iterations "
            f"(KKT error {error:.2e}, barrier {mu:.1e}); raise maxiter in level_options, or "
            "check the level's constraints and their derivatives",
            level=j,
        )
    infeasible = float(xp.max(xp.abs(xp.concat([r_I, h])))) if p + q else 0.0
    if infeasible > 1e-6:
        raise InfeasibleError(
            f"{text}: its constraints could not be satisfied (scaled violation "
            f"{infeasible:.2e} after the interior point converged); check that the level "
            "has a feasible point for these upper variables",
            level=j,
        )
    active = np.zeros(m, dtype=bool)
    active[sets.eq] = True
    s_h, z_h = np.asarray(host(s)), np.asarray(host(z))
    active[sc.ineq[s_h < z_h]] = True
    return InteriorResult(point, sc.lam_rows(z, y, m), active, iterations)


def _mT(xp: Any, a: Any) -> Any:
    return xp.matrix_transpose(a)


def _kkt_error(xp: Any, r_d: Any, r_I: Any, h: Any, s: Any, z: Any, mu: float) -> float:
    parts = [float(xp.max(xp.abs(r_d))) if r_d.shape[0] else 0.0]
    if r_I.shape[0]:
        parts.append(float(xp.max(xp.abs(r_I))))
        parts.append(float(xp.max(xp.abs(s * z - mu))))
    if h.shape[0]:
        parts.append(float(xp.max(xp.abs(h))))
    return max(parts)


def _newton_step(
    xp: Any, W: Any, G: Any, JE: Any, r_d: Any, r_I: Any, h: Any, s: Any, z: Any, mu: float,
    text: str, j: int,
) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """The primal-dual step, reduced to ``(dx, dy)``; the Hessian is shifted until the
    system has the inertia of a minimum (``d`` positive, ``q`` negative eigenvalues)."""
    d, q = W.shape[0], JE.shape[0]
    sigma = z / s
    H = W + _mT(xp, G) @ (sigma[:, None] * G)
    rhs_x = -(r_d + _mT(xp, G) @ (z - mu / s + sigma * r_I))
    if q == 0:
        try:
            dx = factorize_shifted(0.5 * (H + _mT(xp, H)), xp=xp).solve(rhs_x)
        except FactorizationError as exc:
            raise ConvergenceError(
                f"{text}: the interior-point step failed ({exc}); the level may not be "
                "strongly convex near this point",
                level=j,
            ) from None
        dy = xp.zeros((0,), dtype=H.dtype)
    else:
        dx, dy = _kkt_step(xp, H, JE, rhs_x, -h, d, q, text, j)
    ds = G @ dx + r_I
    dz = -(z - mu / s) - sigma * ds
    return dx, dy, ds, dz


def _kkt_step(
    xp: Any, H: Any, JE: Any, rhs_x: Any, rhs_y: Any, d: int, q: int, text: str, j: int
) -> tuple[Any, Any]:
    """Solve the equality-constrained step, correcting the inertia by a diagonal shift."""
    scale = max(float(xp.max(xp.abs(H))) if d else 0.0, 1.0)
    shift = 0.0
    for _ in range(30):
        top = xp.concat([H + shift * xp.eye(d, dtype=H.dtype), _mT(xp, JE)], axis=1)
        bottom = xp.concat([JE, -1e-12 * scale * xp.eye(q, dtype=H.dtype)], axis=1)
        K = xp.concat([top, bottom], axis=0)
        eigenvalues = xp.linalg.eigvalsh(0.5 * (K + _mT(xp, K)))
        positive = int(xp.count_nonzero(eigenvalues > 0))
        if positive == d:
            out = xp.linalg.solve(K, xp.concat([rhs_x, rhs_y]))
            return out[:d], out[d:]
        shift = 1e-4 * scale if shift == 0.0 else 10.0 * shift
    raise ConvergenceError(
        f"{text}: no shift gave the interior-point system the inertia of a minimum; the "
        "equality constraints may be dependent",
        level=j,
    )


def _to_boundary(xp: Any, v: Any, dv: Any, mu: float) -> float:
    """The longest step in (0, 1] with ``v + a dv >= (1 - tau) v``, ``tau = max(0.99, 1 - mu)``."""
    if v.shape[0] == 0:
        return 1.0
    tau = max(0.99, 1.0 - mu)
    shrinking = dv < 0
    if not bool(xp.any(shrinking)):
        return 1.0
    ratios = xp.where(shrinking, -tau * v / xp.where(shrinking, dv, -xp.ones_like(dv)), 2.0)
    return min(1.0, float(xp.min(ratios)))


def _search(
    model: LevelModel, sc: Scaled, xs: tuple[Any, ...], point: LevelPoint, s: Any, dx: Any,
    ds: Any, alpha_max: float, mu: float, nu: float, text: str, j: int,
) -> tuple[LevelPoint, Any, float]:  # fmt: skip
    """Backtrack on the merit ``F - mu sum log s + nu (|g - s|_1 + |h|_1)`` (scaled)."""
    xp = model.xp

    def merit(pt: LevelPoint, slack: Any) -> tuple[float, float]:
        barrier = float(xp.sum(xp.log(slack))) if slack.shape[0] else 0.0
        violation = 0.0
        if slack.shape[0]:
            violation += float(xp.sum(xp.abs(sc.g(pt) - slack)))
        hv = sc.h(pt)
        if hv.shape[0]:
            violation += float(xp.sum(xp.abs(hv)))
        assert pt.fun is not None, "a constrained level has a value (checked on entry)"
        return pt.fun / sc.f_scale - mu * barrier + nu * violation, violation

    phi0, violation0 = merit(point, s)
    slope = float(point.g_own @ dx) / sc.f_scale
    if s.shape[0]:
        slope -= mu * float(xp.sum(ds / s))
    slope -= nu * violation0
    alpha = alpha_max
    own = model.own
    predicted = None
    if point.R is not None and model.nest.config.predict:
        predicted = point.R[:, own] @ dx
    last: NestoptError | None = None
    for _ in range(40):
        trial = list(xs)
        trial[j - 1] = xs[j - 1] + alpha * dx
        if predicted is not None:
            s_j = own.stop
            for k in range(j + 1, model.problem.n + 1):
                block = model.problem.block(k)
                trial[k - 1] = xs[k - 1] + alpha * predicted[block.start - s_j : block.stop - s_j]
        try:
            candidate = model.at(tuple(trial))
        except NestoptError as exc:
            if exc.status is None:
                raise
            last = exc
            alpha *= 0.5
            continue
        slack = s + alpha * ds
        phi, _ = merit(candidate, slack)
        if phi <= phi0 + 1e-4 * alpha * min(slope, 0.0) + 1e-12 * abs(phi0):
            return candidate, slack, alpha
        alpha *= 0.5
    if last is not None:
        raise last
    raise ConvergenceError(
        f"{text}: the interior-point line search found no decrease of its merit function; "
        "the level's objective or constraints may be inconsistent with their derivatives "
        "(run nestopt.check_derivatives) or badly scaled",
        level=j,
    )
