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
import warnings

__all__ = [
    "Status",
    "NestoptError",
    "OracleError",
    "OracleTypeError",
    "NotPositiveDefiniteError",
    "LinearSolveError",
    "NonFiniteError",
    "ConvergenceError",
    "NestoptWarning",
    "ConvergenceWarning",
    "SymmetryWarning",
    "PrecisionWarning",
    "warn_user",
]


class Status(enum.IntEnum):
    """How a run ended. ``status.message`` says it in words."""

    SUCCESS = 0
    SMALL_STEP = 1
    MAX_ITER = 2
    CALLBACK = 3
    LOWER_LEVEL_NOT_CONVERGED = 4
    NOT_POSITIVE_DEFINITE = 5
    LINEAR_SOLVE_FAILED = 6
    NON_FINITE = 7
    LINE_SEARCH_FAILED = 8

    @property
    def message(self) -> str:
        return _STATUS_MESSAGES[self]

    @property
    def success(self) -> bool:
        return self in (Status.SUCCESS, Status.SMALL_STEP)


_STATUS_MESSAGES = {
    Status.SUCCESS: "converged: the projected hypergradient norm is below gtol",
    Status.SMALL_STEP: "converged: the step on level 1 is below xtol",
    Status.MAX_ITER: "stopped: maxiter reached before the tolerances were met",
    Status.CALLBACK: "stopped: the callback raised StopIteration",
    Status.LOWER_LEVEL_NOT_CONVERGED: "failed: a lower-level solve did not converge",
    Status.NOT_POSITIVE_DEFINITE: (
        "failed: a lower level's Hessian block is not positive definite"
    ),
    Status.LINEAR_SOLVE_FAILED: "failed: a linear solve left a residual above its tolerance",
    Status.NON_FINITE: "failed: a user callable returned NaN or Inf",
    Status.LINE_SEARCH_FAILED: "failed: the line search on level 1 found no decrease",
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


class NotPositiveDefiniteError(NestoptError, ArithmeticError):
    """A lower level's own Hessian block is not (numerically) positive definite.

    The level is then not strongly convex at the point: its best response is
    not locally unique and implicit differentiation does not apply.
    """

    status = Status.NOT_POSITIVE_DEFINITE


class LinearSolveError(NestoptError, ArithmeticError):
    """A linear solve's relative residual exceeded its tolerance."""

    status = Status.LINEAR_SOLVE_FAILED


class NonFiniteError(NestoptError, FloatingPointError):
    """A user callable returned NaN or Inf."""

    status = Status.NON_FINITE


class ConvergenceError(NestoptError, RuntimeError):
    """A lower-level Newton solve stopped before reaching its tolerance."""

    status = Status.LOWER_LEVEL_NOT_CONVERGED


class NestoptWarning(UserWarning):
    """Base class of nestopt's warnings."""


class ConvergenceWarning(NestoptWarning):
    """``solve`` ended without meeting its tolerances."""


class SymmetryWarning(NestoptWarning):
    """A user Hessian is not symmetric beyond rounding."""


class PrecisionWarning(NestoptWarning):
    """A tolerance is tighter than the working dtype can reach."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_user(message: str, category: type[Warning]) -> None:
    """Warn with the location of the first caller outside nestopt.

    The warnings come from varying depths (user callables are called deep in
    the recursion), so a fixed ``stacklevel`` would point inside nestopt.
    """
    frame = sys._getframe(1)
    level = 2  # stacklevel 2 is this function's caller, the frame we start from
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
