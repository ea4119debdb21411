"""Newton's method on one level's reduced objective, with its line search.

Level ``j`` minimizes ``F_j(x_<=j) = f_j(x_<=j, r_>j(x_<=j))`` over ``x_j``
with ``grad_j F_j = c_j^T grad f_j`` and the reduced block ``H_j[j, j]``
(``_linearize``). It stops when the Newton step is at most ``tol`` times the
level's own length scale, a test that scaling ``f_j`` cannot change; a step
that stops shrinking at rounding ends the solve with the precision reached.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend.host import max_abs
from .._errors import (
    ConvergenceError,
    NestoptError,
    NotPositiveDefiniteError,
    PrecisionWarning,
    singular_block,
    warn_user,
)
from .constrained.solve import solve_constrained_level
from .linearize import Linearization, linearize
from .matrix_free import OperatorLinearization, operator_linearize
from .nest import LevelSolution, Nest, Response

__all__ = ["solve_level"]


class _NoDecrease(Exception):
    """Internal: the line search found no acceptable step."""

    def __init__(self, error: NestoptError | None) -> None:
        super().__init__()
        self.error = error


def solve_level(nest: Nest, j: int, xs: tuple[Any, ...], settings: Any = None) -> LevelSolution:
    """Solve level ``j`` for fixed ``x_<j``, from ``xs``; its Jacobian system at the solution.

    ``settings`` replaces the run's settings of level ``j`` for this solve (the top level
    solved by Newton stops on ``solve``'s ``maxiter`` and ``xtol``)."""
    problem, xp, config = nest.problem, nest.xp, nest.config
    if problem.levels[j - 1].constrained:
        return solve_constrained_level(nest, j, xs, settings)
    opts = settings or config.levels[j - 1]
    nest.stats.solves[j - 1] += 1
    below = nest.respond(j, xs)
    g = nest.oracles.grad(j, below.xs)
    sqrt_eps = config.residual_tol  # sqrt(eps)
    jacobian_mode, newton_mode = config.modes[j - 1]
    scale = max_abs(xp, xs[j - 1])
    previous = math.inf
    lin: Any = None
    first_gnorm = None
    amplification = None  # |step| / |gradient| of the last step: how A^{-1} scales
    forcing = 0.5  # the first step (or the test at a solved point) needs little accuracy
    gnorm = math.nan
    if newton_mode != jacobian_mode:
        # Newton steps take the better curvature, the Jacobian another: where the start is
        # already a solution (a re-solve at a solved point), the Jacobian's own linearization
        # passes the same step test, and the steps' linearization is never needed.
        lin = _solved_at_start(nest, j, below, g, jacobian_mode, opts.tol, scale)
        if lin is not None:
            return LevelSolution(j, below, lin.system(), 0)
    for iteration in range(opts.maxiter + 1):
        nest.check_time()
        lin = make_linearization(nest, j, below, g, newton_mode, for_step=True)
        if first_gnorm is not None:
            forcing = _forcing(xp, lin, first_gnorm, amplification, opts.tol, scale)
        step = -lin.solve_step(forcing)
        size = max_abs(xp, step)
        if iteration == 0:
            scale = max(scale, size)
        if below.xs[j - 1] is not xs[j - 1]:  # moved: its size may have grown
            scale = max(scale, max_abs(xp, below.xs[j - 1]))
        stalled = size >= previous and size <= sqrt_eps * scale
        if size <= opts.tol * scale or stalled:
            return _finish(nest, j, below, g, lin, iteration, size / max(scale, 1e-300), opts.tol)
        gnorm = max_abs(xp, lin.grad_own)  # (not needed where the first test passes)
        if first_gnorm is None:
            first_gnorm = gnorm
        if gnorm > 0.0 and not lin.shifted:
            amplification = size / gnorm
        if iteration == opts.maxiter:
            break
        try:
            below, g = _line_search(nest, j, below, g, lin, step, gnorm)
        except _NoDecrease as exc:
            if not lin.shifted and size <= sqrt_eps * scale:
                return _finish(
                    nest, j, below, g, lin, iteration, size / max(scale, 1e-300), opts.tol
                )
            raise _no_decrease(
                exc, lin, problem.describe(j), j, gnorm, size / max(scale, 1e-300)
            ) from None
        nest.stats.newton[j - 1] += 1
        previous = size
    assert lin is not None
    raise _not_converged(lin, problem.describe(j), j, opts, gnorm, size / max(scale, 1e-300))


