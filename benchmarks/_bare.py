"""The bare linear algebra of one hypergradient of ``quad(n, d)``, without nestopt.

At an already solved point nestopt's Newton loop stops at iteration 0 and
its work (``nestopt/_linearize.py`` and ``_compose.py``) is, level by level from ``n`` down to 2:
one gradient, the reduced gradient, the reduced rows ``c_k^T Q_k P_k``, one
Cholesky factor of the own block, one solve for the best-response Jacobian
``G_k`` and the composition of ``R``; then level 1's gradient and
``P_1^T grad f_1``. `hypergradient` below forms exactly these products
(the Hessians of ``quad`` are constant, so evaluating them costs nothing in
either version) and nothing else: no checks, no result object.

The factor/solve pair is a small kernel table, so the same code runs on
NumPy + SciPy (``cho_factor``/``cho_solve``) and on CuPy (cuSOLVER
``potrf`` through ``cupy.linalg.cholesky``, then two cuBLAS triangular
solves through ``cupyx.scipy.linalg.solve_triangular``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "Kernels",
    "kernels",
    "hypergradient",
    "adjoint_hypergradient",
    "floor_hypergradient",
    "oracle_adjoint_hypergradient",
]


class Kernels:
    """``concat``, ``factor`` and ``solve`` of one array library."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "numpy":
            import numpy as np
            import scipy.linalg as sl

            self.concat = np.concatenate
            self.factor = lambda a: sl.cho_factor(a, lower=True, check_finite=False)
            self.solve = lambda f, b: sl.cho_solve(f, b, check_finite=False)
        elif name == "cupy":
            import cupy
            from cupyx.scipy.linalg import solve_triangular

            def solve(low: Any, b: Any) -> Any:
                y = solve_triangular(low, b, lower=True, check_finite=False)
                return solve_triangular(low, y, lower=True, trans="T", check_finite=False)

            self.concat = cupy.concatenate
            self.factor = cupy.linalg.cholesky
            self.solve = solve
        else:
            raise ValueError(f"no bare kernels for {name!r}; known: numpy, cupy")


_KERNELS: dict[str, Kernels] = {}


def kernels(name: str) -> Kernels:
    if name not in _KERNELS:
        _KERNELS[name] = Kernels(name)
    return _KERNELS[name]


def _reduced_rows(Q: Any, c: Any, x: Any, R: Any, lo: int, hi: int, g: Any = None) -> Any:
    """Level ``k``'s stationarity test and reduced rows ``c_k^T Q_k P_k`` (block ``lo:hi``)."""
    if g is None:
        g = Q @ x + c  # level k's gradient (at the bottom, its stationarity test is g[lo:hi])
    if R is None:
        return Q[lo:hi, :]
    Rk = R[:, lo:hi].T
    _ = g[lo:hi] + Rk @ g[hi:]  # reduced gradient: level k's stationarity test
    row = Q[lo:hi, :] + Rk @ Q[hi:, :]
    return row[:, :hi] + row[:, hi:] @ R


def _compose(Qs: Sequence[Any], cs: Sequence[Any], prefix: list[int], x: Any, ops: Kernels,
             last: int) -> Any:  # fmt: skip
    """``R_{last-1}``: levels ``n..last`` composed forward (None when there are none)."""
    R = None
    for k in range(len(prefix) - 1, last - 1, -1):
        lo, hi = prefix[k - 1], prefix[k]  # block of level k; lo = s_{k-1}, hi = s_k
        row = _reduced_rows(Qs[k - 1], cs[k - 1], x, R, lo, hi)
        G = -ops.solve(ops.factor(row[:, lo:]), row[:, :lo])
        R = G if R is None else ops.concat([G, R[:, :lo] + R[:, lo:hi] @ G], axis=0)
    return R


def _prefix(sizes: Sequence[int]) -> list[int]:
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    return prefix


