"""A dense level above other levels: its cross rows applied as products, never formed.

For level ``j`` with levels below it, ``R_j = d r_>j / d x_<=j`` splits into
its own columns ``R_own = R_j[:, j]`` (``d_j`` of them: the own block ``A =
c_j^T M c_j`` needs them, ``c_j = [I; R_own]``) and the columns of the upper
variables ``R_j[:, <j]`` (``s_{j-1}`` of them). The cross rows

    B = H_j[j, <j] = c_j^T M P_j[:, <j],   P_j[:, <j] = [I_{s_{j-1}}; 0; R_j[:, <j]]

are needed only as products with vectors for the adjoint composition (DESIGN
section 8), and with the ``d_m`` columns of one upper level ``m`` for that
level's own block. With ``M``'s rows ``s_{j-1}:D`` split as ``Y = M[:, <j]``
(all rows ``s_{j-1}:D``, the columns of the upper variables) and ``X_> =
(c_j^T M)[:, s_j:]`` (``d_j x (D - s_j)``):

    B u   = Y[j] u + R_own^T (Y[>j] u) + X_> (R_j[:, <j] u)
    B^T v = Y[j]^T v + Y[>j]^T (R_own v) + (R_j[:, <j]^T (X_>^T v))

where ``R_j[:, <j] u`` and ``R_j[:, <j]^T w`` are the products of the levels
below (one solve per level), and ``Y[j] = M[j, <j]``, ``Y[>j] = M[>j, <j]``.
In exact mode the multiplier terms' cross part (``extra``, ``d_j x s_{j-1}``,
formed from ``Lambda`` of a constrained level below) is subtracted as it is.
``B`` is formed densely only when ``G_j`` itself is asked for (forward
composition, ``jacobians``, sensitivities), or once for the residual probe of
an LU or least-squares factor; that needs all of ``R_j``.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import device

from .dense_system import DenseSystem
from .factor import Factorization

__all__ = ["CrossParts", "ProductSystem"]


class CrossParts:
    """What the cross rows of a dense level above other levels are built from.

    Parameters
    ----------
    Y : array, shape (D - s_{j-1}, s_{j-1})
        ``M``'s rows ``s_{j-1}:D``, columns of the upper variables (a copy: ``M``
        itself is not kept).
    X_below : array, shape (d_j, D - s_j)
        ``(c_j^T M)[:, s_j:]``.
    R_own : array, shape (D - s_j, d_j)
        ``R_j[:, j]``.
    extra : array or None, shape (d_j, s_{j-1})
        The multiplier terms' cross rows (exact mode below a constrained level).
    """

    def __init__(self, Y: Any, X_below: Any, R_own: Any, extra: Any | None) -> None:
        self.Y, self.X_below, self.R_own, self.extra = Y, X_below, R_own, extra


class ProductSystem(DenseSystem):
    """``A`` factored, ``B`` applied through `CrossParts` and the products of ``below``.

    ``below`` is the `Response` of the levels under level ``j`` (``jvp``,
    ``vjp``, ``columns`` and ``R`` of ``R_j``).
    """

    def __init__(
        self,
        xp: Any,
        factor: Factorization,
        parts: CrossParts,
        below: Any,
        level_text: str,
        j: int,
        residual_tol: float,
    ) -> None:
        self.parts = parts
        self.below = below
        self.d = parts.X_below.shape[0]
        self.s = parts.Y.shape[1]  # s_{j-1}
        self._B: Any = None
        super().__init__(xp, factor, None, level_text, j, residual_tol)

    # -- B as products --------------------------------------------------------------------

    def cross_apply(self, u: Any) -> Any:
        """``B u`` for ``u`` of length ``s_{j-1}`` (or columns of such)."""
        xp, p, d = self.xp, self.parts, self.d
        if self._B is not None:
            return self._B @ u
        shape = (d,) if u.ndim == 1 else (d, u.shape[1])
        zeros = xp.zeros(shape, dtype=u.dtype, device=device(u))
        below_u = self.below.jvp(xp.concat([u, zeros], axis=0))  # R_j[:, <j] u
        out = p.Y[:d, :] @ u + xp.matrix_transpose(p.R_own) @ (p.Y[d:, :] @ u)
        out = out + p.X_below @ below_u
        return out if p.extra is None else out - p.extra @ u

    def cross_t_apply(self, v: Any) -> Any:
        """``B^T v`` for ``v`` of length ``d_j`` (or columns of such)."""
        xp, p, d = self.xp, self.parts, self.d
        if self._B is not None:
            return xp.matrix_transpose(self._B) @ v
        Yt = xp.matrix_transpose(p.Y)
        out = Yt[:, :d] @ v + Yt[:, d:] @ (p.R_own @ v)
        out = out + self.below.vjp(xp.matrix_transpose(p.X_below) @ v)[: self.s, ...]
        return out if p.extra is None else out - xp.matrix_transpose(p.extra) @ v

    def cross_columns(self, cols: slice) -> Any:
        """``B[:, cols]``: columns of one upper level, through ``R_j[:, cols]``."""
        xp, p, d = self.xp, self.parts, self.d
        if self._B is not None:
            return self._B[:, cols]
        out = p.Y[:d, cols] + xp.matrix_transpose(p.R_own) @ p.Y[d:, cols]
        out = out + p.X_below @ self.below.columns(cols)
        return out if p.extra is None else out - p.extra[:, cols]

    def cross_matrix(self) -> Any:
        """``B``, formed densely once (needs all of ``R_j``): only for ``G_j`` itself and
        the residual probe of an LU or least-squares factor."""
        if self._B is None:
            p, d = self.parts, self.d
            R_upper = self.below.R()[:, : self.s]
            B = p.Y[:d, :] + self.xp.matrix_transpose(p.R_own) @ p.Y[d:, :]
            B = B + p.X_below @ R_upper
            self._B = B if p.extra is None else B - p.extra
        return self._B

    # -- the Jacobian system's verbs ------------------------------------------------------------

    def G(self) -> Any:
        """``G_j = -A^{-1} B``, formed once on request (``B`` formed densely for it)."""
        if self._G is None:
            self._G = -self.solve(self.cross_matrix())
        return self._G

    def G_apply(self, u: Any) -> Any:
        """``G_j u``: one solve, ``B u`` by products."""
        if self._G is not None:
            return self._G @ u
        return -self.solve(self.cross_apply(u))

    def GT_apply(self, v: Any) -> Any:
        """``G_j^T v = -B^T A^{-1} v`` (``A`` symmetric): one solve, ``B^T`` by products."""
        if self._G is not None:
            return self.xp.matrix_transpose(self._G) @ v
        return -self.cross_t_apply(self.solve(v))

    def G_columns(self, cols: slice) -> Any:
        """``G_j[:, cols] = -A^{-1} B[:, cols]``: ``cols`` right-hand sides."""
        if self._G is not None:
            return self._G[:, cols]
        return -self.solve(self.cross_columns(cols))

    def lifted_jvp(self, u: Any) -> Any:
        """``R_{j-1} u = [G_j u; R_j [u; G_j u]]`` with one product of the levels below:
        ``R_j [u; g] = R_j [u; 0] + R_own g``, and ``R_j [u; 0]`` also serves ``B u``."""
        xp, p, d = self.xp, self.parts, self.d
        if self._G is not None:
            g = self._G @ u
            return xp.concat([g, self.below.jvp(xp.concat([u, g], axis=0))], axis=0)
        shape = (d,) if u.ndim == 1 else (d, u.shape[1])
        zeros = xp.zeros(shape, dtype=u.dtype, device=device(u))
        below_u = self.below.jvp(xp.concat([u, zeros], axis=0))
        Bu = p.Y[:d, :] @ u + xp.matrix_transpose(p.R_own) @ (p.Y[d:, :] @ u)
        Bu = Bu + p.X_below @ below_u
        g = -self.solve(Bu if p.extra is None else Bu - p.extra @ u)
        return xp.concat([g, below_u + p.R_own @ g], axis=0)

    def lifted_vjp(self, w: Any) -> Any:
        """``R_{j-1}^T w = (R_j^T w_>)[<j] + G_j^T (w_j + R_own^T w_>)`` with one product of
        the levels below: ``G_j^T v = -B^T z`` (``z = A^{-1} v``) and both ``R_j^T`` terms
        in ``R_j^T (w_> - X_>^T z)``."""
        xp, p, d = self.xp, self.parts, self.d
        w_j, w_below = w[:d, ...], w[d:, ...]
        Rt = xp.matrix_transpose(p.R_own)
        if self._G is not None:
            y = self.below.vjp(w_below)
            return y[: self.s, ...] + self.GT_apply(w_j + y[self.s :, ...])
        z = self.solve(w_j + Rt @ w_below)
        Yt = xp.matrix_transpose(p.Y)
        out = self.below.vjp(w_below - xp.matrix_transpose(p.X_below) @ z)[: self.s, ...]
        out = out - (Yt[:, :d] @ z + Yt[:, d:] @ (p.R_own @ z))
        return out if p.extra is None else out + xp.matrix_transpose(p.extra) @ z

    def _probe(self) -> None:
        """The residual probe of `DenseSystem`, on ``B`` formed densely."""
        self.cross = self.cross_matrix()
        super()._probe()
