"""Solve one constrained level: interior point, then a polish on the active set (DESIGN 7)."""

from __future__ import annotations

from typing import Any

from ..._levels.build_rows import level_rows
from ..nest import LevelSolution, Nest
from .level_nlp import interior_point
from .polish import polish
from .reduced import LevelModel

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
    model = LevelModel(nest, j, rows_of(nest, j, xs))
    newton_mode = nest.config.newton_mode(j)
    # Interior-point iterations: at least 100 for a lower level, as given for the top.
    maxiter = opts.maxiter if j == 1 else max(4 * opts.maxiter, 100)
    ip = interior_point(model, xs, newton_mode, maxiter)
    point, system, solution = polish(
        model, ip, newton_mode, nest.config.curvature_mode(j), opts.tol, opts.maxiter
    )
    nest.stats.newton[j - 1] += ip.iterations
    return LevelSolution(j, point.below, system, ip.iterations, solution)
