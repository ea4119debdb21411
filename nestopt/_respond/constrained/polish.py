"""Polish a constrained level on its active set, check the solution, build its KKT system.

From the interior point's guess, Newton's method on the active set's
equality KKT system

    grad_j F + J_A^T lambda_A = 0,        c_A(x) = b_A

converges quadratically, so solution and multipliers are exact to rounding,
not to the barrier parameter. The active set is then checked and corrected
(a violated inactive row joins it, an active row whose multiplier has the
wrong sign leaves it), and the solution is vetted: linearly independent
active gradients (LICQ), a reduced Hessian positive definite on their null
space (the inertia of the KKT matrix), and strict complementarity (an
active row with a zero multiplier is reported as degenerate: the response
is then only one-sidedly differentiable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import device

from ..._backend.host import host_floats, to_numpy
from ..._errors import (
    ConstraintQualificationError,
    ConvergenceError,
    FactorizationError,
    InfeasibleError,
    NestoptError,
    NotPositiveDefiniteError,
)
from ..._linalg.active_set import ActiveSetKKT
from ..._linalg.kkt_system import KKTSystem
from .level_nlp import InteriorResult
from .reduced import LevelModel, LevelPoint

__all__ = ["polish", "ConstrainedSolution"]


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


@dataclass
class ConstrainedSolution:
    """A constrained level at its solution: multipliers and active rows, with labels."""

    lam: Any  # per row, DESIGN's sign (L = F + lam^T c): <= 0 at a lower bound, >= 0 at an upper
    active: Any  # host bool array per row
    labels: list[str]
    degenerate: list[str]
    rows: Any  # the level's ConstraintRows
    weak: Any = None  # host bool array per row: weakly active (at a bound, zero multiplier)


def polish(
    model: LevelModel, ip: InteriorResult, mode: str, jacobian_mode: str, tol: float,
    maxiter: int, *, max_changes: int | None = None, batch: bool = False,
) -> Any:  # fmt: skip
    """Newton on the active set from ``ip``; returns ``(point, system, solution)``.

    ``mode`` is the curvature of the Newton steps, ``jacobian_mode`` that of the
    returned system; ``max_changes`` caps the corrections of the active set
    (default ``2 m + 1``) before `ConvergenceError`. A correction adds the most
    violated row or drops the active row whose multiplier is most wrong; with
    ``batch`` it adds every violated row and drops every wrong one at once (the
    primal-dual active-set method of Hintermueller, Ito and Kunisch, SIAM J.
    Optim. 2002: a few corrections for a box-constrained QP from any start), and
    a set seen before ends it.
    """
    sets = RowSets.of(to_numpy(model.rows.lb), to_numpy(model.rows.ub))
    active = ip.active.copy()
    lam = np.asarray(to_numpy(ip.lam), dtype=float)
    point = ip.point
    changes = 2 * model.rows.m + 1 if max_changes is None else max_changes
    seen = {active.tobytes()}
    for _ in range(changes + 1):
        point, lam, W, kkt = _newton(model, point, active, lam, sets, mode, tol, maxiter)
        violation, wrong = _corrections(model, point, active, lam, sets)
        # A violation beyond rounding means the set is wrong (the response must be feasible
        # to the last digits, or a kink at the row's bound goes unseen); a multiplier's sign
        # is judged more loosely (a zero multiplier is a weak row, not a wrong one).
        rounding = 1e3 * float(model.xp.finfo(point.g.dtype).eps)
        add, drop = violation > rounding, wrong > 1e-8
        if not add.any() and not drop.any():
            break
        if not batch:  # one row: the most violated first
            if add.any():
                active[int(np.argmax(violation))] = True
            else:
                active[int(np.argmax(wrong))] = False
            continue
        active[add], active[drop] = True, False
        if active.tobytes() in seen:
            raise ConvergenceError(f"{model.text}: its active set cycles", level=model.j)
        seen.add(active.tobytes())
    else:
        raise ConvergenceError(
            f"{model.text}: its active set did not settle; the level may be degenerate at "
            "this point",
            level=model.j,
        )
    if W is None or (jacobian_mode != mode and model.has_curvature_term):
        W = model.lagrangian_rows(point, _arr(model.xp, lam, point.g), jacobian_mode)
        kkt = None
    return _vet(model, point, active, lam, sets, W, kkt, jacobian_mode)


def guess_active(model: LevelModel, point: LevelPoint) -> Any:
    """The rows at one of their bounds at ``point`` (to ``sqrt(eps)`` of the row's scale),
    the equalities among them: a warm start's guess of the active set (host bool array)."""
    sets = RowSets.of(to_numpy(model.rows.lb), to_numpy(model.rows.ub))
    c = np.asarray(to_numpy(point.c), dtype=float)
    values = _sizes(model, point, sets)[0]
    with np.errstate(invalid="ignore"):
        slack = np.minimum(np.abs(c - sets.lb), np.abs(c - sets.ub)) / values
    eps = float(model.xp.finfo(point.g.dtype).eps)
    return (sets.lb == sets.ub) | (slack <= math.sqrt(eps))


def _targets(sets: RowSets, c: Any, lam: Any, active: Any) -> Any:
    """The bound each active row is held at: ``lb`` or ``ub`` (by the multiplier's sign)."""
    target = np.where(lam > 0, sets.ub, sets.lb)
    target = np.where(np.isfinite(target), target, np.where(np.isfinite(sets.lb), sets.lb, sets.ub))
    equal = sets.lb == sets.ub
    target[equal] = sets.lb[equal]
    nearer_upper = np.abs(c - sets.ub) < np.abs(c - sets.lb)
    undecided = active & (lam == 0) & ~equal
    target[undecided] = np.where(nearer_upper[undecided], sets.ub[undecided], sets.lb[undecided])
    return target


def _newton(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, sets: RowSets, mode: str,
    tol: float, maxiter: int,
) -> tuple[LevelPoint, Any, Any, ActiveSetKKT | None]:  # fmt: skip
    """Newton on the active set's equations from ``point``: the point, the multipliers, the
    Lagrangian's rows there and the factored KKT matrix (None where it is singular; both
    None where the point after a step already solves the equations to rounding, so that
    neither is formed for a set the corrections may change)."""
    xp, j, own = model.xp, model.j, model.own
    idx = np.flatnonzero(active)
    d = own.stop - own.start
    lam = np.where(active, lam, 0.0)
    target = _targets(sets, np.asarray(to_numpy(point.c)), lam, active)
    scale = float(xp.max(xp.abs(point.xs[j - 1]))) if d else 0.0
    eps = float(xp.finfo(point.g.dtype).eps)
    previous = math.inf
    retaken = not model.rows_depend_on_multipliers(mode)  # no retake where W ignores lam
    settled, gscale = True, 0.0
    for iteration in range(maxiter + 1):
        model.nest.check_time()
        row_terms = _rows_transposed(model, point, lam)
        residual = point.g_own + row_terms
        # The gradient's scale over the run: at a solution the residual is rounding of it.
        sizes = host_floats(xp, xp.max(xp.abs(point.g_own)), xp.max(xp.abs(row_terms)))
        gscale = max(gscale, *sizes)
        c_A = np.asarray(to_numpy(point.c), dtype=float)[idx]
        if iteration and (settled or retaken) and _solved(xp, residual, gscale, c_A,
                                                          target[idx], eps):  # fmt: skip
            return point, lam, None, None
        lam_x = _arr(xp, lam, point.g)
        W = model.lagrangian_rows(point, lam_x, mode)
        gap = _arr(xp, c_A - target[idx], point.g)
        try:
            kkt = active_kkt(model, W, point, active)
            step = kkt.solve(-xp.concat([residual, gap]))
        except FactorizationError:  # singular K: vetted (and named) in _vet
            return point, lam, W, None
        dx, dlam = step[:d], np.asarray(to_numpy(step[d:]))
        size = float(xp.max(xp.abs(dx))) if d else 0.0
        if iteration == 0:
            scale = max(scale, size)
        lam[idx] = lam[idx] + dlam
        # To rounding, not to tol: Newton converges quadratically here, and the
        # multipliers and Jacobians are only as good as the point. The Lagrangian's rows
        # took the multipliers before this step: where these moved (a warm start's first
        # step), one more step takes the new ones.
        moved = float(np.max(np.abs(dlam), initial=0.0))
        settled = moved <= 100.0 * eps * float(np.max(np.abs(lam[idx]), initial=0.0))
        if size <= 100.0 * eps * scale or (size >= previous and size <= math.sqrt(eps) * scale):
            if settled or retaken:
                return point, lam, W, kkt
            retaken = True
        if iteration == maxiter:
            break
        trial = list(point.xs)
        trial[j - 1] = point.xs[j - 1] + dx
        if point.R is not None and model.nest.config.predict:
            moved = point.R[:, own] @ dx
            for k in range(j + 1, model.problem.n + 1):
                block = model.problem.block(k)
                trial[k - 1] = (
                    point.xs[k - 1] + moved[block.start - own.stop : block.stop - own.stop]
                )
        point = model.at(tuple(trial))
        previous = size
    raise ConvergenceError(
        f"{model.text}: Newton's method on its active set did not converge in {maxiter} "
        "iterations; raise maxiter in level_options",
        level=j,
    )


def _solved(xp: Any, residual: Any, gscale: float, c_A: Any, target: Any, eps: float) -> bool:
    """The active set's equations hold to rounding (after an exact Newton step on a quadratic
    with linear rows they do, and no further step is needed to know it): the residual within
    rounding of the gradient's scale ``gscale``, the active rows at their bounds."""
    if float(xp.max(xp.abs(residual))) > 100.0 * eps * max(gscale, 1e-300):
        return False
    size = np.maximum(np.abs(target), np.abs(c_A))
    return bool(np.all(np.abs(c_A - target) <= 10.0 * eps * size))


def _rows_transposed(model: LevelModel, point: LevelPoint, lam: Any) -> Any:
    """``J^T lam`` over every row, the box's included (its rows of the identity never
    formed); ``lam`` is a host array, zero off the active set."""
    xp, general = model.xp, model.rows.general
    out = xp.matrix_transpose(point.J) @ _arr(xp, lam[:general], point.g)
    return out + _arr(xp, lam[general:], point.g) if model.rows.box is not None else out


def _split(model: LevelModel, mask: Any) -> tuple[Any, Any]:
    """The general rows in ``mask`` (indices) and the variables whose bound is in it."""
    general, d = model.rows.general, model.own.stop - model.own.start
    fixed = mask[general:] if model.rows.box is not None else np.zeros(d, dtype=bool)
    return np.flatnonzero(mask[:general]), fixed


def active_kkt(model: LevelModel, W: Any, point: LevelPoint, active: Any) -> ActiveSetKKT:
    """The KKT matrix of the rows ``active`` at ``point``, factored with its bounds
    eliminated (raises `FactorizationError` where it is singular)."""
    xp = model.xp
    idx, fixed = _split(model, active)
    J_R = xp.take(point.J, _arr(xp, idx, point.g, int), axis=0) if idx.size else point.J[:0, :]
    return ActiveSetKKT(xp, W[:, model.own], J_R, fixed)


def _row_maxima(model: LevelModel, J: Any, weights: Any) -> Any:
    """Per row of the level, ``max_i |J_ri| w_i``: the general rows from ``J`` (host, absolute
    values), then the box's (row ``i`` is ``e_i``: ``w_i``)."""
    general = np.max(J * weights[None, :], axis=1, initial=0.0)
    return np.concatenate([general, weights]) if model.rows.box is not None else general


def _arr(xp: Any, a: Any, like: Any, kind: type = float) -> Any:
    dtype = like.dtype if kind is float else xp.int64
    return xp.asarray(np.asarray(a, dtype=kind), dtype=dtype, device=device(like))


def _sizes(model: LevelModel, point: LevelPoint, sets: RowSets) -> tuple[Any, Any]:
    """Per row: the scale of its values and of its multiplier (for relative tests)."""
    xp = model.xp
    # float64: float32 would underflow the 1e-300 guard
    J = np.abs(np.asarray(to_numpy(point.J), dtype=float))
    row = _row_maxima(model, J, np.ones(J.shape[1]))
    row = np.where(row > 0, row, 1.0)
    x = float(xp.max(xp.abs(point.xs[model.j - 1]))) if point.J.shape[1] else 0.0
    bounds = np.where(np.isfinite(sets.lb), np.abs(sets.lb), 0.0)
    bounds = np.maximum(bounds, np.where(np.isfinite(sets.ub), np.abs(sets.ub), 0.0))
    values = np.maximum(bounds, row * max(x, 1.0))
    gscale = max(float(xp.max(xp.abs(point.g_own))) if point.J.shape[1] else 0.0, 1e-300)
    return values, gscale / row


def _corrections(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, sets: RowSets
) -> tuple[Any, Any]:
    """Per row, the relative violation of an inactive row and the relative wrong sign of an
    active row's multiplier (``-inf`` where neither applies)."""
    c = np.asarray(to_numpy(point.c))
    values, multipliers = _sizes(model, point, sets)
    violation = np.maximum(sets.lb - c, c - sets.ub) / values
    violation[active] = -np.inf
    # The sign a multiplier must have follows the bound its row is held at (a warm
    # start's multipliers may point to the other one).
    at_upper = np.abs(c - sets.ub) < np.abs(c - sets.lb)
    wrong = np.where(at_upper, -lam, lam) / multipliers  # should be <= 0
    wrong[~active | (sets.lb == sets.ub)] = -np.inf
    return violation, wrong


def _weakly_active(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, sets: RowSets, W: Any
) -> Any:
    """Inequality rows at their bound (zero slack, to rounding) with a zero multiplier.

    The response is only one-sidedly differentiable there. nestopt returns the
    Jacobian of the piece where these rows are inactive (the response moves
    freely: the derivative for directions that leave them slack), and says so.
    """
    c = np.asarray(to_numpy(point.c))
    values, multipliers = _own_sizes(model, point, sets, W)
    slack = np.minimum(np.abs(c - sets.lb), np.abs(c - sets.ub)) / values
    zero = np.abs(lam) <= 1e-10 * multipliers
    return (sets.lb != sets.ub) & (slack <= 1e-9) & zero


def _own_sizes(model: LevelModel, point: LevelPoint, sets: RowSets, W: Any) -> tuple[Any, Any]:
    """Per row, the scales of its values and multiplier from the variables it touches.

    Variable ``x_i`` has size ``max(|x_i|, 1)`` and gradient scale ``max(|g_i|,
    |W_ii| max(|x_i|, 1))``, so a bound held by a curvature of 1 next to one of
    1e12 (or a variable of size 1e-4 next to one of 1e6) is judged in its own units.
    """
    J = np.abs(np.asarray(to_numpy(point.J), dtype=float))
    size = np.maximum(np.abs(np.asarray(to_numpy(point.xs[model.j - 1]), dtype=float)), 1.0)
    g = np.abs(np.asarray(to_numpy(point.g_own), dtype=float))
    curvature = np.abs(np.diagonal(np.asarray(to_numpy(W[:, model.own]), dtype=float)))
    gradient = np.maximum(g, curvature * size)
    row = _row_maxima(model, J, np.ones(J.shape[1]))
    row = np.where(row > 0, row, 1.0)
    bounds = np.where(np.isfinite(sets.lb), np.abs(sets.lb), 0.0)
    bounds = np.maximum(bounds, np.where(np.isfinite(sets.ub), np.abs(sets.ub), 0.0))
    touched = _row_maxima(model, J, size)
    values = np.maximum(np.maximum(bounds, touched), 1e-300)
    share = _row_maxima(model, J, gradient)
    floor = 1e-12 * max(float(np.max(gradient, initial=0.0)), 1e-300)
    return values, np.maximum(share / row**2, floor)


def _vet(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, sets: RowSets, W: Any,
    kkt: ActiveSetKKT | None, mode: str,
) -> tuple[LevelPoint, KKTSystem, ConstrainedSolution]:  # fmt: skip
    j, own, text = model.j, model.own, model.text
    weakly = _weakly_active(model, point, active, lam, sets, W)
    held = active | weakly
    if weakly.any():
        kkt = None  # the active set changed
    active = active & ~weakly
    idx = np.flatnonzero(active)
    d, a = own.stop - own.start, idx.size
    labels = model.rows.labels
    names = ", ".join(labels[i] for i in idx)
    if a > d:
        vertex = _degenerate_vertex(model, point, W, held, sets, mode)
        if vertex is not None:
            return vertex
        raise ConstraintQualificationError(
            f"{text}: {a} constraints are active on {d} variables ({names}); their "
            "gradients cannot be independent (LICQ fails)",
            level=j,
        )
    repeated = _repeats(model, point, active, weakly)
    if repeated is not None:
        # A weakly active row that repeats an active one (zero multiplier by the split the
        # polish chose) is a redundant constraint, not a kink.
        raise _dependent(text, f"{labels[repeated[0]]}, {labels[repeated[1]]}", j)
    if kkt is None:
        try:
            kkt = active_kkt(model, W, point, active)
        except FactorizationError:
            kkt = None
    if kkt is None or not kkt.minimum:
        if _dependent_rows(model, point, active):
            vertex = _degenerate_vertex(model, point, W, held, sets, mode)
            if vertex is not None:
                return vertex
            raise _dependent(text, names, j)
        raise NotPositiveDefiniteError(
            f"{text}: at its solution the reduced Hessian of its Lagrangian is not positive "
            "definite on the null space of its active constraints (the inertia of its KKT "
            "matrix is not that of a minimum): not a strict local minimum, so its best "
            "response is not locally unique. Try a different starting point, or check the "
            "level's hess and constraint hess",
            level=j,
        )
    _check_stationary(model, point, lam, kkt)
    c = np.asarray(to_numpy(point.c))
    infeasible = np.maximum(sets.lb - c, c - sets.ub) / _sizes(model, point, sets)[0]
    if infeasible.size and np.max(infeasible) > 1e-6:
        raise InfeasibleError(
            f"{text}: its solution violates {labels[int(np.argmax(infeasible))]}", level=j
        )
    weak = [labels[i] for i in np.flatnonzero(weakly)]
    system = kkt_system(model, point, W, kkt, active)
    solution = ConstrainedSolution(lam, active.copy(), labels, weak, model.rows, weakly.copy())
    return point, system, solution


def _degenerate_vertex(
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
    idx, fixed = _split(model, held)
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
    values = _sizes(model, point, sets)[0]
    eps = float(xp.finfo(point.g.dtype).eps)
    with np.errstate(invalid="ignore"):
        gap = np.minimum(np.abs(c - sets.lb), np.abs(c - sets.ub)) / values
    violation = np.maximum(sets.lb - c, c - sets.ub) / values
    if np.any(gap[held] > 1e3 * eps) or np.any(violation > 1e3 * eps):
        return None
    lam = _strict_multipliers(linprog, model, point, held, sets)
    if lam is None:
        return None
    try:
        W = model.lagrangian_rows(point, _arr(xp, lam, point.g), mode)
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
        target = np.where(np.abs(c - sets.ub) < np.abs(c - sets.lb), sets.ub, sets.lb)
        gap = c[idx] - target[idx]
        size = np.maximum(np.abs(target[idx]), 1.0)
        if float(np.max(np.abs(gap) / size, initial=0.0)) <= 10.0 * float(
            xp.finfo(point.g.dtype).eps
        ):
            return point
        kkt = active_kkt(model, W, point, rows)
        rhs = xp.concat([xp.zeros((d,), dtype=point.g.dtype), _arr(xp, -gap, point.g)])
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
    general, d = model.rows.general, model.own.stop - model.own.start
    g = np.asarray(to_numpy(point.g_own), dtype=float)
    J = np.asarray(to_numpy(point.J), dtype=float)
    c = np.asarray(to_numpy(point.c), dtype=float)
    rows = np.flatnonzero(held)
    # Every held row's gradient on x_j (the box's as rows of the identity).
    A = np.zeros((rows.size, d))
    for n, i in enumerate(rows):
        if i < general:
            A[n] = J[i]
        else:
            A[n, i - general] = 1.0
    upper = np.abs(c[rows] - sets.ub[rows]) < np.abs(c[rows] - sets.lb[rows])
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


def kkt_system(
    model: LevelModel, point: LevelPoint, W: Any, kkt: ActiveSetKKT, active: Any
) -> KKTSystem:
    """The level's Jacobian system on the active set ``active`` from its factored ``kkt``."""
    xp = model.xp
    C = model.cross_jacobian(point)
    rows_A, fixed = _split(model, active)
    C_A = xp.take(C, _arr(xp, rows_A, point.g, int), axis=0) if rows_A.size else C[:0, :]
    if fixed.any():  # the box's rows do not move with the upper variables
        zeros = xp.zeros((int(fixed.sum()), C.shape[1]), dtype=C.dtype, device=device(C))
        C_A = xp.concat([C_A, zeros], axis=0)
    return KKTSystem(xp, kkt, W[:, : model.own.start], C_A, model.text, model.j)


def newton_on(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, mode: str, maxiter: int
) -> tuple[LevelPoint, Any, Any, ActiveSetKKT | None]:
    """Newton on the fixed active set ``active`` (no corrections): the smooth piece of the
    level's response that keeps exactly these rows at their bounds."""
    sets = RowSets.of(to_numpy(model.rows.lb), to_numpy(model.rows.ub))
    lam = np.asarray(lam, dtype=float)
    point, lam, W, kkt = _newton(model, point, active, lam, sets, mode, 0.0, maxiter)
    if W is None:
        W = model.lagrangian_rows(point, _arr(model.xp, lam, point.g), mode)
        try:
            kkt = active_kkt(model, W, point, active)
        except FactorizationError:
            kkt = None
    return point, lam, W, kkt


def _dependent(text: str, names: str, j: int) -> ConstraintQualificationError:
    return ConstraintQualificationError(
        f"{text}: the gradients of its active constraints ({names}) are linearly "
        "dependent (LICQ fails): multipliers and best-response derivatives are "
        "not unique. Remove a redundant constraint",
        level=j,
    )


def _check_stationary(model: LevelModel, point: LevelPoint, lam: Any, kkt: ActiveSetKKT) -> None:
    """The point is stationary on its active set: the Newton step its KKT residual asks for
    is at most ``sqrt(eps)`` of the variable's size. What every test here assumes, checked,
    not inferred from Newton's exit (a singular active set ends it early, at a point that
    need not be stationary)."""
    xp = model.xp
    residual = point.g_own + _rows_transposed(model, point, lam)
    rhs = xp.concat([-residual, xp.zeros((kkt.r + kkt.nX,), dtype=residual.dtype)])
    step = kkt.solve(rhs, bound_multipliers=False)[: kkt.d]
    size, length = host_floats(xp, xp.max(xp.abs(step)), xp.max(xp.abs(point.xs[model.j - 1])))
    eps = float(xp.finfo(point.g.dtype).eps)
    if size > math.sqrt(eps) * max(length, 1.0):
        raise ConvergenceError(
            f"{model.text}: its KKT conditions do not hold at the point reached (a Newton "
            f"step of {size:.2e} remains): the active set's Newton system was singular "
            "there. The level may be degenerate at this point (dependent active "
            "constraints); try another start",
            level=model.j,
        )


def _repeats(
    model: LevelModel, point: LevelPoint, active: Any, weakly: Any
) -> tuple[int, int] | None:
    """A weakly active row whose gradient is parallel to an active row's, as
    ``(active, weak)`` row indices (None if none): the same constraint written twice."""
    if not weakly.any():
        return None
    general, d = model.rows.general, model.own.stop - model.own.start
    J = np.asarray(to_numpy(point.J), dtype=float)
    boxed = model.rows.box is not None
    # Every row's gradient on x_j, the box's as rows of the identity (only the few
    # involved rows are formed).
    involved = np.flatnonzero(active | weakly)

    def gradient(i: int) -> Any:
        if i < general:
            return J[i]
        e = np.zeros(d)
        e[i - general] = 1.0
        return e

    rows = {int(i): gradient(int(i)) for i in involved if i < general or boxed}
    eps = float(np.finfo(J.dtype).eps)
    for w in np.flatnonzero(weakly):
        gw = rows[int(w)]
        nw = float(np.linalg.norm(gw))
        for a in np.flatnonzero(active):
            if a >= general and w >= general:
                continue  # two bounds of different variables are never parallel
            ga = rows[int(a)]
            na = float(np.linalg.norm(ga))
            if nw and na and abs(abs(float(gw @ ga)) - nw * na) <= 1e3 * eps * nw * na:
                return int(a), int(w)
    return None


def _dependent_rows(model: LevelModel, point: LevelPoint, mask: Any) -> bool:
    """The gradients of the rows in ``mask`` are numerically dependent: with ``X`` the
    variables whose bound is among them, ``rank [J_R; E_X] = |X| + rank J_R[:, not X]``, so
    the general rows restricted to the other variables decide."""
    xp = model.xp
    idx, fixed = _split(model, mask)
    if idx.size == 0:
        return False
    free = _arr(xp, np.flatnonzero(~fixed), point.g, int)
    J_RF = xp.take(xp.take(point.J, _arr(xp, idx, point.g, int), axis=0), free, axis=1)
    if idx.size > J_RF.shape[1]:
        return True
    singular = xp.linalg.svdvals(J_RF)
    eps = float(xp.finfo(J_RF.dtype).eps)
    return float(xp.min(singular)) <= 1e3 * eps * float(xp.max(singular))
