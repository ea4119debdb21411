"""A large level with a box: projected Newton on its free variables, by products (issue 24).

Level ``j`` with bounds ``lb <= x_j <= ub`` and no other rows, whose Hessian
comes as products (``hvp``) or as a sparse matrix (used through products: no
matrix of the level's size is formed). Projected Newton (Bertsekas, SIAM J.
Control Optim. 1982): at each iterate the variables within ``eps_k`` of a
bound that their gradient pushes against (``eps_k`` the projected gradient's
size) are held there, and the others take a Newton step on their block,
``A_FF p_F = -g_F`` by conjugate gradients on the operator restricted to them
(``u -> m * A (m * u)`` with ``m`` the free variables' 0/1 mask); the step is
projected back onto the box and backtracked (Armijo on ``F_j`` along the
projection arc, or a decrease of the projected gradient for a level without
``value``). Newton's local convergence holds once the active set is found,
which projection does in finitely many steps where the solution is strictly
complementary.

At the solution the variables at a bound are the active rows (multiplier
``-g_i``: DESIGN's sign); one with a zero multiplier is weakly active and, as
on a dense level, released (the one-sided Jacobian of the piece where it is
inactive), and reported. The Jacobian system is the matrix-free one on the
restricted operator: ``G_F = -A_FF^{-1} B_F`` and ``G_X = 0`` (the box does not
move with the upper variables), with the same curvature evidence (Lanczos
matrices of its CG runs and a probe on the free subspace) as an unconstrained
matrix-free level, so a free block that is not positive definite raises.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import device

from ..._backend.host import host_floats, max_abs, to_numpy
from ..._errors import ConvergenceError, NestoptError, NotPositiveDefiniteError
from ..._levels.rows import ConstraintRows
from ..matrix_free import OperatorLinearization, OperatorSystem
from ..nest import LevelSolution, Nest, Response
from .active_rows import ConstrainedSolution

__all__ = [
    "BoxSystem",
    "box_bounds",
    "box_result",
    "box_solve",
    "large_box_level",
    "masked_system",
    "point_at",
    "system_at",
    "solve_large_box_level",
    "solve_on_mask",
]

# Weakly active: at its bound with a multiplier below this fraction of the gradient's scale.
WEAK = 1e-10
# Bertsekas's eps-active set, relative to the variable's scale: variables this near a
# bound (and pushed against it) are held on it. Small: from a warm start, a free variable
# near its bound must not be pushed onto it (1e-3 took 3x the steps on nnls(10^5)).
NEAR = 1e-9


def large_box_level(nest: Nest, j: int, rows: ConstraintRows) -> bool:
    """Whether level ``j`` takes this path (a box, linear rows or both: `large_rows` checks
    the rows) with ``hvp`` only, or a Hessian already seen to be sparse in this run."""
    level = nest.problem.levels[j - 1]
    if rows.box is None and not rows.general:
        return False
    return level.hess is None or j in nest.sparse_levels


class _Masked:
    """A level's products restricted to its free variables (``mask`` 1 there, 0 elsewhere)."""

    def __init__(self, products: Any, mask: Any) -> None:
        self.inner, self.mask = products, mask
        self.watch, self.own = products.watch, products.own

    def A(self, u: Any) -> Any:
        return self.mask * self.inner.A(self.mask * u)

    def B(self, u: Any) -> Any:
        return self.mask * self.inner.B(u)

    def BT(self, v: Any) -> Any:
        return self.inner.BT(self.mask * v)


class BoxSystem(OperatorSystem):
    """`OperatorSystem` on the free variables: right-hand sides and starts restricted."""

    def solve(self, rhs: Any, *, x0: Any = None) -> Any:
        mask = self.products.mask
        if rhs.ndim == 2:
            return super().solve(rhs * mask[:, None])
        return super().solve(rhs * mask, x0=None if x0 is None else x0 * mask)


class _Point:
    """Level ``j`` at one ``x_j`` (levels below solved): value, reduced gradient, products."""

    def __init__(self, nest: Nest, j: int, xs: tuple[Any, ...], mode: str) -> None:
        self.below: Response = nest.respond(j, xs)
        oracles = nest.oracles
        self.g = oracles.grad(j, self.below.xs)
        self.fun = float(oracles.value(j, self.below.xs)) if oracles.has(j, "value") else None
        self.lin = OperatorLinearization(nest, j, self.below, self.g, mode)
        self.x = self.below.xs[j - 1]
        self.grad_own = self.lin.grad_own
        self.products = self.lin.products  # the whole own block (a step may mask lin's)


def solve_large_box_level(
    nest: Nest, j: int, xs: tuple[Any, ...], rows: ConstraintRows, opts: Any
) -> LevelSolution:
    """Level ``j`` (a box, products only) solved for fixed ``x_<j`` from ``xs``."""
    lower, upper = box_bounds(nest, j, rows)
    point, first_gnorm, iterations = box_solve(nest, j, xs, lower, upper, opts)
    system, lam, active, weak = box_result(nest, j, point, lower, upper, first_gnorm)
    labels = rows.labels
    solution = ConstrainedSolution(
        lam, active.copy(), labels, [labels[i] for i in np.flatnonzero(weak)], rows, weak
    )
    return LevelSolution(j, point.below, system, iterations, solution)


