"""A constrained level's rows on its active set: which are which, their scales, its KKT system.

Shared by the polish (`polish`) and the degenerate-vertex treatment (`vertex`):
the rows' kinds and bounds (`RowSets`), the solution record
(`ConstrainedSolution`), the split of an active set into general rows and
variables at a bound, the rows' scales for relative tests, and the factored
KKT matrix of an active set with the level's Jacobian system on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import device

from ..._backend.host import max_abs, to_numpy
from ..._linalg.active_set import ActiveSetKKT
from ..._linalg.kkt_system import KKTSystem
from .reduced import LevelModel, LevelPoint

__all__ = [
    "RowSets",
    "row_gradients",
    "ConstrainedSolution",
    "rows_transposed",
    "split_rows",
    "active_kkt",
    "active_general_rows",
    "row_maxima",
    "level_array",
    "row_scales",
    "row_sets",
    "kkt_system",
]


@dataclass(frozen=True)
class RowSets:
    """Which rows are equalities, lower or upper inequalities (host index arrays)."""

    eq: Any
    lo: Any
    hi: Any
    lb: Any  # host float arrays (m,)
    ub: Any
    bounds: Any  # per row, the larger finite |lb|, |ub| (0 where both are infinite)

    @classmethod
    def of(cls, lb: Any, ub: Any) -> RowSets:
        lb, ub = np.asarray(lb, dtype=float), np.asarray(ub, dtype=float)
        eq = np.flatnonzero(lb == ub)
        lo = np.flatnonzero((lb != ub) & np.isfinite(lb))
        hi = np.flatnonzero((lb != ub) & np.isfinite(ub))
        bounds = np.where(np.isfinite(lb), np.abs(lb), 0.0)
        bounds = np.maximum(bounds, np.where(np.isfinite(ub), np.abs(ub), 0.0))
        return cls(eq, lo, hi, lb, ub, bounds)

    def slack(self, c: Any) -> Any:
        """Each row's distance from its value ``c`` to its nearer bound (unscaled)."""
        with np.errstate(invalid="ignore"):
            return np.minimum(np.abs(c - self.lb), np.abs(c - self.ub))

    def violation(self, c: Any) -> Any:
        """How far each row's value ``c`` lies outside its bounds (negative inside)."""
        return np.maximum(self.lb - c, c - self.ub)

    def at_upper(self, c: Any) -> Any:
        """Whether each row's value ``c`` is nearer its upper bound than its lower."""
        return np.abs(c - self.ub) < np.abs(c - self.lb)


@dataclass
class ConstrainedSolution:
    """A constrained level at its solution: multipliers and active rows, with labels."""

    lam: Any  # per row, DESIGN's sign (L = F + lam^T c): <= 0 at a lower bound, >= 0 at an upper
    active: Any  # host bool array per row
    labels: list[str]
    degenerate: list[str]
    rows: Any  # the level's ConstraintRows
    weak: Any = None  # host bool array per row: weakly active (at a bound, zero multiplier)


def rows_transposed(model: LevelModel, point: LevelPoint, lam: Any) -> Any:
    """``J^T lam`` over every row, the box's included (its rows of the identity never
    formed); ``lam`` is a host array, zero off the active set."""
    xp, general = model.xp, model.rows.general
    out = xp.matrix_transpose(point.J) @ level_array(xp, lam[:general], point.g)
    return out + level_array(xp, lam[general:], point.g) if model.rows.box is not None else out


def row_gradients(model: LevelModel, J: Any, rows: Any) -> Any:
    """The gradients on ``x_j`` of the level's rows ``rows`` (host, one per row): the general
    rows' from ``J`` (host), the box's as rows of the identity, formed only for these rows."""
    general, d = model.rows.general, model.own.stop - model.own.start
    rows = np.asarray(rows, dtype=int)
    out = np.zeros((rows.size, d))
    inside = rows < general
    out[inside] = J[rows[inside]]
    box = np.flatnonzero(~inside)
    out[box, rows[box] - general] = 1.0
    return out


