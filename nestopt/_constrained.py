"""Solve one constrained level: interior point, then a polish on the active set (DESIGN 7)."""

from __future__ import annotations

from typing import Any

from ._level_model import LevelModel
from ._nest import LevelSolution, Nest
from ._polish import polish
from ._respond.constrained.level_nlp import interior_point
from ._rows_build import level_rows

__all__ = ["solve_constrained_level", "rows_of"]


def rows_of(nest: Nest, j: int, xs: tuple[Any, ...]) -> Any:
    """Level ``j``'s constraint rows, built once per run (at the first start seen)."""
    key = ("rows", j)
    if key not in nest.level_cache:
        rows = level_rows(nest.problem, j, nest.oracles.target, xs)
        if rows is not None:
            rows.notes = nest.stats.notes  # notes (differenced constraint Hessians) reach results
        nest.level_cache[key] = rows
    return nest.level_cache[key]


def solve_constrained_level(nest: Nest, j: int, xs: tuple[Any, ...]) -> LevelSolution:
    """Level ``j`` solved for fixed ``x_<j`` with its bounds and constraints."""
    opts = nest.config.levels[j - 1]
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
