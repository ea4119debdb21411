"""A constrained level's linearization at its solution: the KKT system on its active set.

With ``W`` the reduced Hessian of the Lagrangian, ``J_A`` the reduced
Jacobian of the active rows (bounds are rows of the identity), ``B =
W[j, <j]`` and ``C = (jac c_A P_j)[:, <j]`` (DESIGN section 7):

    K = [ W[j, j]  J_A^T ]        K [G_j; Lambda_j] = -[B; C]
        [ J_A      0     ]

``G_j`` is the best-response Jacobian, ``Lambda_j = d lambda_A / d x_<j``.
``K`` is symmetric, so one factor (`ActiveSetKKT`: bounds eliminated, the
one the polish vetted the solution with) serves ``G_j`` and every adjoint:
``G_j^T v = -(B^T y + C^T mu)`` with ``(y, mu) = K^{-1} (v, 0)``.
"""

from __future__ import annotations

from typing import Any

from .._errors import FactorizationError, SingularKKTError
from .active_set import ActiveSetKKT

__all__ = ["KKTSystem"]


class KKTSystem:
    """Solves with the KKT matrix ``K`` of a constrained level, and products with ``G_j``.

    ``cross_c`` lists the active general rows, then the active bounds, whose rows are zero
    (a level's box does not move with the upper variables): the bounds' multipliers are
    formed only for `adjoint_full` and `Lambda`.
    """

    def __init__(
        self, xp: Any, factor: ActiveSetKKT, cross: Any, cross_c: Any, text: str, j: int
    ) -> None:
        self.xp, self.d, self.text, self.j = xp, factor.d, text, j
        self.cross, self.cross_c = cross, cross_c
        self.factor = factor
        self._G: Any = None
        self._Lambda: Any = None

    def _solve(self, rhs: Any, *, bound_multipliers: bool = True) -> Any:
        try:
            out = self.factor.solve(rhs, bound_multipliers=bound_multipliers)
        except FactorizationError as exc:
            raise SingularKKTError(
                f"{self.text}: the KKT solve failed ({exc})", level=self.j
            ) from None
        if not bool(self.xp.all(self.xp.isfinite(out))):
            raise SingularKKTError(
                f"{self.text}: the KKT solve gave NaN or Inf; its KKT matrix is singular",
                level=self.j,
            )
        return out

    def _pad(self, v: Any) -> Any:
        xp = self.xp
        a = self.cross_c.shape[0]
        shape = (a,) if v.ndim == 1 else (a, v.shape[1])
        return xp.concat([v, xp.zeros(shape, dtype=v.dtype)], axis=0)

    def solve(self, rhs: Any) -> Any:
        """The ``x`` part of ``K^{-1} (rhs, 0)``."""
        return self._solve(self._pad(rhs), bound_multipliers=False)[: self.d, ...]

    def adjoint(self, v: Any) -> Any:
        """``nu_x``: the level's adjoint for another level's gradient ``v`` (DESIGN 7)."""
        return self.solve(v)

    def adjoint_full(self, v: Any) -> tuple[Any, Any]:
        """``(nu_x, nu_lambda) = K^{-1} (v, 0)``."""
        out = self._solve(self._pad(v))
        return out[: self.d, ...], out[self.d :, ...]

    def _stacked(self, B: Any, C: Any) -> Any:
        return -self._solve(self.xp.concat([B, C], axis=0))

    def G(self) -> Any:
        if self._G is None:
            rhs = self.xp.concat([self.cross, self.cross_c], axis=0)
            self._G = -self._solve(rhs, bound_multipliers=False)[: self.d, ...]
        return self._G

    def G_columns(self, cols: slice) -> Any:
        """``G_j[:, cols]``, from ``G_j`` formed whole (its solve also gives ``Lambda_j``)."""
        return self.G()[:, cols]

    def Lambda(self) -> Any:
        """``d lambda_A / d x_<j`` (its own solve: `G` does not form the bounds' part)."""
        if self._Lambda is None:
            out = self._stacked(self.cross, self.cross_c)
            self._G, self._Lambda = out[: self.d, ...], out[self.d :, ...]
        return self._Lambda

    def G_apply(self, u: Any) -> Any:
        if self._G is not None:
            return self._G @ u
        rhs = self.xp.concat([self.cross @ u, self.cross_c @ u], axis=0)
        return -self._solve(rhs, bound_multipliers=False)[: self.d, ...]

    def GT_apply(self, v: Any) -> Any:
        xp = self.xp
        if self._G is not None:
            return xp.matrix_transpose(self._G) @ v
        # The bounds' rows of cross_c are zero: their multipliers are not needed.
        out = self._solve(self._pad(v), bound_multipliers=False)
        y, mu = out[: self.d, ...], out[self.d :, ...]
        rows = self.cross_c[: mu.shape[0], ...]
        return -(xp.matrix_transpose(self.cross) @ y + xp.matrix_transpose(rows) @ mu)