def split_rows(model: LevelModel, mask: Any) -> tuple[Any, Any]:
    """The general rows in ``mask`` (indices) and the variables whose bound is in it."""
    general, d = model.rows.general, model.own.stop - model.own.start
    fixed = mask[general:] if model.rows.box is not None else np.zeros(d, dtype=bool)
    return mask[:general].nonzero()[0], fixed


def active_general_rows(model: LevelModel, point: LevelPoint, active: Any) -> Any:
    """The Jacobian's rows (on ``x_j``) of the general rows in ``active`` at ``point``."""
    idx = split_rows(model, active)[0]
    if not idx.size:
        return point.J[:0, :]
    return model.xp.take(point.J, level_array(model.xp, idx, point.g, int), axis=0)


def active_kkt(model: LevelModel, W: Any, point: LevelPoint, active: Any) -> ActiveSetKKT:
    """The KKT matrix of the rows ``active`` at ``point``, factored with its bounds
    eliminated (raises `FactorizationError` where it is singular)."""
    J_R = active_general_rows(model, point, active)
    return ActiveSetKKT(model.xp, W[:, model.own], J_R, split_rows(model, active)[1])


def row_maxima(model: LevelModel, J: Any, weights: Any) -> Any:
    """Per row of the level, ``max_i |J_ri| w_i``: the general rows from ``J`` (host, absolute
    values), then the box's (row ``i`` is ``e_i``: ``w_i``)."""
    general = (J * weights[None, :]).max(axis=1, initial=0.0) if J.shape[0] else np.zeros(0)
    return np.concatenate([general, weights]) if model.rows.box is not None else general


def level_array(xp: Any, a: Any, like: Any, kind: type = float) -> Any:
    """Host values ``a`` as an array of ``like``'s namespace, device and (for floats) dtype."""
    if type(like) is np.ndarray:  # NumPy: one conversion, without the namespace's wrapper
        return np.asarray(a, dtype=like.dtype if kind is float else np.int64)
    dtype = like.dtype if kind is float else xp.int64
    return xp.asarray(np.asarray(a, dtype=kind), dtype=dtype, device=device(like))


def row_sets(model: LevelModel) -> RowSets:
    """The level's `RowSets` (computed once per model)."""
    sets = model.derived.get("sets")
    if sets is None:
        sets = model.derived["sets"] = RowSets.of(to_numpy(model.rows.lb), to_numpy(model.rows.ub))
    return sets


def row_scales(model: LevelModel, point: LevelPoint, sets: RowSets) -> tuple[Any, Any]:
    """Per row: the scale of its values and of its multiplier (for relative tests; computed
    once per point)."""
    scales = point.derived.get("row_scales")
    if scales is None:
        scales = point.derived["row_scales"] = _row_scales(model, point, sets)
    return scales


def _row_scales(model: LevelModel, point: LevelPoint, sets: RowSets) -> tuple[Any, Any]:
    xp = model.xp
    # float64: float32 would underflow the 1e-300 guard
    J = np.abs(np.asarray(to_numpy(point.J), dtype=float))
    row = row_maxima(model, J, np.ones(J.shape[1]))
    row = np.where(row > 0, row, 1.0)
    x = max_abs(xp, point.xs[model.j - 1])
    values = np.maximum(sets.bounds, row * max(x, 1.0))
    gscale = max(max_abs(xp, point.g_own), 1e-300)
    return values, gscale / row


def kkt_system(
    model: LevelModel, point: LevelPoint, W: Any, kkt: ActiveSetKKT, active: Any
) -> KKTSystem:
    """The level's Jacobian system on the active set ``active`` from its factored ``kkt``."""
    xp = model.xp
    C = model.cross_jacobian(point)
    rows_A, fixed = split_rows(model, active)
    C_A = xp.take(C, level_array(xp, rows_A, point.g, int), axis=0) if rows_A.size else C[:0, :]
    if fixed.any():  # the box's rows do not move with the upper variables
        zeros = xp.zeros((int(fixed.sum()), C.shape[1]), dtype=C.dtype, device=device(C))
        C_A = xp.concat([C_A, zeros], axis=0)
    return KKTSystem(xp, kkt, W[:, : model.own.start], C_A, model.text, model.j)
