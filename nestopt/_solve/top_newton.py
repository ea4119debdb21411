"""The top level solved like a lower one: Newton, or the interior point when it is constrained.

Level 1's reduced Hessian ``W_1 = P_1^T hess L_1 P_1 (+ S_1)`` needs ``R_1``,
which the nested solves provide; with it Newton's method (and the
interior-point method of a constrained top level, DESIGN section 7) converge
quadratically. This is `solve`'s path for ``optimizer='newton'`` and for a
level 1 with constraints.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from .._errors import NestoptError, Status
from .._respond.newton import solve_level
from .optimizers import Point
from .report import Outcome

__all__ = ["TopNewton", "NEWTON"]

NEWTON = "newton"


class TopNewton(Outcome):
    """Runs level 1's Newton (or interior-point) solve and fills the fields `solve` reports."""

    def __init__(self, run: Any, opts: dict[str, Any], started: float) -> None:
        self.name = "interior_point" if run.problem.levels[0].constraints else NEWTON
        engine = run.engine
        if not hasattr(engine, "nest"):
            raise ValueError(
                "optimizer='newton' (and a level 1 with constraints) needs the implicit method: "
                "it uses level 1's reduced Hessian, which ITD does not provide"
            )
        super().__init__()
        self.run, self.opts, self.started = run, opts, started
        self.nest = engine.nest
        # Level 1 stops as a lower level does: on a relative Newton step below xtol (or
        # stalling at rounding); maxiter counts its Newton (or interior-point) iterations,
        # with the same default as every top-level optimizer. The run's settings stay as
        # the method bound them: these are passed to this one solve.
        self.settings = replace(
            self.nest.config.levels[0], maxiter=opts["maxiter"], tol=opts["xtol"]
        )
        self.solution: Any = None
        self.kink: Any = None  # a kinks.Verdict where level 1 ends on a kink of level 2
        self.success_message: str | None = None

    def _evaluated(self, state: Any) -> Point:
        """Level 1 at ``state``: its value (where it has one) and hypergradient."""
        run = self.run
        grad = run.engine.hypergradient(state)
        fun = float(run.oracles.value(1, state.xs)) if run.oracles.has(1, "value") else None
        return Point(state.xs[0], fun, grad, state)

    def execute(self, project: Any) -> None:

        run, nest = self.run, self.nest
        tic = time.perf_counter()
        try:
            self.solution = solve_level(nest, 1, run.xs, self.settings)
        except NestoptError as exc:
            if exc.status is None:
                raise
            self.status, self.failure, self.failed_level = exc.status, str(exc), exc.level
            if exc.level == 1 and exc.status is Status.LOWER_LEVEL_NOT_CONVERGED:
                # Level 1 is not a lower level: say what stopped it, and where.
                line_search = "line search" in str(exc)
                self.status = Status.LINE_SEARCH_FAILED if line_search else Status.MAX_ITER
                self.failed_level = None
                stopped = getattr(exc, "stopped_at", None)
                if stopped is not None:
                    self.point = self._evaluated(nest.respond(1, stopped))
                    self.nit = nest.stats.newton[0]
            return
        finally:
            self.lower_seconds = time.perf_counter() - tic
        state = self.solution.below
        engine = run.engine
        self.point = self._evaluated(state)
        fun, grad = self.point.fun, self.point.grad
        self.nit = nest.stats.newton[0]
        constrained = self.solution.constrained
        xp = run.xp
        if constrained is None:
            self.pg = float(xp.max(xp.abs(grad))) if grad.shape[0] else 0.0
        else:  # the Lagrangian's gradient: zero at a KKT point
            lam = xp.asarray(constrained.lam, dtype=grad.dtype)
            d1 = run.problem.sizes[0]
            J_full = constrained.rows.jacobian(state.xs)
            J = J_full[:, :d1] + J_full[:, d1:] @ state.R()  # through the responses
            residual = grad + xp.matrix_transpose(J) @ lam
            self.pg = float(xp.max(xp.abs(residual))) if grad.shape[0] else 0.0
        self.status = Status.SUCCESS
        self.success_message = (
            f"converged: {self.name.replace('_', '-')} on level 1 met its step tolerance "
            f"(xtol {self.opts['xtol']:.0e}, relative)"
        )
        for key, value in (
            ("fun", fun),
            ("grad_norm", self.pg),
            ("step", 0.0),
            ("inner_nit", engine.level_nit()),
            ("time", time.perf_counter() - self.started),
        ):
            self.history[key].append(value)