def hypergradient(
    Qs: Sequence[Any], cs: Sequence[Any], sizes: Sequence[int], x: Any, ops: Kernels
) -> Any:
    """``P_1^T grad f_1`` at the solved point ``x`` (flat), with the products nestopt forms."""
    R = _compose(Qs, cs, _prefix(sizes), x, ops, last=2)
    g = Qs[0] @ x + cs[0]
    d1 = sizes[0]
    return g[:d1] + R.T @ g[d1:]


def adjoint_hypergradient(
    Qs: Sequence[Any], cs: Sequence[Any], sizes: Sequence[int], x: Any, ops: Kernels
) -> Any:
    """The same hypergradient in adjoint mode (DESIGN section 8).

    Levels ``n..3`` are composed forward as above (level 2's reduced rows need
    ``R_2``); level 2 is factored, and instead of ``G_2`` (``d_1`` right-hand
    sides) one adjoint solve carries ``grad f_1`` up: ``R_1^T g = R_2[:, <2]^T g_>
    + G_2^T (g_2 + R_2[:, 2]^T g_>)``, ``G_2^T u = -B^T A^{-1} u``.
    """
    if len(sizes) < 2:
        raise ValueError("adjoint_hypergradient needs at least two levels")
    prefix = _prefix(sizes)
    R = _compose(Qs, cs, prefix, x, ops, last=3)
    lo, hi = prefix[1], prefix[2]
    row = _reduced_rows(Qs[1], cs[1], x, R, lo, hi)
    factor = ops.factor(row[:, lo:])
    g1 = Qs[0] @ x + cs[0]
    d1, d2 = sizes[0], sizes[1]
    w = g1[d1:]
    if R is None:
        y, v = None, w[:d2]
    else:
        y = R.T @ w[d2:]  # R_2^T g_>: length s_2
        v = w[:d2] + y[d1 : d1 + d2]
    top = -(row[:, :lo].T @ ops.solve(factor, v))  # G_2^T v
    return g1[:d1] + top + (0 if y is None else y[:d1])


def floor_hypergradient(
    Qs: Sequence[Any], cs: Sequence[Any], sizes: Sequence[int], x: Any, ops: Kernels
) -> Any:
    """A minimal adjoint floor, written without nestopt's reduced-rows code (DESIGN 8).

    Only the Jacobian columns the reduced Hessians need are formed: for each
    level ``k >= 2``, ``T_k[:, block m] = d x_>k / d x_m`` for the levels ``m =
    2..k`` (``d_m`` columns, through every level below ``k``), never the columns
    of ``x_1``. Level ``k``'s own block is ``A_k = c_k^T Q_k c_k`` with ``c_k =
    [I; T_k[:, block k]]``; the hypergradient ``grad f_1[1] + T_1^T grad f_1[>1]``
    is then carried up as products with one vector per level (``G_k^T v =
    -B_k^T A_k^{-1} v``, ``B_k`` applied to vectors, never formed). Each level's
    stationarity test (reduced gradient and Newton step) is computed, as nestopt
    must at a solved point. Nothing is cached across calls.
    """
    n = len(sizes)
    if n < 2:
        raise ValueError("floor_hypergradient needs at least two levels")
    p = _prefix(sizes)
    p1 = p[1]
    # cols[m]: T_k[:, block m] for the levels below the current k (None at the bottom).
    cols: dict[int, Any] = {}
    own: list[Any] = [None] * n  # T_k[:, block k], rows of the levels below k
    factors: list[Any] = [None] * n
    for k in range(n - 1, 0, -1):  # 0-based level k owns p[k]:p[k+1]
        lo, hi = p[k], p[k + 1]
        Q = Qs[k]
        g = Q @ x + cs[k]
        if k == n - 1:
            X = Q[lo:hi, p1:]  # c_k^T Q_k on the columns of levels 2..n (a slice)
            A = X[:, lo - p1 : hi - p1]
            grad = g[lo:hi]
        else:
            T = cols[k]
            own[k] = T
            X = Q[lo:hi, p1:] + T.T @ Q[hi:, p1:]
            A = X[:, lo - p1 : hi - p1] + X[:, hi - p1 :] @ T
            grad = g[lo:hi] + T.T @ g[hi:]
        factors[k] = ops.factor(A)
        _ = ops.solve(factors[k], grad)  # the Newton step of the stationarity test
        below = {}
        for m in range(1, k):  # the columns of levels 2..k for the response below k - 1
            a, b = p[m] - p1, p[m + 1] - p1
            B = X[:, a:b] if k == n - 1 else X[:, a:b] + X[:, hi - p1 :] @ cols[m]
            G = -ops.solve(factors[k], B)
            below[m] = G if k == n - 1 else ops.concat([G, cols[m] + own[k] @ G], axis=0)
        cols = below

    def vjp(k: int, w: Any) -> Any:
        """``T_k^T w`` (``w``: rows of the levels below ``k``), one solve per level."""
        i = k + 1  # the level right below k
        lo, hi = p[i], p[i + 1]
        Q = Qs[i]
        w_i = w[: hi - lo]
        bottom = i == n - 1
        y = None if bottom else vjp(i, w[hi - lo :])
        u = ops.solve(factors[i], w_i if y is None else w_i + y[lo:hi])
        # B_i^T u with c_i u = (u, T_i[:, block i] u) on the rows lo:D of Q_i.
        cu = u if bottom else ops.concat([u, own[i] @ u])
        Xt = Q[lo:, :].T @ cu  # (c_i^T Q_i)^T u: all columns
        out = -Xt[:lo]
        if not bottom:
            out = out - vjp(i, Xt[hi:])[:lo] + y[:lo]
        return out

    g1 = Qs[0] @ x + cs[0]
    return g1[:p1] + vjp(0, g1[p1:])


