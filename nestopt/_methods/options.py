"""Checked settings: numbers, choices, and per-level options of the lower-level solves."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import PrecisionWarning, warn_user
from .._linalg.factor import DENSE_SOLVERS, LINEAR_SOLVERS

__all__ = [
    "LevelSettings",
    "LEVEL_OPTION_NAMES",
    "check_choice",
    "check_number",
    "check_count",
    "level_settings",
    "default_tol",
]

LEVEL_OPTION_NAMES = ("tol", "maxiter", "ridge", "linear_solver", "krylov_rtol", "krylov_maxiter")


@dataclass(frozen=True)
class LevelSettings:
    """How one level is solved.

    ``tol`` is relative: Newton stops when its step is at most ``tol`` times
    the level's own length scale (the largest of its variable at the start,
    now, and its first Newton step), which scaling the objective leaves
    unchanged; ``tol=0`` solves to rounding.
    """

    tol: float
    maxiter: int = 50
    ridge: float = 0.0
    linear_solver: str = "cholesky"
    krylov_rtol: float = 1e-10
    krylov_maxiter: int = 1000


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")
    return value


def check_number(
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    strict: bool = False,
    allow_inf: bool = False,
    where: str = "",
) -> float:
    """A real number ``>= minimum`` (``>`` when ``strict``), refusing NaN, strings and bools."""
    suffix = f" for {where}" if where else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{suffix}, got {value!r}")
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{name} must be finite{suffix}, got {value!r}")
    if number < minimum or (strict and number == minimum):
        if minimum == 0.0:
            relation = "positive" if strict else "non-negative"
        else:
            relation = f"{'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} must be {relation}{suffix}, got {value!r}")
    return number


def check_count(name: str, value: object, *, minimum: int = 0, where: str = "") -> int:
    """An int ``>= minimum`` (NumPy integers accepted), refusing bools and floats."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a non-negative int" if minimum == 0 else f"an int >= {minimum}"
        suffix = f" for {where}" if where else ""
        raise ValueError(f"{name} must be {kind}{suffix}, got {value!r}")
    return int(value)


def default_tol(eps: float) -> float:
    """Default relative Newton-step tolerance of the lower levels: ``0.01 * sqrt(eps)``."""
    return 0.01 * math.sqrt(eps)


def level_settings(
    problem: Any, eps: float, dtype: Any, level_options: Any, linear_solver: str | None
) -> tuple[LevelSettings, ...]:
    """One `LevelSettings` per level (index ``k - 1``), level 1 included for uniformity."""
    if level_options is not None:
        return _level_settings(problem, eps, dtype, level_options, linear_solver)
    # No options: the defaults depend only on the precision, the solver asked for and
    # whether the level has a Hessian, so a sweep of many problems checks them once.
    out = []
    for k, level in enumerate(problem.levels, start=1):
        has_hess = level.hess is not None
        if linear_solver in DENSE_SOLVERS and not has_hess and k >= 2:
            _level_settings(problem, eps, dtype, None, linear_solver)  # raises, naming it
        out.append(_default_settings(eps, linear_solver, has_hess))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _default_settings(eps: float, linear_solver: str | None, has_hess: bool) -> LevelSettings:
    solver = linear_solver or ("cholesky" if has_hess else "cg")
    return LevelSettings(default_tol(eps), 50, 0.0, solver, default_tol(eps), 1000)


def _level_settings(
    problem: Any, eps: float, dtype: Any, level_options: Any, linear_solver: str | None
) -> tuple[LevelSettings, ...]:
    per_level = _per_level_options(problem, level_options)
    out = []
    for k in range(1, problem.n + 1):
        given = per_level.get(k, {})
        where = problem.describe(k)
        tol = check_number("tol", given.get("tol", default_tol(eps)), where=where)
        if 0.0 < tol < 10 * eps and k >= 2:
            warn_user(
                f"tol={tol:.1e} for {problem.describe(k)} is below what {dtype} can reach "
                f"(eps = {eps:.1e}); the solve will stop at rounding and report the "
                "precision reached, or fail. Use tol=0 to ask for 'as accurate as rounding "
                "allows'",
                PrecisionWarning,
            )
        maxiter = check_count("maxiter", given.get("maxiter", 50), where=where)
        ridge = check_number("ridge", given.get("ridge", 0.0), where=where)
        solver = given.get("linear_solver", linear_solver)
        if solver is None:  # the default: what the level's oracles allow
            solver = "cholesky" if problem.levels[k - 1].hess is not None else "cg"
        check_choice(f"linear_solver of {where}", solver, LINEAR_SOLVERS)
        if solver in DENSE_SOLVERS and problem.levels[k - 1].hess is None and k >= 2:
            raise ValueError(
                f"{where} has no hess (only hvp), so linear_solver={solver!r} cannot factor "
                "its block; use linear_solver='cg' or 'minres' (matrix-free), or give hess"
            )
        krylov_rtol = check_number(
            "krylov_rtol", given.get("krylov_rtol", default_tol(eps)), strict=True, where=where
        )
        krylov_maxiter = check_count(
            "krylov_maxiter", given.get("krylov_maxiter", 1000), minimum=1, where=where
        )
        out.append(LevelSettings(tol, maxiter, ridge, solver, krylov_rtol, krylov_maxiter))
    return tuple(out)


def _per_level_options(problem: Any, level_options: Any) -> dict[int, dict[str, Any]]:
    """Accept one dict for all lower levels, a list for levels 2..n, or a map by level."""
    if level_options is None:
        return {}
    lower = range(2, problem.n + 1)
    if isinstance(level_options, Mapping):
        if any(isinstance(key, str) and key in LEVEL_OPTION_NAMES for key in level_options):
            # One dict of options for every lower level; unknown keys are named.
            common = _checked_options(level_options, None, problem)
            return {k: dict(common) for k in lower}
        names = {
            level.name: k
            for k, level in enumerate(problem.levels, start=1)
            if level.name and k >= 2
        }
        out: dict[int, dict[str, Any]] = {}
        for key, value in level_options.items():
            k = names.get(key, key)
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k not in lower:
                raise ValueError(
                    f"level_options has key {key!r}, which is neither an option "
                    f"({', '.join(LEVEL_OPTION_NAMES)}) nor a lower level (2..{problem.n} "
                    f"or a level name: {', '.join(map(repr, names)) or 'none named'})"
                )
            out[int(k)] = _checked_options(value, int(k), problem)
        return out
    if isinstance(level_options, Sequence) and not isinstance(level_options, str):
        if len(level_options) != problem.n - 1:
            raise ValueError(
                f"level_options as a sequence needs one dict per lower level "
                f"({problem.n - 1}), got {len(level_options)}"
            )
        return {k: _checked_options(v, k, problem) for k, v in zip(lower, level_options)}
    raise TypeError(f"level_options must be a dict or a sequence of dicts, got {level_options!r}")


def _checked_options(options: Any, k: int | None, problem: Any) -> dict[str, Any]:
    where = "every lower level" if k is None else problem.describe(k)
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"options of {where} must be a dict, got {options!r}")
    unknown = sorted(map(str, set(options) - set(LEVEL_OPTION_NAMES)))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {where}; "
            f"known: {', '.join(LEVEL_OPTION_NAMES)}"
        )
    return dict(options)
