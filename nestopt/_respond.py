"""Solve the lower levels and compose their best-response Jacobians.

Notation of DESIGN.md: ``s_k = d_1 + ... + d_k``; ``R_k`` is the Jacobian
of the responses of levels ``k+1..n`` with respect to ``x_<=k``, of shape
``(D - s_k, s_k)``; ``P_k = [I; R_k]`` is never formed. Level ``j`` is
solved by Newton's method on its reduced objective
``F_j(x_<=j) = f_j(x_<=j, r_>j(x_<=j))`` with

    grad_j F_j = c_j^T grad f_j,           c_j = P_j[:, block j] = [I; R_j[:, j]]
    H_j[j, :]  = c_j^T M_j P_j,            M_j = hess f_j  (- T_{j+1}(x, v) exact)

and at its solution ``G_j = -H_j[j,j]^{-1} H_j[j,<j]`` from one factor of
``H_j[j,j]``, reused for the adjoint that level ``j-1`` needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from array_api_compat import device

from ._errors import (
    ConvergenceError,
    LinearSolveError,
    NestoptError,
    NotPositiveDefiniteError,
)
from ._linalg import Factorization, _NotFactorizable, factorize, host_floats
from ._oracle import Oracles
from ._problem import Problem

__all__ = ["LevelSettings", "Settings", "LowerSolver", "CURVATURES", "split_sensitivity"]

CURVATURES = ("exact", "first_order")


def split_sensitivity(problem: Problem, R: Any) -> dict[int, Any]:
    """``{k: dx_k/dx_1}`` for ``k = 2..n`` from the stacked ``R_1`` (rows of levels 2..n)."""
    d1 = problem.sizes[0]
    return {
        k: R[problem.block(k).start - d1 : problem.block(k).stop - d1, :]
        for k in range(2, problem.n + 1)
    }


@dataclass(frozen=True)
class LevelSettings:
    """Newton settings of one lower level."""

    tol: float
    maxiter: int = 50
    ridge: float = 0.0


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a lower-level solve and its derivatives."""

    curvature: str
    linear_solver: str
    levels: tuple[LevelSettings, ...]
    residual_tol: float
    fd_step: float | None = None
    predict: bool = True


@dataclass
class Node:
    """Levels below ``k`` solved for fixed ``x_<=k``.

    ``xs`` holds every level's variable; ``R`` is ``d r_>k / d x_<=k``
    (``None`` for ``k = n``); ``child`` is level ``k+1``'s solution.
    """

    k: int
    xs: tuple[Any, ...]
    R: Any | None
    child: LevelSolution | None


@dataclass
class LevelSolution:
    """Level ``j`` solved: its factor, its best-response Jacobian, what is below."""

    j: int
    factor: Factorization
    G: Any
    below: Node
    iterations: int


@dataclass
class Counters:
    newton: list[int] = field(default_factory=list)
    solves: list[int] = field(default_factory=list)


