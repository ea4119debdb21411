"""``solve_many``: many independent solves, in parallel through joblib.

joblib (and threadpoolctl, tqdm) are imported inside the functions, so that
``import nestopt`` stays light; the parallel extra installs them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import ConvergenceWarning, warn_user
from .._extras import require
from .._levels.problem import Problem
from .._result import SolveResult
from .._solve.report import progress_bar
from .._solve.solve import solve
from .workers import (
    in_process,
    own_start,
    serialize_tasks,
    solve_one,
    solve_serialized,
    unsendable,
    user_limit,
    worker_environment,
)

__all__ = ["solve_many"]


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
    The scenarios run through ``joblib.Parallel`` on the joblib backend in
    force: in separate processes by default (loky), on threads, in a
    ``multiprocessing`` pool, on a Dask cluster inside ``with
    joblib.parallel_config(backend="dask"):`` once a
    ``dask.distributed.Client`` is connected, or on Ray after
    ``ray.util.joblib.register_ray()``. When the scenarios leave this
    process, each is pickled here with cloudpickle, so problems built from
    lambdas and closures travel on every backend. The results stream back as
    they finish where the backend can return a generator, and all at once
    where it cannot (the ``multiprocessing`` and Ray backends).

    A scenario never stops the sweep. A `NestoptError` that has a status
    (a lower level not positive definite, say) gives a result with that
    status, as `solve` would; any other exception (a bad start, a callable
    that raises) gives a result with ``success=False``, status
    `Status.RAISED`, a message naming the exception's type and text, and
    the ``traceback``. A scenario that cannot be pickled (its callables
    close over a lock, say) gets status `Status.RAISED` and a message
    naming its index and the reason, and is not run; the others are.
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
    return run_tasks(tasks, n_jobs, progress, blas_threads, solve_options, warn=True)


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
        return [(problem, False, None, start) for start in check_starts(x0s, problem.n)]
    if isinstance(problem, Sequence) and not isinstance(problem, str):
        if params is not None:
            raise TypeError("params goes with a problem factory, not with a list of problems")
        for i, item in enumerate(problem):
            if not isinstance(item, Problem):
                raise TypeError(
                    f"problem[{i}] must be a nestopt.Problem, got {type(item).__name__}"
                )
        if x0s is None:
            starts = [own_start(item, f"problem[{i}]") for i, item in enumerate(problem)]
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


def check_starts(x0s: Any, n: int) -> list[Any]:
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


def _serialized_jobs(
    joblib: Any,
    tasks: list[tuple[Any, bool, Any, Any]],
    options: dict[str, Any],
    threads: int | None,
    results: list[SolveResult | None],
) -> tuple[list[Any], list[int]]:
    """The jobs of the scenarios that pickle; the others' results filled in now."""
    payloads, reasons, options_bytes = serialize_tasks(joblib, tasks, options)
    jobs, sent = [], []
    for index, (task, payload, reason) in enumerate(zip(tasks, payloads, reasons)):
        if payload is None:
            results[index] = unsendable(index, reason or "it could not be pickled", task, options)
        else:
            jobs.append(joblib.delayed(solve_serialized)(*payload, options_bytes, threads))
            sent.append(index)
    return jobs, sent


def run_tasks(
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
    joblib = require("joblib", "solve_many")

    threads = blas_threads
    if threads is None and joblib.effective_n_jobs(n_jobs) != 1 and not user_limit(joblib):
        threads = 1
    bar = progress_bar(progress, len(tasks), "nestopt.solve_many", "scenario")
    results: list[SolveResult | None] = [None] * len(tasks)
    try:
        with worker_environment(joblib, threads):
            if in_process(joblib, n_jobs):
                jobs = [joblib.delayed(solve_one)(*task, solve_options, threads) for task in tasks]
                sent = list(range(len(tasks)))
            else:
                jobs, sent = _serialized_jobs(joblib, tasks, solve_options, threads, results)
                if bar is not None:
                    bar.update(len(tasks) - len(sent))
            # Results stream back (and the bar moves) as they finish where the backend can
            # return a generator; joblib's "multiprocessing" and Ray's backends return a list.
            active, _ = joblib.parallel.get_active_backend()
            streams = getattr(active, "supports_return_generator", False)
            parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator" if streams else "list")
            for index, result in zip(sent, parallel(jobs)):
                results[index] = result
                if bar is not None and streams:
                    bar.update(1)
            if bar is not None and not streams:
                bar.update(len(sent))
    finally:
        if bar is not None:
            bar.close()
    done = [result for result in results if result is not None]
    assert len(done) == len(results), "every scenario has a result (run or refused)"
    if warn:
        failed = [i for i, result in enumerate(done) if not result.success]
        if failed:
            warn_user(
                f"solve_many: {len(failed)} of {len(results)} scenarios did not succeed; "
                f"the first, scenario {failed[0]}: {done[failed[0]].message}. Each "
                "result's status, message, warnings and traceback say why",
                ConvergenceWarning,
            )
    return done
