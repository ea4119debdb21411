"""Exceptions, warnings and status codes of nestopt.

Every failure nestopt detects is an instance of :class:`NestoptError`; the
subclass says what went wrong, and ``level``/``status`` say where and how the
result object reports it. Builtin bases (``ValueError``, ``TypeError``, ...)
are kept so that code written against the builtins still catches them.
"""

from __future__ import annotations

import enum
import os
import sys
import types
import warnings
from typing import Any

__all__ = [
    "Status",
    "NestoptError",
    "OracleError",
    "OracleTypeError",
    "SymmetryError",
    "NotPositiveDefiniteError",
    "LinearSolveError",
    "NonFiniteError",
    "ConvergenceError",
    "InfeasibleError",
    "LocallyInfeasibleError",
    "UnboundedError",
    "ConstraintQualificationError",
    "SingularKKTError",
    "TimeLimitError",
    "FactorizationError",
    "NestoptWarning",
    "ConvergenceWarning",
    "SymmetryWarning",
    "PrecisionWarning",
    "DegeneracyWarning",
    "warn_user",
]


class Status(enum.IntEnum):
    """How a run ended. ``status.message`` says it in words; only SUCCESS is a success."""

    SUCCESS = 0
    SMALL_STEP = 1
    MAX_ITER = 2
    CALLBACK = 3
    LOWER_LEVEL_NOT_CONVERGED = 4
    NOT_POSITIVE_DEFINITE = 5
    LINEAR_SOLVE_FAILED = 6
    NON_FINITE = 7
    LINE_SEARCH_FAILED = 8
    MAX_TIME = 9
    INFEASIBLE = 10
    DEGENERATE = 11
    CONSTRAINT_QUALIFICATION = 12
    SINGULAR_KKT = 13
    RAISED = 14
    UNBOUNDED = 15
    LOCALLY_INFEASIBLE = 16

    @property
    def message(self) -> str:
        return _STATUS_MESSAGES[self]

    @property
    def success(self) -> bool:
        return self is Status.SUCCESS


_STATUS_MESSAGES = {
    Status.SUCCESS: "converged: the projected hypergradient met gtol",
    Status.SMALL_STEP: "stopped: the step on level 1 fell below xtol before gtol was met",
    Status.MAX_ITER: "stopped: maxiter reached before the tolerances were met",
    Status.CALLBACK: "stopped: the callback raised StopIteration",
    Status.LOWER_LEVEL_NOT_CONVERGED: "failed: a lower-level solve did not converge",
    Status.NOT_POSITIVE_DEFINITE: (
        "failed: a level's Hessian block is not positive definite (not a strict minimum)"
    ),
    Status.LINEAR_SOLVE_FAILED: "failed: a linear solve left a residual above its tolerance",
    Status.NON_FINITE: "failed: a user callable returned NaN or Inf",
    Status.LINE_SEARCH_FAILED: "failed: the line search on level 1 found no decrease",
    Status.MAX_TIME: "stopped: max_time reached before the tolerances were met",
    Status.INFEASIBLE: "failed: a level's constraints could not be satisfied",
    Status.DEGENERATE: (
        "stopped: at a degenerate active set of a lower level (a weakly active constraint): "
        "F_1 has a kink there, and its gradient is only one-sided"
    ),
    Status.CONSTRAINT_QUALIFICATION: (
        "failed: the active constraint gradients of a level are linearly dependent"
    ),
    Status.SINGULAR_KKT: "failed: a level's KKT matrix is singular",
    Status.RAISED: "failed: the run raised an exception",
    Status.UNBOUNDED: "failed: a level's objective is unbounded below on its feasible set",
    Status.LOCALLY_INFEASIBLE: (
        "failed: a level's constraint violation has a local minimum at a positive value "
        "(not proven infeasible: another start may find a feasible point)"
    ),
}


class NestoptError(Exception):
    """Base class of every error nestopt raises on purpose.

    Attributes
    ----------
    level : int or None
        1-based index of the level concerned, when there is one.
    status : Status or None
        The status a result object reports for this failure.
    """

    status: Status | None = None

    def __init__(self, message: str, *, level: int | None = None) -> None:
        super().__init__(message)
        self.level = level


class OracleError(NestoptError, ValueError):
    """A user callable returned something of the wrong shape, layout or value."""


class OracleTypeError(NestoptError, TypeError):
    """A user callable returned the wrong type, dtype, backend or device."""


class SymmetryError(OracleError):
    """A user Hessian is not symmetric beyond rounding (``symmetry='warn'`` downgrades it)."""


class NotPositiveDefiniteError(NestoptError, ArithmeticError):
    """A level's own (reduced) Hessian block is not positive definite where it must be.

    At a lower level's solution this means the point is not a strict local
    minimum (a maximum, a saddle, or a flat direction): its best response is
    not locally unique and implicit differentiation does not apply.
    """

    status = Status.NOT_POSITIVE_DEFINITE


class LinearSolveError(NestoptError, ArithmeticError):
    """A linear solve failed or its relative residual exceeded its tolerance."""

    status = Status.LINEAR_SOLVE_FAILED


class NonFiniteError(NestoptError, FloatingPointError):
    """A user callable returned NaN or Inf."""

    status = Status.NON_FINITE


