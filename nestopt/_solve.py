"""``solve``: minimize the top-level value function, lower levels solved inside."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._bounds import as_bounds, box_arrays
from ._errors import ConvergenceWarning, NestoptError, Status, TimeLimitError, warn_user
from ._optimizers import LineSearchFailed, Point, make_optimizer
from ._options import check_count, check_number
from ._problem import Problem
from ._report import Reporter, solve_result
from ._result import SolveResult
from ._run import Run, start_run

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
    optimizer : {'lbfgs', 'gd', 'adam'} or optimizer object, optional
        Level-1 method (`LBFGS`, `GradientDescent`, `Adam`). ``None`` picks
        ``'lbfgs'`` when level 1 has a ``value`` and no ``project`` is given,
        otherwise ``'gd'`` (backtracking with a ``value``, a fixed step
        otherwise).
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
    projector = project or (None if box is None else _box_projector(run.xp, box))
    has_value = run.oracles.has(1, "value")
    stepper = make_optimizer(optimizer, opts, has_value, project is not None)
    _check_optimizer_options(opts, stepper)
    loop = _Loop(run, stepper, projector, box, opts, started, deadline)
    reporter = Reporter(verbose, progress, opts["maxiter"])
    try:
        loop.execute(callback, reporter)
    finally:
        reporter.close()
    return solve_result(run, loop, stepper, started)


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


class _Loop:
    """The outer iteration: evaluate, step, record; ends with a status."""

    def __init__(self, run: Run, stepper: Any, projector: Any, box: Any, opts: dict, started: float,
                 deadline: float | None) -> None:  # fmt: skip
        self.run = run
        self.xp = run.xp
        self.stepper = stepper
        self.projector = projector
        self.identity = projector is None
        self.box = box
        self.opts = opts
        self.started = started
        self.deadline = deadline
        self.accepted: Point | None = None
        self.point: Point | None = None
        self.status = Status.MAX_ITER
        self.failure: str | None = None
        self.failed_level: int | None = None
        self.nit = 0
        self.pg = math.nan
        self.lower_seconds = 0.0
        self.history: dict[str, list[Any]] = {
            "fun": [], "grad_norm": [], "step": [], "inner_nit": [], "time": []
        }  # fmt: skip
        self._work: list[int] = []
        self.notes: list[str] = []
        self.target = math.nan
        self._warned_work = False

    def project(self, x: Any) -> Any:
        return x if self.identity else self.projector(x)

    def evaluate(self, x1: Any) -> Point:
        """``x1 -> Point``: lower levels from the last accepted point, then differentiate."""
        engine = self.run.engine
        tic = time.perf_counter()
        try:
            if self.accepted is None or not self.opts["warm_start"]:
                start = (x1, *self.run.xs[1:])
            else:
                start = engine.predict(self.accepted.state, x1)
            state = engine.respond(start)
            grad = engine.hypergradient(state)
            fun = (
                float(self.run.oracles.value(1, state.xs))
                if self.run.oracles.has(1, "value")
                else None
            )
        finally:
            self.lower_seconds += time.perf_counter() - tic
        return Point(x1, fun, grad, state)

    def execute(self, callback: Any, reporter: Reporter) -> None:
        try:
            self._iterate(callback, reporter)
        except NestoptError as exc:
            if exc.status is None:
                raise
            self.status, self.failure, self.failed_level = exc.status, str(exc), exc.level

    def _iterate(self, callback: Any, reporter: Reporter) -> None:
        xp, opts = self.xp, self.opts
        self.point = self.evaluate(self.project(self.run.xs[0]))
        self.accepted = self.point
        self.pg = self._projected_norm(self.point)
        target = self.target = max(opts["gtol"] * self.pg, opts["gtol_abs"])
        scale = float(xp.max(xp.abs(self.point.x))) if self.point.x.shape[0] else 0.0
        self._record(0.0)
        state = self.stepper.init(self.point)
        while True:
            if self.pg <= target:
                self.status = Status.SUCCESS
                return
            if self.nit >= opts["maxiter"]:
                self.status = Status.MAX_ITER
                return
            if self.deadline is not None and time.perf_counter() > self.deadline:
                raise TimeLimitError("max_time ran out")
            try:
                new, state = self.stepper.update(
                    xp, state, self.point, self.evaluate, self.project, self.box
                )
            except LineSearchFailed:
                self.status = self._rounding_limited(Status.LINE_SEARCH_FAILED)
                return
            self.nit += 1
            step = float(xp.max(xp.abs(new.x - self.point.x)))
            if self.nit == 1:
                scale = max(scale, step)
            scale = max(scale, float(xp.max(xp.abs(new.x))))
            self.point = self.accepted = new
            self.pg = self._projected_norm(new)
            self._record(step)
            reporter.iteration(self.nit, new, self.pg, step)
            self._watch_work()
            if callback is not None:
                try:
                    callback(self.intermediate())
                except StopIteration:
                    self.status = Status.CALLBACK
                    return
            if self.pg <= target:
                self.status = Status.SUCCESS
                return
            if step <= opts["xtol"] * scale:
                self.status = self._rounding_limited(Status.SMALL_STEP)
                return

    def _rounding_limited(self, stop: Status) -> Status:
        """SUCCESS where the gradient is below what rounding of ``F_1`` can resolve, else ``stop``.

        A step of the natural length ``L = max(|x|_inf, 1)`` along a gradient
        ``g`` changes ``F_1`` by about ``|g| L``; when that is within 100
        rounding errors of ``F_1`` no method can make progress, and the point
        is stationary to the precision ``F_1`` is computed with (a start at a
        solution ends so). The test does not change when ``F_1`` is scaled.
        """
        fun = self.point.fun
        xp = self.xp
        eps = float(xp.finfo(self.point.x.dtype).eps)
        size = max(float(xp.max(xp.abs(self.point.x))), 1.0)
        if fun is not None and self.pg * size <= 100.0 * eps * abs(fun):
            self.notes.append(
                f"level 1 is stationary to rounding: the projected hypergradient {self.pg:.2e} "
                f"cannot change F_1 = {fun:.6g} beyond its rounding (gtol asked for "
                f"{self.target:.2e})"
            )
            return Status.SUCCESS
        return stop

    def _projected_norm(self, point: Point) -> float:
        """``|P(x - t g) - x|_inf / t``: the gradient where a projection does not bind.

        Without a projection it is ``|g|_inf`` itself. With one, ``t`` moves
        ``x`` by ``sqrt(eps)`` of its size (1 where ``x = 0``), so the measure
        does not change when ``F_1`` is scaled, however small ``g`` is next
        to ``x`` (``P(x - g) - x`` would round to zero).
        """
        xp = self.xp
        g = point.grad
        gmax = float(xp.max(xp.abs(g))) if g.shape[0] else 0.0
        if self.identity or gmax == 0.0:
            return gmax
        size = float(xp.max(xp.abs(point.x)))
        eps = float(xp.finfo(g.dtype).eps)
        t = math.sqrt(eps) * (size if size > 0.0 else 1.0) / gmax
        return float(xp.max(xp.abs(self.projector(point.x - t * g) - point.x))) / t

    def _record(self, step: float) -> None:
        history = self.history
        history["fun"].append(self.point.fun)
        history["grad_norm"].append(self.pg)
        history["step"].append(step)
        history["inner_nit"].append(self.run.engine.level_nit())
        history["time"].append(time.perf_counter() - self.started)

    def _watch_work(self) -> None:
        """Warn once when one outer iteration costs far more inner steps than usual."""
        inner = self.history["inner_nit"]
        work = sum(inner[-1]) - sum(inner[-2])
        if len(self._work) >= 3 and not self._warned_work:
            typical = statistics.median(self._work)
            if work > 100 and work > 20 * max(typical, 1):
                self._warned_work = True
                warn_user(
                    f"nestopt.solve: iteration {self.nit} took {work} lower-level iterations "
                    f"against a median of {typical:g} before: the lower levels may be "
                    "drifting (an unbounded or badly scaled level?). Consider max_time= in "
                    "options, bounds on level 1, or checking the lower levels' scaling",
                    ConvergenceWarning,
                )
        self._work.append(work)

    def intermediate(self) -> SolveResult:
        point = self.point
        return SolveResult(
            x=point.x,
            xs=point.state.xs,
            fun=point.fun,
            hypergrad=point.grad,
            grad_norm=self.pg,
            nit=self.nit,
            level_nit=self.run.engine.level_nit(),
        )
