"""A solved level's linearization: solves with its own block, products with its cross rows.

At the solution of level ``j``, with ``A = H_j[j, j]`` (its own reduced
Hessian block) and ``B = H_j[j, <j]`` (its cross rows), the best-response
Jacobian is ``G_j = -A^{-1} B``. A system never forms ``G_j`` unless asked:
``G_apply`` and ``GT_apply`` need one solve per right-hand side, which is
what the adjoint composition of DESIGN section 8 uses.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import device

from .._errors import FactorizationError, residual_too_large, singular_block
from .factor import Factorization, residual_is_small
from .sparse import is_sparse, to_dense

__all__ = ["DenseSystem"]


class DenseSystem:
    """``A`` factored once (``factor``) and ``B`` held as a dense ``(d_j, s_{j-1})`` array.

    Parameters
    ----------
    factor : Factorization
        Of ``A`` (``A + ridge I`` when the level has a ridge).
    cross : array
        ``B``.
    level_text, j : str, int
        For messages.
    residual_tol : float
        Relative residual allowed in ``A G = -B`` (probed along one vector).
    """

    def __init__(
        self,
        xp: Any,
        factor: Factorization,
        cross: Any,
        level_text: str,
        j: int,
        residual_tol: float,
    ) -> None:
        self.xp = xp
        self.factor = factor
        self.cross = cross
        self.level_text = level_text
        self.j = j
        self.residual_tol = residual_tol
        self._G: Any = None
        self._cross_t: Any = None
        if factor.method != "cholesky":
            # A Cholesky factor that passed its pivot checks solves backward-stably;
            # LU and least squares can return a "solution" of an inconsistent system.
            self._probe()

    def solve(self, rhs: Any) -> Any:
        """``A^{-1} rhs`` for a vector or a matrix of right-hand sides."""
        try:
            return self.factor.solve(rhs)
        except FactorizationError as exc:
            raise singular_block(self.level_text, self.j, str(exc), self.factor.method) from None

    def G(self) -> Any:
        """``G_j = -A^{-1} B``, formed once on request."""
        if self._G is None:
            self._G = -self.solve(to_dense(self.cross))
        return self._G

    def G_apply(self, u: Any) -> Any:
        """``G_j u``: one solve."""
        if self._G is not None:
            return self._G @ u
        return -self.solve(self.cross @ u)

    def G_columns(self, cols: slice) -> Any:
        """``G_j[:, cols] = -A^{-1} B[:, cols]``: the columns of one upper level only."""
        if self._G is not None:
            return self._G[:, cols]
        return -self.solve(to_dense(self.cross[:, cols]))

    def GT_apply(self, v: Any) -> Any:
        """``G_j^T v = -B^T A^{-1} v`` (``A`` symmetric): one solve."""
        if self._G is not None:
            return self.xp.matrix_transpose(self._G) @ v
        if self._cross_t is None:  # a view, made once (every adjoint product uses it)
            cross = self.cross
            self._cross_t = cross.T if is_sparse(cross) else self.xp.matrix_transpose(cross)
        return -(self._cross_t @ self.solve(v))

    def adjoint(self, v: Any) -> Any:
        """``nu = A^{-1} v``: the level's adjoint for another level's gradient ``v``."""
        return self.solve(v)

    def adjoint_full(self, v: Any) -> tuple[Any, None]:
        """``(nu, None)``: no multipliers."""
        return self.solve(v), None

    def Lambda(self) -> None:
        """No multipliers: None."""
        return None

    def _probe(self) -> None:
        """Check ``A (G w) = -B w`` along ``w = 1``: catches inconsistent or failed solves."""
        xp = self.xp
        s = self.cross.shape[1]
        if s == 0:
            return
        w = xp.ones((s, 1), dtype=self.cross.dtype, device=device(self.cross))
        bw = self.cross @ w
        gw = -self.solve(bw)
        ok, residual = residual_is_small(
            self.factor.a, gw, bw, self.residual_tol, xp=xp, b_full=self.cross, w=w
        )
        if not ok:
            raise residual_too_large(
                self.level_text, self.j, residual, self.residual_tol, self.factor.method
            )
