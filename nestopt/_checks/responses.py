"""``check_responses``: would a follower deviate? Re-solve each lower level from spread starts.

nestopt's Newton solves find a *local* minimizer of each lower level, and
cannot know whether it is global. A follower with several minima may have
been solved on a branch that is not its best response: the leader's answer
is then wrong although every tolerance was met. This check re-solves each
lower level at the final point from several starts and reports any that
reaches a lower objective value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend.host import to_numpy
from .._errors import NestoptError
from .._levels.problem import Problem
from .._methods.run import split_keywords, start_run
from .._result import Result

__all__ = ["check_responses"]


def check_responses(
    problem: Problem,
    result: Any,
    method: Any = "implicit",
    *,
    starts: int = 8,
    spread: float = 1.0,
    seed: int = 0,
    rtol: float | None = None,
    **keywords: Any,
) -> Result:
    """Re-solve every lower level from spread starts; report where a follower would deviate.

    For each level ``k = 2..n``, with ``x_<k`` fixed at the point, level
    ``k`` (and the levels below it, as responses) is solved again from
    ``starts`` points ``x_k + spread * s_k * u``, ``u`` uniform in
    ``[-1, 1]^{d_k}`` and ``s_k = max(|x_k|_inf, 1)``. A start that ends at
    ``f_k`` lower than at the point by more than ``rtol`` relative is a
    deviation: the point's level ``k`` is not its best response there.

    Parameters
    ----------
    problem : Problem
        Lower levels need their ``value`` callable.
    result : SolveResult, BestResponse or sequence of arrays
        The point to check (its ``xs``).
    method, **keywords
        How the lower levels are solved, as in `best_response`.
    starts : int
        Starts per lower level.
    spread : float
        Radius of the starts, relative to the size of each level's variable.
    seed : int
        Seed of the starts.
    rtol : float, optional
        Relative decrease that counts (default ``sqrt(eps)``).

    Returns
    -------
    Result
        ``ok`` (no deviation), ``deviations`` (one dict per deviating start:
        ``level``, ``start``, ``value_at_point``, ``value_found``, ``gap``,
        ``x_found``), ``failed_starts`` (starts whose solve failed, with the
        error) and ``summary``.
    """
    xs = getattr(result, "xs", result)
    if isinstance(result, dict) and "xs" in result:
        xs = result["xs"]
    if not isinstance(xs, Sequence):
        raise TypeError("result must be a SolveResult, a BestResponse or a sequence of arrays")
    for k in range(2, problem.n + 1):
        if problem.levels[k - 1].value is None:
            raise ValueError(f"check_responses needs the value callable of {problem.describe(k)}")
    method_keywords, run_keywords = split_keywords(keywords)
    run = start_run(problem, xs, method, method_keywords, **run_keywords)
    if not hasattr(run.engine, "nest"):
        raise ValueError("check_responses re-solves the lower levels: use the implicit method")
    xp = run.xp
    rtol = math.sqrt(float(xp.finfo(run.xs[0].dtype).eps)) if rtol is None else rtol
    rng = np.random.default_rng(seed)
    engine = run.engine
    point = engine.respond(run.xs).xs
    deviations, failed = [], []
    for k in range(2, problem.n + 1):
        at_point = float(run.oracles.value(k, point))
        x_k = to_numpy(point[k - 1])
        scale = spread * max(float(np.max(np.abs(x_k))), 1.0)
        for index in range(starts):
            moved = x_k + scale * rng.uniform(-1.0, 1.0, x_k.shape)
            start = list(point)
            start[k - 1] = xp.asarray(moved, dtype=point[0].dtype, device=run.device)
            try:
                found = engine.nest.respond(k - 1, tuple(start)).xs
            except NestoptError as exc:
                failed.append({"level": k, "start": index, "error": str(exc)})
                continue
            value = float(run.oracles.value(k, found))
            gap = at_point - value
            if gap > rtol * max(abs(at_point), abs(value), 1e-300):
                deviations.append(
                    {
                        "level": k,
                        "start": index,
                        "value_at_point": at_point,
                        "value_found": value,
                        "gap": gap,
                        "x_found": found[k - 1],
                    }
                )
    return Result(
        ok=not deviations,
        deviations=deviations,
        failed_starts=failed,
        summary=_summary(problem, deviations, failed, starts),
    )


def _summary(
    problem: Problem, deviations: list[dict[str, Any]], failed: list[dict[str, Any]], starts: int
) -> str:
    if not deviations:
        text = f"no follower deviates ({starts} starts per lower level)"
    else:
        worst = max(deviations, key=lambda d: d["gap"])
        levels = sorted({d["level"] for d in deviations})
        text = (
            f"{len(deviations)} start(s) found a better response at level(s) "
            f"{', '.join(map(str, levels))}: the point is not an equilibrium there. Worst: "
            f"{problem.describe(worst['level'])} reaches {worst['value_found']:.6g} against "
            f"{worst['value_at_point']:.6g} (gap {worst['gap']:.3e}); the solve followed a "
            "local branch. Try other starts for that level (nestopt.multistart), or "
            "reformulate it so that its minimum is unique"
        )
    if failed:
        text += f"; {len(failed)} start(s) failed to solve"
    return text
