"""``multistart``: several starts of one problem through `solve_many`, and the best of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._backend.host import to_numpy
from .._backend.selection import get_backend
from .._deprecation import renamed_keywords
from .._errors import ConvergenceWarning, warn_user
from .._extras import require
from .._levels.problem import Problem
from .._result import Result, SolveResult
from .many import check_starts, run_tasks

__all__ = ["multistart", "MultistartResult"]


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
    agree_xtol, agree_ftol : float
        The agreement tolerances used.
    sampling : str or None
        How the level-1 starts were drawn (``'sobol'``, ``'lhs'`` or
        ``'uniform'``); None when they were given as ``x0s``.
    x0s : list of tuple of arrays
        The starts, in order.
    results : list of SolveResult
        Every start's result, in order (as from `solve_many`).
    """


@renamed_keywords(box="bounds", xtol="agree_xtol", ftol="agree_ftol")
def multistart(
    problem: Problem,
    x0s: Sequence[Sequence[Any]] | None = None,
    *,
    n_starts: int | None = None,
    bounds: tuple[Any, Any] | None = None,
    seed: Any = None,
    sampling: str = "auto",
    x0: Sequence[Any] | None = None,
    agree_xtol: float = 1e-4,
    agree_ftol: float = 1e-6,
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
        Instead of ``x0s``: draw this many level-1 starts in ``bounds``.
    bounds : (lower, upper), optional
        Bounds of the draws: floats or arrays of shape ``(d_1,)``, finite.
    seed : int, numpy.random.Generator or None
        Seed of ``numpy.random.default_rng``, the generator of the draws
        (and of the Sobol scrambling or the Latin hypercube's permutations).
    sampling : {'auto', 'sobol', 'lhs', 'uniform'}
        How ``n_starts`` points cover ``bounds``: ``'sobol'``, the first
        ``n_starts`` points of a scrambled Sobol' sequence
        (``scipy.stats.qmc.Sobol``; a power of 2 keeps its balance);
        ``'lhs'``, a Latin hypercube (``scipy.stats.qmc.LatinHypercube``:
        each coordinate has one start in each of ``n_starts`` equal slices);
        ``'uniform'``, independent uniform draws. Both quasi-random designs
        cover a box more evenly than uniform draws, which leave gaps and
        clumps. ``'auto'`` (the default) is ``'sobol'`` when SciPy is
        installed and ``'uniform'`` otherwise; ``'sobol'`` and ``'lhs'``
        need SciPy (the ``scipy`` extra).
    x0 : sequence of n arrays, optional
        The start of the lower levels (and the arrays' backend, dtype and
        device) under the drawn ``x_1``; default ``problem.x0`` when the
        problem carries one, otherwise zeros on the backend in force.
    agree_xtol, agree_ftol : float
        A successful start agrees with the best when ``max|x_1 - x_1^best|
        <= agree_xtol (1 + max|x_1^best|)`` and ``|F_1 - F_1^best| <= agree_ftol (1 +
        |F_1^best|)``.
    n_jobs, progress, blas_threads, **solve_options
        As in `solve_many`.

    Returns
    -------
    MultistartResult
        ``x``, ``fun``, ``best``, ``best_index``, ``n_starts``,
        ``n_success``, ``n_agree``, ``agree``, ``agree_xtol``, ``agree_ftol``, ``x0s``,
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
    >>> found = nestopt.multistart(quad(2, 2, seed=0), n_starts=4, bounds=(-1, 1), seed=0)
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
        if n_starts is not None or bounds is not None:
            raise ValueError("pass either x0s or n_starts with bounds, not both")
        starts = [tuple(start) for start in check_starts(x0s, problem.n)]
    else:
        if n_starts is None or bounds is None:
            raise ValueError("multistart needs x0s, or n_starts and bounds to draw level-1 starts")
        sampling = _sampling(sampling)
        starts = _draw_starts(problem, n_starts, bounds, seed, x0, sampling)
    tasks = [(problem, False, None, start) for start in starts]
    results = run_tasks(tasks, n_jobs, progress, blas_threads, solve_options, warn=False)
    found = _rank(results, starts, agree_xtol, agree_ftol)
    found["sampling"] = None if x0s is not None else sampling
    return found


# -- scenarios ----------------------------------------------------------------


_SAMPLINGS = ("auto", "sobol", "lhs", "uniform")


def _sampling(sampling: Any) -> str:
    """The design to draw with: ``'auto'`` resolved by whether SciPy is installed."""
    if sampling not in _SAMPLINGS:
        raise ValueError(f"sampling must be one of {_SAMPLINGS}, got {sampling!r}")
    if sampling == "auto":
        try:
            import scipy.stats.qmc  # noqa: F401
        except ImportError:
            return "uniform"
        return "sobol"
    if sampling != "uniform":
        require("scipy.stats.qmc", f"multistart(sampling={sampling!r})")
    return str(sampling)


def unit_points(sampling: str, n: int, d: int, seed: Any) -> Any:
    """``n`` points of the design in the unit cube ``[0, 1)^d``, shape ``(n, d)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if sampling == "uniform":
        return rng.random((n, d))
    import inspect

    from scipy.stats import qmc

    design = qmc.Sobol if sampling == "sobol" else qmc.LatinHypercube
    # SciPy 1.15 named the generator argument rng (seed before, deprecated after).
    key = "rng" if "rng" in inspect.signature(design).parameters else "seed"
    sampler = design(d, scramble=True, **{key: rng})
    if sampling == "lhs":
        return sampler.random(n)
    # The first n points of the 2^m-point net: what random(n) draws, without its warning
    # that n is not a power of 2.
    return sampler.random_base2(max(0, math.ceil(math.log2(n))))[:n]


def _draw_starts(
    problem: Problem,
    n_starts: int,
    box: Any,
    seed: Any,
    x0: Sequence[Any] | None,
    sampling: str,
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
        raise ValueError(f"bounds must be (lower, upper), got {box!r}")
    try:
        lower, upper = (np.broadcast_to(np.asarray(side, dtype=float), (d1,)) for side in box)
    except ValueError:
        raise ValueError(
            f"bounds sides must be floats or arrays of shape ({d1},), got {box!r}"
        ) from None
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)) and np.all(lower <= upper)):
        raise ValueError(f"bounds must be finite with lower <= upper, got {box!r}")
    draws = lower + unit_points(sampling, n_starts, d1, seed) * (upper - lower)
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
        sampling=None,
        fun=None,
        best=None,
        best_index=None,
        n_starts=len(results),
        n_success=len(ok),
        n_agree=0,
        agree=[],
        agree_xtol=xtol,
        agree_ftol=ftol,
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
