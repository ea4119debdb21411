"""``svm_dual``: a linear soft-margin SVM's dual as the follower of its weight ``C``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import Bounds, Level, LinearConstraint, NonlinearConstraint
from ._base import KnownProblem
from ._bolib import _on_backend

__all__ = ["svm_dual", "svm_dual_kkt_residual"]

_DATA = ("breast_cancer", "iris", "wine")
_INF = float("inf")


def svm_dual(
    data: str = "breast_cancer",
    *,
    n_train: int = 60,
    n_val: int = 40,
    seed: int = 0,
    param: str = "log_C",
    ridge: float = 0.0,
    backend: Any = None,
) -> KnownProblem:
    """Choose an SVM's ``C`` (leader) against the SVM dual (follower) on scikit-learn data.

    The follower is the dual of the soft-margin SVM with a linear kernel and
    an intercept (Cortes & Vapnik, "Support-vector networks", Machine
    Learning 20, 1995; Schoelkopf & Smola, *Learning with Kernels*, 2002,
    §7.5), on ``n_train`` training points ``(x_i, y_i)``, ``y_i = +-1``::

        min_a  1/2 a^T Q a - 1^T a  (+ ridge/2 |a|^2),   Q = (y y^T) * (X X^T)
        s.t.   y^T a = 0,   0 <= a_i <= C.

    The leader's variable is ``t = log C`` (``param="log_C"``) or ``C``
    itself (``param="C"``). The bound ``a_i <= C`` moves with the leader, and
    a `nestopt.Bounds` is a constant box, so it is written as a constraint
    of all variables: ``a_i - exp(t) <= 0``, one `nestopt.NonlinearConstraint`
    named ``'a <= C'`` (nonlinear in ``t`` only) for ``param="log_C"``, or a
    `nestopt.LinearConstraint` with rows ``(-1, e_i)`` for ``param="C"``.
    ``a >= 0`` is a `nestopt.Bounds`, ``y^T a = 0`` a `nestopt.LinearConstraint`
    (its multiplier is, up to sign, the SVM's intercept).

    The leader minimizes the squared validation loss of the decision
    function's linear part ``h(x) = w^T x``, ``w = X^T (a * y)``, over
    ``n_val`` held-out points::

        F(t, a) = 1/(2 n_val) sum_v (1 - y_v h(x_v))^2,

    smooth (a quadratic in ``a``) and depending on ``t`` only through the
    response. The intercept is left out because it is the follower's
    multiplier, not a variable the leader's objective can see.

    Parameters
    ----------
    data : {"breast_cancer", "iris", "wine"}
        scikit-learn's data set: breast cancer (30 features, malignant
        ``-1`` against benign ``+1``); iris versicolor (``-1``) against
        virginica (``+1``), 4 features, the pair that is not linearly
        separable; wine classes 0 (``-1``) and 1 (``+1``), 13 features.
    n_train, n_val : int
        Training and validation points, drawn without replacement by
        ``numpy.random.default_rng(seed)`` and stratified by class (each
        class in proportion to its share of the two), except that the
        training classes are never exactly balanced: with equal counts the
        corner ``a = C 1`` meets ``y^T a = 0``, so at small ``C`` all ``n +
        1`` rows are active and LICQ fails (a genuine degeneracy, not a
        solver's). Iris has 100 points in its two classes, so ``n_train +
        n_val <= 100`` there.
    seed : int
        Seed of the draw.
    param : {"log_C", "C"}
        The leader's variable.
    ridge : float, default 0
        Adds ``ridge/2 |a|^2`` to the follower (the L2-SVM dual has
        ``ridge = 1/C``; here it is a constant). ``Q`` has rank at most the
        number of features, so with ``ridge = 0`` the follower is convex but
        not strongly convex: its minimizer is unique where the reduced
        Hessian on the free multipliers is positive definite, as it is
        generically.
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('leader', 'follower')``, both declared quadratic in their
        own variable, with analytic ``grad``, ``hess``, ``value`` and
        constraint ``jac``/``hess``. ``x0`` is ``(t, a) = (log 1, 0)`` (or
        ``C = 1``); ``solution`` is None (no closed form). ``data`` holds
        ``X``, ``y`` (training, standardized with the training mean and
        deviation), ``X_val``, ``y_val``, ``Q``, ``C_grid`` (41 values of
        ``C`` log-spaced in ``[0.01, 100]``, those of nestopt issue 20),
        ``param``, ``ridge`` and ``data``.

    Notes
    -----
    KKT conditions of the follower at fixed ``C`` (with the gradient
    ``g = Q a - 1 + ridge a`` and the intercept ``b``): ``g_i + b y_i = 0``
    where ``0 < a_i < C``, ``>= 0`` where ``a_i = 0``, ``<= 0`` where ``a_i
    = C``. The tests check nestopt's responses against them and against
    SciPy's SLSQP.

    Examples
    --------
    >>> from nestopt.problems import svm_dual
    >>> p = svm_dual("iris", backend="numpy")
    >>> p.data["X"].shape, p.data["C_grid"].shape, [lv.size for lv in p.levels]
    ((60, 4), (41,), [1, 60])
    """
    # One function (longer than this package's usual ones): the data, the two levels'
    # oracles that close over it and the metadata are built together, as a problem is.
    if data not in _DATA:
        raise ValueError(f"svm_dual got data={data!r}; expected one of {_DATA}")
    if param not in ("log_C", "C"):
        raise ValueError(f"svm_dual got param={param!r}; expected 'log_C' or 'C'")
    for label, n in (("n_train", n_train), ("n_val", n_val)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"svm_dual needs an int {label} >= 2, got {n!r}")
    if not ridge >= 0.0:
        raise ValueError(f"svm_dual needs ridge >= 0, got {ridge!r}")
    X, y = _two_classes(data)
    if n_train + n_val > X.shape[0]:
        raise ValueError(
            f"svm_dual({data!r}) has {X.shape[0]} points in its two classes; n_train + n_val = "
            f"{n_train + n_val} is more: lower n_train or n_val"
        )
    train, val = _split(y, n_train, n_val, seed)
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    std[std == 0.0] = 1.0
    Xt, Xv = (X[train] - mean) / std, (X[val] - mean) / std
    yt, yv = y[train], y[val]
    Q = (yt[:, None] * yt[None, :]) * (Xt @ Xt.T)
    M = (yv[:, None] * (Xv @ Xt.T)) * yt[None, :]  # margins y_v h(x_v) = M a
    on = _on_backend(backend)
    n = n_train
    Q_b, M_b = on(Q + ridge * np.eye(n)), on(M)
    ones_n, ones_v = on(np.ones(n)), on(np.ones(n_val))
    zero1, zero11 = on(np.zeros(1)), on(np.zeros((1, 1)))
    eq_row = np.concatenate([[0.0], yt])[None, :]
    constraints: list[Any] = [LinearConstraint(on(eq_row), on([0.0]), on([0.0]))]
    if param == "C":
        A = np.hstack([-np.ones((n, 1)), np.eye(n)])
        constraints.append(LinearConstraint(on(A), on(np.full(n, -_INF)), on(np.zeros(n))))
    else:
        constraints.append(_upper_log_c(on, n))
    follower = Level(
        value=lambda t, a: 0.5 * (a @ (Q_b @ a)) - ones_n @ a,
        grad=lambda t, a: (zero1, Q_b @ a - ones_n),
        hess=lambda t, a: [[None, None], [None, Q_b]],
        size=n,
        bounds=Bounds(on(np.zeros(n)), on(np.full(n, _INF))),
        constraints=constraints,
        name="follower",
        quadratic=True,
    )
    MtM = on(M.T @ M / n_val)

    def leader_value(t: Any, a: Any) -> Any:
        r = ones_v - M_b @ a
        return 0.5 * (r @ r) / n_val

    leader = Level(
        value=leader_value,
        grad=lambda t, a: (zero1, (M_b.T @ (M_b @ a - ones_v)) / n_val),
        hess=lambda t, a: [[zero11, None], [None, MtM]],
        size=1,
        name="leader",
        quadratic=True,
    )
    t0 = 0.0 if param == "log_C" else 1.0
    return KnownProblem(
        [leader, follower],
        x0=(on([t0]), on(np.zeros(n))),
        data={
            "X": Xt,
            "y": yt,
            "X_val": Xv,
            "y_val": yv,
            "Q": Q,
            "C_grid": np.logspace(-2.0, 2.0, 41),
            "param": param,
            "ridge": ridge,
            "data": data,
            "seed": seed,
        },
        description=(
            f"svm_dual({data!r}, n_train={n_train}, n_val={n_val}, seed={seed}, "
            f"param={param!r}, ridge={ridge:g})"
        ),
    )


def _upper_log_c(on: Any, n: int) -> NonlinearConstraint:
    """``a_i - exp(t) <= 0``: linear in ``a``, its only curvature in ``t``."""
    eye = on(np.eye(n))
    ones_col = on(np.ones((n, 1)))

    def fun(t: Any, a: Any) -> Any:
        import array_api_compat

        return a - array_api_compat.array_namespace(t).exp(t)

    def jac(t: Any, a: Any) -> Any:
        import array_api_compat

        return (-array_api_compat.array_namespace(t).exp(t) * ones_col, eye)

    def hess(t: Any, a: Any, v: Any) -> Any:
        import array_api_compat

        xp = array_api_compat.array_namespace(t)
        return [[xp.reshape(-xp.sum(v) * xp.exp(t), (1, 1)), None], [None, None]]

    return NonlinearConstraint(
        fun, on(np.full(n, -_INF)), on(np.zeros(n)), jac=jac, hess=hess, name="a <= C"
    )


def _two_classes(data: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels ``+-1`` of the two classes used from a scikit-learn data set."""
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError(
            "svm_dual needs scikit-learn for its data (pip install scikit-learn)"
        ) from None
    if data == "breast_cancer":
        bunch = datasets.load_breast_cancer()
        return bunch.data.astype(float), np.where(bunch.target == 1, 1.0, -1.0)
    bunch = datasets.load_iris() if data == "iris" else datasets.load_wine()
    first, second = (1, 2) if data == "iris" else (0, 1)
    keep = (bunch.target == first) | (bunch.target == second)
    return bunch.data[keep].astype(float), np.where(bunch.target[keep] == second, 1.0, -1.0)


def _split(y: np.ndarray, n_train: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint training and validation indices, each stratified by class."""
    rng = np.random.default_rng(seed)
    pos, neg = rng.permutation(np.flatnonzero(y > 0)), rng.permutation(np.flatnonzero(y < 0))
    share = pos.size / y.size
    n_pos_t = min(max(round(share * n_train), 1), n_train - 1)
    if 2 * n_pos_t == n_train:  # balanced: a = C 1 would meet y^T a = 0 with n + 1 rows active
        n_pos_t -= 1
    pos_left, neg_left = pos[n_pos_t:], neg[n_train - n_pos_t :]
    n_pos_v = min(max(round(share * n_val), n_val - neg_left.size, 1), pos_left.size, n_val - 1)
    train = np.concatenate([pos[:n_pos_t], neg[: n_train - n_pos_t]])
    val = np.concatenate([pos_left[:n_pos_v], neg_left[: n_val - n_pos_v]])
    return np.sort(train), np.sort(val)


def svm_dual_kkt_residual(Q: Any, y: Any, C: float, a: Any) -> float:
    """Largest violation of the SVM dual's KKT conditions at ``a``, computed without a solver.

    ``Q`` and ``y`` are ``svm_dual(...).data["Q"]`` and ``["y"]``.

    With ``g = Q a - 1`` and an intercept ``b``, ``r = g + b y`` must be 0
    where ``0 < a_i < C``, ``>= 0`` where ``a_i = 0`` and ``<= 0`` where
    ``a_i = C``. Entry ``i`` violates this by ``min(a_i / C, r_i / s)`` when
    ``r_i > 0`` and ``min(1 - a_i / C, -r_i / s)`` when ``r_i < 0`` (``s``
    the gradient's scale): a min-function residual that needs no guess of
    which entries sit at a bound. ``b`` is the best of the values that make
    one entry's ``r_i`` zero (the exact intercept is among them whenever an
    entry is free), so a small residual certifies a KKT point. Feasibility
    (``y^T a = 0``, the box) counts relative to ``C``.
    """
    g = Q @ a - 1.0
    scale = max(1.0, float(np.max(np.abs(g))))
    u = a / C
    best = np.inf
    for b in -g / y:
        r = (g + b * y) / scale
        viol = np.where(r > 0, np.minimum(u, r), np.minimum(1.0 - u, -r))
        best = min(best, float(np.max(viol)))
    feasibility = max(abs(float(y @ a)) / C, float(np.max(-u)), float(np.max(u - 1.0)))
    return max(best, feasibility)
