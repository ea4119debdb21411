"""What `solve` shows while it runs (lines, a progress bar, log records) and what it returns."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from .._errors import ConvergenceWarning, NestoptWarning, Status, warn_user
from .._extras import install_hint
from .._methods.entry import warn_degenerate, weakly_active
from .._result import SolveResult

__all__ = ["Outcome", "Reporter", "progress_bar", "solve_result"]

logger = logging.getLogger("nestopt")

# Where a run ends at a kink of F_1 (weakly active lower-level rows at the final point).
KINK_ENDINGS = (Status.SUCCESS, Status.SMALL_STEP, Status.LINE_SEARCH_FAILED)


class Reporter:
    """One line per iteration to the log (DEBUG), to stdout with ``verbose``, to a bar."""

    def __init__(self, verbose: int, progress: bool, total: int) -> None:
        self.verbose = verbose
        self.bar = progress_bar(progress, total, "nestopt.solve", "it")

    def iteration(self, nit: int, point: Any, pg: float, step: float) -> None:
        if self.verbose or logger.isEnabledFor(logging.DEBUG):  # formatted only when shown
            fun = "-" if point.fun is None else f"{point.fun: .6e}"
            line = f"iter {nit:5d}  F1 {fun}  |proj grad| {pg:.3e}  step {step:.3e}"
            logger.debug(line)
            if self.verbose:
                print(line)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"|g| {pg:.2e}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Outcome:
    """The fields of an outer run that `solve_result` reads; `Loop` and `TopNewton` fill them."""

    def __init__(self) -> None:
        self.point: Any = None
        self.status = Status.MAX_ITER
        self.failure: str | None = None
        self.failed_level: int | None = None
        self.nit = 0
        self.pg = math.nan
        self.target = math.nan
        self.lower_seconds = 0.0
        self.notes: list[str] = []
        self.history: dict[str, list[Any]] = {
            "fun": [], "grad_norm": [], "step": [], "inner_nit": [], "time": []
        }  # fmt: skip


def progress_bar(progress: bool, total: int, desc: str, unit: str) -> Any:
    """A tqdm bar when ``progress`` is set and tqdm is installed (warns when not)."""
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warn_user(f"progress=True needs tqdm: {install_hint('tqdm')}", NestoptWarning)
        return None
    return tqdm(total=total, desc=desc, unit=unit)


def solve_result(run: Any, loop: Any, optimizer: Any, started: float) -> SolveResult:
    """The `SolveResult` of a finished loop; logs it and warns when it did not converge."""
    status = loop.status
    point = loop.point
    engine = run.engine
    report = _constraint_report(run, loop, point)
    failure = loop.failure
    if report["degenerate"]:
        warn_degenerate(run.problem, report["degenerate"])
    kink = getattr(loop, "kink", None)
    certified = kink is not None and kink.certified and status in KINK_ENDINGS
    if certified:
        # Every piece of F_1 around the point rises: a strict local minimum at a kink.
        status, failure = Status.SUCCESS, None
    elif report["degenerate"] and status in KINK_ENDINGS:
        # A kink of F_1: a lower level's active set changes at the final point.
        status = Status.DEGENERATE
        failure = "; ".join(
            f"{run.problem.describe(k)}: {', '.join(names)} weakly active (one-sided derivatives)"
            for k, names in report["degenerate"].items()
        ) + (f"; the run stopped at a point where F_1 has a kink (last stop: {loop.status.name})")
        if kink is not None:
            failure += f"; {kink.note}"
    message = status.message + (f": {failure}" if failure else "")
    if status is Status.SUCCESS and getattr(loop, "success_message", None):
        message = loop.success_message
    if certified and kink is not None:  # the certificate says more than the stop that led to it
        message = f"converged: a strict local minimum where F_1 has a kink ({kink.note})"
    result = SolveResult(
        x=run.xs[0] if point is None else point.x,
        xs=run.xs if point is None else point.state.xs,
        fun=None if point is None else point.fun,
        hypergrad=None if point is None else point.grad,
        grad_norm=loop.pg,
        success=status.success,
        status=status,
        message=message,
        failed_level=loop.failed_level,
        nit=loop.nit,
        level_nit=engine.level_nit(),
        level_solves=tuple(engine.stats.solves),
        krylov=engine.stats.krylov_summary(),
        nfev=run.nfev(),
        time={"total": time.perf_counter() - started, "lower": loop.lower_seconds},
        history=loop.history,
        method=run.method.name,
        curvature=engine.curvature,
        exactness=engine.exactness,
        optimizer=optimizer.name,
        backend=run.backend,
        notes=list(engine.stats.notes) + loop.notes,
        multipliers=report["multipliers"],
        active=report["active"],
        weakly_active=weakly_active(report),
    )
    if status.success:
        logger.info("nestopt.solve: %s after %d iterations", message, loop.nit)
    else:
        logger.warning("nestopt.solve: %s after %d iterations", message, loop.nit)
        if status is not Status.CALLBACK:
            warn_user(f"nestopt.solve did not converge: {message}", ConvergenceWarning)
    return result


def _constraint_report(run: Any, loop: Any, point: Any) -> dict[str, Any]:
    """Multipliers, active and weakly active rows per level at the final point."""
    report: dict[str, Any] = {"multipliers": {}, "active": {}, "degenerate": {}}
    engine = run.engine
    if point is not None:
        report = engine.constraint_report(point.state)
        top = getattr(loop, "solution", None)
        if top is not None and top.constrained is not None:
            found = top.constrained
            report["multipliers"] = {
                1: run.xp.asarray(found.lam, dtype=point.x.dtype),
                **report["multipliers"],
            }
            labels = tuple(label for label, on in zip(found.labels, found.active) if on)
            report["active"] = {1: labels, **report["active"]}
    return report