def _forcing(
    xp: Any, lin: Any, first_gnorm: float, amplification: float | None, tol: float, scale: float
) -> float:
    """The relative Krylov residual of an inexact Newton step (matrix-free levels)."""
    # The residual shrinks with the gradient, relative to the first, so the steps converge
    # superlinearly ...
    gnorm_now = max_abs(xp, lin.grad_own)
    forcing = min(0.1, gnorm_now / max(first_gnorm, 1e-300))
    if amplification is not None and tol > 0:
        # ... but not beyond what the stopping test needs: where the step this gradient
        # predicts is already far below tol, a rough step decides.
        predicted = amplification * gnorm_now
        needed = 0.1 * tol * scale / max(predicted, 1e-300)
        forcing = max(forcing, min(0.5, needed))
    return forcing


def _no_decrease(
    exc: Any, lin: Any, text: str, j: int, gnorm: float, relative_step: float
) -> NestoptError:
    """The error of a Newton line search that found no decrease."""
    if lin.shifted:
        error: NestoptError = lin.error("the last Newton iterate (its line search failed)")
        return error
    return exc.error or ConvergenceError(
        f"{text}: the Newton line search found no decrease (gradient norm "
        f"{gnorm:.3e}, relative step {relative_step:.3e}); the level may "
        "be badly scaled or its derivatives inconsistent: run "
        "nestopt.check_derivatives on it",
        level=j,
    )


def _not_converged(
    lin: Any, text: str, j: int, opts: Any, gnorm: float, relative_step: float
) -> NestoptError:
    """The error of a Newton loop that used up ``maxiter``."""
    if lin.shifted:
        # Not converging on a block that needed a shift: non-convexity is the cause.
        error: NestoptError = lin.error(
            f"the last Newton iterate (no convergence in {opts.maxiter} iterations)"
        )
        return error
    return ConvergenceError(
        f"{text}: Newton's method did not converge in {opts.maxiter} "
        f"iteration{'' if opts.maxiter == 1 else 's'} (gradient norm {gnorm:.3e}, relative "
        f"step {relative_step:.3e} > tol {opts.tol:.1e}); raise maxiter or tol "
        "for this level in level_options, or start closer to its solution",
        level=j,
    )


def _solved_at_start(
    nest: Nest, j: int, below: Response, g: Any, mode: str, tol: float, scale: float
) -> Any | None:
    """Level ``j``'s linearization in ``mode`` if its Newton step there is below ``tol``
    (relative) and its block is a strict minimum; None otherwise (Newton then runs)."""
    xp = nest.xp
    try:
        lin = make_linearization(nest, j, below, g, mode, for_step=False)
        step = lin.solve_step(0.1)
    except NestoptError:
        return None
    if lin.shifted:
        return None
    size = max_abs(xp, step)
    scale = max(scale, size, max_abs(xp, below.xs[j - 1]))
    return lin if size <= tol * scale else None


