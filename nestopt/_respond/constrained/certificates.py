"""Proofs of infeasibility: a Farkas certificate for linear rows and bounds.

For rows ``l <= J x + c0 <= u`` and bounds ``x_l <= x <= x_u``, multipliers
``y`` (nestopt's sign: positive on an upper side, negative on a lower side)
prove that no point exists when

    min over the box of (J^T y) . x  +  y . c0   >   sum_{y_i > 0} y_i u_i + sum_{y_i < 0} y_i l_i,

since every feasible ``x`` has ``y . (J x + c0)`` at most the right side and at
least the left. The multipliers are the duals of the phase-one LP
``min sum(p + q)`` subject to ``l <= J x + c0 + p - q <= u``, ``p, q >= 0``
(solved by HiGHS through ``scipy.optimize.linprog``, imported only here). For
convex rows, the linearization at a point is an outer approximation of the
feasible set, so its certificate proves the rows infeasible too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FarkasResult", "farkas", "farkas_gap"]


@dataclass(frozen=True)
class FarkasResult:
    """``infeasible`` with its certificate ``y`` (m,) and ``gap`` (> 0 proves it), or a
    feasible point ``x`` of the LP when there is one."""

    infeasible: bool
    y: Any
    gap: float
    x: Any


def farkas(
    J: Any, c0: Any, lower: Any, upper: Any, x_lower: Any, x_upper: Any
) -> FarkasResult | None:
    """Solve the phase-one LP of the rows ``lower <= J x + c0 <= upper`` within the box.

    Host NumPy arrays in, host out; None when SciPy is missing or HiGHS fails.
    """
    try:
        from scipy.optimize import linprog
    except ImportError:
        return None
    J = np.asarray(J, dtype=float)
    m, n = J.shape
    lo, up = np.asarray(lower, dtype=float) - c0, np.asarray(upper, dtype=float) - c0
    # Rows scaled to unit largest entry, so the LP's tolerances mean the same for every row.
    norms = np.max(np.abs(J), axis=1) if n else np.zeros(m)
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)
    Js, los, ups = J * scale[:, None], lo * scale, up * scale
    eq = los == ups
    has_u, has_l = np.isfinite(ups) & ~eq, np.isfinite(los) & ~eq
    # Variables (x, p, q): row i reads J_i x + p_i - q_i.
    full = np.hstack([Js, np.eye(m), -np.eye(m)])
    cost = np.concatenate([np.zeros(n), np.ones(2 * m)])
    A_ub = np.vstack([full[has_u], -full[has_l]])
    b_ub = np.concatenate([ups[has_u], -los[has_l]])
    bounds = [(_b(a), _b(b)) for a, b in zip(x_lower, x_upper)] + [(0.0, None)] * (2 * m)
    res = linprog(
        cost,
        A_ub=A_ub if A_ub.shape[0] else None,
        b_ub=b_ub if A_ub.shape[0] else None,
        A_eq=full[eq] if eq.any() else None,
        b_eq=ups[eq] if eq.any() else None,
        bounds=bounds,
        method="highs",
    )
    if res.status != 0:
        return None
    x = np.asarray(res.x[:n])
    sides = np.concatenate([los, ups])
    size = float(np.max(np.abs(sides[np.isfinite(sides)]), initial=1.0))
    if res.fun <= 1e-9 * size:
        return FarkasResult(False, None, 0.0, x)
    ys = np.zeros(m)
    marg_ub = np.asarray(res.ineqlin.marginals) if A_ub.shape[0] else np.zeros(0)
    k = int(has_u.sum())
    ys[has_u] -= marg_ub[:k]  # marginals of <= rows are <= 0; an upper side wants y >= 0
    ys[has_l] += marg_ub[k:]
    if eq.any():
        ys[eq] -= np.asarray(res.eqlin.marginals)
    y = ys * scale  # certificate for the unscaled rows
    gap = farkas_gap(J, c0, lower, upper, x_lower, x_upper, y)
    return FarkasResult(gap > 0.0, y, gap, x)


def farkas_gap(
    J: Any, c0: Any, lower: Any, upper: Any, x_lower: Any, x_upper: Any, y: Any
) -> float:
    """The certificate's margin (left side less right side above); ``> 0`` proves
    infeasibility. Terms that rounding cannot separate from zero count against it."""
    J, y = np.asarray(J, dtype=float), np.asarray(y, dtype=float)
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    w = J.T @ y
    tiny = (
        1e-12
        * max(float(np.max(np.abs(J))) if J.size else 0.0, 1.0)
        * max(float(np.max(np.abs(y))) if y.size else 0.0, 1.0)
    )
    w = np.where(np.abs(w) <= tiny, 0.0, w)
    xl, xu = np.asarray(x_lower, dtype=float), np.asarray(x_upper, dtype=float)
    with np.errstate(invalid="ignore"):
        least = np.where(w > 0, w * xl, np.where(w < 0, w * xu, 0.0))
    left = float(np.sum(least)) + float(y @ np.asarray(c0, dtype=float))
    with np.errstate(invalid="ignore"):
        right_terms = np.where(y > 0, y * upper, np.where(y < 0, y * lower, 0.0))
    right = float(np.sum(right_terms))
    if not np.isfinite(left) or not np.isfinite(right):
        return -np.inf
    return left - right - 1e-9 * max(abs(left), abs(right), 1.0)


def _b(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
