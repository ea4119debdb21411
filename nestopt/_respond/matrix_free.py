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
level's ``krylov_rtol``, the adjoint solves start from the level's last
adjoint in the run (scaled to the new right-hand side). Every CG run's
Lanczos matrix, and a short Lanczos probe when the runs at a solution were
short, are tested for curvature at or below zero (`matrix_free_checks`): that
is how a matrix-free level that is not a strict minimum is caught.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import device

from .._derivatives.curvature import term_is_zero
from .._derivatives.curvature_terms import CurvatureTerm
from .._errors import LinearSolveError, NotPositiveDefiniteError
from .._linalg.cg import CGRun, cg
from .._linalg.krylov import krylov_solve
from .matrix_free_checks import CurvatureWatch, check_hvp_symmetry
from .nest import Nest, Response

__all__ = ["LevelProducts", "OperatorLinearization", "OperatorSystem", "operator_linearize"]


# Relative residual of the solves that only predict a start for the levels below
# (``x_>k + R_k dx``): their Newton solves correct it, a tighter solve is wasted.
PREDICTION_RTOL = 1e-6


class LevelProducts:
    """``M_j w`` and the maps through ``c_j`` and ``P_j`` at one point of level ``j``."""

    def __init__(self, nest: Nest, j: int, below: Response, g: Any, mode: str) -> None:
        self.nest, self.j, self.below = nest, j, below
        self.xp = nest.xp
        self.own = nest.problem.block(j)
        self.xs = below.xs
        exact = mode == "exact" and below.top is not None and not term_is_zero(nest.problem, j)
        self.term = CurvatureTerm(nest, j, below, g) if exact else None
        own = self.own
        self.watch = CurvatureWatch(float(self.xp.finfo(g.dtype).eps), own.stop - own.start)
        self._largest = 0.0  # the largest Rayleigh quotient A_watched has seen
        self._matrix: Any = None
        self._zeros: Any = None

    def M(self, w: Any, *, finite_later: bool = False) -> Any:
        oracles = self.nest.oracles
        if oracles.has(self.j, "hvp"):
            out = oracles.hvp(self.j, self.xs, w, finite_later=finite_later)
        else:  # a level with a (typically sparse) hess: asked for once per point
            if self._matrix is None:
                self._matrix = self._hessian()
            out = self._matrix @ w
        if self.term is not None:
            out = out - self.term.apply(w)
        return out

    def _hessian(self) -> Any:
        """``hess f_j`` here; a declared quadratic level's once per run (it is constant)."""
        nest, j = self.nest, self.j
        if not nest.problem.levels[j - 1].quadratic:
            return nest.oracles.hess(j, self.xs)
        if j not in nest.constant_hessians:
            nest.constant_hessians[j] = nest.oracles.hess(j, self.xs)
        return nest.constant_hessians[j]

    def reduced(self, z: Any, *, finite_later: bool = False) -> Any:
        """``H_j z``, ``H_j = P_j^T M_j P_j + S_j`` (the exact reduced Hessian in exact mode)."""
        out = self.below.pull(self.M(self.below.lift(z), finite_later=finite_later))
        if self.term is not None:
            extra = self.term.extra_apply(z, self.below.pull)
            if extra is not None:
                out = out - extra
        return out

    def own_vector(self, u: Any) -> Any:
        """``(0, u)``: a move of level ``j``'s own variable in the levels ``<= j``."""
        if self.own.start == 0:
            return u
        if self._zeros is None:  # the upper variables' zeros, made once per point
            self._zeros = self.xp.zeros((self.own.start,), dtype=u.dtype, device=device(u))
        return self.xp.concat([self._zeros, u])

    def A(self, u: Any) -> Any:
        """``H_j[j, j] u``: one product with the level's Hessian (and the responses below)."""
        return self.reduced(self.own_vector(u))[self.own]

    def A_in_cg(self, w: Any) -> Any:
        """``A u`` from ``w = (0, u)`` (`own_vector`; CG keeps its direction so), for CG,
        which tests ``u^T A u`` for NaN and Inf itself (`check_product`)."""
        return self.reduced(w, finite_later=True)[self.own]

    def check_product(self, q: Any) -> None:
        """Raise naming the level's ``hvp`` if the product ``q`` holds NaN or Inf."""
        self.nest.oracles.check_hvp_finite(self.j, self.xs, q)

    def A_watched(self, u: Any) -> Any:
        """``A u``, its Rayleigh quotient recorded (MINRES, which reports no Lanczos matrix)."""
        out = self.A(u)
        curvature = float(u @ out) / max(float(u @ u), 1e-300)
        self._largest = max(self._largest, curvature)
        self.watch.record_curvature(curvature, self._largest)
        return out

    def B(self, u: Any) -> Any:
        xp = self.xp
        d_j = self.own.stop - self.own.start
        z = xp.concat([u, xp.zeros((d_j,), dtype=u.dtype, device=device(u))])
        return self.reduced(z)[self.own]

    def BT(self, v: Any) -> Any:
        return self.reduced(self.own_vector(v))[: self.own.start]


