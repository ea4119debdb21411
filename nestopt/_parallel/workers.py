"""What runs in a `solve_many` worker: one scenario, its BLAS limit, its failure as a result."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import pickle
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from .._errors import NestoptError, Status
from .._levels.problem import Problem
from .._result import SolveResult
from .._solve.solve import solve

__all__ = [
    "RAISED",
    "in_process",
    "own_start",
    "serialize_tasks",
    "solve_one",
    "solve_serialized",
    "unsendable",
    "user_limit",
    "worker_environment",
]

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


def in_process(joblib: Any, n_jobs: int | None) -> bool:
    """Whether joblib will run the scenarios in this process (sequentially or on threads)."""
    active, _ = joblib.parallel.get_active_backend()
    if getattr(active, "uses_threads", False) or isinstance(
        active, joblib.parallel.SequentialBackend
    ):
        return True
    # joblib's own process backends fall back to running in this process at one job; a
    # cluster backend (Dask, Ray) sends even a single job to its workers.
    local = (joblib.parallel.LokyBackend, joblib.parallel.MultiprocessingBackend)
    return isinstance(active, local) and joblib.effective_n_jobs(n_jobs) == 1


def _cloudpickle(joblib: Any) -> Any:
    try:
        import cloudpickle
    except ImportError:  # joblib ships its own copy
        from joblib.externals import cloudpickle
    return cloudpickle


def serialize_tasks(
    joblib: Any, tasks: list[tuple[Any, bool, Any, Any]], options: dict[str, Any]
) -> tuple[list[tuple[bytes, bytes] | None], list[str | None], bytes]:
    """Each scenario as bytes, pickled here with cloudpickle.

    Whatever backend then carries the bytes (the standard pickler of joblib's
    "multiprocessing" backend, which refuses lambdas, Ray's, Dask's), the worker
    gets exactly what this process had. A scenario that cannot be pickled gets
    None and the reason, so that it alone fails. A problem or factory shared by
    many scenarios is pickled once.
    """
    cloudpickle = _cloudpickle(joblib)
    try:
        options_bytes = cloudpickle.dumps(options)
    except Exception as exc:
        raise TypeError(
            "solve_many: the solve options cannot be sent to the worker processes "
            f"({type(exc).__name__}: {exc}); pass options that pickle, or run the "
            "scenarios in this process (n_jobs=1, or joblib.parallel_config(backend="
            '"threading"))'
        ) from None
    sources: dict[int, bytes | str] = {}
    payloads: list[tuple[bytes, bytes] | None] = []
    reasons: list[str | None] = []
    for source, is_factory, param, x0 in tasks:
        key = id(source)
        if key not in sources:
            try:
                sources[key] = cloudpickle.dumps(source)
            except Exception as exc:
                what = "factory" if is_factory else "problem"
                sources[key] = f"its {what} cannot be pickled ({type(exc).__name__}: {exc})"
        source_bytes = sources[key]
        if isinstance(source_bytes, str):
            payloads.append(None)
            reasons.append(source_bytes)
            continue
        try:
            rest = cloudpickle.dumps((is_factory, param, x0))
        except Exception as exc:
            what = "parameter" if is_factory else "start"
            payloads.append(None)
            reasons.append(f"its {what} cannot be pickled ({type(exc).__name__}: {exc})")
            continue
        payloads.append((source_bytes, rest))
        reasons.append(None)
    return payloads, reasons, options_bytes


def unsendable(
    index: int, reason: str, task: tuple[Any, bool, Any, Any], options: dict[str, Any]
) -> SolveResult:
    """The `RAISED` result of a scenario that could not be sent to a worker."""
    message = (
        f"failed: scenario {index} could not be sent to a worker process: {reason}. "
        "Build it from picklable parts (cloudpickle sends lambdas and closures, but not "
        "locks, open files or connections), or run in this process with n_jobs=1"
    )
    result = _failed(RuntimeError(message), task[3], options, 0.0)
    result.update(message=message, warnings=[], traceback=None)
    return result


def solve_serialized(
    source_bytes: bytes, task_bytes: bytes, options_bytes: bytes, threads: int | None
) -> SolveResult:
    """`solve_one` on a scenario serialized by `serialize_tasks`, in a worker."""
    started = time.perf_counter()
    try:
        # cloudpickle's output loads with the standard unpickler (cloudpickle is imported
        # by it as needed); a worker without a module the scenario uses fails here.
        source = pickle.loads(source_bytes)
        is_factory, param, x0 = pickle.loads(task_bytes)
        options = pickle.loads(options_bytes)
    except Exception as exc:
        result = _failed(exc, None, {}, time.perf_counter() - started)
        message = (
            "failed: the worker could not load the scenario "
            f"({type(exc).__name__}: {exc}); install what it imports on the workers"
        )
        result.update(message=message, warnings=[], traceback=traceback.format_exc())
        return result
    return solve_one(source, is_factory, param, x0, options, threads)


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
