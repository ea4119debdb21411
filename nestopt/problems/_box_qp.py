"""``box_qp``: a box-constrained QP follower whose matrix moves with the leader."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import Bounds, Level
from ._base import KnownProblem
from ._bolib import _on_backend

__all__ = ["box_qp"]


def box_qp(
    d: int = 10,
    seed: int = 0,
    *,
    bounds: bool = True,
    mu: float = 1e-2,
    backend: Any = None,
) -> KnownProblem:
    """A bilevel problem whose follower is a box-constrained QP with a leader-dependent matrix.

    Leader ``x`` and follower ``y``, both in ``R^d``::

        follower:  min_y  1/2 y^T Q(x) y + (x + c)^T y,   -1 <= y <= 1,
                   Q(x) = Q0 + diag(exp(x)),   Q0 = M^T M / d,
        leader:    min_x  1/2 |y*(x) - y_target|^2 + mu/2 |x|^2,

    ``M`` a ``(d, d)`` standard normal matrix (so ``Q0`` is dense, with
    eigenvalues in about ``[0, 4]``), ``c ~ N(0, 2.25 I)``, ``y_target ~
    U[-1, 1]^d``, drawn in this order by ``numpy.random.default_rng(seed)``.
    ``Q(x)`` is positive definite for every ``x``, so the follower is
    strongly convex and its response unique; ``c`` is large enough that
    about a fifth to a third of the bounds are active at ``x0`` (25 of 100
    and 292 of 1000 for seed 0; the count is in ``data["active_at_x0"]``). A
    follower of this form (a QP whose matrix the leader sets) is the
    setting of OptNet (Amos & Kolter, ICML 2017) and of the box-QP examples
    of jaxopt's implicit differentiation (Blondel et al., "Efficient and
    modular implicit differentiation", NeurIPS 2022).

    Parameters
    ----------
    d : int, default 10
        Size of both variables.
    seed : int, default 0
        Seed of the data.
    bounds : bool, default True
        False drops the box: the same follower unconstrained (its response
        ``-Q(x)^{-1} (x + c)``), the unconstrained baseline of the same size.
    mu : float, default 1e-2
        Weight of the leader's own regularization.
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('leader', 'follower')`` with analytic ``grad``, ``hess``
        (as 2 x 2 blocks; the follower's with ``hess_rows=True``, so that its
        leader block is not formed when only its own rows are asked for) and
        ``value``; the box as `nestopt.Bounds`. ``x0``
        is ``(zeros, zeros)`` (``Q(x0) = Q0 + I``); ``solution`` is
        None. ``data`` holds ``M``, ``Q0``, ``c``, ``y_target``, ``mu``,
        ``lb``, ``ub`` and ``active_at_x0`` (bounds active at the
        follower's solution at ``x0``, found by SciPy's L-BFGS-B when SciPy
        is installed, else None).

    Notes
    -----
    Derivatives of the follower ``f`` (``e = exp(x)``, products entrywise)::

        grad_x f = e y^2 / 2 + y,        grad_y f = Q(x) y + x + c,
        H_xx = diag(e y^2 / 2),   H_xy = diag(e y) + I,   H_yy = Q(x).

    Examples
    --------
    >>> from nestopt.problems import box_qp
    >>> p = box_qp(10, backend="numpy")
    >>> [lv.size for lv in p.levels], p.levels[1].bounds is not None
    ([10, 10], True)
    """
    # One function (longer than this package's usual ones): the data, the two levels'
    # oracles that close over it and the metadata are built together, as a problem is.
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"box_qp needs a positive int d, got {d!r}")
    if not mu >= 0.0:
        raise ValueError(f"box_qp needs mu >= 0, got {mu!r}")
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((d, d))
    c = 1.5 * rng.standard_normal(d)
    y_target = rng.uniform(-1.0, 1.0, d)
    Q0 = M.T @ M / d
    on = _on_backend(backend)
    Q0_b, c_b, target_b = on(Q0), on(c), on(y_target)
    eye = on(np.eye(d))

    def diag(v: Any) -> Any:
        return v[:, None] * eye

    def exp(x: Any) -> Any:
        import array_api_compat

        return array_api_compat.array_namespace(x).exp(x)

    def f_value(x: Any, y: Any) -> Any:
        return 0.5 * (y @ (Q0_b @ y)) + 0.5 * (exp(x) @ (y * y)) + (x + c_b) @ y

    def f_grad(x: Any, y: Any) -> Any:
        e = exp(x)
        return (0.5 * e * y * y + y, Q0_b @ y + e * y + x + c_b)

    def f_hess(x: Any, y: Any, start: int = 0) -> Any:
        # rows start:2d only (hess_rows=True): nestopt asks the follower for its own rows
        e = exp(x)
        xy = diag(e * y) + eye
        top = [diag(0.5 * e * y * y), xy] if start < d else [None, None]
        return [top, [xy, Q0_b + diag(e)]]

    lb, ub = -np.ones(d), np.ones(d)
    follower = Level(
        value=f_value,
        grad=f_grad,
        hess=f_hess,
        hess_rows=True,
        size=d,
        bounds=Bounds(on(lb), on(ub)) if bounds else None,
        name="follower",
    )
    mu_eye = on(mu * np.eye(d))

    def F_value(x: Any, y: Any) -> Any:
        r = y - target_b
        return 0.5 * (r @ r) + 0.5 * mu * (x @ x)

    leader = Level(
        value=F_value,
        grad=lambda x, y: (mu * x, y - target_b),
        hess=lambda x, y: [[mu_eye, None], [None, eye]],
        size=d,
        name="leader",
        quadratic=True,
    )
    x0 = np.zeros(d)
    return KnownProblem(
        [leader, follower],
        x0=(on(x0), on(np.zeros(d))),
        data={
            "M": M,
            "Q0": Q0,
            "c": c,
            "y_target": y_target,
            "mu": mu,
            "lb": lb if bounds else None,
            "ub": ub if bounds else None,
            "active_at_x0": _active_at(Q0, c, x0, lb, ub) if bounds else 0,
        },
        description=f"box_qp(d={d}, seed={seed}, bounds={bounds}, mu={mu:g})",
    )


def _active_at(Q0: Any, c: Any, x: Any, lb: Any, ub: Any) -> int | None:
    """Bounds active at the follower's solution at ``x`` (SciPy's L-BFGS-B), or None."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        return None
    Q = Q0 + np.diag(np.exp(x))
    q = x + c
    res = minimize(
        lambda y: (0.5 * y @ Q @ y + q @ y, Q @ y + q),
        np.zeros_like(x),
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lb, ub, strict=True)),
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    return int(np.sum((res.x <= lb + 1e-9) | (res.x >= ub - 1e-9)))