class OperatorLinearization:
    """Level ``j`` at one point, matrix-free: the Newton step by CG, the system at the solution."""

    def __init__(self, nest: Nest, j: int, below: Response, g: Any, mode: str) -> None:
        self.nest, self.j, self.mode, self.below = nest, j, mode, below
        self.text = nest.problem.describe(j)
        self.products: Any = LevelProducts(nest, j, below, g, mode)
        own = nest.problem.block(j)
        self.grad_own = g[own] if below.top is None else g[own] + below.vjp(g[own.stop :])[own]
        self.method = nest.config.levels[j - 1].linear_solver
        self.shifted = False
        self.A = None
        # The last true-residual product of a derivative solve: (x, H_j (0, x)).
        self.last_product: tuple[Any, Any] | None = None

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
        if self.products.watch.failed or not float(result.x @ self.grad_own) > 0:
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
        """Not a strict minimum at ``where`` (an asymmetric ``hvp`` is reported as such first)."""
        check_hvp_symmetry(self.nest, self.j, self.below.xs)
        curvature = self.products.watch.worst
        if curvature is None:
            found = "CG returned a step that is not a descent direction"
        elif curvature <= 0.0:
            found = f"a Krylov direction u has curvature u^T A u / u^T u = {curvature:.3e}"
        else:
            found = (
                f"its smallest Lanczos (Ritz) value {curvature:.3e} is at rounding level, "
                "64 eps times its largest or less"
            )
        return NotPositiveDefiniteError(
            f"{self.text}: its reduced Hessian (matrix-free) is not positive definite at "
            f"{where}: {found}. The level is not strongly convex there (a saddle, a "
            "maximum or a flat direction), so its best response is not locally unique. Try: "
            "a different starting point for it, ridge-like terms in its objective, or check "
            "its hvp callable with nestopt.check_derivatives",
            level=self.j,
        )

    def system(self) -> OperatorSystem:
        return OperatorSystem(self, self.nest.config.levels[self.j - 1])

    def certify(self) -> None:
        """Raise unless the evidence at this point says a strict minimum (`matrix_free_checks`).

        Called after the first derivative solve at the solution, whose CG run
        usually settles it; a short Lanczos probe where every run was short.
        """
        watch = self.products.watch
        if not watch.settled:
            own = self.products.own
            watch.probe(
                self.products.A, own.stop - own.start, self.grad_own, self.nest.xp, self.j,
                mask=getattr(self.products, "mask", None),
            )  # fmt: skip
        if watch.failed:
            raise self.error("its solution")
        check_hvp_symmetry(self.nest, self.j, self.below.xs)

    def _krylov(self, rhs: Any, rtol: float, opts: Any, *, derivative: bool, x0: Any = None) -> Any:
        xp = self.nest.xp
        result: Any  # a KrylovResult (MINRES) or a CGRun: both report x, converged, residual
        if self.method == "minres":
            result = krylov_solve(
                self.products.A_watched, rhs, method="minres", rtol=rtol,
                maxiter=opts.krylov_maxiter, xp=xp,
            )  # fmt: skip
        else:
            result = _cg_solve(self, rhs, rtol, opts.krylov_maxiter, x0, derivative=derivative)
        self.nest.stats.record_krylov(self.j, result, derivative=derivative)
        return result


def _cg_solve(
    lin: OperatorLinearization, rhs: Any, rtol: float, maxiter: int, x0: Any, *, derivative: bool
) -> CGRun:
    """CG on level ``lin.j``'s block; for the derivatives, checked by its true residual.

    A Newton step trusts CG's recursive residual (the next iterate's gradient
    tests it); a derivative solve recomputes ``|b - A x|`` with one product and
    restarts from ``x`` only while that misses ``rtol`` and still improves.
    """
    xp = lin.nest.xp
    products = lin.products
    A = products.A
    watch = products.watch
    norm_b = float(xp.linalg.vector_norm(rhs))
    if not norm_b > 0.0:
        return CGRun(xp.zeros_like(rhs), 0, 0.0 if norm_b == 0.0 else math.nan)
    run = _cg(products, rhs, rtol, maxiter, xp, x0, norm_b)
    watch.record(run)
    if not derivative or run.negative is not None:
        return run
    iterations, best = run.iterations, math.inf
    while True:
        # The whole reduced product H_j (0, x): its own rows give A x for the true residual,
        # its upper rows B^T x, the cross product an adjoint is solved for (kept for it).
        if isinstance(products, LevelProducts):
            full = products.reduced(products.own_vector(run.x))
            lin.last_product = (run.x, full)
            product = full[products.own]
        else:  # a masked block (bounds held): its products are not the level's whole rows
            product = A(run.x)
        residual = float(xp.linalg.vector_norm(rhs - product)) / norm_b
        if residual <= rtol or iterations >= maxiter or not residual < 0.5 * best:
            break  # met, out of iterations, or stagnating at rounding
        best = residual
        run = _cg(products, rhs, rtol, maxiter - iterations, xp, run.x, norm_b)
        watch.record(run)
        iterations += run.iterations
        if run.negative is not None:
            break
    run.iterations, run.residual = iterations, residual
    return run


