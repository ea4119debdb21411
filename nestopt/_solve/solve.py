"""``solve``: minimize the top-level value function, lower levels solved inside."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend.host import to_numpy
from .._errors import NestoptError
from .._levels.box import as_bounds, box_arrays
from .._levels.problem import Problem
from .._methods.options import check_count, check_number
from .._methods.run import Run, start_run
from .._respond.constrained.active_rows import RowSets
from .._result import SolveResult
from .kinks import (
    ENDINGS,
    MAX_KINK_STEPS,
    Verdict,
    armijo_step,
    examine_kink,
    past_kinks,
    top_row_cone,
)
from .loop import Loop
from .optimizers import make_optimizer
from .report import Reporter, solve_result
from .top_newton import NEWTON, TopNewton

__all__ = ["solve", "SOLVE_OPTIONS"]

SOLVE_OPTIONS: dict[str, Any] = {
    "maxiter": 500,
    "gtol": 1e-6,
    "gtol_abs": 0.0,
    "xtol": 1e-12,
    "warm_start": True,
    "max_time": None,
    "step": None,
    "lr": None,
    "beta1": None,
    "beta2": None,
    "memory": None,
    "steps": None,
    "step_size": None,
    "predict": None,
}
_OPTIMIZER_OPTIONS = {
    "step": "gd",
    "lr": "adam",
    "beta1": "adam",
    "beta2": "adam",
    "memory": "lbfgs",
}


def solve(
    problem: Problem,
    x0: Sequence[Any],
    method: Any = "implicit",
    *,
    curvature: str | None = None,
    linear_solver: str | None = None,
    fd_step: float | None = None,
    level_options: Any = None,
    predict: bool | None = None,
    newton_curvature: str | None = None,
    steps: Any = None,
    step_size: Any = None,
    optimizer: Any = None,
    options: dict[str, Any] | None = None,
    bounds: Any = None,
    project: Callable[[Any], Any] | None = None,
    callback: Callable[[SolveResult], Any] | None = None,
    verbose: int = 0,
    progress: bool = False,
    symmetry: str = "raise",
    check_finite: bool = True,
    backend: Any = None,
    device: Any = None,
) -> SolveResult:
    """Solve an n-level problem: minimize ``F_1`` over ``x_1`` in ``S_1``.

    Parameters
    ----------
    problem : Problem
    x0 : sequence of n arrays
        Start of every level (lower levels: start of their first solve).
    method, curvature, linear_solver, fd_step, level_options, predict, newton_curvature, \
