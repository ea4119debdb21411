"""Assertions and ground truths shared by the tests."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

import nestopt


def assert_array_on(
    x: Any, xp: Any, *, shape: tuple[int, ...] | None = None, dtype: Any = None
) -> None:
    """``x`` is an array of namespace ``xp`` (and shape, dtype) before any value check."""
    assert array_api_compat.array_namespace(x) is xp, (
        f"array of {array_api_compat.array_namespace(x).__name__}, expected {xp.__name__}"
    )
    if shape is not None:
        assert tuple(x.shape) == shape, f"shape {tuple(x.shape)}, expected {shape}"
    if dtype is not None:
        assert x.dtype == dtype, f"dtype {x.dtype}, expected {dtype}"


def relative_error(actual: Any, expected: Any) -> float:
    a = np.asarray(nestopt.to_numpy(actual), dtype=np.float64)
    e = np.asarray(nestopt.to_numpy(expected), dtype=np.float64)
    return float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-300))


def value_function(problem: Any, x1: Any, *, tol: float = 1e-13, **options: Any) -> float:
    """``F_1(x1)`` by nested Newton solves to a tight tolerance, lower levels from zero."""
    start = [x1] + [np.zeros(d) for d in problem.sizes[1:]]
    return nestopt.best_response(problem, start, level_options={"tol": tol}, **options).fun


def fd_gradient(fun: Any, x: Any, h: float = 1e-3) -> Any:
    """Fourth-order central differences; truncation O(h^4)."""
    out = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (fun(x - 2 * e) - 8 * fun(x - e) + 8 * fun(x + e) - fun(x + 2 * e)) / (12 * h)
    return out


def max_follower(lower: Any, *, hessian: str = "hess", name: str | None = None) -> Any:
    """The follower ``min |y - x|^2 / 2`` over ``y >= lower``: ``y = max(x, lower)``, with a
    kink at every ``x_i = lower_i`` (the bound weakly active there). ``hessian``: its Hessian
    as ``hess`` (dense) or as products (``hvp``)."""
    lower = np.asarray(lower, dtype=float)
    k = lower.size
    eye = np.eye(k)
    K = np.block([[eye, -eye], [-eye, eye]])
    form = {"hvp": lambda x, y, v: K @ v} if hessian == "hvp" else {"hess": lambda x, y: K}
    return nestopt.Level(
        value=lambda x, y: 0.5 * (y - x) @ (y - x),
        grad=lambda x, y: (x - y, y - x),
        size=k,
        name=name,
        bounds=nestopt.Bounds(lower, np.full(k, np.inf)),
        **form,
    )


def solve_quietly(problem: Any, x0: Any) -> Any:
    """``nestopt.solve`` from ``x0`` (level 1) and the second level at zero, without the
    DegeneracyWarning that a kink (a weakly active bound) raises on the way."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        return nestopt.solve(problem, [np.asarray(x0, dtype=float), np.zeros(problem.sizes[1])])