class ConvergenceError(NestoptError, RuntimeError):
    """A level's Newton (or interior-point) solve stopped before reaching its tolerance."""

    status = Status.LOWER_LEVEL_NOT_CONVERGED
    #: Where a stalled interior point stopped (every level's variable), when known.
    stopped_at: tuple[Any, ...] | None = None


class InfeasibleError(NestoptError, ArithmeticError):
    """A level's constraints cannot be satisfied (proven by a certificate)."""

    status = Status.INFEASIBLE


class LocallyInfeasibleError(InfeasibleError):
    """A level's constraint violation has a local minimum at a positive value.

    Not a proof of infeasibility (that is `InfeasibleError` alone): another
    start of the level may find a feasible point.
    """

    status = Status.LOCALLY_INFEASIBLE


class UnboundedError(NestoptError, ArithmeticError):
    """A level's objective decreases without bound along its feasible points."""

    status = Status.UNBOUNDED


class ConstraintQualificationError(NestoptError, ArithmeticError):
    """The gradients of a level's active constraints are linearly dependent (no LICQ)."""

    status = Status.CONSTRAINT_QUALIFICATION


class DegenerateError(NestoptError, ArithmeticError):
    """Deprecated, never raised: degeneracy is reported by `DegeneracyWarning` and status."""

    status = Status.DEGENERATE


class SingularKKTError(NestoptError, ArithmeticError):
    """A level's KKT matrix on its active set is singular."""

    status = Status.SINGULAR_KKT


class TimeLimitError(NestoptError, RuntimeError):
    """``max_time`` ran out inside a solve."""

    status = Status.MAX_TIME


class FactorizationError(ArithmeticError):
    """Internal: a matrix could not be factored as asked.

    Never escapes nestopt: the level solvers turn it into a `NestoptError`
    that names the level and says what to try.
    """


class NestoptWarning(UserWarning):
    """Base class of nestopt's warnings."""


class ConvergenceWarning(NestoptWarning):
    """``solve`` ended without meeting its tolerances."""


class SymmetryWarning(NestoptWarning):
    """A user Hessian is not symmetric beyond rounding (with ``symmetry='warn'``)."""


class PrecisionWarning(NestoptWarning):
    """A tolerance is tighter than the working dtype can reach, or was not reached."""


class DegeneracyWarning(NestoptWarning):
    """A constraint is active with a (near-)zero multiplier: one-sided derivatives."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_user(message: str, category: type[Warning]) -> None:
    """Warn with the location of the first caller outside nestopt.

    The warnings come from varying depths (user callables are called deep in
    the recursion), so a fixed ``stacklevel`` would point inside nestopt.
    """
    frame: types.FrameType | None = sys._getframe(1)
    level = 2  # stacklevel 2 is this function's caller, the frame we start from
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


# -- messages shared by the level solvers: what was found, and what to try ------------


def not_positive_definite(
    level_text: str, j: int, smallest: float, largest: float, where: str
) -> NotPositiveDefiniteError:
    """The block of level ``j`` has eigenvalues ``smallest..largest``, not all positive."""
    return NotPositiveDefiniteError(
        f"{level_text}: the Hessian block of its own variable is not positive definite at "
        f"{where} (smallest eigenvalue {smallest:.3e}, largest {largest:.3e}). The level is "
        "not strongly convex there, so its best response is not locally unique. Try: ridge= "
        "in level_options to damp it, a different starting point (the point may be a "
        "maximum or a saddle), or check its hess callable",
        level=j,
    )


def zero_curvature(level_text: str, j: int, point: str) -> NotPositiveDefiniteError:
    """The block of level ``j`` is exactly zero: Newton has nothing to work with."""
    return NotPositiveDefiniteError(
        f"{level_text}: the Hessian block of its own variable is exactly zero at {point}, "
        "so Newton's method has no curvature to take a step with (zero curvature: "
        "smallest eigenvalue 0.000e+00). Start at a point where the level is strongly "
        "convex, or add ridge= in level_options",
        level=j,
    )


def numerically_singular(level_text: str, j: int, detail: str, dtype: object) -> LinearSolveError:
    """Positive definite in exact arithmetic perhaps, but not resolvable in ``dtype``."""
    return LinearSolveError(
        f"{level_text}: the Hessian block of its own variable is numerically singular in "
        f"{dtype} ({detail}): the best-response Jacobian would have no correct digits. Use "
        "float64 if this is float32, rescale the level's variables, or add ridge= in "
        "level_options (which biases the hypergradient)",
        level=j,
    )


def singular_block(level_text: str, j: int, detail: str, linear_solver: str) -> LinearSolveError:
    """A non-Cholesky factorization of the block of level ``j`` failed."""
    return LinearSolveError(
        f"{level_text}: the Hessian block of its own variable is {detail} for "
        f"linear_solver={linear_solver!r}; the level is not strongly convex there. Try "
        "ridge= in level_options, or linear_solver='lstsq' for a least-squares Jacobian",
        level=j,
    )


def residual_too_large(
    level_text: str, j: int, residual: float, tol: float, linear_solver: str
) -> LinearSolveError:
    """The Jacobian solve of level ``j`` left a residual above its tolerance."""
    return LinearSolveError(
        f"{level_text}: the linear solve for its best-response Jacobian left a relative "
        f"residual {residual:.3e} (tolerance {tol:.1e}) with linear_solver={linear_solver!r}; "
        "the block is singular or badly conditioned. Try ridge= in level_options, or "
        "linear_solver='cholesky' if the level is strongly convex",
        level=j,
    )
