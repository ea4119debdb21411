"""``softplus_levels``: quadratics plus softplus terms, so responses are nonlinear."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend.selection import get_backend
from .._levels.problem import Level
from ._base import KnownProblem
from ._quad import _concat, _sizes

__all__ = ["softplus_levels"]


def softplus_levels(
    n: int = 3,
    d: int | Sequence[int] = 5,
    seed: int = 0,
    *,
    beta: float = 1.0,
    terms: int | None = None,
    hess_rows: bool = True,
    backend: Any = None,
    dtype: Any = None,
) -> KnownProblem:
    """n levels with ``f_k(x) = 1/2 x^T Q_k x + c_k^T x + beta sum_i softplus((W_k x)_i)``.

    Level 1 is quadratic (``beta = 0``); levels ``2..n`` carry the softplus
    term, which is convex, so every level stays strongly convex in its own
    variable while its response becomes nonlinear: the response-curvature
    terms of ``curvature='exact'`` are nonzero here. ``Q_k`` is drawn as in
    `quad`; ``W_k`` (``terms x D``, default ``terms = D``) is standard
    normal scaled by ``1/sqrt(D)``. Analytic ``hess_dir`` is provided, and
    with ``hess_rows=True`` both ``hess`` and ``hess_dir`` compute only the
    rows asked for (``start=``). No closed form: ground truth comes from
    finite differences of ``F_1``.
    """
    sizes = _sizes(n, d)
    dim = sum(sizes)
    m = dim if terms is None else int(terms)
    rng = np.random.default_rng(seed)
    chosen = get_backend(backend)
    dtype = chosen.xp.float64 if dtype is None else dtype

    def on_backend(a: np.ndarray) -> Any:
        return chosen.asarray(a, dtype=dtype, copy=True)

    levels = []
    data: dict[str, list[Any]] = {"Q": [], "c": [], "W": []}
    for k in range(1, n + 1):
        B = rng.standard_normal((dim, dim))
        Q = B.T @ B / dim + 0.5 * np.eye(dim)
        c = rng.standard_normal(dim)
        W = rng.standard_normal((m, dim)) / np.sqrt(dim)
        weight = 0.0 if k == 1 else beta
        data["Q"].append(Q)
        data["c"].append(c)
        data["W"].append(W)
        levels.append(
            _softplus_level(
                on_backend(Q),
                on_backend(c),
                on_backend(W),
                weight,
                sizes[k - 1],
                f"level {k}",
                hess_rows,
            )
        )
    return KnownProblem(
        levels,
        x0=tuple(on_backend(np.zeros(s)) for s in sizes),
        data={**data, "sizes": sizes, "seed": seed, "beta": beta},
        description=f"softplus_levels(n={n}, d={sizes}, seed={seed}, beta={beta})",
    )


def _softplus_level(
    Q: Any, c: Any, W: Any, beta: float, size: int, name: str, hess_rows: bool
) -> Level:
    import array_api_compat

    def parts(xs: Sequence[Any]) -> tuple[Any, Any, Any]:
        x = _concat(xs)
        xp = array_api_compat.array_namespace(x)
        return xp, x, W @ x

    def value(*xs: Any) -> Any:
        xp, x, z = parts(xs)
        # softplus(z) = max(z, 0) + log1p(exp(-|z|)), stable for large |z|.
        soft = xp.sum(xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z))))
        return 0.5 * (x @ (Q @ x)) + c @ x + beta * soft

    def grad(*xs: Any) -> Any:
        xp, x, z = parts(xs)
        return Q @ x + c + beta * (xp.matrix_transpose(W) @ _sigmoid(xp, z))

    def hess(*xs: Any, start: int = 0) -> Any:
        xp, x, z = parts(xs)
        s = _sigmoid(xp, z)
        rows = xp.matrix_transpose(W[:, start:])
        return Q[start:, :] + beta * (rows @ ((s * (1.0 - s))[:, None] * W))

    def hess_dir(*args: Any, start: int = 0) -> Any:
        *xs, v = args
        xp, x, z = parts(xs)
        s = _sigmoid(xp, z)
        third = s * (1.0 - s) * (1.0 - 2.0 * s) * (W @ v)
        return beta * (xp.matrix_transpose(W[:, start:]) @ (third[:, None] * W))

    return Level(
        grad=grad,
        hess=hess,
        value=value,
        hess_dir=hess_dir if beta else None,
        size=size,
        name=name,
        quadratic=not beta,
        hess_rows=hess_rows,
    )


def _sigmoid(xp: Any, z: Any) -> Any:
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
