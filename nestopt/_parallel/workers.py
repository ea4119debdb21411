"""What runs in a `solve_many` worker: one scenario, its BLAS limit, its failure as a result."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from .._errors import NestoptError, Status
from .._levels.problem import Problem
from .._result import SolveResult
from .._solve.solve import solve

__all__ = ["RAISED", "own_start", "solve_one", "user_limit", "worker_environment"]

# The status of a scenario that raised an exception nestopt does not map to a status of its own.
RAISED = Status.RAISED


def own_start(problem: Problem, which: str) -> Any:
    start = getattr(problem, "x0", None)
    if start is None:
        raise TypeError(
            f"{which} is a {type(problem).__name__} without an x0 attribute "
            "(a KnownProblem has one); pass the starts as x0s"
        )
    return start


# -- running ------------------------------------------------------------------


def user_limit(joblib: Any) -> bool:
    """Whether the user set ``parallel_config(inner_max_num_threads=...)`` themselves."""
    active, _ = joblib.parallel.get_active_backend()
    return getattr(active, "inner_max_num_threads", None) is not None


def worker_environment(joblib: Any, threads: int | None) -> Any:
    """Without threadpoolctl, start loky workers with the BLAS thread variables set."""
    if threads is None or importlib.util.find_spec("threadpoolctl") is not None:
        return contextlib.nullcontext()
    active, _ = joblib.parallel.get_active_backend()
    if not getattr(active, "supports_inner_max_num_threads", False):
        return contextlib.nullcontext()
    # A copy keeps the user's backend settings and leaves their instance alone.
    return joblib.parallel_config(backend=copy.copy(active), inner_max_num_threads=threads)


def solve_one(
    source: Any,
    is_factory: bool,
    param: Any,
    x0: Any,
    options: dict[str, Any],
    threads: int | None,
) -> SolveResult:
    """One scenario, in a worker: never raises (except on interrupts)."""
    started = time.perf_counter()
    trace = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _blas_limit(threads):
                problem = source(param) if is_factory else source
                if x0 is None:
                    x0 = own_start(problem, f"factory({param!r})")
                result = solve(problem, x0, **options)
        except Exception as exc:
            trace = traceback.format_exc()
            result = _failed(exc, x0, options, time.perf_counter() - started)
    seen: dict[str, None] = {}
    for record in caught:
        seen.setdefault(f"{record.category.__name__}: {record.message}", None)
    result["warnings"] = list(seen)
    result["traceback"] = trace
    return result


@contextlib.contextmanager
def _blas_limit(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    try:
        import threadpoolctl
    except ImportError:
        yield  # the workers' environment variables do the job (see _worker_environment)
        return
    try:
        # SciPy ships its own OpenBLAS; threadpoolctl limits only libraries already loaded.
        import scipy.linalg  # noqa: F401
    except ImportError:
        pass
    with threadpoolctl.threadpool_limits(limits=threads):
        yield


def _failed(exc: Exception, x0: Any, options: dict[str, Any], seconds: float) -> SolveResult:
    if isinstance(exc, NestoptError) and exc.status is not None:
        status, level = exc.status, exc.level
        message = f"{status.message}: {exc}"
    else:
        status, level = RAISED, getattr(exc, "level", None)
        message = f"failed: the scenario raised {type(exc).__name__}: {exc}"
    xs = tuple(x0) if isinstance(x0, Sequence) else None
    method = options.get("method", "implicit")
    return SolveResult(
        x=xs[0] if xs else None,
        xs=xs,
        fun=None,
        hypergrad=None,
        grad_norm=math.nan,
        success=False,
        status=status,
        message=message,
        failed_level=level,
        nit=0,
        level_nit=(),
        level_solves=(),
        nfev={},
        time={"total": seconds, "lower": 0.0},
        history={},
        method=method,
        curvature=options.get("curvature", "exact") if method == "implicit" else "first_order",
        optimizer=options.get("optimizer"),
        backend=None,
    )