def _cg(
    products: Any, rhs: Any, rtol: float, maxiter: int, xp: Any, x0: Any, norm_b: float
) -> CGRun:
    """CG on a level's block; a whole level's products are tested for NaN and Inf through
    CG's own ``p^T A p`` (no reduction of their own), a masked block's as they come."""
    if isinstance(products, LevelProducts):
        return cg(
            products.A_in_cg, rhs, rtol=rtol, maxiter=maxiter, xp=xp, x0=x0, norm_b=norm_b,
            check_product=products.check_product, lead=products.own.start,
        )  # fmt: skip
    return cg(products.A, rhs, rtol=rtol, maxiter=maxiter, xp=xp, x0=x0, norm_b=norm_b)


class OperatorSystem:
    """Solves with ``A`` and products with ``B`` of a matrix-free level at its solution."""

    def __init__(self, lin: OperatorLinearization, opts: Any) -> None:
        self.lin, self.opts = lin, opts
        self.products = lin.products
        self.xp = lin.nest.xp
        self._G: Any = None
        self._certified = False

    def solve(self, rhs: Any, *, x0: Any = None) -> Any:
        if rhs.ndim == 2:
            columns = [self.solve(rhs[:, i]) for i in range(rhs.shape[1])]
            return self.xp.stack(columns, axis=1) if columns else rhs
        predicting = self.lin.nest.predicting and self._certified
        rtol = max(self.opts.krylov_rtol, PREDICTION_RTOL) if predicting else self.opts.krylov_rtol
        # A prediction is no derivative: its residual is not reported, nor checked.
        result = self.lin._krylov(rhs, rtol, self.opts, derivative=not predicting, x0=x0)
        if not self._certified:
            self.lin.certify()  # before any failure of the solve is blamed on the tolerance
            self._certified = True
        elif self.products.watch.failed:
            raise self.lin.error("its solution")
        if predicting and result.residual <= 0.5:
            return result.x  # a start for the levels below: their Newton solves correct it
        converged = math.isfinite(result.residual) and result.residual <= 10.0 * max(
            self.opts.krylov_rtol, 0.0
        )
        eps = float(self.xp.finfo(rhs.dtype).eps)
        if not converged and result.residual <= math.sqrt(eps):
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
        elif not converged:
            kind = getattr(result, "kind", "cg")
            raise LinearSolveError(
                f"{self.lin.text}: the Krylov solve ({kind}) for its best-response "
                f"derivatives reached a relative residual {result.residual:.3e} after "
                f"{result.iterations} iterations (krylov_rtol {self.opts.krylov_rtol:.1e}); "
                "raise krylov_maxiter in level_options, loosen krylov_rtol, or use "
                "linear_solver='minres' if the level may be indefinite",
                level=self.lin.j,
            )
        return result.x

    def adjoint(self, v: Any) -> Any:
        """``A^{-1} v``, started from the level's last adjoint in this run (DESIGN 8)."""
        last = self.lin.nest.adjoints
        out = self.solve(v, x0=last.get(self.lin.j))
        last[self.lin.j] = out
        return out

    def adjoint_full(self, v: Any) -> tuple[Any, None]:
        """``(nu, None)``: a matrix-free level has no multipliers."""
        return self.adjoint(v), None

    def Lambda(self) -> None:
        return None

    def G_apply(self, u: Any) -> Any:
        if u.ndim == 2:
            return self.xp.stack([self.G_apply(u[:, i]) for i in range(u.shape[1])], axis=1)
        return -self.solve(self.products.B(u))

    def GT_apply(self, v: Any) -> Any:
        if v.ndim == 2:
            return self.xp.stack([self.GT_apply(v[:, i]) for i in range(v.shape[1])], axis=1)
        nu = self.adjoint(v)
        last = self.lin.last_product
        if last is not None and last[0] is nu:  # its residual's product holds B^T nu
            return -last[1][: self.products.own.start]
        return -self.products.BT(nu)

    def G_columns(self, cols: slice) -> Any:
        """``G_j[:, cols]``, from ``G_j`` formed column by column."""
        return self.G()[:, cols]

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