def box_bounds(nest: Nest, j: int, rows: ConstraintRows) -> tuple[Any, Any]:
    """The level's box as backend arrays (infinite where it has none)."""
    if rows.box is not None:
        return rows.box
    xp, target = nest.xp, rows.target
    d = nest.problem.sizes[j - 1]
    inf = xp.full((d,), math.inf, dtype=target.dtype, device=target.device)
    return -inf, inf


def box_solve(
    nest: Nest, j: int, xs: tuple[Any, ...], lower: Any, upper: Any, opts: Any
) -> tuple[_Point, float, int]:
    """Projected Newton on level ``j``'s box: the solution, the first gradient's size and the
    iterations."""
    xp, text = nest.xp, nest.problem.describe(j)
    newton_mode = nest.config.newton_mode(j)
    start = list(xs)
    start[j - 1] = xp.minimum(xp.maximum(xs[j - 1], lower), upper)
    point = _Point(nest, j, tuple(start), newton_mode)
    eps = float(xp.finfo(point.g.dtype).eps)
    scale = max_abs(xp, point.x)
    first_gnorm = None
    previous = math.inf
    for iteration in range(opts.maxiter + 1):
        nest.check_time()
        x, g = point.x, point.grad_own
        projected = x - xp.minimum(xp.maximum(x - g, lower), upper)
        pg, gnorm = host_floats(xp, xp.max(xp.abs(projected)), xp.max(xp.abs(g)))
        first_gnorm = gnorm if first_gnorm is None else first_gnorm
        # Bertsekas's eps-active set: near a bound, pushed against it, held on it.
        near = min(pg, NEAR * max(scale, 1.0))
        at_lower = (x - lower <= near) & (g > 0)
        at_upper = (upper - x <= near) & (g < 0)
        held = at_lower | at_upper
        mask = xp.astype(~held, g.dtype)
        forcing = min(0.1, pg / max(first_gnorm, 1e-300)) if iteration else 0.5
        step = _free_step(nest, j, point, mask, forcing, opts)
        onto = xp.where(at_lower, lower - x, xp.where(at_upper, upper - x, xp.zeros_like(x)))
        direction = step + onto
        size = host_floats(xp, xp.max(xp.abs(direction)))[0] if x.shape[0] else 0.0
        scale = max(scale, max_abs(xp, x), size if iteration == 0 else 0.0)
        stalled = size >= previous and size <= math.sqrt(eps) * scale
        if size <= opts.tol * scale or stalled:
            return point, first_gnorm, iteration
        if iteration == opts.maxiter:
            break
        point = _search(nest, j, point, direction, lower, upper, pg, text)
        nest.stats.newton[j - 1] += 1
        previous = size
    raise ConvergenceError(
        f"{text}: projected Newton on its box did not converge in {opts.maxiter} iterations "
        f"(projected gradient {pg:.3e}); raise maxiter for this level in level_options, or "
        "start closer to its solution",
        level=j,
    )


def _free_step(nest: Nest, j: int, point: _Point, mask: Any, forcing: float, opts: Any) -> Any:
    """``p_F = -A_FF^{-1} g_F`` by CG on the free variables (zero on the held ones); the
    steepest descent step ``-g_F`` where CG meets non-positive curvature."""
    lin = point.lin
    lin.products = _Masked(point.products, mask)
    rhs = point.grad_own * mask
    rtol = max(min(forcing, 0.5), opts.krylov_rtol)
    result = lin._krylov(rhs, rtol, opts, derivative=False)
    if lin.products.watch.failed or (result.iterations and not float(result.x @ rhs) > 0):
        return -rhs  # not a strict minimum on the free block here: descend, Newton later
    return -result.x


def _search(
    nest: Nest, j: int, point: _Point, direction: Any, lower: Any, upper: Any, pg: float,
    text: str,
) -> _Point:  # fmt: skip
    """Backtrack along the projection arc ``P(x + t d)``: a decrease of the projected
    gradient, or Armijo on ``F_j`` (with a value)."""
    xp = nest.xp
    x, g = point.x, point.grad_own
    last: NestoptError | None = None
    t = 1.0
    for _ in range(30):
        trial_x = xp.minimum(xp.maximum(x + t * direction, lower), upper)
        trial = list(point.below.xs)
        trial[j - 1] = trial_x
        try:
            moved = _Point(nest, j, tuple(trial), point.lin.mode)
        except (ConvergenceError, NotPositiveDefiniteError) as exc:
            last = exc
            t *= 0.5
            continue
        # Near the solution the objective stops resolving decreases (rounding) while the
        # projected gradient still does: either test accepts the step.
        y, h = moved.x, moved.grad_own
        new_pg = float(xp.max(xp.abs(y - xp.minimum(xp.maximum(y - h, lower), upper))))
        if new_pg <= (1.0 - 1e-4 * t) * pg:
            return moved
        if point.fun is not None and moved.fun is not None:
            if moved.fun <= point.fun + 1e-4 * float(g @ (trial_x - x)):
                return moved
        t *= 0.5
    raise last or ConvergenceError(
        f"{text}: the projected Newton line search found no decrease (projected gradient "
        f"{pg:.3e}); check the level's derivatives with nestopt.check_derivatives",
        level=j,
    )


