"""Turn user arguments into checked settings: starting points and options."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import array_api_compat as compat

from ._backend import get_backend
from ._errors import PrecisionWarning, warn_user
from ._linalg import LINEAR_SOLVERS
from ._problem import Problem
from ._respond import CURVATURES, LevelSettings, Settings

__all__ = ["prepare_points", "make_settings", "LEVEL_OPTION_NAMES", "check_choice"]

LEVEL_OPTION_NAMES = ("tol", "maxiter", "ridge")


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")
    return value  # type: ignore[return-value]


def prepare_points(
    problem: Problem, xs: Sequence[Any], backend: Any = None, device: Any = None
) -> tuple[Any, Any, tuple[Any, ...]]:
    """Copy the starting points onto the backend: ``(xp, device, xs)``.

    The points are always copied, so nothing the user passed is ever
    modified or aliased by a result. Arrays of a non-NumPy library passed
    while no backend was chosen anywhere select that library (nothing to
    copy across devices then); otherwise the backend in force applies.
    """
    if isinstance(xs, (str, bytes)) or not isinstance(xs, Sequence):
        raise TypeError(
            f"xs must be a sequence of {problem.n} per-level arrays, got {type(xs).__name__}"
        )
    if len(xs) != problem.n:
        raise ValueError(
            f"xs has {len(xs)} entries but the problem has {problem.n} levels; pass one "
            f"starting array per level, of sizes {problem.sizes}"
        )
    chosen = get_backend(backend, device)
    arrays = [x for x in xs if compat.is_array_api_obj(x) and not isinstance(x, (int, float))]
    inferred = None
    if chosen.source == "default" and arrays and len(arrays) == len(xs):
        try:
            inferred = compat.array_namespace(*arrays)
        except TypeError:
            inferred = None
        if inferred is not None and compat.is_numpy_namespace(inferred):
            inferred = None
    if inferred is not None:
        xp = inferred
        target = compat.device(arrays[0])
    else:
        xp = chosen.xp
        target = chosen.native_device
    dtype = _working_dtype(xp, arrays)
    out = []
    for k, (x, size) in enumerate(zip(xs, problem.sizes), start=1):
        kwargs = {"dtype": dtype, "copy": True}
        if target is not None:
            kwargs["device"] = target
        try:
            arr = xp.asarray(x, **kwargs)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"the starting point of {problem.describe(k)} could not be made an array "
                f"of {getattr(xp, '__name__', xp)}: {exc}"
            ) from exc
        if arr.ndim == 0 and size == 1:
            arr = xp.reshape(arr, (1,))
        if tuple(arr.shape) != (size,):
            raise ValueError(
                f"the starting point of {problem.describe(k)} has shape {tuple(arr.shape)}; "
                f"expected ({size},)"
            )
        out.append(arr)
    return xp, compat.device(out[0]), tuple(out)


def _working_dtype(xp: Any, arrays: list[Any]) -> Any:
    """The target library's dtype matching the first real floating array, else float64.

    Each array's dtype is read with its own namespace and mapped by width:
    a NumPy float32 start selects float32 on torch or array_api_strict too.
    """
    for arr in arrays:
        try:
            own = compat.array_namespace(arr)
            if own.isdtype(arr.dtype, "real floating"):
                bits = own.finfo(arr.dtype).bits
                return {16: getattr(xp, "float16", xp.float32), 32: xp.float32}.get(
                    bits, xp.float64
                )
        except (TypeError, ValueError, AttributeError):
            continue
    return xp.float64


def default_tol(xp: Any, dtype: Any) -> float:
    """Default lower-level tolerance on the gradient: ``0.01 * sqrt(eps)``."""
    return 0.01 * math.sqrt(float(xp.finfo(dtype).eps))


def make_settings(
    problem: Problem,
    xp: Any,
    dtype: Any,
    *,
    curvature: str = "exact",
    linear_solver: str = "cholesky",
    level_options: Any = None,
    residual_tol: float | None = None,
    fd_step: float | None = None,
    predict: bool = True,
) -> Settings:
    """Check and combine the options of a lower-level solve."""
    check_choice("curvature", curvature, CURVATURES)
    check_choice("linear_solver", linear_solver, LINEAR_SOLVERS)
    eps = float(xp.finfo(dtype).eps)
    per_level = _per_level_options(problem, level_options)
    levels = []
    for k in range(1, problem.n + 1):
        given = per_level.get(k, {})
        tol = float(given.get("tol", default_tol(xp, dtype)))
        if not tol > 0:
            raise ValueError(f"tol of {problem.describe(k)} must be positive, got {tol!r}")
        if tol < 10 * eps:
            warn_user(
                f"tol={tol:.1e} for {problem.describe(k)} is below what {dtype} can reach "
                f"(eps = {eps:.1e}); the solve will likely stop as not converged",
                PrecisionWarning,
            )
        maxiter = given.get("maxiter", 50)
        if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 0:
            raise ValueError(f"maxiter must be a non-negative int, got {maxiter!r}")
        ridge = float(given.get("ridge", 0.0))
        if not ridge >= 0:
            raise ValueError(f"ridge must be non-negative, got {ridge!r}")
        levels.append(LevelSettings(tol=tol, maxiter=maxiter, ridge=ridge))
    if residual_tol is None:
        residual_tol = math.sqrt(eps)
    return Settings(
        curvature=curvature,
        linear_solver=linear_solver,
        levels=tuple(levels),
        residual_tol=float(residual_tol),
        fd_step=fd_step,
        predict=bool(predict),
    )


def _per_level_options(problem: Problem, level_options: Any) -> dict[int, dict[str, Any]]:
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
        out = {}
        for key, value in level_options.items():
            k = names.get(key, key)
            if isinstance(k, bool) or not isinstance(k, int) or k not in lower:
                raise ValueError(
                    f"level_options has key {key!r}, which is neither an option "
                    f"({', '.join(LEVEL_OPTION_NAMES)}) nor a lower level (2..{problem.n} "
                    f"or a level name: {', '.join(map(repr, names)) or 'none named'})"
                )
            out[k] = _checked_options(value, k, problem)
        return out
    if isinstance(level_options, Sequence) and not isinstance(level_options, str):
        if len(level_options) != problem.n - 1:
            raise ValueError(
                f"level_options as a sequence needs one dict per lower level "
                f"({problem.n - 1}), got {len(level_options)}"
            )
        return {k: _checked_options(v, k, problem) for k, v in zip(lower, level_options)}
    raise TypeError(f"level_options must be a dict or a sequence of dicts, got {level_options!r}")


def _checked_options(options: Any, k: int | None, problem: Problem) -> dict[str, Any]:
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
