"""``stackelberg_market``: a three-firm sequential quantity game with a closed-form equilibrium."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend.selection import get_backend
from .._levels.problem import Level
from ._base import KnownProblem

__all__ = ["stackelberg_market"]


def stackelberg_market(products: int = 5, seed: int = 0, *, backend: Any = None) -> KnownProblem:
    """Leader, follower and sub-follower choosing quantities in ``products`` markets.

    Firm ``k`` (level ``k``) sells ``q_k`` in every market (one entry per
    market); the price of market ``m`` is ``p_m = a_m - b_m (q_1m + q_2m +
    q_3m)`` and firm ``k`` pays ``c_km`` per unit. Firm 1 moves first, firm 2
    sees ``q_1``, firm 3 sees both; each minimizes minus its profit.

    Parameters
    ----------
    products : int, default 5
        Number of independent markets, the size of every level's variable.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``, which draws, in this order,
        ``a ~ U[10, 20]``, ``b ~ U[0.5, 2]`` (shape ``(products,)`` each) and
        ``c ~ U[1, 2]`` (shape ``(3, products)``).
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('leader', 'follower', 'sub-follower')``, all quadratic,
        whose Hessians are given as blocks; ``x0`` is zero; ``solution`` is
        the equilibrium of the Notes; ``data`` holds ``a, b, c`` (NumPy).

    Notes
    -----
    ``f_k(q) = sum_m (b_m Q_m + c_km - a_m) q_km`` with ``Q = q_1 + q_2 +
    q_3``; it is strictly convex in ``q_k`` (second derivative ``2 b_m``).
    Backward induction, market by market:

    - firm 3: ``q_3 = (a - c_3 - b (q_1 + q_2)) / (2 b)``;
    - with that response the price is ``(a + c_3 - b (q_1 + q_2)) / 2``, so
      firm 2's reduced objective has second derivative ``b`` and
      ``q_2 = (a + c_3 - 2 c_2 - b q_1) / (2 b)``;
    - then the price is ``(a + c_3 + 2 c_2 - b q_1) / 4``, firm 1's reduced
      second derivative is ``b / 2`` and
      ``q_1 = (a + c_3 + 2 c_2 - 4 c_1) / (2 b)``.

    At the equilibrium ``q_2 = (a + 4 c_1 - 6 c_2 + c_3) / (4 b)`` and ``q_3 =
    (a + 4 c_1 + 2 c_2 - 7 c_3) / (8 b)``; the ranges of ``a`` and ``c``
    above keep every quantity positive, so the unconstrained game is the
    economically meaningful one.
    """
    if isinstance(products, bool) or not isinstance(products, int) or products < 1:
        raise ValueError(f"products must be a positive int, got {products!r}")
    rng = np.random.default_rng(seed)
    a = rng.uniform(10.0, 20.0, products)
    b = rng.uniform(0.5, 2.0, products)
    c = rng.uniform(1.0, 2.0, (3, products))
    chosen = get_backend(backend)
    dtype = chosen.xp.float64

    def on_backend(arr: np.ndarray) -> Any:
        return chosen.asarray(arr, dtype=dtype, copy=True)

    q1 = (a + c[2] + 2.0 * c[1] - 4.0 * c[0]) / (2.0 * b)
    q2 = (a + c[2] - 2.0 * c[1] - b * q1) / (2.0 * b)
    q3 = (a - c[2] - b * (q1 + q2)) / (2.0 * b)
    a_, b_ = on_backend(a), on_backend(b)
    names = ("leader", "follower", "sub-follower")
    levels = [
        _firm_level(k, a_, b_, on_backend(c[k]), on_backend(np.diag(b)), products, names[k])
        for k in range(3)
    ]
    return KnownProblem(
        levels,
        x0=tuple(on_backend(np.zeros(products)) for _ in range(3)),
        solution=(on_backend(q1), on_backend(q2), on_backend(q3)),
        data={"a": a, "b": b, "c": c, "products": products, "seed": seed},
        description=f"stackelberg_market(products={products}, seed={seed})",
    )


def _firm_level(k: int, a: Any, b: Any, cost: Any, diag_b: Any, size: int, name: str) -> Level:
    """Firm ``k`` (0-based): ``f = sum((b Q + c_k - a) q_k)``, Hessian as 3 x 3 blocks."""
    hess = [[None] * 3 for _ in range(3)]
    for j in range(3):
        hess[k][j] = hess[j][k] = diag_b
    hess[k][k] = 2.0 * diag_b

    def value(*qs: Any) -> Any:
        import array_api_compat

        xp = array_api_compat.array_namespace(*qs)
        total = qs[0] + qs[1] + qs[2]
        return xp.sum((b * total + cost - a) * qs[k])

    def grad(*qs: Any) -> Any:
        total = qs[0] + qs[1] + qs[2]
        own = b * qs[k]
        return tuple(own + (b * total + cost - a) if j == k else own for j in range(3))

    return Level(
        grad=grad,
        hess=lambda *qs: hess,
        value=value,
        size=size,
        name=name,
        quadratic=True,
    )
