"""Refine the interior point's answer by Newton's method on its active set.

At the interior point's end, the bounds and rows it judged active are held
with equality and Newton's method solves

    [ W_FF   J_AF^T ] [dx_F]     [ grad_F f + J_AF^T y_A ]
    [ J_AF   0      ] [dy_A] = - [ c_A - b_A             ]

over the free variables ``F``; the multipliers of the fixed bounds follow
from stationarity. The result is accepted only when it is a KKT point in
every variable's and row's own scale: feasible, multipliers of the right
sign, stationary. This makes the answer exact to rounding where the barrier
leaves a variable with a small share of the objective (a weak curvature next
to a stiff one) short of its bound, as no global tolerance would notice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._backend.host import to_numpy
from ..._errors import NestoptError
from .barrier_form import evaluation_failed
from .iterate import Iterate, Space

__all__ = ["refine"]

MAX_STEPS = 20


def refine(space: Space, it: Iterate, active: Any, tol: float) -> Iterate | None:
    """The iterate on the active set ``active`` (host bools over ``v``), or None."""
    xp, form, n = space.xp, space.form, space.n
    mE = form.mE
    lo, up = space.lower_host, space.upper_host
    vh = np.asarray(_host(it.v), dtype=float)
    at_lower = active & (np.abs(vh - lo) <= np.abs(up - vh))
    at_upper = active & ~at_lower
    fixed = at_lower[:n] | at_upper[:n]
    free = np.flatnonzero(~fixed)
    rows_active = np.concatenate([np.ones(mE, dtype=bool), active[n:]])
    rows = np.flatnonzero(rows_active)
    target = np.concatenate([np.zeros(mE), np.where(at_lower[n:], lo[n:], up[n:])])[rows]
    x = np.where(at_lower[:n], lo[:n], np.where(at_upper[:n], up[:n], vh[:n]))
    y = np.asarray(_host(it.y), dtype=float)
    y = np.where(rows_active, y, 0.0)
    eps = float(xp.finfo(form.dtype).eps)
    scale = max(float(np.max(np.abs(x))) if n else 0.0, 1.0)
    point = None
    try:
        for _ in range(MAX_STEPS):
            point = form.evaluate(form.arr(x))
            W = np.asarray(_host(form.hessian(point, form.arr(y))), dtype=float)
            J = np.asarray(_host(xp.concat([point.JE, point.JI], axis=0)), dtype=float)
            c = np.asarray(_host(xp.concat([point.cE, point.cI])), dtype=float)
            g = np.asarray(_host(point.g), dtype=float)
            JA = J[np.ix_(rows, free)]
            K = np.block([[W[np.ix_(free, free)], JA.T], [JA, np.zeros((rows.size, rows.size))]])
            rhs = -np.concatenate([g[free] + J[rows][:, free].T @ y[rows], c[rows] - target])
            with np.errstate(all="ignore"):
                step = np.linalg.solve(K, rhs)
            if not np.all(np.isfinite(step)):
                return None
            dx = step[: free.size]
            x[free] += dx
            y[rows] += step[free.size :]
            if float(np.max(np.abs(dx), initial=0.0)) <= 100.0 * eps * scale:
                break
        point = form.evaluate(form.arr(x))
    except np.linalg.LinAlgError:
        return None
    except NestoptError as exc:
        if not evaluation_failed(exc):
            raise
        return None
    return _checked(space, it, point, x, y, at_lower, at_upper, fixed, rows_active, tol)


def _checked(
    space: Space, it: Iterate, point: Any, x: Any, y: Any, at_lower: Any, at_upper: Any,
    fixed: Any, rows_active: Any, tol: float,
) -> Iterate | None:  # fmt: skip
    xp, form, n = space.xp, space.form, space.n
    mE = form.mE
    lo, up = space.lower_host, space.upper_host
    J = np.asarray(_host(xp.concat([point.JE, point.JI], axis=0)), dtype=float)
    g = np.asarray(_host(point.g), dtype=float)
    cI = np.asarray(_host(point.cI), dtype=float)
    cE = np.asarray(_host(point.cE), dtype=float)
    grad_L = g + J.T @ y if J.size else g.copy()
    # Each variable's own gradient scale: its share of f and of the rows' terms.
    own = np.maximum(np.abs(g), np.abs(J * y[:, None]).sum(axis=0) if J.size else 0.0)
    start = form.start_gradient if form.start_gradient is not None else own
    own = np.maximum(np.maximum(own, start), 1e-300)
    z = np.where(fixed, -grad_L, 0.0)  # nestopt's sign: L = f + y^T c + z^T x
    loose = np.sqrt(tol)
    if np.any(np.abs(grad_L[~fixed]) > tol * own[~fixed]):
        return None
    if np.any(z[at_lower[:n]] > loose * own[at_lower[:n]]) or np.any(
        z[at_upper[:n]] < -loose * own[at_upper[:n]]
    ):
        return None
    if np.any(np.abs(cE) > tol):
        return None
    s_lo, s_up = lo[n:], up[n:]
    yI = y[mE:]
    size = np.maximum(1.0, np.maximum(np.abs(np.where(np.isfinite(s_lo), s_lo, 0.0)), 0.0))
    if np.any(cI < s_lo - tol * size) or np.any(cI > s_up + tol * size):
        return None
    act_lo, act_up = at_lower[n:], at_upper[n:]
    if np.any(yI[act_lo] > loose) or np.any(yI[act_up] < -loose):
        return None
    xl, xu = lo[:n], up[:n]
    if np.any(x < xl - tol * np.maximum(1.0, np.abs(xl))) or np.any(
        x > xu + tol * np.maximum(1.0, np.abs(xu))
    ):
        return None
    s = np.clip(cI, s_lo, s_up)
    v = np.concatenate([x, s])
    zL = np.concatenate([np.maximum(-z, 0.0), np.where(act_lo, np.maximum(-yI, 0.0), 0.0)])
    zU = np.concatenate([np.maximum(z, 0.0), np.where(act_up, np.maximum(yI, 0.0), 0.0)])
    return Iterate(form.arr(v), form.arr(y), form.arr(zL), form.arr(zU), point)


def _host(a: Any) -> Any:
    return to_numpy(a)
