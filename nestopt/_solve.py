"""``solve``: minimize the top-level value function, lower levels solved inside."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from array_api_compat import device as array_device

from ._errors import ConvergenceWarning, NestoptError, NestoptWarning, Status, warn_user
from ._hypergrad import METHODS, Session
from ._optimizers import OPTIMIZERS, LineSearchFailed, Point, make_optimizer
from ._options import check_choice
from ._problem import Problem
from ._result import SolveResult

__all__ = ["solve", "SOLVE_OPTIONS"]

logger = logging.getLogger("nestopt")

SOLVE_OPTIONS = {
    "maxiter": 500,
    "gtol": 1e-6,
    "xtol": 1e-12,
    "warm_start": True,
    "predict": True,
    "step": 1.0,
    "lr": 1e-2,
    "beta1": 0.9,
    "beta2": 0.999,
    "memory": 10,
    "steps": None,
    "step_size": None,
}


def solve(
    problem: Problem,
    x0: Sequence[Any],
    *,
    method: str = "implicit",
    curvature: str = "exact",
    optimizer: str | None = None,
    options: dict[str, Any] | None = None,
    level_options: Any = None,
    bounds: Any = None,
    project: Callable[[Any], Any] | None = None,
    callback: Callable[[SolveResult], Any] | None = None,
    verbose: int = 0,
    progress: bool = False,
    linear_solver: str = "cholesky",
    backend: Any = None,
    device: Any = None,
) -> SolveResult:
    """Solve an n-level problem: minimize ``F_1`` over ``x_1`` in ``S_1``.

    Parameters
    ----------
    problem : Problem
    x0 : sequence of n arrays
        Start of every level (lower levels: start of their first solve).
    method : {'implicit', 'itd'}
        How the hypergradient is computed (see `best_response`).
    curvature : {'exact', 'first_order'}
        Response-curvature terms in the implicit hypergradient.
    optimizer : {'lbfgs', 'gd', 'adam'}, optional
        Level-1 method. ``None`` picks ``'lbfgs'`` when level 1 has a
        ``value`` and no ``project`` is given, otherwise ``'gd'`` (with a
        backtracking line search when there is a ``value``, a fixed step
        otherwise).
    options : dict, optional
        ``maxiter`` (500), ``gtol`` (1e-6, on the infinity norm of the
        projected hypergradient ``P(x - g) - x``), ``xtol`` (1e-12, on the
        relative step), ``warm_start`` (True: lower levels start from the
        previous outer iterate), ``predict`` (True: when a level moves by
        ``dx``, the levels below start from the first-order prediction of
        their response, ``x_>k + R_k dx``, in the outer loop and inside the
        lower levels' Newton solves; False: they start where they were),
        ``step`` (gd), ``lr``,
        ``beta1``, ``beta2`` (adam), ``memory`` (lbfgs), ``steps`` and
        ``step_size`` (itd).
    level_options : dict or sequence of dict, optional
        ``tol``, ``maxiter``, ``ridge`` of the lower levels' Newton solves.
    bounds : (lower, upper) or sequence of (lo, hi) pairs, optional
        A box on level 1; ``None`` entries mean unbounded.
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
        ``method``, ``curvature``, ``optimizer``, ``backend``.
        A run that does not converge warns with `ConvergenceWarning`.
    """
    started = time.perf_counter()
    check_choice("method", method, METHODS)
    opts = _outer_options(options)
    if bounds is not None and project is not None:
        raise ValueError("pass either bounds or project, not both")
    session = Session(
        problem,
        x0,
        curvature=curvature,
        linear_solver=linear_solver,
        level_options=level_options,
        backend=backend,
        device=device,
        predict=bool(opts["predict"]),
    )
    xp = session.xp
    has_value = problem.levels[0].value is not None
    if optimizer is None:
        optimizer = "lbfgs" if has_value and project is None else "gd"
    check_choice("optimizer", optimizer, OPTIMIZERS)
    lower, upper, projector = _projection(xp, session.xs[0], bounds, project)
    evaluator = _Evaluator(session, method, opts, has_value)
    stepper = make_optimizer(optimizer, opts, lower, upper)
    history: dict[str, list[Any]] = {
        "fun": [],
        "grad_norm": [],
        "step": [],
        "inner_nit": [],
        "time": [],
    }
    bar = _progress_bar(progress, opts["maxiter"])

    status, failure, failed_level = Status.MAX_ITER, None, None
    point = None
    nit = 0
    try:
        point = evaluator(projector(session.xs[0]))
        pg = _projected_norm(xp, point, projector)
        _record(history, point, pg, 0.0, evaluator, started)
        while True:
            if pg <= opts["gtol"]:
                status = Status.SUCCESS
                break
            if nit >= opts["maxiter"]:
                status = Status.MAX_ITER
                break
            try:
                new = stepper(xp, point, evaluator, projector)
            except LineSearchFailed:
                status = Status.LINE_SEARCH_FAILED
                break
            nit += 1
            step = float(xp.max(xp.abs(new.x - point.x)))
            scale = 1.0 + float(xp.max(xp.abs(point.x)))
            point = new
            pg = _projected_norm(xp, point, projector)
            _record(history, point, pg, step, evaluator, started)
            _report(verbose, bar, nit, point, pg, step)
            if callback is not None:
                try:
                    callback(_intermediate(point, pg, nit, evaluator))
                except StopIteration:
                    status = Status.CALLBACK
                    break
            if pg <= opts["gtol"]:
                status = Status.SUCCESS
                break
            if step <= opts["xtol"] * scale:
                status = Status.SMALL_STEP
                break
    except NestoptError as exc:
        if exc.status is None:
            raise
        status, failure, failed_level = exc.status, str(exc), exc.level
    finally:
        if bar is not None:
            bar.close()

    message = status.message + (f": {failure}" if failure else "")
    if point is None:
        x_final = session.xs
        fun = hypergrad = None
        pg = float("nan")
    else:
        x_final = point.extra.xs
        fun = point.fun
        hypergrad = point.grad
    result = SolveResult(
        x=x_final[0],
        xs=x_final,
        fun=fun,
        hypergrad=hypergrad,
        grad_norm=pg,
        success=status.success,
        status=status,
        message=message,
        failed_level=failed_level,
        nit=nit,
        level_nit=evaluator.level_nit(),
        level_solves=tuple(session.solver.counters.solves),
        nfev=evaluator.nfev(),
        time={"total": time.perf_counter() - started, "lower": evaluator.seconds},
        history=history,
        method=method,
        curvature=curvature if method == "implicit" else "first_order",
        optimizer=optimizer,
        backend=getattr(xp, "__name__", str(xp)),
    )
    if status.success:
        logger.info("nestopt.solve: %s after %d iterations", message, nit)
    else:
        logger.warning("nestopt.solve: %s after %d iterations", message, nit)
        if status is not Status.CALLBACK:
            warn_user(f"nestopt.solve did not converge: {message}", ConvergenceWarning)
    return result


def _outer_options(options: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(SOLVE_OPTIONS)
    if options:
        unknown = sorted(set(options) - set(SOLVE_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(map(repr, unknown))}; known: "
                + ", ".join(SOLVE_OPTIONS)
            )
        merged.update(options)
    return merged


class _Evaluator:
    """``x1 -> Point``: solve the lower levels (warm, predicted) and differentiate."""

    def __init__(self, session: Session, method: str, opts: dict[str, Any], has_value: bool):
        self.session = session
        self.method = method
        self.opts = opts
        self.has_value = has_value
        self.last: Any = None
        self.seconds = 0.0
        self.itd_nit = [0] * session.problem.n
        self.itd_nfev: dict[str, list[int]] = {}

    def __call__(self, x1: Any) -> Point:
        tic = time.perf_counter()
        try:
            start = self._start(x1)
            if self.method == "itd":
                from ._itd import itd_best_response

                result = itd_best_response(
                    self.session.problem,
                    start,
                    steps=self.opts["steps"],
                    step_size=self.opts["step_size"],
                    backend=self.session.backend_arg,
                    device=self.session.device_arg,
                )
                self._count_itd(result)
                fun, grad, state = result.fun, result.hypergrad, result
            else:
                node = self.session.respond(start)
                grad = self.session.solver.hypergradient(node)
                fun = float(self.session.oracles.value(1, node.xs)) if self.has_value else None
                state = node
        finally:
            self.seconds += time.perf_counter() - tic
        self.last = state
        return Point(x1, fun, grad, state)

    def _start(self, x1: Any) -> tuple[Any, ...]:
        session = self.session
        if self.last is None or not self.opts["warm_start"]:
            return (x1, *session.xs[1:])
        if self.method == "implicit" and self.opts["predict"]:
            return session.solver.predict(self.last, x1)
        return (x1, *self.last.xs[1:])

    def _count_itd(self, result: Any) -> None:
        for k, count in enumerate(result.nit):
            self.itd_nit[k] += count
        for name, counts in result.nfev.items():
            total = self.itd_nfev.setdefault(name, [0] * len(counts))
            for k, count in enumerate(counts):
                total[k] += count

    def level_nit(self) -> tuple[int, ...]:
        if self.method == "itd":
            return tuple(self.itd_nit)
        return tuple(self.session.solver.counters.newton)

    def nfev(self) -> dict[str, tuple[int, ...]]:
        counts = self.itd_nfev if self.method == "itd" else self.session.oracles.counts
        return {name: tuple(c) for name, c in counts.items()}


def _projection(
    xp: Any, x1: Any, bounds: Any, project: Callable[[Any], Any] | None
) -> tuple[Any, Any, Callable[[Any], Any]]:
    if project is not None:
        if not callable(project):
            raise TypeError(f"project must be callable, got {type(project).__name__}")
        return None, None, project
    if bounds is None:
        return None, None, lambda x: x
    lower, upper = _bounds_arrays(xp, x1, bounds)
    if bool(xp.any(lower > upper)):
        raise ValueError("bounds: some lower bound exceeds its upper bound")
    return lower, upper, lambda x: xp.minimum(xp.maximum(x, lower), upper)


def _bounds_arrays(xp: Any, x1: Any, bounds: Any) -> tuple[Any, Any]:
    d = x1.shape[0]
    device = array_device(x1)
    inf = float("inf")
    if (
        isinstance(bounds, Sequence)
        and len(bounds) == d
        and all(isinstance(b, Sequence) and len(b) == 2 for b in bounds)
        and not (d == 2 and not isinstance(bounds[0], Sequence))
    ):
        lows = [(-inf if lo is None else float(lo)) for lo, _ in bounds]
        highs = [(inf if hi is None else float(hi)) for _, hi in bounds]
        return (
            xp.asarray(lows, dtype=x1.dtype, device=device),
            xp.asarray(highs, dtype=x1.dtype, device=device),
        )
    if not (isinstance(bounds, Sequence) and len(bounds) == 2):
        raise ValueError(f"bounds must be (lower, upper) or {d} (lo, hi) pairs, got {bounds!r}")
    out = []
    for side, fill in zip(bounds, (-inf, inf)):
        if side is None:
            side = fill
        arr = xp.asarray(side, dtype=x1.dtype, device=device)
        out.append(xp.broadcast_to(arr, (d,)) if arr.ndim == 0 else arr)
        if tuple(out[-1].shape) != (d,):
            raise ValueError(
                f"bounds of level 1 must have shape ({d},), got {tuple(out[-1].shape)}"
            )
    return out[0], out[1]


def _projected_norm(xp: Any, point: Point, projector: Callable[[Any], Any]) -> float:
    return float(xp.max(xp.abs(projector(point.x - point.grad) - point.x)))


def _record(
    history: dict[str, list[Any]],
    point: Point,
    pg: float,
    step: float,
    evaluator: _Evaluator,
    started: float,
) -> None:
    history["fun"].append(point.fun)
    history["grad_norm"].append(pg)
    history["step"].append(step)
    history["inner_nit"].append(evaluator.level_nit())
    history["time"].append(time.perf_counter() - started)


def _intermediate(point: Point, pg: float, nit: int, evaluator: _Evaluator) -> SolveResult:
    return SolveResult(
        x=point.x,
        xs=point.extra.xs,
        fun=point.fun,
        hypergrad=point.grad,
        grad_norm=pg,
        nit=nit,
        level_nit=evaluator.level_nit(),
    )


def _report(verbose: int, bar: Any, nit: int, point: Point, pg: float, step: float) -> None:
    fun = "-" if point.fun is None else f"{point.fun: .6e}"
    line = f"iter {nit:5d}  F1 {fun}  |proj grad| {pg:.3e}  step {step:.3e}"
    logger.debug(line)
    if verbose:
        print(line)
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str(f"|g| {pg:.2e}")


def _progress_bar(progress: bool, total: int) -> Any:
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warn_user("progress=True needs tqdm: pip install tqdm", NestoptWarning)
        return None
    return tqdm(total=total, desc="nestopt.solve", unit="it")
