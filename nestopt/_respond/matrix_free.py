"""A matrix-free level: its reduced Hessian as products, solved by Krylov methods (DESIGN 8).

For level ``j`` with ``c_j u = (0, u, R_j[:, j] u)`` and ``P_j z = (z, R_j z)``
(products with ``R_j`` from the `Response` below: one solve per level, no
matrix formed), and ``M_j w = hvp_j(x, w)`` (less the curvature term of the
level below, `CurvatureTerm`, in exact mode: the same terms as a dense level's):

    A u   = c_j^T M_j c_j u                 own block H_j[j, j]
    B u   = c_j^T M_j P_j (u, 0)            cross rows H_j[j, <j]
    B^T v = (P_j^T M_j c_j v)[<j]

Newton steps solve ``A p = -g`` by CG to a relative residual that shrinks
with the gradient (superlinear convergence); the Jacobian's solves use the
level's ``krylov_rtol``. Every product of CG is watched for negative
curvature along its direction, which is how a matrix-free level that is not
a strict minimum is caught.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import device

from .._derivatives.curvature import term_is_zero
from .._derivatives.curvature_terms import CurvatureTerm
from .._errors import LinearSolveError, NotPositiveDefiniteError
from .._linalg.krylov import krylov_solve
from .nest import Nest, Response

__all__ = ["OperatorLinearization", "OperatorSystem", "operator_linearize"]


class _Products:
    """``M_j w`` and the maps through ``c_j`` and ``P_j`` at one point of level ``j``."""

    def __init__(self, nest: Nest, j: int, below: Response, g: Any, mode: str) -> None:
        self.nest, self.j, self.below = nest, j, below
        self.xp = nest.xp
        self.own = nest.problem.block(j)
        self.xs = below.xs
        exact = mode == "exact" and below.top is not None and not term_is_zero(nest.problem, j)
        self.term = CurvatureTerm(nest, j, below, g) if exact else None
        self.min_curvature = math.inf
        self._matrix: Any = None

    def M(self, w: Any) -> Any:
        oracles = self.nest.oracles
        if oracles.has(self.j, "hvp"):
            out = oracles.hvp(self.j, self.xs, w)
        else:  # a level with a (typically sparse) hess: asked for once per point
            if self._matrix is None:
                self._matrix = oracles.hess(self.j, self.xs)
            out = self._matrix @ w
        if self.term is not None:
            out = out - self.term.apply(w)
        return out

    def reduced(self, z: Any) -> Any:
        """``H_j z``, ``H_j = P_j^T M_j P_j + S_j`` (the exact reduced Hessian in exact mode)."""
        out = self.below.pull(self.M(self.below.lift(z)))
        if self.term is not None:
            extra = self.term.extra_apply(z, self.below.pull)
            if extra is not None:
                out = out - extra
        return out

    def _own_vector(self, u: Any) -> Any:
        xp = self.xp
        zeros = xp.zeros((self.own.start,), dtype=u.dtype, device=device(u))
        return xp.concat([zeros, u])

    def A(self, u: Any) -> Any:
        out = self.reduced(self._own_vector(u))[self.own]
        step = float(self.xp.sum(u * out)) / max(float(self.xp.sum(u * u)), 1e-300)
        self.min_curvature = min(self.min_curvature, step)
        return out

    def B(self, u: Any) -> Any:
        xp = self.xp
        d_j = self.own.stop - self.own.start
        z = xp.concat([u, xp.zeros((d_j,), dtype=u.dtype, device=device(u))])
        return self.reduced(z)[self.own]

    def BT(self, v: Any) -> Any:
        return self.reduced(self._own_vector(v))[: self.own.start]


class OperatorLinearization:
    """Level ``j`` at one point, matrix-free: the Newton step by CG, the system at the solution."""

    def __init__(self, nest: Nest, j: int, below: Response, g: Any, mode: str) -> None:
        self.nest, self.j, self.mode, self.below = nest, j, mode, below
        self.text = nest.problem.describe(j)
        self.products = _Products(nest, j, below, g, mode)
        own = nest.problem.block(j)
        self.grad_own = g[own] if below.top is None else g[own] + below.vjp(g[own.stop :])[own]
        self.method = nest.config.levels[j - 1].linear_solver
        self.shifted = False
        self.A = None

    def solve_step(self, forcing: float = 0.1) -> Any:
        """``A^{-1} grad`` to a relative residual ``forcing`` (at least the level's
        ``krylov_rtol``); the gradient itself (a steepest-descent step) where CG meets
        negative curvature or returns no descent direction."""
        opts = self.nest.config.levels[self.j - 1]
        xp = self.nest.xp
        rtol = max(min(forcing, 0.5), opts.krylov_rtol)
        result = self._krylov(self.grad_own, rtol, opts, derivative=False)
        if result.iterations == 0 and not float(xp.max(xp.abs(self.grad_own))) > 0.0:
            return result.x  # a zero gradient: the zero step
        if self.products.min_curvature <= 0.0 or not float(xp.sum(result.x * self.grad_own)) > 0:
            self.shifted = True
            return self.grad_own
        return result.x

    def predict_below(self, step: Any) -> Any | None:
        if self.below.top is None:
            return None
        xp = self.nest.xp
        own = self.nest.problem.block(self.j)
        zeros = xp.zeros((own.start,), dtype=step.dtype, device=device(step))
        return self.below.jvp(xp.concat([zeros, step]))

    def error(self, where: str) -> NotPositiveDefiniteError:
        curvature = self.products.min_curvature
        return NotPositiveDefiniteError(
            f"{self.text}: its reduced Hessian (matrix-free) is not positive definite at "
            f"{where}: a Krylov direction has curvature u^T A u / u^T u = {curvature:.3e}. The "
            "level is not strongly convex there, so its best response is not locally unique. "
            "Try: a different starting point, ridge-like terms in the objective, or check its "
            "hvp callable",
            level=self.j,
        )

    def system(self) -> OperatorSystem:
        return OperatorSystem(self, self.nest.config.levels[self.j - 1])

    def _krylov(self, rhs: Any, rtol: float, opts: Any, *, derivative: bool) -> Any:
        method = "minres" if self.method == "minres" else "cg"
        result = krylov_solve(
            self.products.A, rhs, method=method, rtol=rtol, maxiter=opts.krylov_maxiter,
            xp=self.nest.xp,
        )  # fmt: skip
        self.nest.stats.record_krylov(self.j, result, derivative=derivative)
        return result


class OperatorSystem:
    """Solves with ``A`` and products with ``B`` of a matrix-free level at its solution."""

    def __init__(self, lin: OperatorLinearization, opts: Any) -> None:
        self.lin, self.opts = lin, opts
        self.products = lin.products
        self.xp = lin.nest.xp
        self._G: Any = None

    def solve(self, rhs: Any) -> Any:
        if rhs.ndim == 2:
            columns = [self.solve(rhs[:, i]) for i in range(rhs.shape[1])]
            return self.xp.stack(columns, axis=1) if columns else rhs
        result = self.lin._krylov(rhs, self.opts.krylov_rtol, self.opts, derivative=True)
        eps = float(self.xp.finfo(rhs.dtype).eps)
        if not result.converged and result.residual <= math.sqrt(eps):
            # Stagnating above krylov_rtol but within half the digits: the block's
            # conditioning limits it. Accept, and say so.
            note = (
                f"{self.lin.text}: its Krylov solves stagnate at a relative residual of "
                f"{result.residual:.1e}, above krylov_rtol {self.opts.krylov_rtol:.1e} (the block "
                "is ill-conditioned); the derivatives are accurate to about that times its "
                "condition number"
            )
            stats = self.lin.nest.stats
            if note.split(":")[0] + ": its Krylov" not in " ".join(stats.notes):
                stats.notes.append(note)
        elif not result.converged:
            raise LinearSolveError(
                f"{self.lin.text}: the Krylov solve ({result.kind}) for its best-response "
                f"derivatives reached a relative residual {result.residual:.3e} after "
                f"{result.iterations} iterations (krylov_rtol {self.opts.krylov_rtol:.1e}); "
                "raise krylov_maxiter in level_options, loosen krylov_rtol, or use "
                "linear_solver='minres' if the level may be indefinite",
                level=self.lin.j,
            )
        if self.products.min_curvature <= 0.0:
            raise self.lin.error("its solution")
        return result.x

    def adjoint(self, v: Any) -> Any:
        return self.solve(v)

    def adjoint_full(self, v: Any) -> tuple[Any, None]:
        """``(nu, None)``: a matrix-free level has no multipliers."""
        return self.solve(v), None

    def Lambda(self) -> None:
        return None

    def G_apply(self, u: Any) -> Any:
        if u.ndim == 2:
            return self.xp.stack([self.G_apply(u[:, i]) for i in range(u.shape[1])], axis=1)
        return -self.solve(self.products.B(u))

    def GT_apply(self, v: Any) -> Any:
        if v.ndim == 2:
            return self.xp.stack([self.GT_apply(v[:, i]) for i in range(v.shape[1])], axis=1)
        return -self.products.BT(self.solve(v))

    def G(self) -> Any:
        """``G_j`` column by column: ``s_{j-1}`` Krylov solves (on request only)."""
        if self._G is None:
            xp = self.xp
            s = self.products.own.start
            eye = xp.eye(s, dtype=self.lin.grad_own.dtype, device=device(self.lin.grad_own))
            self._G = self.G_apply(eye)
        return self._G


def operator_linearize(
    nest: Nest, j: int, below: Response, g: Any, mode: str
) -> OperatorLinearization:
    """Level ``j``'s matrix-free linearization at ``below.xs`` with curvature ``mode``."""
    return OperatorLinearization(nest, j, below, g, mode)