def box_result(
    nest: Nest, j: int, point: _Point, lower: Any, upper: Any, first_gnorm: float
) -> tuple[BoxSystem, Any, Any, Any]:
    """At the solution: the Jacobian system on the free variables, and per variable (host)
    the box multiplier (DESIGN's sign), whether its bound is active, whether weakly."""
    xp = nest.xp
    mode = nest.config.curvature_mode(j)
    eps = float(xp.finfo(point.g.dtype).eps)
    x, g = point.x, point.grad_own
    host_x = np.asarray(to_numpy(x), dtype=float)
    host_g = np.asarray(to_numpy(g), dtype=float)
    lo = np.asarray(to_numpy(lower), dtype=float)
    hi = np.asarray(to_numpy(upper), dtype=float)
    at_lower, at_upper = host_x <= lo, host_x >= hi
    at_bound = at_lower | at_upper
    # The multipliers' scale: the gradient's, or curvature times size (|A x|: one product),
    # as a dense level's rows are judged; the warm start's first gradient may be tiny.
    curvature = max_abs(xp, point.products.A(x))
    size = max(float(np.max(np.abs(host_g), initial=0.0)), first_gnorm, curvature, 1e-300)
    # A bound whose gradient points inward was reached to within the solve's tolerance
    # (the response sits that near it): released, as weakly active, never held with a
    # multiplier of the wrong sign.
    inward = (at_lower & (host_g < 0)) | (at_upper & (host_g > 0))
    weak = at_bound & ((np.abs(host_g) <= WEAK * size) | inward)
    if np.any(inward & (np.abs(host_g) > math.sqrt(eps) * size)):
        raise ConvergenceError(
            f"{nest.problem.describe(j)}: projected Newton stopped with a variable on its bound "
            "that its gradient pulls inward; tighten tol for this level in level_options",
            level=j,
        )
    active = at_bound & ~weak
    return system_at(nest, j, point, active, mode), np.where(active, -host_g, 0.0), active, weak


def masked_system(nest: Nest, j: int, xs: tuple[Any, ...], held: Any, mode: str) -> BoxSystem:
    """The Jacobian system of level ``j`` at ``xs`` with the variables ``held`` (host bool)
    on their bounds and the others free (a piece at a kink, `box_pieces`)."""
    return system_at(nest, j, point_at(nest, j, xs, mode), held, mode)


def point_at(nest: Nest, j: int, xs: tuple[Any, ...], mode: str) -> _Point:
    """Level ``j`` evaluated at ``xs`` (the levels below solved)."""
    return _Point(nest, j, xs, mode)


def system_at(nest: Nest, j: int, point: _Point, held: Any, mode: str) -> BoxSystem:
    """The operator system at ``point`` on the variables not ``held`` (host bool)."""
    g = point.grad_own
    free = nest.xp.asarray(np.where(held, 0.0, 1.0), dtype=g.dtype, device=device(g))
    lin = OperatorLinearization(nest, j, point.below, point.g, mode)  # fresh evidence
    lin.products = _Masked(lin.products, free)
    lin.grad_own = g * free
    return BoxSystem(lin, nest.config.levels[j - 1])


def solve_on_mask(
    nest: Nest, j: int, xs: tuple[Any, ...], held: Any, mode: str, maxiter: int
) -> Response:
    """Level ``j`` solved on its free variables only (``held``, host bool, stay where they
    are): Newton with CG to the level's ``krylov_rtol``, the smooth piece of its response
    that keeps exactly these variables on their bounds."""
    xp = nest.xp
    opts = nest.config.levels[j - 1]
    point = _Point(nest, j, xs, mode)
    g = point.grad_own
    free = xp.asarray(np.where(held, 0.0, 1.0), dtype=g.dtype, device=device(g))
    scale = max_abs(xp, point.x)
    eps = float(xp.finfo(g.dtype).eps)
    for _ in range(maxiter + 1):
        lin = point.lin
        lin.products = _Masked(point.products, free)
        result = lin._krylov(point.grad_own * free, opts.krylov_rtol, opts, derivative=True)
        if lin.products.watch.failed:
            raise lin.error("a piece of its response")
        size = max_abs(xp, result.x)
        scale = max(scale, max_abs(xp, point.x))
        if size <= max(opts.tol, 100.0 * eps) * max(scale, 1.0):
            return point.below
        trial = list(point.below.xs)
        trial[j - 1] = point.x - result.x
        point = _Point(nest, j, tuple(trial), mode)
    raise ConvergenceError(
        f"{nest.problem.describe(j)}: Newton on a piece of its response did not converge",
        level=j,
    )
