"""nestopt: solve and differentiate multilevel (n-level) optimization problems.

Each level supplies analytic gradients and Hessians; nestopt computes every
level's best-response Jacobian by implicit differentiation with explicit
linear solves and composes them into the exact gradient of the top-level
objective, and solves the whole nested problem. Arrays may come from NumPy,
CuPy, torch or any array-API library.
"""

import logging as _logging
import warnings as _warnings

from ._backend.config import show_config
from ._backend.host import to_numpy
from ._backend.selection import (
    Backend,
    backend,
    get_backend,
    get_namespace,
    list_backends,
    register_backend,
    set_backend,
)
from ._checks.derivatives import check_derivatives, check_hypergradient
from ._checks.responses import check_responses
from ._errors import (
    ConstraintQualificationError,
    ConvergenceError,
    ConvergenceWarning,
    DegeneracyWarning,
    InfeasibleError,
    LinearSolveError,
    LocallyInfeasibleError,
    NestoptError,
    NestoptWarning,
    NonFiniteError,
    NotPositiveDefiniteError,
    OracleError,
    OracleTypeError,
    PrecisionWarning,
    SingularKKTError,
    Status,
    SymmetryError,
    SymmetryWarning,
    TimeLimitError,
    UnboundedError,
)
from ._errors import DegenerateError as _DegenerateError
from ._levels.constraints import Bounds, LinearConstraint, NonlinearConstraint
from ._levels.problem import Level, Problem
from ._methods.entry import best_response, hypergradient
from ._methods.implicit import Implicit
from ._methods.unrolled import Unrolled
from ._parallel.many import solve_many
from ._parallel.multistart import MultistartResult, multistart
from ._result import BestResponse, Result, SolveResult
from ._solve.optimizers import LBFGS, Adam, GradientDescent
from ._solve.solve import solve
from ._version import __version__ as __version__

# A library logs, the application decides what is shown.
_logging.getLogger("nestopt").addHandler(_logging.NullHandler())


def __getattr__(name: str) -> object:
    """Names kept for one release with a DeprecationWarning (see docs/api.md)."""
    if name == "DegenerateError":
        _warnings.warn(
            "nestopt.DegenerateError is deprecated and will be removed: nestopt never raised "
            "it. A degenerate point is reported by DegeneracyWarning and Status.DEGENERATE",
            DeprecationWarning,
            stacklevel=2,
        )
        return _DegenerateError
    raise AttributeError(f"module 'nestopt' has no attribute {name!r}")


__all__ = [
    "Adam",
    "Backend",
    "BestResponse",
    "Bounds",
    "ConstraintQualificationError",
    "ConvergenceError",
    "ConvergenceWarning",
    "DegeneracyWarning",
    "GradientDescent",
    "Implicit",
    "InfeasibleError",
    "LocallyInfeasibleError",
    "LBFGS",
    "Level",
    "LinearConstraint",
    "LinearSolveError",
    "MultistartResult",
    "NestoptError",
    "NestoptWarning",
    "NonFiniteError",
    "NonlinearConstraint",
    "NotPositiveDefiniteError",
    "OracleError",
    "OracleTypeError",
    "PrecisionWarning",
    "Problem",
    "Result",
    "SingularKKTError",
    "SolveResult",
    "Status",
    "SymmetryError",
    "SymmetryWarning",
    "TimeLimitError",
    "UnboundedError",
    "Unrolled",
    "backend",
    "best_response",
    "check_derivatives",
    "check_hypergradient",
    "check_responses",
    "get_backend",
    "get_namespace",
    "hypergradient",
    "list_backends",
    "multistart",
    "register_backend",
    "set_backend",
    "solve",
    "show_config",
    "solve_many",
    "to_numpy",
]
