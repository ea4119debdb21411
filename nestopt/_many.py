"""``solve_many`` and ``multistart``: many independent solves, in parallel through joblib.

joblib (and threadpoolctl, tqdm) are imported inside the functions, so that
``import nestopt`` stays light; the parallel extra installs them.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ._backend import get_backend, to_numpy
from ._errors import ConvergenceWarning, NestoptError, NestoptWarning, Status, warn_user
from ._problem import Problem
from ._result import Result, SolveResult
from ._solve import solve

__all__ = ["solve_many", "multistart", "MultistartResult"]

# The status of a scenario that raised an exception nestopt does not map to a
# status of its own. Status has no member for it yet; CALLBACK ("user code
# stopped the run") is the nearest until Status.RAISED exists.
RAISED = getattr(Status, "RAISED", Status.CALLBACK)

_SOLVE_KEYWORDS = tuple(
    name for name in inspect.signature(solve).parameters if name not in ("problem", "x0")
)


def solve_many(
    problem: Problem | Sequence[Problem] | Callable[[Any], Problem],
    x0s: Sequence[Sequence[Any]] | None = None,
    *,
    params: Sequence[Any] | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    blas_threads: int | None = None,
    **solve_options: Any,
) -> list[SolveResult]:
    """Solve many independent scenarios, in parallel, with `solve`.

    A scenario is a problem and a start; there are three ways to list them:

    - ``solve_many(problem, x0s)``: one problem, one scenario per start;
    - ``solve_many([problem_1, ..., problem_m], x0s=None)``: one scenario per
      problem, each from its own ``x0`` (a `KnownProblem`)
      or from the matching entry of ``x0s``;
    - ``solve_many(factory, params=[p_1, ..., p_m], x0s=None)``: scenario
      ``i`` solves ``factory(p_i)``, which returns a `Problem` (its ``x0``
      is the start when ``x0s`` is None). The factory runs in the worker,
      so only it and ``p_i`` travel there, not the problem's arrays.

    Parameters
    ----------
    problem : Problem, sequence of Problem, or callable
        What to solve, as in the three forms above.
    x0s : sequence of starts, optional
        Each start is a sequence of ``n`` per-level arrays, as ``x0`` of
        `solve`. Required with one problem; otherwise None (each problem's
        own ``x0``) or one start per problem or parameter.
    params : sequence, optional
        Parameters of the factory, one per scenario (factory form only).
    n_jobs : int, optional
        Number of parallel workers; ``-1`` uses every core. None defers to
        joblib: 1 unless ``joblib.parallel_config`` says otherwise (and
        every worker of a Dask cluster under ``backend="dask"``).
    progress : bool
        Show a tqdm bar that counts finished scenarios (needs tqdm).
    blas_threads : int, optional
        Threads each worker's BLAS (and OpenMP) may use while it solves.
        None means 1 when more than one worker runs, so that ``n_jobs``
        workers do not oversubscribe the cores; no limit when the scenarios
        run one by one in this process, or when ``joblib.parallel_config``
        sets ``inner_max_num_threads`` (that setting then stands).
    **solve_options
        Passed to every `solve` call (``method``, ``options``, ``bounds``,
        ...). ``progress`` here is the sweep's bar, not each solve's.

    Returns
    -------
    list of SolveResult
        One per scenario, in input order. Besides the fields of `solve`,
        each has ``warnings`` (list of str, ``'Category: text'``, each
        distinct warning of the scenario once) and ``traceback`` (str, or
        None when the scenario raised nothing).

    Warns
    -----
    ConvergenceWarning
        Once, when any scenario did not succeed; it counts them and quotes
        the first one's message. The scenarios' own warnings are collected
        into their results instead of being shown.

    Notes
    -----
    The scenarios run through ``joblib.Parallel``: in separate processes by
    default (loky, which pickles with cloudpickle, so problems built from
    lambdas and closures travel), or on a Dask cluster inside ``with
    joblib.parallel_config(backend="dask"):`` once a
    ``dask.distributed.Client`` is connected.

    A scenario never stops the sweep. A `NestoptError` that has a status
    (a lower level not positive definite, say) gives a result with that
    status, as `solve` would; any other exception (a bad start, a callable
    that raises) gives a result with ``success=False``, status ``RAISED``
    (for now `Status.CALLBACK`, until `Status` has a member of its own), a
    message naming the exception's type and text, and the ``traceback``.
    ``KeyboardInterrupt`` still stops everything.

    BLAS threads: with threadpoolctl installed, each worker runs its solve
    inside ``threadpoolctl.threadpool_limits(blas_threads)``, which covers
    every backend and NumPy's and SciPy's separate OpenBLAS copies (SciPy's
    LAPACK is imported first so that the limit reaches it). Without
    threadpoolctl, loky workers are started with ``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` (and the like) set to
    ``blas_threads``, through joblib's ``inner_max_num_threads``; Dask's
    nannies already start their workers with these set to 1.

    Examples
    --------
    >>> import numpy as np, nestopt
    >>> from nestopt.problems import quad
    >>> problem = quad(2, 3, seed=0)
    >>> starts = [[np.full(3, s), np.zeros(3)] for s in (-1.0, 0.0, 1.0)]
    >>> results = nestopt.solve_many(problem, starts, n_jobs=1)
    >>> [r.success for r in results]
    [True, True, True]
    >>> bool(np.allclose(results[0].x, results[2].x))
    True
    """
    tasks = _scenarios(problem, x0s, params)
    return _run(tasks, n_jobs, progress, blas_threads, solve_options, warn=True)


class MultistartResult(Result):
    """The outcome of `multistart`: the best of several solves and how many agree.

    Attributes
    ----------
    x, fun : array (d_1,) and float, or None
        Level 1's solution and ``F_1`` there of the best start (None when no
        start succeeded).
    best : SolveResult or None
        The successful result with the lowest ``fun``.
    best_index : int or None
        Its position in ``x0s`` and ``results``.
    n_starts, n_success, n_agree : int
        Starts run, starts that succeeded, successful starts that agree with
        the best (itself included).
    agree : list of int
        Indices of the agreeing starts.
    xtol, ftol : float
        The agreement tolerances used.
    x0s : list of tuple of arrays
        The starts, in order.
    results : list of SolveResult
        Every start's result, in order (as from `solve_many`).
    """


def multistart(
    problem: Problem,
    x0s: Sequence[Sequence[Any]] | None = None,
    *,
    n_starts: int | None = None,
    box: tuple[Any, Any] | None = None,
    seed: Any = None,
    x0: Sequence[Any] | None = None,
    xtol: float = 1e-4,
    ftol: float = 1e-6,
    n_jobs: int | None = None,
    progress: bool = False,
    blas_threads: int | None = None,
    **solve_options: Any,
) -> MultistartResult:
    """Solve from several level-1 starts and keep the best: a guard against local minima.

    The top-level value function ``F_1(x_1)`` need not be convex, so `solve`
    finds a local minimum that depends on the start. ``multistart`` runs
    `solve_many` from several starts and returns the successful result with
    the lowest ``F_1``, with counts that say how often it was found.

    Parameters
    ----------
    problem : Problem
        Level 1 must have a ``value`` callable: starts are ranked by it.
    x0s : sequence of starts, optional
        Explicit starts, each a sequence of ``n`` per-level arrays.
    n_starts : int, optional
        Instead of ``x0s``: draw this many level-1 starts uniformly in ``box``.
    box : (lower, upper), optional
        Bounds of the draws: floats or arrays of shape ``(d_1,)``, finite.
    seed : int, numpy.random.Generator or None
        Seed of ``numpy.random.default_rng`` for the draws.
    x0 : sequence of n arrays, optional
        The start of the lower levels (and the arrays' backend, dtype and
        device) under the drawn ``x_1``; default ``problem.x0`` when the
        problem carries one, otherwise zeros on the backend in force.
    xtol, ftol : float
        A successful start agrees with the best when ``max|x_1 - x_1^best|
        <= xtol (1 + max|x_1^best|)`` and ``|F_1 - F_1^best| <= ftol (1 +
        |F_1^best|)``.
    n_jobs, progress, blas_threads, **solve_options
        As in `solve_many`.

    Returns
    -------
    MultistartResult
        ``x``, ``fun``, ``best``, ``best_index``, ``n_starts``,
        ``n_success``, ``n_agree``, ``agree``, ``xtol``, ``ftol``, ``x0s``,
        ``results``.

    Warns
    -----
    ConvergenceWarning
        When no start succeeded (``best`` is then None). Failed starts among
        successful ones are normal and only counted.

    Notes
    -----
    A low ``n_agree / n_success`` says the basin of the best solution is
    small: more starts, or a box that better covers the region of interest,
    may find a better one. Agreement is judged on level 1 only; the lower
    levels follow from ``x_1`` when their solutions are unique.

    Examples
    --------
    >>> import nestopt
    >>> from nestopt.problems import quad
    >>> found = nestopt.multistart(quad(2, 2, seed=0), n_starts=4, box=(-1, 1), seed=0)
    >>> found.n_success, found.n_agree
    (4, 4)
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"multistart takes one Problem, got {type(problem).__name__}")
    if problem.levels[0].value is None:
        raise ValueError(
            "multistart ranks the starts by F_1, but level 1 has no value callable; "
            "give nestopt.Level(value=...) for level 1"
        )
    if x0s is not None:
        if n_starts is not None or box is not None:
            raise ValueError("pass either x0s or n_starts with box, not both")
        starts = [tuple(start) for start in _check_starts(x0s, problem.n)]
    else:
        if n_starts is None or box is None:
            raise ValueError("multistart needs x0s, or n_starts and box to draw level-1 starts")
        starts = _draw_starts(problem, n_starts, box, seed, x0)
    tasks = [(problem, False, None, start) for start in starts]
    results = _run(tasks, n_jobs, progress, blas_threads, solve_options, warn=False)
    return _rank(results, starts, xtol, ftol)


# -- scenarios ----------------------------------------------------------------


def _scenarios(
    problem: Any, x0s: Any, params: Sequence[Any] | None
) -> list[tuple[Any, bool, Any, Any]]:
    """``(problem or factory, is_factory, param, x0)`` for every scenario."""
    if isinstance(problem, Problem):
        if params is not None:
            raise TypeError("params goes with a problem factory, not with one Problem")
        if x0s is None:
            raise TypeError(
                "solve_many(problem, x0s) needs the starts x0s with one problem; "
                "to solve it once, use nestopt.solve"
            )
        return [(problem, False, None, start) for start in _check_starts(x0s, problem.n)]
    if isinstance(problem, Sequence) and not isinstance(problem, str):
        if params is not None:
            raise TypeError("params goes with a problem factory, not with a list of problems")
        for i, item in enumerate(problem):
            if not isinstance(item, Problem):
                raise TypeError(
                    f"problem[{i}] must be a nestopt.Problem, got {type(item).__name__}"
                )
        if x0s is None:
            starts = [_own_start(item, f"problem[{i}]") for i, item in enumerate(problem)]
        else:
            starts = _matching(x0s, len(problem), "problems")
        return [(item, False, None, start) for item, start in zip(problem, starts)]
    if callable(problem):
        if params is None:
            raise TypeError(
                "a callable problem is a factory: pass its parameters, "
                "solve_many(factory, params=[p1, p2, ...])"
            )
        params = list(params)
        starts = [None] * len(params) if x0s is None else _matching(x0s, len(params), "params")
        return [(problem, True, param, start) for param, start in zip(params, starts)]
    raise TypeError(
        "solve_many takes a Problem, a sequence of Problem, or a factory "
        f"param -> Problem; got {type(problem).__name__}"
    )


def _check_starts(x0s: Any, n: int) -> list[Any]:
    try:
        starts = list(x0s)
    except TypeError:
        raise TypeError(f"x0s must be a sequence of starts, got {type(x0s).__name__}") from None
    for i, start in enumerate(starts):
        if hasattr(start, "shape") or not isinstance(start, Sequence) or len(start) != n:
            got = type(start).__name__
            if isinstance(start, Sequence) and not hasattr(start, "shape"):
                got += f" of {len(start)}"
            raise TypeError(
                f"x0s[{i}] must be a start: a sequence of {n} per-level arrays; got {got}. "
                "x0s lists starts, so one start is passed as [x0]"
            )
    return starts


def _matching(x0s: Any, count: int, what: str) -> list[Any]:
    starts = list(x0s)
    if len(starts) != count:
        raise ValueError(f"x0s has {len(starts)} starts for {count} {what}; give one each")
    return starts


def _own_start(problem: Problem, which: str) -> Any:
    start = getattr(problem, "x0", None)
    if start is None:
        raise TypeError(
            f"{which} is a {type(problem).__name__} without an x0 attribute "
            "(a KnownProblem has one); pass the starts as x0s"
        )
    return start


# -- running ------------------------------------------------------------------


def _run(
    tasks: list[tuple[Any, bool, Any, Any]],
    n_jobs: int | None,
    progress: bool,
    blas_threads: int | None,
    solve_options: dict[str, Any],
    *,
    warn: bool,
) -> list[SolveResult]:
    unknown = sorted(set(solve_options) - set(_SOLVE_KEYWORDS))
    if unknown:
        raise TypeError(
            f"unknown solve option(s) {', '.join(map(repr, unknown))}; known: "
            + ", ".join(name for name in _SOLVE_KEYWORDS if name != "progress")
        )
    if blas_threads is not None and (
        isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1
    ):
        raise ValueError(f"blas_threads must be a positive int or None, got {blas_threads!r}")
    if not tasks:
        return []
    try:
        import joblib
    except ImportError:
        raise ImportError(
            "solve_many needs joblib: pip install joblib (or nestopt[parallel])"
        ) from None

    threads = blas_threads
    if threads is None and joblib.effective_n_jobs(n_jobs) != 1 and not _user_limit(joblib):
        threads = 1
    bar = _progress_bar(progress, len(tasks))
    results: list[SolveResult] = []
    try:
        with _worker_environment(joblib, threads):
            parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
            for result in parallel(
                joblib.delayed(_solve_one)(*task, solve_options, threads) for task in tasks
            ):
                results.append(result)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if warn:
        failed = [i for i, result in enumerate(results) if not result.success]
        if failed:
            warn_user(
                f"solve_many: {len(failed)} of {len(results)} scenarios did not succeed; "
                f"the first, scenario {failed[0]}: {results[failed[0]].message}. Each "
                "result's status, message, warnings and traceback say why",
                ConvergenceWarning,
            )
    return results


def _user_limit(joblib: Any) -> bool:
    """Whether the user set ``parallel_config(inner_max_num_threads=...)`` themselves."""
    active, _ = joblib.parallel.get_active_backend()
    return getattr(active, "inner_max_num_threads", None) is not None


def _worker_environment(joblib: Any, threads: int | None) -> Any:
    """Without threadpoolctl, start loky workers with the BLAS thread variables set."""
    if threads is None or importlib.util.find_spec("threadpoolctl") is not None:
        return contextlib.nullcontext()
    active, _ = joblib.parallel.get_active_backend()
    if not getattr(active, "supports_inner_max_num_threads", False):
        return contextlib.nullcontext()
    # A copy keeps the user's backend settings and leaves their instance alone.
    return joblib.parallel_config(backend=copy.copy(active), inner_max_num_threads=threads)


def _solve_one(
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
                    x0 = _own_start(problem, f"factory({param!r})")
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


def _progress_bar(progress: bool, total: int) -> Any:
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warn_user("progress=True needs tqdm: pip install tqdm", NestoptWarning)
        return None
    return tqdm(total=total, desc="nestopt.solve_many", unit="scenario")


# -- multistart ---------------------------------------------------------------


def _draw_starts(
    problem: Problem, n_starts: int, box: Any, seed: Any, x0: Sequence[Any] | None
) -> list[tuple[Any, ...]]:
    import array_api_compat
    import numpy as np

    if isinstance(n_starts, bool) or not isinstance(n_starts, int) or n_starts < 1:
        raise ValueError(f"n_starts must be a positive int, got {n_starts!r}")
    base = x0 if x0 is not None else getattr(problem, "x0", None)
    if base is None:
        chosen = get_backend()
        base = [chosen.asarray(np.zeros(d), dtype=chosen.xp.float64) for d in problem.sizes]
    base = tuple(base)
    d1 = problem.sizes[0]
    if not (isinstance(box, Sequence) and len(box) == 2):
        raise ValueError(f"box must be (lower, upper), got {box!r}")
    try:
        lower, upper = (np.broadcast_to(np.asarray(side, dtype=float), (d1,)) for side in box)
    except ValueError:
        raise ValueError(
            f"box sides must be floats or arrays of shape ({d1},), got {box!r}"
        ) from None
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)) and np.all(lower <= upper)):
        raise ValueError(f"box must be finite with lower <= upper, got {box!r}")
    draws = np.random.default_rng(seed).uniform(lower, upper, size=(n_starts, d1))
    xp = array_api_compat.array_namespace(base[0])
    device = array_api_compat.device(base[0])
    return [
        (xp.asarray(row.tolist(), dtype=base[0].dtype, device=device), *base[1:]) for row in draws
    ]


def _rank(
    results: list[SolveResult], starts: list[tuple[Any, ...]], xtol: float, ftol: float
) -> MultistartResult:
    import numpy as np

    ok = [
        i
        for i, result in enumerate(results)
        if result.success and result.fun is not None and math.isfinite(result.fun)
    ]
    found = MultistartResult(
        x=None,
        fun=None,
        best=None,
        best_index=None,
        n_starts=len(results),
        n_success=len(ok),
        n_agree=0,
        agree=[],
        xtol=xtol,
        ftol=ftol,
        x0s=starts,
        results=results,
    )
    if not ok:
        warn_user(
            f"multistart: none of the {len(results)} starts succeeded; the first failed "
            f"with: {results[0].message}"
            if results
            else "multistart: no starts",
            ConvergenceWarning,
        )
        return found
    best_index = min(ok, key=lambda i: results[i].fun)
    best = results[best_index]
    x_best = np.asarray(to_numpy(best.x))
    x_scale = xtol * (1.0 + float(np.max(np.abs(x_best), initial=0.0)))
    f_scale = ftol * (1.0 + abs(best.fun))
    agree = [
        i
        for i in ok
        if float(np.max(np.abs(np.asarray(to_numpy(results[i].x)) - x_best), initial=0.0))
        <= x_scale
        and abs(results[i].fun - best.fun) <= f_scale
    ]
    found.update(
        x=best.x, fun=best.fun, best=best, best_index=best_index, n_agree=len(agree), agree=agree
    )
    return found
