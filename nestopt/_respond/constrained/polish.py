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
from typing import Any

import numpy as np

from ..._backend.host import host_floats, max_abs, to_numpy
from ..._backend.names import machine_eps
from ..._errors import (
    ConstraintQualificationError,
    ConvergenceError,
    FactorizationError,
    InfeasibleError,
    NotPositiveDefiniteError,
)
from ..._linalg.active_set import ActiveSetKKT
from ..._linalg.kkt_system import KKTSystem
from .active_rows import (
    ConstrainedSolution,
    RowSets,
    active_general_rows,
    active_kkt,
    kkt_system,
    level_array,
    row_gradients,
    row_maxima,
    row_scales,
    row_sets,
    rows_transposed,
    split_rows,
)
from .level_nlp import InteriorResult
from .reduced import LevelModel, LevelPoint
from .vertex import degenerate_vertex

__all__ = ["polish", "guess_active", "newton_on", "ConstrainedSolution"]

# A multiplier this small relative to its row's scale is zero: the row is weakly active.
WEAK_MULTIPLIER = 1e-10


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
    sets = row_sets(model)
    active = ip.active.copy()
    lam = np.asarray(to_numpy(ip.lam), dtype=float)
    point = ip.point
    changes = 2 * model.rows.m + 1 if max_changes is None else max_changes
    seen = {active.tobytes()}
    # A level whose Lagrangian's rows ignore the multipliers and whose last set was solved by
    # one exact step offers that step's rows and factor to the next set (see `_Last`).
    reusable = not model.rows_depend_on_multipliers(mode)
    last: _Last | None = None
    for _ in range(changes + 1):
        point, lam, W, kkt, last = _newton(
            model, point, active, lam, sets, mode, tol, maxiter, last if reusable else None
        )
        violation, wrong = _corrections(model, point, active, lam, sets)
        # A violation beyond rounding means the set is wrong (the response must be feasible
        # to the last digits, or a kink at the row's bound goes unseen), and so does a
        # multiplier of the wrong sign beyond rounding: held, the row would put the response
        # off by about the multiplier over the curvature. A row dropped at a kink comes back
        # feasible to rounding and is then weakly active, not added again.
        rounding = 1e3 * float(model.xp.finfo(point.g.dtype).eps)
        add, drop = violation > rounding, wrong > rounding
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
        W = model.lagrangian_rows(point, level_array(model.xp, lam, point.g), jacobian_mode)
        kkt = last.factor_for(model, W, point, active) if last is not None else None
    return _vet(model, point, active, lam, sets, W, kkt, jacobian_mode)


def guess_active(model: LevelModel, point: LevelPoint) -> Any:
    """The rows at one of their bounds at ``point`` (to ``sqrt(eps)`` of the row's scale),
    the equalities among them: a warm start's guess of the active set (host bool array)."""
    sets = row_sets(model)
    c = np.asarray(to_numpy(point.c), dtype=float)
    values = row_scales(model, point, sets)[0]
    slack = sets.slack(c) / values
    eps = float(model.xp.finfo(point.g.dtype).eps)
    return (sets.lb == sets.ub) | (slack <= math.sqrt(eps))


def _targets(sets: RowSets, c: Any, lam: Any, active: Any) -> Any:
    """The bound each active row is held at: ``lb`` or ``ub`` (by the multiplier's sign)."""
    target = np.where(lam > 0, sets.ub, sets.lb)
    target = np.where(np.isfinite(target), target, np.where(np.isfinite(sets.lb), sets.lb, sets.ub))
    equal = sets.lb == sets.ub
    target[equal] = sets.lb[equal]
    nearer_upper = sets.at_upper(c)
    undecided = active & (lam == 0) & ~equal
    target[undecided] = np.where(nearer_upper[undecided], sets.ub[undecided], sets.lb[undecided])
    return target