def oracle_adjoint_hypergradient(levels: Sequence[Any], xs: Sequence[Any], ops: Kernels) -> Any:
    """`adjoint_hypergradient` making nestopt's oracle calls: the levels' own callables.

    For a problem whose levels are quadratic (``quad``), at a solved point:
    each lower level's ``grad`` and ``hess`` once, level 1's ``grad`` once
    (nestopt's counts there), and the same linear algebra as
    `adjoint_hypergradient`, with the Newton test of every lower level (one
    solve with its factor, the step's size against the point's): what a
    hand-written loop around the same callables would do, without checks.
    """
    sizes = [int(x.shape[0]) for x in xs]
    prefix = _prefix(sizes)
    n = len(sizes)
    x = ops.concat(list(xs))
    R = None
    for k in range(n, 1, -1):
        level = levels[k - 1]
        g, Q = level.grad(*xs), level.hess(*xs)
        lo, hi = prefix[k - 1], prefix[k]
        row = _reduced_rows(Q, None, x, R, lo, hi, g)
        grad_own = g[lo:hi] if R is None else g[lo:hi] + R[:, lo:hi].T @ g[hi:]
        factor = ops.factor(row[:, lo:])
        step = ops.solve(factor, grad_own)  # the Newton test at the solved point
        _ = float(abs(step).max()) <= 1e-12 * max(float(abs(xs[k - 1]).max()), 1.0)
        if k == 2:
            break
        G = -ops.solve(factor, row[:, :lo])
        R = G if R is None else ops.concat([G, R[:, :lo] + R[:, lo:hi] @ G], axis=0)
    g1 = levels[0].grad(*xs)
    d1, d2 = sizes[0], sizes[1]
    w = g1[d1:]
    if R is None:
        y, v = None, w[:d2]
    else:
        y = R.T @ w[d2:]
        v = w[:d2] + y[d1 : d1 + d2]
    top = -(row[:, :d1].T @ ops.solve(factor, v))
    return g1[:d1] + top + (0 if y is None else y[:d1])
