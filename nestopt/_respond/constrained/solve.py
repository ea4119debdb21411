"""Solve one constrained level: interior point, then a polish on the active set (DESIGN 7, 9).

A warm start comes first: the active set of the level's last solution in
this run (or, at the first solve, the rows at a bound at the start) is
polished directly, a few row changes allowed. What it returns passed every
test of a cold solve (KKT conditions to rounding, multiplier signs,
feasibility, LICQ and second-order sufficiency by the KKT matrix's
inertia), so it is kept; anything else falls back to the interior point from
the same start. A level with a box only and a Hessian given by products or as a
sparse matrix is solved by projected Newton on its free variables instead
(`large_box`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._errors import NestoptError, TimeLimitError
from ..._levels.build_rows import level_rows
from ..nest import LevelSolution, Nest
from .large_box import large_box_level, solve_large_box_level
from .large_rows import solve_large_rows_level
from .level_nlp import InteriorResult, interior_point
from .polish import guess_active, polish
from .reduced import LevelModel, SparseLevelHessian

# Corrections of the active set a warm start may make before the interior point takes
# over (more for a convex QP, where they are the primal-dual active-set method), and its
# Newton iterations per active set.
WARM_CHANGES, WARM_CHANGES_QP, WARM_NEWTON = 4, 12, 8

__all__ = ["solve_constrained_level", "rows_of"]


def rows_of(nest: Nest, j: int, xs: tuple[Any, ...]) -> Any:
    """Level ``j``'s constraint rows, built once per run (at the first start seen)."""
    if j not in nest.constraint_rows:
        rows = level_rows(nest.problem, j, nest.oracles.target, xs)
        if rows is not None:
            rows.notes = nest.stats.notes  # notes (differenced constraint Hessians) reach results
        nest.constraint_rows[j] = rows
    return nest.constraint_rows[j]


def solve_constrained_level(
    nest: Nest, j: int, xs: tuple[Any, ...], settings: Any = None
) -> LevelSolution:
    """Level ``j`` solved for fixed ``x_<j`` with its bounds and constraints (``settings``
    replacing the run's settings of level ``j``, as in `solve_level`)."""
    opts = settings or nest.config.levels[j - 1]
    nest.stats.solves[j - 1] += 1
    rows = rows_of(nest, j, xs)
    if large_box_level(nest, j, rows):
        return _solve_large(nest, j, xs, rows, opts)
    try:
        return _solve_dense(nest, j, xs, rows, opts)
    except SparseLevelHessian:
        nest.sparse_levels.add(j)
        return _solve_large(nest, j, xs, rows, opts)


def _solve_large(nest: Nest, j: int, xs: tuple[Any, ...], rows: Any, opts: Any) -> LevelSolution:
    """A level given by products or a sparse Hessian: its box alone, or with linear rows."""
    if rows.general:
        return solve_large_rows_level(nest, j, xs, rows, opts)
    return solve_large_box_level(nest, j, xs, rows, opts)


def _solve_dense(nest: Nest, j: int, xs: tuple[Any, ...], rows: Any, opts: Any) -> LevelSolution:
    model = LevelModel(nest, j, rows)
    newton_mode, jacobian_mode = nest.config.newton_mode(j), nest.config.curvature_mode(j)
    warm = _warm_start(nest, model, xs, newton_mode, jacobian_mode, opts)
    if warm is not None:
        point, system, solution = warm
        iterations = 0
    else:
        # Interior-point iterations: at least 100 for a lower level, as given for the top.
        maxiter = opts.maxiter if j == 1 else max(4 * opts.maxiter, 100)
        ip = interior_point(model, xs, newton_mode, maxiter)
        point, system, solution = polish(
            model, ip, newton_mode, jacobian_mode, opts.tol, opts.maxiter
        )
        iterations = ip.iterations
    nest.stats.newton[j - 1] += iterations
    nest.active_sets[j] = (solution.lam, solution.active)
    return LevelSolution(j, point.below, system, iterations, solution)


def _warm_start(
    nest: Nest, model: LevelModel, xs: tuple[Any, ...], mode: str, jacobian_mode: str,
    opts: Any,
) -> Any:  # fmt: skip
    """``(point, system, solution)`` polished from the last active set (or the rows at a bound
    at the start), or None where that does not settle within a few row changes."""
    try:
        point = model.at(xs)
        last = nest.active_sets.get(model.j)
        if last is None:
            lam, active = np.zeros(model.rows.m), guess_active(model, point)
        else:
            lam, active = np.array(last[0], dtype=float), np.array(last[1], dtype=bool)
        start = InteriorResult(point, lam, active, 0)
        newton = min(opts.maxiter, WARM_NEWTON)
        changes = WARM_CHANGES_QP if model.convex_qp else WARM_CHANGES
        return polish(
            model, start, mode, jacobian_mode, opts.tol, newton, max_changes=changes, batch=True
        )
    except TimeLimitError:
        raise
    except (NestoptError, ArithmeticError, ValueError):
        # Not an answer (a set that did not settle, failed its vetting, or a callable that
        # refused a Newton point outside its domain): the interior point decides.
        return None