class _Last:
    """The Lagrangian's rows ``W`` and the factored KKT matrix of a Newton run's last step,
    kept where that run solved its set in one exact step (the level looked quadratic in its
    own variables along it).

    The next set's first step may use these rows (a possibly stale Hessian: an inexact
    Newton step, whose result the next step checks with fresh rows), and the final point's
    fresh rows reuse the factor where they, the active set and its rows are unchanged to
    the bit. No test of the solution relies on stale rows.
    """

    def __init__(self, W: Any, kkt: ActiveSetKKT, active: Any, J_R: Any) -> None:
        self.W, self.kkt, self.active, self.J_R = W, kkt, active.copy(), J_R

    def factor_for(
        self, model: LevelModel, W: Any, point: LevelPoint, active: Any
    ) -> ActiveSetKKT | None:
        """The kept factor, if it is that of ``W`` on ``active`` at ``point`` exactly."""
        xp = model.xp
        if not np.array_equal(active, self.active):
            return None
        if not bool(xp.all(W[:, model.own] == self.W[:, model.own])):
            return None
        J_R = active_general_rows(model, point, active)
        return self.kkt if bool(xp.all(J_R == self.J_R)) else None


def _newton(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, sets: RowSets, mode: str,
    tol: float, maxiter: int, last: _Last | None = None,
) -> tuple[LevelPoint, Any, Any, ActiveSetKKT | None, _Last | None]:  # fmt: skip
    """Newton on the active set's equations from ``point``: the point, the multipliers, the
    Lagrangian's rows there and the factored KKT matrix (None where it is singular; both
    None where the point after a step already solves the equations to rounding, so that
    neither is formed for a set the corrections may change), and what the next set may
    reuse (`_Last`, where this set was solved by one exact step). ``last``: the previous
    set's, whose rows take this set's first step."""
    xp, j, own = model.xp, model.j, model.own
    idx = active.nonzero()[0]
    d = own.stop - own.start
    lam = np.where(active, lam, 0.0)
    target = _targets(sets, np.asarray(to_numpy(point.c)), lam, active)
    scale = max_abs(xp, point.xs[j - 1])
    eps = machine_eps(xp, point.g.dtype)
    previous = math.inf
    retaken = not model.rows_depend_on_multipliers(mode)  # no retake where W ignores lam
    settled, gscale = True, 0.0
    kept: _Last | None = None
    for iteration in range(maxiter + 1):
        model.nest.check_time()
        row_terms = rows_transposed(model, point, lam)
        residual = point.g_own + row_terms
        # The gradient's scale over the run: at a solution the residual is rounding of it.
        sizes = (max_abs(xp, point.g_own), max_abs(xp, row_terms))
        gscale = max(gscale, *sizes)
        c_A = np.asarray(to_numpy(point.c), dtype=float)[idx]
        if iteration and (settled or retaken) and _solved(xp, residual, gscale, c_A,
                                                          target[idx], eps):  # fmt: skip
            return point, lam, None, None, kept if iteration == 1 else None
        lam_x = level_array(xp, lam, point.g)
        gap = level_array(xp, c_A - target[idx], point.g)
        rhs = -xp.concat([residual, gap])
        stale = iteration == 0 and last is not None
        W = last.W if stale and last is not None else model.lagrangian_rows(point, lam_x, mode)
        try:
            kkt = active_kkt(model, W, point, active)
            step = kkt.solve(rhs)
        except FactorizationError:  # singular K: vetted (and named) in _vet
            if not stale:
                return point, lam, W, None, None
            stale, W = False, model.lagrangian_rows(point, lam_x, mode)
            try:
                kkt = active_kkt(model, W, point, active)
                step = kkt.solve(rhs)
            except FactorizationError:
                return point, lam, W, None, None
        if iteration == 0:
            kept = _Last(W, kkt, active, active_general_rows(model, point, active))
        dx, dlam = step[:d], np.asarray(to_numpy(step[d:]))
        size = max_abs(xp, dx)
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
                if stale:  # rows taken from the previous set are not this point's
                    return point, lam, None, None, None
                # This factor's Newton step at this point is the one `_check_stationary`
                # would take (to the multipliers' last, settled move): known small.
                kkt.stationary_at = point
                return point, lam, W, kkt, None
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


