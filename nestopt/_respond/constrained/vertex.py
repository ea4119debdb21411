"""A degenerate vertex: the rows at a bound are dependent but fix every variable.

LICQ fails there, yet the response can be unique: the vertex those rows fix,
moving with the upper variables, as long as the rows left out of an
independent subset keep their bounds along it and some multipliers have
every sign strictly right (then nearby upper variables keep the vertex
optimal). `degenerate_vertex` checks both (the second by an LP, SciPy's
``linprog``) and returns the solution with its exact Jacobian, or None.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._backend.host import to_numpy
from ..._errors import ConvergenceError, FactorizationError, NestoptError
from ..._linalg.kkt_system import KKTSystem
from .active_rows import (
    ConstrainedSolution,
    RowSets,
    active_kkt,
    kkt_system,
    level_array,
    row_gradients,
    row_scales,
    split_rows,
)
from .reduced import LevelModel, LevelPoint

__all__ = ["degenerate_vertex"]


def degenerate_vertex(
    model: LevelModel, point: LevelPoint, W: Any, held: Any, sets: RowSets, mode: str
) -> tuple[LevelPoint, KKTSystem, ConstrainedSolution] | None:
    """The solution at a degenerate vertex, or None where it is not one that nestopt can
    differentiate.

    The rows at a bound (``held``) have dependent gradients (LICQ fails) but span every
    direction of ``x_j``: the point is a vertex, fixed by an independent subset ``S`` of
    them. The response follows the vertex (``G = -J_S^{-1} C_S``, unique) when the rows
    left out keep their bounds along it (``C_i + J_i G = 0``) and some multipliers have
    every sign strictly right (an LP: then nearby upper variables keep the vertex optimal).
    Those multipliers are one choice of many, and the results say so.
    """
    linprog = _linprog()
    if linprog is None:
        return None
    xp = model.xp
    idx, fixed = split_rows(model, held)
    free = np.flatnonzero(~fixed)
    J = np.asarray(to_numpy(point.J), dtype=float)
    J_RF = J[idx][:, free]
    if free.size and (idx.size < free.size or np.linalg.matrix_rank(J_RF) < free.size):
        return None  # not a vertex: the response is not fixed by its rows
    kept = _independent_rows(J_RF)
    rows = held.copy()
    rows[idx[~kept]] = False
    try:
        point = _onto_vertex(model, point, W, rows, sets)
    except (NestoptError, FactorizationError, ArithmeticError, ValueError):
        return None
    # Every row said to be held must sit at its bound there, and every other be feasible:
    # a vertex of rows that are not all active is not this point's vertex.
    c = np.asarray(to_numpy(point.c), dtype=float)
    values = row_scales(model, point, sets)[0]
    eps = float(xp.finfo(point.g.dtype).eps)
    gap = sets.slack(c) / values
    violation = sets.violation(c) / values
    if np.any(gap[held] > 1e3 * eps) or np.any(violation > 1e3 * eps):
        return None
    lam = _strict_multipliers(linprog, model, point, held, sets)
    if lam is None:
        return None
    try:
        W = model.lagrangian_rows(point, level_array(xp, lam, point.g), mode)
        kkt = active_kkt(model, W, point, rows)
    except FactorizationError:
        return None
    system = kkt_system(model, point, W, kkt, rows)
    G = np.asarray(to_numpy(system.G()), dtype=float)
    C = np.asarray(to_numpy(model.cross_jacobian(point)), dtype=float)
    J = np.asarray(to_numpy(point.J), dtype=float)
    for i in idx[~kept]:
        change = C[i] + J[i] @ G
        size = max(float(np.max(np.abs(C[i]), initial=0.0)), float(np.max(np.abs(J[i]))))
        if float(np.max(np.abs(change), initial=0.0)) > 1e-8 * max(size, 1e-300) * max(
            1.0, float(np.max(np.abs(G), initial=0.0))
        ):
            return None
    labels = model.rows.labels
    note = (
        f"{model.text}: at a degenerate vertex (rows at their bounds: "
        f"{', '.join(labels[i] for i in np.flatnonzero(held))}; their gradients are "
        "dependent): the response and its Jacobian are unique, the multipliers one choice "
        "of many"
    )
    if note not in model.nest.stats.notes:
        model.nest.stats.notes.append(note)
    solution = ConstrainedSolution(
        lam, held.copy(), labels, [], model.rows, np.zeros(held.size, dtype=bool)
    )
    return point, system, solution


def _linprog() -> Any:
    try:
        from scipy.optimize import linprog
    except ImportError:
        return None
    return linprog


def _independent_rows(J: Any) -> Any:
    """A maximal set of linearly independent rows of ``J`` (the largest first)."""
    norms = np.linalg.norm(J, axis=1) if J.size else np.zeros(J.shape[0])
    basis: list[Any] = []
    kept = np.zeros(J.shape[0], dtype=bool)
    for i in np.argsort(-norms, kind="stable"):
        if len(basis) == J.shape[1]:
            break
        v = J[i].copy()
        for q in basis:
            v -= (q @ v) * q
        if norms[i] > 0 and np.linalg.norm(v) > 1e-9 * norms[i]:
            basis.append(v / np.linalg.norm(v))
            kept[i] = True
    return kept


def _onto_vertex(
    model: LevelModel, point: LevelPoint, W: Any, rows: Any, sets: RowSets
) -> LevelPoint:
    """Newton on the vertex's equations alone (its rows at their bounds), to rounding."""
    xp, j = model.xp, model.j
    idx = np.flatnonzero(rows)
    d = model.own.stop - model.own.start
    for _ in range(20):
        c = np.asarray(to_numpy(point.c), dtype=float)
        target = np.where(sets.at_upper(c), sets.ub, sets.lb)
        gap = c[idx] - target[idx]
        size = np.maximum(np.abs(target[idx]), 1.0)
        if float(np.max(np.abs(gap) / size, initial=0.0)) <= 10.0 * float(
            xp.finfo(point.g.dtype).eps
        ):
            return point
        kkt = active_kkt(model, W, point, rows)
        rhs = xp.concat([xp.zeros((d,), dtype=point.g.dtype), level_array(xp, -gap, point.g)])
        dx = kkt.solve(rhs, bound_multipliers=False)[:d]
        trial = list(point.xs)
        trial[j - 1] = point.xs[j - 1] + dx
        point = model.at(tuple(trial))
    raise ConvergenceError(f"{model.text}: its vertex was not reached", level=j)