class LowerSolver:
    """Nested Newton solves of levels 2..n with their Jacobians."""

    def __init__(self, problem: Problem, oracles: Oracles, settings: Settings) -> None:
        self.problem = problem
        self.oracles = oracles
        self.settings = settings
        self.xp = oracles.xp
        self.counters = Counters([0] * problem.n, [0] * problem.n)

    # -- recursion ------------------------------------------------------------

    def respond(self, k: int, xs: tuple[Any, ...]) -> Node:
        """Solve levels ``k+1..n`` for fixed ``x_<=k``, starting from ``xs``."""
        if k == self.problem.n:
            return Node(k, xs, None, None)
        solution = self._newton(k + 1, xs)
        below = solution.below
        G = solution.G
        if below.R is None:
            R = G
        else:
            s_k = self.problem.ends[k - 1]
            s_j = self.problem.ends[k]
            R = self.xp.concat([G, below.R[:, :s_k] + below.R[:, s_k:s_j] @ G], axis=0)
        return Node(k, below.xs, R, solution)

    def hypergradient(self, node: Node) -> Any:
        """``P_1^T grad f_1`` at a node of level 1."""
        g_full = self.oracles.grad(1, node.xs)
        return self._reduced_grad(1, g_full, node.R)

    # -- one level ------------------------------------------------------------

    def _newton(self, j: int, xs: tuple[Any, ...]) -> LevelSolution:
        xp, problem = self.xp, self.problem
        opts = self.settings.levels[j - 1]
        has_value = problem.levels[j - 1].value is not None
        self.counters.solves[j - 1] += 1
        node = self.respond(j, xs)
        g_full = None
        shifted = False
        for iteration in range(opts.maxiter + 1):
            if g_full is None:
                g_full = self.oracles.grad(j, node.xs)
            grad_j = self._reduced_grad(j, g_full, node.R)
            row = self._reduced_row(j, self._hessian(j, node, g_full), node.R)
            start = problem.offsets[j - 1]
            A = row[:, start:]
            if opts.ridge:
                A = A + opts.ridge * xp.eye(A.shape[0], dtype=A.dtype, device=device(A))
            gnorm = float(xp.max(xp.abs(grad_j)))
            if gnorm <= opts.tol:
                factor = self._factor_at_solution(j, A)
                B = row[:, :start]
                G = -self._solve(factor, B, j)
                self._check_residual(j, A, G, B)
                return LevelSolution(j, factor, G, node, iteration)
            if iteration == opts.maxiter:
                break
            factor, shifted = self._factor_for_step(j, A)
            step = -self._solve(factor, grad_j, j)
            try:
                node, g_full = self._line_search(j, node, step, grad_j, gnorm, has_value)
            except ConvergenceError as exc:
                if shifted:
                    raise self._not_pd_error(
                        j, A, "the last Newton iterate (its line search failed)"
                    ) from exc
                raise
            self.counters.newton[j - 1] += 1
        if shifted:
            # Not converging on a block that needed a shift: non-convexity is the cause.
            raise self._not_pd_error(
                j, A, f"the last Newton iterate (no convergence in {opts.maxiter} iterations)"
            )
        raise ConvergenceError(
            f"{problem.describe(j)}: Newton's method did not converge in {opts.maxiter} "
            f"iteration{'' if opts.maxiter == 1 else 's'} (gradient norm {gnorm:.3e} > tol "
            f"{opts.tol:.1e}); raise maxiter or tol for this level in level_options, or "
            "start closer to its solution",
            level=j,
        )

    def _reduced_grad(self, j: int, g_full: Any, R: Any | None) -> Any:
        block = self.problem.block(j)
        if R is None:
            return g_full[block]
        s_j = self.problem.ends[j - 1]
        return g_full[block] + self.xp.matrix_transpose(R[:, block]) @ g_full[s_j:]

    def _reduced_row(self, j: int, M: Any, R: Any | None) -> Any:
        """``c_j^T M P_j``: the rows of level ``j`` of its reduced Hessian."""
        block = self.problem.block(j)
        if R is None:
            return M[block, :]
        s_j = self.problem.ends[j - 1]
        row = M[block, :] + self.xp.matrix_transpose(R[:, block]) @ M[s_j:, :]
        return row[:, :s_j] + row[:, s_j:] @ R

    def _hessian(self, j: int, node: Node, g_full: Any) -> Any:
        """``hess f_j``, less the response-curvature term in exact mode."""
        M = self.oracles.hess(j, node.xs)
        if self.settings.curvature != "exact" or node.child is None:
            return M
        child = node.child
        below = child.below
        i = j + 1
        if self.problem.levels[i - 1].quadratic:
            return M
        # Adjoint of level j+1 for level j's objective, from the factor already held.
        rhs = self._reduced_grad(i, g_full, below.R)
        nu = self._solve(child.factor, rhs, i)
        xp = self.xp
        s_j = self.problem.ends[j - 1]
        parts = [xp.zeros((s_j,), dtype=nu.dtype, device=device(nu)), nu]
        if below.R is not None:
            parts.append(below.R[:, self.problem.block(i)] @ nu)
        v = xp.concat(parts)
        return M - self._third_order(i, node.xs, v)

    def _third_order(self, i: int, xs: tuple[Any, ...], v: Any) -> Any:
        """``T_i(x, v) = d/dt hess f_i(x + t v)``: the user's oracle or a central difference."""
        if self.oracles.has_hess_dir(i):
            return self.oracles.hess_dir(i, xs, v)
        xp = self.xp
        vmax = float(xp.max(xp.abs(v)))
        if vmax == 0.0:
            return xp.zeros((v.shape[0], v.shape[0]), dtype=v.dtype, device=device(v))
        x = xp.concat(xs)
        eps = float(xp.finfo(v.dtype).eps)
        rel = self.settings.fd_step or eps ** (1.0 / 3.0)
        h = rel * max(1.0, float(xp.max(xp.abs(x)))) / vmax
        plus = self.oracles.hess(i, self._split(x + h * v))
        minus = self.oracles.hess(i, self._split(x - h * v))
        return (plus - minus) / (2.0 * h)

    def _split(self, x: Any) -> tuple[Any, ...]:
        return tuple(x[self.problem.block(k)] for k in range(1, self.problem.n + 1))

    # -- factorizations ---------------------------------------------------------

    def _factor_at_solution(self, j: int, A: Any) -> Factorization:
        method = self.settings.linear_solver
        try:
            return factorize(A, method=method, xp=self.xp)
        except _NotFactorizable as exc:
            if method != "cholesky":
                raise self._singular_error(j, str(exc)) from None
            raise self._not_pd_error(j, A, f"its solution ({exc})") from None

    def _solve(self, factor: Factorization, rhs: Any, j: int) -> Any:
        try:
            return factor.solve(rhs)
        except _NotFactorizable as exc:
            raise self._singular_error(j, str(exc)) from None

    def _singular_error(self, j: int, detail: str) -> NestoptError:
        return LinearSolveError(
            f"{self.problem.describe(j)}: the Hessian block of its own variable is "
            f"{detail} for linear_solver={self.settings.linear_solver!r}; the level is not "
            "strongly convex there. Try ridge= in level_options, or linear_solver='lstsq' "
            "for a least-squares Jacobian",
            level=j,
        )

    def _not_pd_error(self, j: int, A: Any, detail: str) -> NestoptError:
        xp = self.xp
        eigenvalues = xp.linalg.eigvalsh(A)
        smallest = float(xp.min(eigenvalues))
        largest = float(xp.max(eigenvalues))
        return NotPositiveDefiniteError(
            f"{self.problem.describe(j)}: the Hessian block of its own variable is not "
            f"positive definite at {detail} (smallest eigenvalue {smallest:.3e}, "
            f"largest {largest:.3e}). The level is not strongly convex there, "
            "so its best response is not locally unique. Try: ridge= in level_options "
            "to damp it, a different starting point (the point may be a maximum or a "
            "saddle), or check its hess callable",
            level=j,
        )

    def _factor_for_step(self, j: int, A: Any) -> tuple[Factorization, bool]:
        """Factor for a Newton step; shift the diagonal until it is positive definite.

        Away from the solution a level's block may be indefinite; the shifted
        step is still a descent direction, and the solution itself is judged
        by the unshifted block in ``_factor_at_solution``. Also says whether
        a shift was needed.
        """
        xp = self.xp
        method = self.settings.linear_solver
        if method != "cholesky":
            try:
                return factorize(A, method=method, xp=xp), False
            except _NotFactorizable as exc:
                raise self._singular_error(j, str(exc)) from None
        try:
            return factorize(A, method=method, xp=xp), False
        except _NotFactorizable:
            pass
        eye = xp.eye(A.shape[0], dtype=A.dtype, device=device(A))
        scale = max(float(xp.max(xp.abs(xp.linalg.diagonal(A)))), 1.0)
        shift = 1e-3 * scale
        for _ in range(40):
            try:
                return factorize(A + shift * eye, method=method, xp=xp), True
            except _NotFactorizable:
                shift *= 10.0
        raise _NotFactorizable("no diagonal shift made the block positive definite")

    def _check_residual(self, j: int, A: Any, X: Any, B: Any) -> None:
        """Probe ``A X = -B`` along one vector: cheap, and catches failed solves."""
        if X.shape[1] == 0:
            return
        xp = self.xp
        w = xp.ones((X.shape[1],), dtype=X.dtype, device=device(X))
        xw = X @ w
        bw = B @ w
        axw = A @ xw
        # Relative to ||A X w|| + ||B w||: cheap, and enough whenever it passes.
        residual, norm_ax, norm_b = host_floats(
            xp,
            xp.linalg.vector_norm(axw + bw),
            xp.linalg.vector_norm(axw),
            xp.linalg.vector_norm(bw),
        )
        tol = self.settings.residual_tol
        if residual <= tol * (norm_ax + norm_b):
            return
        # Cancellation inside A X w + B w can make that scale tiny; the bound of a
        # backward-stable solve, ||A|| ||X|| ||w|| + ||B|| ||w||, cannot cancel.
        norm_a, norm_x, norm_bm, norm_w = host_floats(
            xp,
            xp.linalg.matrix_norm(A),
            xp.linalg.matrix_norm(X),
            xp.linalg.matrix_norm(B),
            xp.linalg.vector_norm(w),
        )
        scale = (norm_a * norm_x + norm_bm) * norm_w
        if not residual <= self.settings.residual_tol * max(scale, 1e-300):
            raise LinearSolveError(
                f"{self.problem.describe(j)}: the linear solve for its best-response "
                f"Jacobian left a relative residual {residual / max(scale, 1e-300):.3e} "
                f"(tolerance {self.settings.residual_tol:.1e}) with linear_solver="
                f"{self.settings.linear_solver!r}; the block is singular or badly "
                "conditioned. Try ridge= in level_options, or linear_solver='cholesky' "
                "if the level is strongly convex",
                level=j,
            )

    # -- line search ------------------------------------------------------------

    def _line_search(
        self, j: int, node: Node, step: Any, grad_j: Any, gnorm: float, has_value: bool
    ) -> tuple[Node, Any]:
        """Backtrack along ``step``; lower levels start from their predicted response.

        With ``predict=False`` they start where they were (a plain warm start),
        which can put a level with several minima on a stationary point that
        is not one: the first-order prediction keeps it on its branch.
        """
        xp = self.xp
        xs = node.xs
        predicted_below = None
        if node.R is not None and self.settings.predict:
            predicted_below = node.R[:, self.problem.block(j)] @ step
        slope = float(xp.sum(grad_j * step))
        if not math.isfinite(slope):
            raise self._singular_error(
                j, "singular or badly conditioned (the Newton step is not finite)"
            )
        f0 = float(self.oracles.value(j, xs)) if has_value else None
        t = 1.0
        last_error: NestoptError | None = None
        for _ in range(30):
            trial = self._moved(
                j, xs, t * step, None if predicted_below is None else t * predicted_below
            )
            try:
                trial_node = self.respond(j, trial)
                g_full = self.oracles.grad(j, trial_node.xs)
            except (ConvergenceError, NotPositiveDefiniteError) as exc:
                last_error = exc
                t *= 0.5
                continue
            # Near the solution the objective stops resolving decreases (rounding),
            # while the gradient norm still does: either test accepts the step.
            g1 = float(xp.max(xp.abs(self._reduced_grad(j, g_full, trial_node.R))))
            accept = g1 <= (1.0 - 1e-4 * t) * gnorm
            if has_value and not accept:
                f1 = float(self.oracles.value(j, trial_node.xs))
                accept = f1 <= f0 + 1e-4 * t * slope
            if accept:
                return trial_node, g_full
            t *= 0.5
        if last_error is not None:
            raise last_error
        raise ConvergenceError(
            f"{self.problem.describe(j)}: the Newton line search found no decrease "
            f"(gradient norm {gnorm:.3e}); the level may be badly scaled or its "
            "derivatives inconsistent: run nestopt.check_derivatives on it",
            level=j,
        )

    def _moved(self, j: int, xs: tuple[Any, ...], dx: Any, dbelow: Any | None) -> tuple[Any, ...]:
        out = list(xs)
        out[j - 1] = xs[j - 1] + dx
        if dbelow is not None:
            s_j = self.problem.ends[j - 1]
            for k in range(j + 1, self.problem.n + 1):
                block = self.problem.block(k)
                out[k - 1] = xs[k - 1] + dbelow[block.start - s_j : block.stop - s_j]
        return tuple(out)

    def predict(self, node: Node, x1: Any) -> tuple[Any, ...]:
        """Start for levels 2..n when level 1 moves to ``x1``: ``x_>1 + R_1 dx``."""
        dx = x1 - node.xs[0]
        out = list(self._moved(1, node.xs, dx, node.R @ dx))
        out[0] = x1
        return tuple(out)
