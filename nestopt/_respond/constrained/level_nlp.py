"""A constrained level's reduced problem handed to the engine, and its answer handed back.

`LevelNLP` presents level ``j`` at fixed upper variables as a
`ConstrainedNLP` over ``x_j``: its rows are the level's constraints, and
its bounds on ``x_j`` stay bounds (the level's rows list them last, and
their rows of the identity are never formed). Every evaluation re-solves
the levels below, started from their first-order prediction.
`interior_point` runs the engine and returns what the polish starts from,
or raises the nestopt error that names the level and says what to try.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._errors import (
    ConvergenceError,
    FactorizationError,
    InfeasibleError,
    LocallyInfeasibleError,
    UnboundedError,
)
from .engine import solve_nlp
from .nlp import EngineOptions, EngineStatus, Evaluation
from .reduced import LevelPoint

__all__ = ["InteriorResult", "LevelNLP", "interior_point"]


@dataclass
class InteriorResult:
    """Where the interior point stopped: the point, multipliers per row, the active guess."""

    point: LevelPoint
    lam: Any  # multipliers per row (DESIGN's sign: L = F + lam^T c)
    active: Any  # host bool array per row
    iterations: int


class LevelNLP:
    """Level ``j``'s reduced problem over ``x_j`` (DESIGN 7) as a `ConstrainedNLP`."""

    def __init__(self, model: Any, xs: tuple[Any, ...], mode: str) -> None:
        self.model, self.mode, self.xs = model, mode, tuple(xs)
        xp, rows = model.xp, model.rows
        self.xp, self.j, self.own = xp, model.j, model.own
        self.d = self.own.stop - self.own.start
        self.boxed = rows.box is not None
        self.m = rows.m - self.d if self.boxed else rows.m
        m, dtype = self.m, xs[model.j - 1].dtype
        self.c_lower, self.c_upper = rows.lb[:m], rows.ub[:m]
        if self.boxed:
            self.x_lower, self.x_upper = rows.lb[m:], rows.ub[m:]
        else:
            inf = xp.full((self.d,), float("inf"), dtype=dtype)
            self.x_lower, self.x_upper = -inf, inf
        self.linear_rows = rows.all_linear
        # A bottom level declared quadratic with linear rows: Mehrotra's predictor-corrector
        # (DESIGN 9). Middle levels' reduced problems are not quadratic; if the declared
        # Hessian is indefinite the engine falls back to its monotone method.
        level = model.problem.levels[model.j - 1]
        bottom = model.j == model.problem.n
        self.convex = bool(bottom and level.quadratic and self.linear_rows)
        self.last: Any = None

    def _trial(self, x: Any) -> tuple[Any, ...]:
        """``xs`` with ``x_j = x`` and the levels below predicted from the last point."""
        trial = list(self.xs if self.last is None else self.last.xs)
        j, own, last = self.j, self.own, self.last
        if last is not None and last.R is not None and self.model.nest.config.predict:
            moved = last.R[:, own] @ (x - last.xs[j - 1])
            for k in range(j + 1, self.model.problem.n + 1):
                block = self.model.problem.block(k)
                s = own.stop
                trial[k - 1] = last.xs[k - 1] + moved[block.start - s : block.stop - s]
        trial[j - 1] = x
        return tuple(trial)

    def evaluate(self, x: Any) -> Evaluation:
        model = self.model
        model.nest.check_time()
        point = model.at(self._trial(x))
        if point.fun is None:
            raise ValueError(
                f"{model.text} has constraints: its value callable is needed for line searches"
            )
        self.last = point
        m = self.m
        return Evaluation(point.fun, point.g_own, point.c[:m], point.J, point)

    def lagrangian_hessian(self, at: Evaluation, y: Any) -> Any:
        return self.model.lagrangian_rows(at.point, self.all_rows(y), self.mode)[:, self.own]

    def all_rows(self, y: Any, z: Any = None) -> Any:
        """Multipliers of every row of the level: the constraints', then the bounds' (``z``,
        or zero: bounds have no curvature)."""
        if not self.boxed:
            return y
        xp = self.xp
        z = xp.zeros((self.d,), dtype=y.dtype) if z is None else z
        return xp.concat([y, z])


def interior_point(model: Any, xs: tuple[Any, ...], mode: str, maxiter: int) -> InteriorResult:
    """Solve level ``j``'s reduced problem from ``xs`` with the engine (DESIGN 9)."""
    nlp = LevelNLP(model, xs, mode)
    text, j = model.text, model.j
    try:
        result = solve_nlp(nlp, xs[model.j - 1], options=EngineOptions(max_iter=maxiter))
    except FactorizationError as exc:  # every step's own failure is handled; never leak one
        raise ConvergenceError(
            f"{text}: the interior point met a linear system it could not solve ({exc}); "
            "the level may be degenerate here (dependent constraints, a flat objective): "
            "check its constraints, or start it elsewhere",
            level=j,
        ) from None
    status = result.status
    if status is EngineStatus.INFEASIBLE:
        raise InfeasibleError(
            f"{text}: its constraints could not be satisfied for these upper variables (a "
            "Farkas certificate proves it: its rows and bounds contradict each other). "
            "Compare the level's lb and ub and its constraints together",
            level=j,
        )
    if status is EngineStatus.LOCALLY_INFEASIBLE:
        raise LocallyInfeasibleError(
            f"{text}: its constraints could not be satisfied: their violation has a local "
            f"minimum at a positive value (scaled violation {result.violation:.2e}). The "
            "level may be infeasible for these upper variables, or another start of it "
            "may find a feasible point",
            level=j,
        )
    if status is EngineStatus.UNBOUNDED:
        raise UnboundedError(
            f"{text}: its objective is unbounded below on its feasible set for these upper "
            "variables (the interior point ran off along a feasible direction); add bounds "
            "or constraints that keep its variable finite",
            level=j,
        )
    if status is EngineStatus.STALLED:
        stalled = ConvergenceError(
            f"{text}: the interior-point line search found no acceptable step, and the "
            f"feasibility restoration none either (KKT error {result.kkt_error:.2e}); the "
            "level's objective or constraints may be inconsistent with their derivatives "
            "(run nestopt.check_derivatives) or badly scaled (or the level's objective has a "
            "kink there)",
            level=j,
        )
        # Where it stopped (every level's variable): the top level reports that point.
        stalled.stopped_at = None if result.point is None else tuple(result.point.xs)
        raise stalled
    if status is not EngineStatus.SOLVED:
        raise ConvergenceError(
            f"{text}: the interior-point method did not converge in {maxiter} iterations "
            f"(KKT error {result.kkt_error:.2e}); raise maxiter in level_options, or check "
            "the level's constraints and their derivatives",
            level=j,
        )
    lam = nlp.all_rows(result.y, result.z if nlp.boxed else None)
    rows = result.active_rows | result.weak_rows
    bounds = result.active_bounds | result.weak_bounds
    active = np.concatenate([rows, bounds]) if nlp.boxed else rows
    return InteriorResult(result.point, lam, active, result.iterations)