def _strict_multipliers(
    linprog: Any, model: LevelModel, point: LevelPoint, held: Any, sets: RowSets
) -> Any:
    """Multipliers of the rows ``held`` that make the point stationary with every sign
    strictly right (``s_i lambda_i >= delta``, ``delta`` maximized by an LP), refined to
    rounding on their support; None where the best ``delta`` is zero."""
    d = model.own.stop - model.own.start
    g = np.asarray(to_numpy(point.g_own), dtype=float)
    J = np.asarray(to_numpy(point.J), dtype=float)
    c = np.asarray(to_numpy(point.c), dtype=float)
    rows = np.flatnonzero(held)
    A = row_gradients(model, J, rows)  # every held row's gradient on x_j
    upper = sets.at_upper(c)[rows]
    inequality = sets.lb[rows] != sets.ub[rows]
    sign = np.where(upper, 1.0, -1.0)  # lambda_i has this sign at its bound
    scale = max(float(np.max(np.abs(g), initial=0.0)), 1e-300)
    m = rows.size
    # Variables (lambda, delta); maximize delta: minimize -delta.
    cost = np.zeros(m + 1)
    cost[-1] = -1.0
    A_eq = np.hstack([A.T, np.zeros((d, 1))])
    A_ub = np.zeros((int(inequality.sum()), m + 1))
    for n, i in enumerate(np.flatnonzero(inequality)):
        A_ub[n, i] = -sign[i]
        A_ub[n, -1] = 1.0
    bounds = [(None, None)] * m + [(0.0, scale)]
    lp = linprog(cost, A_ub=A_ub, b_ub=np.zeros(A_ub.shape[0]), A_eq=A_eq, b_eq=-g, bounds=bounds)
    if lp.status != 0 or -lp.fun <= 1e-6 * scale:
        return None
    lam_held = np.asarray(lp.x[:m], dtype=float)
    # Refine to rounding: the least-norm correction of the stationarity residual.
    residual = g + A.T @ lam_held
    lam_held = lam_held - np.linalg.lstsq(A.T, residual, rcond=None)[0]
    if np.any(inequality & (sign * lam_held <= 0.0)):
        return None
    lam = np.zeros(held.size)
    lam[rows] = lam_held
    return lam