def _finish(
    nest: Nest,
    j: int,
    below: Response,
    g: Any,
    lin: Any,
    iterations: int,
    relative_step: float,
    tol: float,
) -> LevelSolution:
    """Accept the point: check it is a strict minimum and build its Jacobian system."""
    if lin.shifted:
        raise lin.error("its solution")
    if tol > 0 and relative_step > tol:
        note = (
            f"{nest.problem.describe(j)}: Newton stopped at rounding with a relative step of "
            f"{relative_step:.1e}, above tol {tol:.1e}; the solution is accurate to "
            "about that (the level is ill-conditioned or badly scaled)"
        )
        if note.split(":")[0] not in " ".join(nest.stats.notes):
            warn_user(note, PrecisionWarning)
        nest.stats.notes.append(note)
    jacobian_mode = nest.config.curvature_mode(j)
    if lin.mode != jacobian_mode:
        lin = make_linearization(nest, j, below, g, jacobian_mode, for_step=False)
    return LevelSolution(j, below, lin.system(), iterations)


def make_linearization(
    nest: Nest, j: int, below: Response, g: Any, mode: str, *, for_step: bool
) -> Linearization | OperatorLinearization:
    """Level ``j`` at ``below.xs``: dense rows and a factor, or matrix-free products."""
    if nest.config.levels[j - 1].linear_solver in ("cg", "minres"):
        return operator_linearize(nest, j, below, g, mode)
    return linearize(nest, j, below, g, mode, for_step=for_step)


def _line_search(
    nest: Nest, j: int, below: Response, g: Any, lin: Any, step: Any, gnorm: float
) -> tuple[Response, Any]:
    """Backtrack along ``step``; lower levels start from their predicted response.

    With ``predict=False`` they start where they were (a plain warm start),
    which can put a level with several minima on a stationary point that
    is not one: the first-order prediction keeps it on its branch. A trial is
    accepted on a decrease of the reduced gradient (an adjoint product: no
    Jacobian is formed for trials) or, with a ``value``, of ``f_j``.
    """
    xp, problem, oracles = nest.xp, nest.problem, nest.oracles
    own = problem.block(j)
    xs = below.xs
    predicted = None
    if nest.config.predict:
        nest.predicting = True
        try:
            predicted = lin.predict_below(step)
        finally:
            nest.predicting = False
    slope = float(lin.grad_own @ step)
    if not math.isfinite(slope):
        raise singular_block(
            problem.describe(j),
            j,
            "singular or badly conditioned (the Newton step is not finite)",
            lin.method,
        )
    has_value = oracles.has(j, "value")
    f0 = float(oracles.value(j, xs)) if has_value else None
    t = 1.0
    last_error: NestoptError | None = None
    for _ in range(30):
        trial = _moved(problem, xs, j, t * step, None if predicted is None else t * predicted)
        try:
            trial_below = nest.respond(j, trial)
            g1 = oracles.grad(j, trial_below.xs)
            grad_own = _reduced_grad_adjoint(nest, trial_below, g1, own)
        except (ConvergenceError, NotPositiveDefiniteError) as exc:
            last_error = exc
            t *= 0.5
            continue
        # Near the solution the objective stops resolving decreases (rounding),
        # while the gradient norm still does: either test accepts the step.
        accept = max_abs(xp, grad_own) <= (1.0 - 1e-4 * t) * gnorm
        if f0 is not None and not accept:  # level j has a value
            f1 = float(oracles.value(j, trial_below.xs))
            accept = f1 <= f0 + 1e-4 * t * slope
        if accept:
            return trial_below, g1
        t *= 0.5
    raise _NoDecrease(last_error)


def _reduced_grad_adjoint(nest: Nest, below: Response, g: Any, own: slice) -> Any:
    """``c_j^T g`` through one adjoint product with ``R_j`` (no Jacobian formed)."""
    if below.top is None:
        return g[own]
    return g[own] + below.vjp(g[own.stop :])[own]


def _moved(
    problem: Any, xs: tuple[Any, ...], j: int, dx: Any, dbelow: Any | None
) -> tuple[Any, ...]:
    out = list(xs)
    out[j - 1] = xs[j - 1] + dx
    if dbelow is not None:
        s_j = problem.ends[j - 1]
        for k in range(j + 1, problem.n + 1):
            block = problem.block(k)
            out[k - 1] = xs[k - 1] + dbelow[block.start - s_j : block.stop - s_j]
    return tuple(out)