def _corrections(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, sets: RowSets
) -> tuple[Any, Any]:
    """Per row, the relative violation of an inactive row and the relative wrong sign of an
    active row's multiplier (``-inf`` where neither applies)."""
    c = np.asarray(to_numpy(point.c))
    values, multipliers = row_scales(model, point, sets)
    violation = sets.violation(c) / values
    violation[active] = -np.inf
    # The sign a multiplier must have follows the bound its row is held at (a warm
    # start's multipliers may point to the other one).
    wrong = np.where(sets.at_upper(c), -lam, lam) / multipliers  # should be <= 0
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
    slack = sets.slack(c) / values
    zero = np.abs(lam) <= WEAK_MULTIPLIER * multipliers
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
    row = row_maxima(model, J, np.ones(J.shape[1]))
    row = np.where(row > 0, row, 1.0)
    touched = row_maxima(model, J, size)
    values = np.maximum(np.maximum(sets.bounds, touched), 1e-300)
    share = row_maxima(model, J, gradient)
    floor = 1e-12 * max(float(gradient.max(initial=0.0)), 1e-300)
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
    idx = active.nonzero()[0]
    d, a = own.stop - own.start, idx.size
    labels = model.rows.labels
    names = ", ".join(labels[i] for i in idx)
    if a > d:
        vertex = degenerate_vertex(model, point, W, held, sets, mode)
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
            vertex = degenerate_vertex(model, point, W, held, sets, mode)
            if vertex is not None:
                return vertex
            raise _dependent(text, names, j)
        raise NotPositiveDefiniteError(
            f"{text}: at its solution the reduced Hessian of its Lagrangian is not positive "
            "definite on the null space of its active constraints (the inertia of its KKT "
            "matrix is not that of a minimum): not a strict local minimum, so its best "
            "response is not locally unique. A convex level that is not strictly convex "
            "there (a flat direction, e.g. a rank-deficient quadratic) has a set of "
            "minimizers: add a small ridge term to make its response unique; otherwise try "
            "a different starting point, or check the level's hess and constraint hess",
            level=j,
        )
    _check_stationary(model, point, lam, kkt)
    c = np.asarray(to_numpy(point.c))
    infeasible = sets.violation(c) / row_scales(model, point, sets)[0]
    if infeasible.size and infeasible.max() > 1e-6:
        raise InfeasibleError(
            f"{text}: its solution violates {labels[int(np.argmax(infeasible))]}", level=j
        )
    weak = [labels[i] for i in np.flatnonzero(weakly)]
    system = kkt_system(model, point, W, kkt, active)
    solution = ConstrainedSolution(lam, active.copy(), labels, weak, model.rows, weakly.copy())
    return point, system, solution


def newton_on(
    model: LevelModel, point: LevelPoint, active: Any, lam: Any, mode: str, maxiter: int
) -> tuple[LevelPoint, Any, Any, ActiveSetKKT | None]:
    """Newton on the fixed active set ``active`` (no corrections): the smooth piece of the
    level's response that keeps exactly these rows at their bounds."""
    sets = row_sets(model)
    lam = np.asarray(lam, dtype=float)
    point, lam, W, kkt, _ = _newton(model, point, active, lam, sets, mode, 0.0, maxiter)
    if W is None:
        W = model.lagrangian_rows(point, level_array(model.xp, lam, point.g), mode)
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
    need not be stationary), except where Newton ended because this factor's step at this
    point was below rounding."""
    if kkt.stationary_at is point:
        return
    xp = model.xp
    residual = point.g_own + rows_transposed(model, point, lam)
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
    general = model.rows.general
    J = np.asarray(to_numpy(point.J), dtype=float)
    involved = np.flatnonzero(active | weakly)
    rows = dict(zip(involved.tolist(), row_gradients(model, J, involved), strict=True))
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
    idx, fixed = split_rows(model, mask)
    if idx.size == 0:
        return False
    free = level_array(xp, np.flatnonzero(~fixed), point.g, int)
    J_RF = xp.take(xp.take(point.J, level_array(xp, idx, point.g, int), axis=0), free, axis=1)
    if idx.size > J_RF.shape[1]:
        return True
    singular = xp.linalg.svdvals(J_RF)
    eps = float(xp.finfo(J_RF.dtype).eps)
    return float(xp.min(singular)) <= 1e3 * eps * float(xp.max(singular))
