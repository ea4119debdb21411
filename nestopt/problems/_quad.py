"""``quad(n, d, seed)``: n quadratic levels with closed-form responses (DESIGN section 6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend.selection import get_backend
from .._levels.problem import Level
from ._base import KnownProblem
from ._terms import namespace

__all__ = ["quad", "quad_reference"]


def _sizes(n: int, d: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    if isinstance(d, bool):
        sizes: tuple[int, ...] = ()  # a bool is no size: refused below
    elif isinstance(d, int):
        sizes = (d,) * n
    else:
        sizes = tuple(int(s) for s in d)
    if len(sizes) != n or any(s < 1 for s in sizes):
        raise ValueError(f"d must be a positive int or {n} positive sizes, got {d!r}")
    return sizes


def quad(
    n: int, d: int | Sequence[int], seed: int = 0, *, backend: Any = None, dtype: Any = None
) -> KnownProblem:
    """n levels with ``f_k(x) = 1/2 x^T Q_k x + c_k^T x``.

    ``Q_k = B_k^T B_k / D + 0.1 I`` with ``B_k`` (``D x D``) and ``c_k``
    standard normal, drawn in the order ``B_1, c_1, B_2, c_2, ...`` from
    ``numpy.random.default_rng(seed)``. Every response is affine, so the
    hypergradient and the optimum have closed forms (`quad_reference`).

    Parameters
    ----------
    n : int
        Number of levels (>= 2).
    d : int or sequence of int
        Size of every level, or one size per level.
    seed : int
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).
    dtype : optional
        Floating dtype of the backend (default float64).
    """
    sizes = _sizes(n, d)
    dim = sum(sizes)
    rng = np.random.default_rng(seed)
    Qs, cs = [], []
    for _ in range(n):
        B = rng.standard_normal((dim, dim))
        Qs.append(B.T @ B / dim + 0.1 * np.eye(dim))
        cs.append(rng.standard_normal(dim))
    chosen = get_backend(backend)
    xp = chosen.xp
    dtype = xp.float64 if dtype is None else dtype

    def on_backend(a: np.ndarray) -> Any:
        return chosen.asarray(a, dtype=dtype, copy=True)

    levels = [
        _quadratic_level(on_backend(Q), on_backend(c), size, f"level {k}")
        for k, (Q, c, size) in enumerate(zip(Qs, cs, sizes), start=1)
    ]
    reference = quad_reference(Qs, cs, sizes)
    return KnownProblem(
        levels,
        x0=tuple(on_backend(np.zeros(s)) for s in sizes),
        solution=tuple(on_backend(x) for x in reference["solution"]),
        data={"Q": Qs, "c": cs, "sizes": sizes, "seed": seed},
        description=f"quad(n={n}, d={sizes}, seed={seed})",
    )


def _quadratic_level(Q: Any, c: Any, size: int, name: str) -> Level:
    def value(*xs: Any) -> Any:
        x = _concat(xs)
        return 0.5 * (x @ (Q @ x)) + c @ x

    def grad(*xs: Any) -> Any:
        return Q @ _concat(xs) + c

    def hess(*xs: Any) -> Any:
        return Q

    return Level(grad=grad, hess=hess, value=value, size=size, name=name, quadratic=True)


def _concat(xs: Sequence[Any]) -> Any:
    return namespace(*xs).concat(list(xs))


def quad_reference(
    Qs: Sequence[np.ndarray], cs: Sequence[np.ndarray], sizes: Sequence[int]
) -> dict[str, Any]:
    """Closed forms of a quadratic n-level problem, in NumPy float64.

    Each level's response is affine, ``x = T_k x_<=k + t_k``; level ``k``
    solves its block of ``T_k^T (Q_k (T_k u + t_k) + c_k) = 0`` for ``x_k``.

    Returns
    -------
    dict
        ``solution`` (per-level optimum), ``hessian`` and ``grad_at_zero`` of
        ``F_1`` (so ``hypergradient(x1) = hessian @ x1 + grad_at_zero``),
        and ``responses(x1)``, the lower levels' solution for a given ``x1``.
    """
    n = len(sizes)
    dim = sum(sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    T = np.eye(dim)
    t = np.zeros(dim)
    for k in range(n - 1, 0, -1):
        lo, hi = offsets[k], offsets[k + 1]
        H = T.T @ Qs[k] @ T
        b = T.T @ (Qs[k] @ t + cs[k])
        # Solve rows lo:hi of H u + b = 0 for u[lo:hi] as an affine map of u[:lo].
        A = H[lo:hi, lo:hi]
        gain = -np.linalg.solve(A, H[lo:hi, :lo])
        shift = -np.linalg.solve(A, b[lo:hi])
        S = np.vstack([np.eye(lo), gain])
        s = np.concatenate([np.zeros(lo), shift])
        t = T @ s + t
        T = T @ S
    hessian = T.T @ Qs[0] @ T
    grad_at_zero = T.T @ (Qs[0] @ t + cs[0])
    x1 = -np.linalg.solve(hessian, grad_at_zero)

    def responses(x1: np.ndarray) -> list[np.ndarray]:
        x = T @ x1 + t
        return [x[offsets[k] : offsets[k + 1]] for k in range(n)]

    return {
        "solution": responses(x1),
        "hessian": hessian,
        "grad_at_zero": grad_at_zero,
        "responses": responses,
    }
