"""``data_poisoning``: ridge hyperparameter learning against a training-data attacker."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import get_backend
from .._problem import Level
from ._base import KnownProblem

__all__ = ["data_poisoning"]


def data_poisoning(
    n_train: int = 40,
    n_val: int = 100,
    seed: int = 0,
    *,
    per_feature: bool = False,
    penalty: float = 0.03,
    attacker: bool = True,
    backend: Any = None,
) -> KnownProblem:
    """Trilevel ridge regression on scikit-learn's diabetes data, with a poisoning attacker.

    The application of Sato, Tanaka & Takeda (2021): a leader tunes the
    ridge regularization on validation data, an attacker perturbs the
    training features, and a learner fits the ridge model to the perturbed
    data. Regularization learned against the attacker is meant to make the
    model robust to corrupted features. Needs scikit-learn (for the data).

    Parameters
    ----------
    n_train, n_val : int, default 40 and 100
        Rows drawn for training and validation; the other ``442 - n_train -
        n_val`` rows are the test set.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``, whose ``permutation(442)``
        splits the rows (training first, then validation, then test).
    per_feature : bool, default False
        One regularization weight per feature instead of one for all.
    penalty : float, default 0.03
        Weight of the attacker's cost ``penalty / 2 ||P||_F^2``: smaller
        means a stronger attack.
    attacker : bool, default True
        ``False`` gives the bilevel problem (leader and learner, no ``P``),
        the baseline the trilevel model is compared with.
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('leader', 'attacker', 'learner')`` with variables
        ``lam`` (shape ``(m,)``, ``m = 1`` or ``p = 10``), ``P`` (shape
        ``(n_train * p,)``, the ``(n_train, p)`` perturbation flattened row
        by row) and ``theta`` (shape ``(p,)``); without the attacker, levels
        ``('leader', 'learner')``. ``x0`` is zero; ``solution`` is ``None``
        (no closed form). ``data`` holds the standardized NumPy arrays
        ``X_train, y_train, X_val, y_val, X_test, y_test`` and the
        training statistics used to standardize them.

    Notes
    -----
    With ``A = X_tr + P``, ``r = A theta - y_tr`` and ``e = exp(lam)``:

        f_3 = |r|^2 / (2 n_train) + sum_j e_j theta_j^2 / 2       (learner)
        f_2 = -|r|^2 / (2 n_train) + penalty / 2 ||P||_F^2         (attacker)
        f_1 = |X_val theta - y_val|^2 / (2 n_val)                  (leader)

    (one ``e`` for every ``j`` unless ``per_feature``). Features and target
    are standardized with the training rows' mean and standard deviation.
    ``lam`` is the logarithm of the ridge weight, so the learner is
    strongly convex for every ``lam``. The attacker's reduced problem
    ``F_2(P) = f_2(P, theta*(P))`` is strongly convex when ``penalty``
    outweighs the negative curvature of ``-|r|^2 / (2 n_train)`` along the
    learner's response; measured by finite differences of the exact reduced
    gradient at the solutions (seeds 0..4), its smallest eigenvalue is 0.73
    to 0.99 times ``penalty`` for ``penalty`` from 0.003 to 1 (0.77 to 0.87
    at the default). The default 0.03 keeps that margin while the attack is
    strong enough to change the learned ``lam``; at ``penalty = 1`` the
    perturbation is of order ``1e-2`` and the trilevel and bilevel models
    nearly coincide. All Hessians are given as blocks; the learner's and the
    attacker's ``hess_dir`` are exact.
    """
    from sklearn.datasets import load_diabetes

    for name, value in (("n_train", n_train), ("n_val", n_val)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    X_all, y_all = load_diabetes(return_X_y=True)
    rows = X_all.shape[0]
    if n_train + n_val >= rows:
        raise ValueError(
            f"n_train + n_val = {n_train + n_val} leaves no test rows of the {rows} in the "
            "diabetes data; choose smaller sizes"
        )
    if not penalty > 0:
        raise ValueError(f"penalty must be positive, got {penalty!r}")
    order = np.random.default_rng(seed).permutation(rows)
    train, val, test = np.split(order, [n_train, n_train + n_val])
    mean, scale = X_all[train].mean(axis=0), X_all[train].std(axis=0)
    y_mean, y_scale = y_all[train].mean(), y_all[train].std()
    data = {
        "X_train": (X_all[train] - mean) / scale,
        "y_train": (y_all[train] - y_mean) / y_scale,
        "X_val": (X_all[val] - mean) / scale,
        "y_val": (y_all[val] - y_mean) / y_scale,
        "X_test": (X_all[test] - mean) / scale,
        "y_test": (y_all[test] - y_mean) / y_scale,
        "feature_mean": mean,
        "feature_scale": scale,
        "target_mean": y_mean,
        "target_scale": y_scale,
        "seed": seed,
        "penalty": penalty,
    }
    p = X_all.shape[1]
    m = p if per_feature else 1
    chosen = get_backend(backend)
    dtype = chosen.xp.float64

    def on_backend(a: np.ndarray) -> Any:
        return chosen.asarray(a, dtype=dtype, copy=True)

    fit = _RidgeFit(on_backend(data["X_train"]), on_backend(data["y_train"]), m, attacker)
    X_val, y_val = data["X_val"], data["y_val"]
    leader = _validation_level(
        on_backend(X_val), on_backend(y_val), on_backend(X_val.T @ X_val / n_val), fit, m
    )
    levels = [leader]
    if attacker:
        levels.append(fit.level(sign=-1.0, penalty=penalty, size=n_train * p, name="attacker"))
    levels.append(fit.level(sign=1.0, penalty=0.0, size=p, name="learner"))
    sizes = (m, n_train * p, p) if attacker else (m, p)
    kind = "trilevel" if attacker else "bilevel"
    return KnownProblem(
        levels,
        x0=tuple(on_backend(np.zeros(s)) for s in sizes),
        solution=None,
        data=data,
        description=(
            f"data_poisoning({kind}, n_train={n_train}, n_val={n_val}, seed={seed}, "
            f"per_feature={per_feature}, penalty={penalty})"
        ),
    )


def _validation_level(X: Any, y: Any, gram: Any, fit: _RidgeFit, m: int) -> Level:
    n = X.shape[0]
    last = fit.n_levels - 1

    def value(*xs: Any) -> Any:
        r = X @ xs[-1] - y
        return (r @ r) / (2.0 * n)

    def grad(*xs: Any) -> Any:
        import array_api_compat

        xp = array_api_compat.array_namespace(*xs)
        return tuple(
            (X.T @ (X @ x - y)) / n if i == last else xp.zeros_like(x) for i, x in enumerate(xs)
        )

    hess = [[None] * fit.n_levels for _ in range(fit.n_levels)]
    hess[last][last] = gram
    return Level(
        grad=grad,
        hess=lambda *xs: hess,
        value=value,
        size=m,
        name="leader",
        quadratic=True,
    )


class _RidgeFit:
    """Derivatives of the training loss and the ridge term in ``(lam, [P,] theta)``.

    ``sign * |r|^2 / (2 n)`` plus, for the learner, the ridge term and, for
    the attacker, ``penalty / 2 ||P||^2``; blocks are returned as a nested
    list in the level order ``lam, P, theta`` (``lam, theta`` without ``P``).
    """

    def __init__(self, X: Any, y: Any, m: int, attacker: bool) -> None:
        self.X, self.y, self.m = X, y, m
        self.n, self.p = X.shape
        self.attacker = attacker
        self.n_levels = 3 if attacker else 2

    def _parts(self, xs: tuple[Any, ...]) -> tuple[Any, Any, Any, Any, Any]:
        import array_api_compat

        xp = array_api_compat.array_namespace(*xs)
        lam, theta = xs[0], xs[-1]
        P = xp.reshape(xs[1], (self.n, self.p)) if self.attacker else None
        A = self.X if P is None else self.X + P
        return xp, lam, P, theta, A

    def level(self, *, sign: float, penalty: float, size: int, name: str) -> Level:
        ridge = sign > 0
        n, p, m = self.n, self.p, self.m
        iP = 1 if self.attacker else None
        it = self.n_levels - 1

        def value(*xs: Any) -> Any:
            xp, lam, P, theta, A = self._parts(xs)
            r = A @ theta - self.y
            out = sign * (r @ r) / (2.0 * n)
            if ridge:
                out = out + 0.5 * xp.sum(xp.exp(lam) * theta**2)
            if penalty:
                out = out + 0.5 * penalty * xp.sum(P * P)
            return out

        def grad(*xs: Any) -> Any:
            xp, lam, P, theta, A = self._parts(xs)
            r = A @ theta - self.y
            g_theta = sign * (A.T @ r) / n
            g_lam = xp.zeros_like(lam)
            if ridge:
                e = xp.exp(lam)
                g_theta = g_theta + e * theta
                g_lam = 0.5 * e * theta**2
                if m == 1:
                    g_lam = xp.reshape(xp.sum(g_lam), (1,))
            out = [g_lam, g_theta]
            if self.attacker:
                g_P = sign * (r[:, None] * theta[None, :]) / n
                if penalty:
                    g_P = g_P + penalty * P
                out.insert(1, xp.reshape(g_P, (n * p,)))
            return tuple(out)

        def hess(*xs: Any) -> Any:
            xp, lam, P, theta, A = self._parts(xs)
            r = A @ theta - self.y
            blocks = [[None] * self.n_levels for _ in range(self.n_levels)]
            H_tt = sign * (A.T @ A) / n
            if ridge:
                e = xp.exp(lam)
                H_tt = H_tt + _diag(xp, e * xp.ones_like(theta))
                blocks[0][0] = self._lam_lam(xp, 0.5 * e * theta**2)
                blocks[0][it] = self._lam_theta(xp, e * theta)
                blocks[it][0] = blocks[0][it].T
            blocks[it][it] = H_tt
            if self.attacker:
                H_PP = sign * _kron_eye(xp, n, theta[:, None] * theta[None, :]) / n
                if penalty:
                    H_PP = H_PP + penalty * xp.eye(n * p, dtype=P.dtype, device=_device(P))
                blocks[iP][iP] = H_PP
                blocks[iP][it] = sign * self._P_theta(xp, A, theta, r) / n
                blocks[it][iP] = blocks[iP][it].T
            return blocks

        def hess_dir(*args: Any) -> Any:
            *xs, v = args
            xs = tuple(xs)
            xp, lam, P, theta, A = self._parts(xs)
            v_lam, v_theta = v[:m], v[v.shape[0] - p :]
            blocks = [[None] * self.n_levels for _ in range(self.n_levels)]
            dr = A @ v_theta
            dH_tt = None
            if self.attacker:
                v_P = xp.reshape(v[m : m + n * p], (n, p))
                dr = dr + v_P @ theta
                dH_tt = sign * (v_P.T @ A + A.T @ v_P) / n
                dtt = theta[:, None] * v_theta[None, :]
                blocks[iP][iP] = sign * _kron_eye(xp, n, dtt + dtt.T) / n
                blocks[iP][it] = (
                    sign
                    * (
                        self._P_theta(xp, A, v_theta, dr)
                        + xp.reshape(v_P[:, None, :] * theta[None, :, None], (n * p, p))
                    )
                    / n
                )
                blocks[it][iP] = blocks[iP][it].T
            if ridge:
                e = xp.exp(lam)
                ridge_dir = _diag(xp, e * v_lam * xp.ones_like(theta))
                dH_tt = ridge_dir if dH_tt is None else dH_tt + ridge_dir
                blocks[0][0] = self._lam_lam(xp, e * (0.5 * v_lam * theta**2 + theta * v_theta))
                blocks[0][it] = self._lam_theta(xp, e * (v_lam * theta + v_theta))
                blocks[it][0] = blocks[0][it].T
            blocks[it][it] = dH_tt
            return blocks

        return Level(
            grad=grad,
            hess=hess,
            value=value,
            hess_dir=hess_dir,
            size=size,
            name=name,
        )

    def _lam_lam(self, xp: Any, w: Any) -> Any:
        """``(m, m)`` block from per-feature terms ``w``: their sum, or their diagonal."""
        if self.m == 1:
            return xp.reshape(xp.sum(w), (1, 1))
        return _diag(xp, w)

    def _lam_theta(self, xp: Any, w: Any) -> Any:
        """``(m, p)`` block from per-feature terms ``w``: one row, or their diagonal."""
        if self.m == 1:
            return xp.reshape(w, (1, self.p))
        return _diag(xp, w)

    def _P_theta(self, xp: Any, A: Any, theta: Any, r: Any) -> Any:
        """``d (r_i theta_j) / d theta_l = A_il theta_j + r_i delta_jl``, as ``(n p, p)``."""
        n, p = self.n, self.p
        eye = xp.eye(p, dtype=A.dtype, device=_device(A))
        block = A[:, None, :] * theta[None, :, None] + r[:, None, None] * eye[None, :, :]
        return xp.reshape(block, (n * p, p))


def _diag(xp: Any, w: Any) -> Any:
    """The diagonal matrix of a vector (the standard has no ``diag``)."""
    return w[:, None] * xp.eye(w.shape[0], dtype=w.dtype, device=_device(w))


def _kron_eye(xp: Any, n: int, M: Any) -> Any:
    """``kron(I_n, M)`` for a ``(p, p)`` matrix ``M``."""
    p = M.shape[0]
    eye = xp.eye(n, dtype=M.dtype, device=_device(M))
    return xp.reshape(eye[:, None, :, None] * M[None, :, None, :], (n * p, n * p))


def _device(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)
