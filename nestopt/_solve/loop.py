"""The outer iteration of `solve`: evaluate, step, record, and decide how the run ends."""

from __future__ import annotations

import math
import time
from typing import Any

from .._backend.host import max_abs
from .._backend.names import machine_eps
from .._errors import ConvergenceWarning, NestoptError, Status, TimeLimitError, warn_user
from .._methods.run import Run
from .._result import SolveResult
from .optimizers import LineSearchFailed, Point
from .report import Outcome, Reporter

__all__ = ["Loop"]


class Loop(Outcome):
    """The outer iteration: evaluate, step, record; ends with a status."""

    def __init__(self, run: Run, stepper: Any, projector: Any, box: Any, opts: dict[str, Any],
                 started: float, deadline: float | None) -> None:  # fmt: skip
        super().__init__()
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
        self.has_value = run.oracles.has(1, "value")
        self._work: list[int] = []
        self._warned_work = False
        # A loop restarted past a kink keeps the first loop's gradient target.
        self.fixed_target: float | None = None
        self.kink: Any = None

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
            fun = float(self.run.oracles.value(1, state.xs)) if self.has_value else None
        finally:
            self.lower_seconds += time.perf_counter() - tic
        return Point(x1, fun, grad, state)

    def walk(self, point: Point) -> None:
        """Take ``point`` (a step from a kink to a kink, `kinks.past_kinks`) as the loop's
        last accepted point."""
        self.point = self.accepted = point
        self.pg = self._projected_norm(point)
        self.nit += 1

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
        target = self.target = self.fixed_target or max(opts["gtol"] * self.pg, opts["gtol_abs"])
        scale = max_abs(xp, self.point.x)
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
            step = max_abs(xp, new.x - self.point.x)
            if self.nit == 1:
                scale = max(scale, step)
            scale = max(scale, max_abs(xp, new.x))
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
        eps = machine_eps(xp, self.point.x.dtype)
        size = max(max_abs(xp, self.point.x), 1.0)
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
        gmax = max_abs(xp, g)
        if self.identity or gmax == 0.0:
            return gmax
        size = max_abs(xp, point.x)
        eps = machine_eps(xp, g.dtype)
        t = math.sqrt(eps) * (size if size > 0.0 else 1.0) / gmax
        return max_abs(xp, self.projector(point.x - t * g) - point.x) / t

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
            typical = _median(self._work)
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


def _median(values: list[int]) -> float:
    """The median (``statistics`` costs several milliseconds of import time)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return 0.5 * (ordered[middle - 1] + ordered[middle])
