"""Where the engine starts: inside the bounds, multipliers by least squares.

The start is pushed inside its bounds by ``min(kappa_1 max(1, |l|),
kappa_2 (u - l))`` (IPOPT's bound_push and bound_frac, so a narrow box is
not crossed); the slacks start at the rows' values, pushed the same way.
Row multipliers solve ``min ||grad f + A^T y - z_L + z_U||`` and are
discarded (set to zero) when larger than a cap: a row gradient that vanishes
at the start makes them meaningless.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._errors import FactorizationError
from .iterate import Space
from .newton_system import InertiaCorrection, factor_newton_system

__all__ = ["push_inside", "least_squares_multipliers"]


def push_inside(xp: Any, v: Any, lower: Any, upper: Any, kappa_1: float, kappa_2: float) -> Any:
    """``v`` moved strictly inside ``[lower, upper]`` (host bounds, ``+-inf`` where open)."""
    lo, up = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    width = np.where(np.isfinite(lo) & np.isfinite(up), up - lo, np.inf)
    with np.errstate(invalid="ignore"):
        push_l = np.minimum(kappa_1 * np.maximum(1.0, np.abs(lo)), kappa_2 * width)
        push_u = np.minimum(kappa_1 * np.maximum(1.0, np.abs(up)), kappa_2 * width)
        floor = np.where(np.isfinite(lo), lo + push_l, -np.inf)
        ceiling = np.where(np.isfinite(up), up - push_u, np.inf)
        # A box narrower than the pushes on both sides: its middle.
        middle = np.where(floor > ceiling, 0.5 * (lo + up), np.nan)
    dtype, device = v.dtype, _device(v)
    fl = xp.asarray(floor, dtype=dtype, device=device)
    ce = xp.asarray(ceiling, dtype=dtype, device=device)
    out = xp.minimum(xp.maximum(v, fl), ce)
    if np.any(np.isfinite(middle)):
        mid = xp.asarray(np.nan_to_num(middle), dtype=dtype, device=device)
        use = xp.asarray(np.isfinite(middle), device=device)
        out = xp.where(use, mid, out)
    return out


def least_squares_multipliers(space: Space, point: Any, zL: Any, zU: Any, cap: float) -> Any:
    """``argmin_y ||grad f + A^T y - z_L + z_U||`` in scaled units, or zero above ``cap``.

    Solves ``[[I, A^T], [A, 0]] (w, y) = (-(grad f - z_L + z_U), 0)`` with the
    engine's own factorization (IPOPT's way).
    """
    xp, form = space.xp, space.form
    m = form.mE + form.mI
    zero = xp.zeros((m,), dtype=form.dtype, device=form.device)
    if m == 0:
        return zero
    n = space.n
    eye_w = xp.zeros((n, n), dtype=form.dtype, device=form.device)
    one = xp.ones((space.N,), dtype=form.dtype, device=form.device)
    try:
        system = factor_newton_system(
            eye_w, one[:n], one[n:], point.JE, point.JI, 0.0, InertiaCorrection()
        )
        rhs = -(space.grad_f(point) - zL + zU)
        _, _, yE, yI = system.solve(rhs[:n], rhs[n:], zero[: form.mE], zero[form.mE :])
    except FactorizationError:
        return zero
    y = xp.concat([yE, yI])
    if not bool(xp.all(xp.isfinite(y))) or float(xp.max(xp.abs(y))) > cap:
        return zero
    return y


def _device(a: Any) -> Any:
    from array_api_compat import device

    return device(a)
