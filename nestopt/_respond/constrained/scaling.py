"""The interior point's view of a level: rows split by kind, objective and rows scaled.

Rows ``lb <= c <= ub`` become equalities (``lb == ub``) and one-sided
inequalities ``g_i = sign_i (c_i - b_i) >= 0``. The objective is divided by
its gradient at the start (or its curvature times the variable's size, at a
stationary start) and every row by its gradient's size, so that scaling ``F``
or a constraint does not change the iterates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._backend.host import to_numpy
from .reduced import LevelModel, LevelPoint

__all__ = ["RowSets", "Scaled", "host", "index"]


@dataclass(frozen=True)
class RowSets:
    """Which rows are equalities, lower or upper inequalities (host index arrays)."""

    eq: Any
    lo: Any
    hi: Any
    lb: Any  # host float arrays (m,)
    ub: Any

    @classmethod
    def of(cls, lb: Any, ub: Any) -> RowSets:
        lb, ub = np.asarray(lb, dtype=float), np.asarray(ub, dtype=float)
        eq = np.flatnonzero(lb == ub)
        lo = np.flatnonzero((lb != ub) & np.isfinite(lb))
        hi = np.flatnonzero((lb != ub) & np.isfinite(ub))
        return cls(eq, lo, hi, lb, ub)


class Scaled:
    """The level in scaled units: ``F / f_scale`` and row ``i`` divided by ``row_scale_i``."""

    def __init__(self, model: LevelModel, sets: RowSets, point: LevelPoint, hessian: Any) -> None:
        xp = model.xp
        self.model, self.sets, self.xp = model, sets, xp
        # F's scale: its gradient at the start, or (at a stationary start) its curvature
        # over the variable's size; both scale with F, so the iterates do not.
        size = float(xp.max(xp.abs(point.xs[model.j - 1]))) if hessian.shape[0] else 0.0
        gmax = float(xp.max(xp.abs(point.g_own))) if hessian.shape[0] else 0.0
        hmax = float(xp.max(xp.abs(hessian))) if hessian.shape[0] else 0.0
        self.f_scale = max(gmax, hmax * max(size, 1.0), 1e-300)
        J = np.asarray(host(point.J))
        norms = np.max(np.abs(J), axis=1) if J.size else np.zeros(J.shape[0])
        self.row_scale = np.where(norms > 0, norms, 1.0)
        ineq = np.concatenate([sets.lo, sets.hi])
        self.ineq = ineq
        self.sign = np.concatenate([np.ones(sets.lo.size), -np.ones(sets.hi.size)])
        self.bound = np.concatenate([sets.lb[sets.lo], sets.ub[sets.hi]])
        self.dtype, self.device = point.g_own.dtype, _device(point.g_own)

    def arr(self, a: Any) -> Any:
        return self.xp.asarray(np.asarray(a, dtype=float), dtype=self.dtype, device=self.device)

    def g(self, point: LevelPoint) -> Any:
        c = np.asarray(host(point.c))
        return self.arr(self.sign * (c[self.ineq] - self.bound) / self.row_scale[self.ineq])

    def h(self, point: LevelPoint) -> Any:
        c = np.asarray(host(point.c))
        eq = self.sets.eq
        return self.arr((c[eq] - self.sets.lb[eq]) / self.row_scale[eq])

    def G(self, point: LevelPoint) -> Any:
        rows = self.arr(self.sign / self.row_scale[self.ineq])
        return self.xp.take(point.J, index(self, self.ineq), axis=0) * rows[:, None]

    def JE(self, point: LevelPoint) -> Any:
        eq = self.sets.eq
        scale = self.arr(1.0 / self.row_scale[eq])
        return self.xp.take(point.J, index(self, eq), axis=0) * scale[:, None]

    def lam_rows(self, z: Any, y: Any, m: int) -> Any:
        """Unscaled multipliers per row, in DESIGN's sign (``L = F + lam^T c``)."""
        lam = np.zeros(m)
        zh, yh = np.asarray(host(z)), np.asarray(host(y))
        np.add.at(lam, self.ineq, -self.sign * zh / self.row_scale[self.ineq] * self.f_scale)
        lam[self.sets.eq] += yh / self.row_scale[self.sets.eq] * self.f_scale
        return self.arr(lam)


def index(scaled: Scaled, idx: Any) -> Any:
    return scaled.xp.asarray(np.asarray(idx, dtype=np.int64), device=scaled.device)


def host(a: Any) -> Any:

    return to_numpy(a)


def _device(a: Any) -> Any:
    from array_api_compat import device

    return device(a)