steps, step_size, symmetry, check_finite, backend, device
        How the hypergradient is computed, as in `best_response`.
    optimizer : {'lbfgs', 'gd', 'adam', 'newton'} or optimizer object, optional
        Level-1 method (`LBFGS`, `GradientDescent`, `Adam`). ``None`` picks
        ``'lbfgs'`` when level 1 has a ``value`` and no ``project`` is given,
        otherwise ``'gd'`` (backtracking with a ``value``, a fixed step
        otherwise). ``'newton'`` solves level 1 like a lower level, by
        Newton's method on its reduced Hessian (quadratic convergence; the
        implicit method only). A level 1 with constraints
        (``Level(constraints=...)``) is solved by the interior-point method
        of the lower levels.
    options : dict, optional
        ``maxiter`` (500); ``gtol`` (1e-6): success when the infinity norm of
        the projected hypergradient ``P(x - g) - x`` falls to ``gtol`` times
        its value at the start, a test that scaling ``F_1`` leaves unchanged;
        ``gtol_abs`` (0): or below this absolute value; ``xtol`` (1e-12): a
        step below ``xtol`` times the size of ``x_1`` stops the run (status
        SMALL_STEP, not a success); ``max_time`` (seconds, none): stops with
        status MAX_TIME; ``warm_start`` (True: the lower levels start from
        the last accepted point, moved by the method's prediction);
        shorthands for the optimizer string forms: ``step`` (gd), ``lr``,
        ``beta1``, ``beta2`` (adam), ``memory`` (lbfgs); and ``steps``,
        ``step_size``, ``predict`` (the method keywords).
    bounds : Bounds or (lower, upper), optional
        A box on level 1 (`Bounds`, scipy's ``Bounds``, a ``(lower,
        upper)`` pair, or per-coordinate pairs where that cannot be
        mistaken). The same as level 1's own ``Level(bounds=...)``.
    project : callable, optional
        ``project(x1)``: Euclidean projection onto a convex set ``S_1``.
    callback : callable, optional
        ``callback(intermediate_result)`` after every iteration; raise
        ``StopIteration`` to stop.
    verbose : int
        1 prints one line per iteration.
    progress : bool
        Show a tqdm progress bar (when tqdm is installed).

    Returns
    -------
    SolveResult
        ``x``, ``xs``, ``fun``, ``hypergrad``, ``grad_norm``, ``success``,
        ``status`` (a `Status`), ``message``, ``failed_level``, ``nit``,
        ``level_nit``, ``level_solves``, ``nfev``, ``time``, ``history``,
        ``method``, ``curvature``, ``exactness``, ``optimizer``, ``backend``,
        ``notes``. A run that does not converge warns with
        `ConvergenceWarning`; only ``Status.SUCCESS`` is a success.
    """
    started = time.perf_counter()
    opts = _outer_options(options)
    keywords = {
        "curvature": curvature,
        "linear_solver": linear_solver,
        "fd_step": fd_step,
        "level_options": level_options,
        "predict": predict,
        "newton_curvature": newton_curvature,
        "steps": steps,
        "step_size": step_size,
    }
    for name in ("steps", "step_size", "predict"):
        if opts[name] is not None:
            if keywords[name] is not None:
                raise ValueError(f"{name} given both as a keyword and in options; give it once")
            keywords[name] = opts[name]
    deadline = None if opts["max_time"] is None else started + opts["max_time"]
    run = start_run(
        problem,
        x0,
        method,
        keywords,
        backend=backend,
        device=device,
        check_finite=check_finite,
        symmetry=symmetry,
        deadline=deadline,
    )
    if bounds is not None and project is not None:
        raise ValueError("pass either bounds or project, not both")
    top_bounds = problem.levels[0].bounds
    if top_bounds is not None and bounds is not None:
        raise ValueError(
            "level 1 has bounds (Level(bounds=...)) and solve got bounds= too; give them once"
        )
    box = _box(run, bounds if bounds is not None else top_bounds)
    if project is not None and not callable(project):
        raise TypeError(f"project must be callable, got {type(project).__name__}")
    if optimizer == NEWTON or problem.levels[0].constraints:
        return _solve_top_by_newton(
            run, opts, started, bounds, project, callback, optimizer, options
        )
    projector = project or (None if box is None else _box_projector(run.xp, box))
    has_value = run.oracles.has(1, "value")
    stepper = make_optimizer(optimizer, opts, has_value, project is not None)
    _check_optimizer_options(opts, stepper)
    loop = Loop(run, stepper, projector, box, opts, started, deadline)
    reporter = Reporter(verbose, progress, opts["maxiter"])

    def restart(x1: Any, old: Loop) -> Loop:
        """A new loop from ``x1`` (past a kink), carrying the old one's counts and target."""
        moved = dataclasses.replace(run, xs=(x1, *old.point.state.xs[1:]))
        fresh = make_optimizer(optimizer, opts, has_value, project is not None)
        new = Loop(moved, fresh, projector, box, opts, started, deadline)
        new.fixed_target, new.nit, new.history = old.target, old.nit, old.history
        new.lower_seconds, new.notes = old.lower_seconds, old.notes
        new.notes.append(f"left a kink at iteration {old.nit} along a descending piece")
        new.execute(callback, reporter)
        return new

    try:
        loop.execute(callback, reporter)
        loop = past_kinks(run, loop, restart, box)
    finally:
        reporter.close()
    return solve_result(run, loop, stepper, started)


def _solve_top_by_newton(
    run: Run, opts: dict[str, Any], started: float, bounds: Any, project: Any, callback: Any,
    optimizer: Any, options: dict[str, Any] | None,
) -> SolveResult:  # fmt: skip
    """Level 1 by Newton's method (or the interior point, when it has constraints)."""
    for name, given in (("bounds=", bounds), ("project", project), ("callback", callback)):
        if given is not None:
            raise ValueError(
                f"{name} is not taken by the Newton/interior-point top level: give level 1 "
                "its box as Level(bounds=...) and its constraints as Level(constraints=...)"
            )
    if optimizer not in (None, NEWTON):
        raise ValueError(
            f"level 1 has constraints, which optimizer={optimizer!r} cannot handle; use the "
            "default (the interior-point method) or optimizer='newton'"
        )
    for name in _OPTIMIZER_OPTIONS:
        if opts[name] is not None:
            raise ValueError(f"option {name!r} does not apply to the Newton top level")
    top = TopNewton(run, opts, started)
    top.execute(None)
    top = _past_top_kinks(run, top, opts, started)
    return solve_result(run, top, top, started)


