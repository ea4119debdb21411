"""The protocol every solved level's Jacobian system implements (DESIGN 2, 7 and 8).

At the solution of level ``j``, implicit differentiation gives a linear system
whose solution is the best-response Jacobian ``G_j = dx_j*/dx_<j``; for a
constrained level the same system also gives ``Lambda_j = d lambda_A/dx_<j``.
Three systems implement it: `DenseSystem` (a factored own block),
`KKTSystem` (a constrained level's active-set KKT matrix) and the matrix-free
`OperatorSystem` (Krylov solves with products). The composition (DESIGN 2, 8)
and the curvature terms (DESIGN 3, 7, `CurvatureTerm`) use only these verbs,
so every kind of level gets the same mathematics.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["JacobianSystem"]


@runtime_checkable
class JacobianSystem(Protocol):
    """Solves and products of one solved level's linearization.

    With ``A`` the level's own block (the reduced Hessian of its objective, or
    of its Lagrangian on the active set, bordered by the active rows' Jacobian
    for a constrained level) and ``B`` its cross rows:
    """

    def solve(self, rhs: Any) -> Any:
        """``A^{-1} rhs`` (the primal part for a KKT system), for a vector or columns."""
        ...

    def adjoint(self, v: Any) -> Any:
        """``nu``: the level's adjoint for another level's gradient ``v``."""
        ...

    def adjoint_full(self, v: Any) -> tuple[Any, Any | None]:
        """``(nu_x, nu_lambda)``; ``nu_lambda`` is None for an unconstrained level."""
        ...

    def G(self) -> Any:
        """``G_j``, formed on request (``s_{j-1}`` right-hand sides)."""
        ...

    def G_columns(self, cols: slice) -> Any:
        """``G_j[:, cols]``: the columns of one upper level (all of ``G_j`` formed where a
        system has no cheaper way)."""
        ...

    def G_apply(self, u: Any) -> Any:
        """``G_j u`` without forming ``G_j``."""
        ...

    def GT_apply(self, v: Any) -> Any:
        """``G_j^T v`` without forming ``G_j``: one solve."""
        ...

    def Lambda(self) -> Any | None:
        """``d lambda_A / d x_<j`` of a constrained level; None for an unconstrained one."""
        ...
