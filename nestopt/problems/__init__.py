"""Problem families with known answers, for tests, benchmarks and examples.

Each function returns a `KnownProblem`: a ready `nestopt.Problem` with
analytic derivatives, a suggested start ``x0`` and, where known, the
``solution``.
"""

from ._base import KnownProblem
from ._quad import quad, quad_reference
from ._softplus import softplus_levels

__all__ = ["KnownProblem", "quad", "quad_reference", "softplus_levels"]