def _past_top_kinks(run: Run, top: TopNewton, opts: dict[str, Any], started: float) -> TopNewton:
    """Where level 1 (solved with its own rows) stops on a kink of level 2's response: a
    first-order certificate with its rows at a bound in the cones; a descending piece is
    followed (a feasible Armijo step, then level 1's solve again from there), at most
    `MAX_KINK_STEPS` times. Returns the last solve, its `Verdict` as ``kink``."""
    for step in range(MAX_KINK_STEPS + 1):
        verdict = _examine_top_kink(run, top)
        top.kink = verdict
        if verdict is None or verdict.certified or verdict.direction is None:
            return top
        if step == MAX_KINK_STEPS:
            top.kink = Verdict(False, f"{verdict.note}: not followed, {step} kinks left already")
            return top
        x1 = _descend_top(run, top, verdict)
        if x1 is None:
            top.kink = Verdict(False, f"{verdict.note}: no feasible step along it lowered F_1")
            return top
        moved = dataclasses.replace(run, xs=(x1, *top.point.state.xs[1:]))
        again = TopNewton(moved, opts, started)
        again.history, again.notes = top.history, top.notes
        again.notes.append(f"left a kink at iteration {top.nit} along a descending piece")
        again.execute(None)
        top = again
    return top


def _examine_top_kink(run: Run, top: TopNewton) -> Verdict | None:
    """The kink's verdict where level 1 stopped on weakly active rows of level 2 (None
    where it did not), level 1's rows at a bound taken into the pieces' cones. The
    second-order test (the pieces' curvature of ``F_1``) runs only where none of level 1's
    rows is at its bound: with one held, the curvature that counts is its Lagrangian's."""
    point = top.point
    if point is None or top.status not in ENDINGS:
        return None
    if not run.engine.constraint_report(point.state)["degenerate"]:
        return None
    rows = run.engine.nest.constraint_rows.get(1)
    cone, held = (None, 0) if rows is None else top_row_cone(run, rows, point.state.xs)
    return examine_kink(run, point, None, cone, second_order=not held)


def _descend_top(run: Run, top: TopNewton, verdict: Verdict) -> Any:
    """A point along the descending piece where level 1's rows hold (to ``sqrt(eps)`` of
    their size) and ``F_1`` decreases (Armijo), or None."""
    nest, xs = run.engine.nest, top.point.state.xs
    rows = nest.constraint_rows.get(1)
    sets = None if rows is None else RowSets.of(to_numpy(rows.lb), to_numpy(rows.ub))
    eps = float(run.xp.finfo(top.point.x.dtype).eps)

    def trial_value(trial: Any) -> tuple[Any, float | None]:
        try:
            state = nest.respond(1, (trial, *xs[1:]))
        except NestoptError:
            return trial, None
        if rows is not None and sets is not None:
            c = np.asarray(to_numpy(rows.values(state.xs)), dtype=float)
            if np.any(sets.violation(c) > math.sqrt(eps) * np.maximum(1.0, np.abs(c))):
                return trial, None
        return trial, float(run.oracles.value(1, state.xs))

    return armijo_step(run.xp, top.point, verdict, trial_value)


def _outer_options(options: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(SOLVE_OPTIONS)
    if options:
        unknown = sorted(map(str, set(options) - set(SOLVE_OPTIONS)))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(map(repr, unknown))}; known: "
                + ", ".join(SOLVE_OPTIONS)
            )
        merged.update(options)
    merged["maxiter"] = check_count("maxiter", merged["maxiter"])
    merged["gtol"] = check_number("gtol", merged["gtol"])
    merged["gtol_abs"] = check_number("gtol_abs", merged["gtol_abs"])
    merged["xtol"] = check_number("xtol", merged["xtol"])
    if merged["max_time"] is not None:
        merged["max_time"] = check_number("max_time", merged["max_time"], strict=True)
    if not isinstance(merged["warm_start"], bool):
        raise TypeError(f"warm_start must be True or False, got {merged['warm_start']!r}")
    return merged


def _check_optimizer_options(opts: dict[str, Any], stepper: Any) -> None:
    for name, owner in _OPTIMIZER_OPTIONS.items():
        if opts[name] is not None and stepper.name != owner:
            raise ValueError(
                f"option {name!r} applies to optimizer={owner!r}, not {stepper.name!r}"
            )


def _box(run: Run, bounds: Any) -> tuple[Any, Any] | None:
    given = as_bounds(bounds, run.problem.sizes[0], run.problem.describe(1))
    if given is None:
        return None
    return box_arrays(run.xp, run.xs[0], given, run.problem.describe(1))


def _box_projector(xp: Any, box: tuple[Any, Any]) -> Callable[[Any], Any]:
    lower, upper = box
    return lambda x: xp.minimum(xp.maximum(x, lower), upper)
