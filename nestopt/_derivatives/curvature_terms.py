"""The exact curvature term of level ``j`` from the level below it, written once.

Level ``j+1`` unconstrained (DESIGN 3): ``S_j = -P_j^T T_{j+1}(x, v) P_j`` with
``v = (0, c_{j+1} nu)`` and ``nu = A_{j+1}^{-1} c_{j+1}^T grad L_j``.

Level ``j+1`` constrained (DESIGN 7), with ``(nu_x, nu_lambda) = K^{-1} (c_{j+1}^T
grad L_j, 0)`` from its KKT matrix, multipliers ``lambda``, ``Lambda =
d lambda_A / d x_<=j`` and ``v = (0, c_{j+1} nu_x)``:

    S_j = -(P_j^T H P_j + P_j^T K Lambda + Lambda^T K^T P_j)
    H   = T_{f_{j+1}}(x, v) + d/dt sum_i lambda_i hess c_i (x + t v) + sum_i nu_lambda,i hess c_i
    K   = [hess c_i v]  (one column per active row; zero for linear rows and bounds)

`CurvatureTerm` computes ``nu``, ``v`` and the constraint weights once, through
the Jacobian system of level ``j+1`` (``adjoint``/``adjoint_full``/``Lambda``)
and the products of the `Response` below (``lift``/``pull``), and serves both
kinds of level above: a dense level takes ``H``'s rows and the own rows of the
``K`` terms; a matrix-free level takes their products with vectors. Every
combination of dense, sparse, matrix-free and constrained levels therefore
gets the same terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device

from .._backend.host import to_numpy
from .curvature import directional_difference, third_order_rows

__all__ = ["CurvatureTerm"]


class CurvatureTerm:
    """Level ``j``'s exact curvature term at one point, from level ``j+1`` below it.

    Parameters
    ----------
    nest : Nest
        The run (oracles, problem, finite-difference step).
    j : int
        The level whose reduced Hessian gets the term.
    below : Response
        Levels ``j+1..n`` solved at the point.
    grad_L : array, shape (D,)
        Gradient of level ``j``'s objective (or Lagrangian, when level ``j`` is
        constrained) in all variables.
    """

    def __init__(self, nest: Any, j: int, below: Any, grad_L: Any) -> None:
        self.nest, self.j, self.below = nest, j, below
        self.xp = xp = nest.xp
        self.i = i = j + 1
        top = below.top
        own_i = nest.problem.block(i)
        deeper = top.below
        rhs = deeper.pull(grad_L)[own_i]
        self.solution = solution = top.constrained
        nu, nu_lambda = top.system.adjoint_full(rhs)
        zeros = xp.zeros((own_i.start,), dtype=nu.dtype, device=device(nu))
        self.v = deeper.lift(xp.concat([zeros, nu]))
        self.rows_i = None if solution is None or solution.rows.all_linear else solution.rows
        self._nu_lambda = nu_lambda
        self._third: Any = None  # T_{f_i}(x, v), all rows, when products need it dense
        self._constraint: Any = None
        self._K: Any = None
        self._PK: Any = None

    # -- H: the part that acts on P_j z ------------------------------------------------------

    def rows(self, start: int) -> Any:
        """Rows ``start:D`` of ``H`` (dense)."""
        nest = self.nest
        H = third_order_rows(
            nest.oracles, self.i, self.below.xs, self.v, start=start, fd_step=nest.config.fd_step
        )
        if self.rows_i is None:
            return H
        return H + self._constraint_part()[start:, :]

    def apply(self, w: Any) -> Any:
        """``H w`` for ``w`` of length ``D``: products where the level below gives them."""
        oracles, i, xs = self.nest.oracles, self.i, self.below.xs
        if oracles.has(i, "hvp_dir"):
            out = oracles.hvp_dir(i, xs, w, self.v)
        elif oracles.has(i, "hvp") and not oracles.has(i, "hess_dir"):
            xp = self.xp

            def product(ys: Any, keep: bool) -> Any:
                out = oracles.hvp(i, ys, w)
                return xp.asarray(out, copy=True) if keep else out

            out = directional_difference(product, xs, self.v, self.nest.config.fd_step)
            out = self.xp.zeros_like(w) if out is None else out
        else:  # a level below given by its Hessian: its third-order rows, formed once
            if self._third is None:
                self._third = third_order_rows(
                    oracles, i, xs, self.v, start=0, fd_step=self.nest.config.fd_step
                )
            out = self._third @ w
        if self.rows_i is not None:
            out = out + self._constraint_part() @ w
        return out

    def _constraint_part(self) -> Any:
        """``d/dt sum lam_i hess c_i(x + t v) + sum nu_lambda,i hess c_i`` (``D x D``)."""
        if self._constraint is None:
            xp, rows, xs, v = self.xp, self.rows_i, self.below.xs, self.v
            assert rows is not None, "asked only when level j+1 has nonlinear rows"
            lam = xp.asarray(self.solution.lam, dtype=v.dtype, device=device(v))
            weights = np.zeros(rows.m)
            weights[self._active()] = np.asarray(to_numpy(self._nu_lambda))
            nu_weights = xp.asarray(weights, dtype=v.dtype, device=device(v))
            moving = rows.weighted_hessian_dir(xs, lam, v)
            if moving is None:
                moving = directional_difference(
                    lambda ys, _: rows.weighted_hessian(ys, lam), xs, v, self.nest.config.fd_step
                )
            part = rows.weighted_hessian(xs, nu_weights)
            self._constraint = part if moving is None else moving + part
        return self._constraint

    # -- the multiplier terms P_j^T K Lambda + Lambda^T K^T P_j --------------------------------

    def _active(self) -> Any:
        return np.flatnonzero(self.solution.active)

    def _columns(self) -> Any | None:
        """``K = [hess c_i v]`` over the active rows (``D x a``), or None without any."""
        if self.rows_i is None or not self._active().size:
            return None
        if self._K is None:
            xp, rows, v = self.xp, self.rows_i, self.v
            columns = []
            for row in self._active():
                e = np.zeros(rows.m)
                e[row] = 1.0
                weight = xp.asarray(e, dtype=v.dtype, device=device(v))
                columns.append(rows.weighted_hessian(self.below.xs, weight) @ v)
            self._K = xp.stack(columns, axis=1)
        return self._K

    def _pulled(self, pull: Any) -> Any | None:
        """``P_j^T K`` (``s_j x a``), formed once: every product of a matrix-free level above
        needs it, and ``pull`` (``P_j^T``, the same for this point) takes the columns at once."""
        if self._PK is None:
            K = self._columns()
            if K is None:
                return None
            self._PK = pull(K)
        return self._PK

    def extra_rows(self, pull: Any) -> Any | None:
        """Own rows (``d_j x s_j``) of the multiplier terms, or None where they vanish.

        ``pull`` applies ``P_j^T`` to the columns of a ``(D, a)`` array (a product
        with ``R_j^T``: ``R_j`` need not be formed)."""
        PK = self._pulled(pull)
        if PK is None:
            return None
        xp = self.xp
        own = self.nest.problem.block(self.j)
        Lambda = self.below.top.system.Lambda()
        return PK[own, :] @ Lambda + xp.matrix_transpose(Lambda[:, own]) @ xp.matrix_transpose(PK)

    def extra_apply(self, z: Any, pull: Any) -> Any | None:
        """The multiplier terms applied to ``z`` (length ``s_j``), with ``pull = P_j^T``."""
        PK = self._pulled(pull)
        if PK is None:
            return None
        xp = self.xp
        Lambda = self.below.top.system.Lambda()
        return PK @ (Lambda @ z) + xp.matrix_transpose(Lambda) @ (xp.matrix_transpose(PK) @ z)
