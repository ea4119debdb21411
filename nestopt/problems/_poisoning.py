"""``data_poisoning``: ridge hyperparameter learning against a training-data attacker."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend.selection import get_backend
from .._extras import require
from .._levels.problem import Level
from ._base import KnownProblem
from ._ridge import RidgeFit

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
    for name, value in (("n_train", n_train), ("n_val", n_val)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    if not penalty > 0:
        raise ValueError(f"penalty must be positive, got {penalty!r}")
    data = _diabetes_split(n_train, n_val, seed)
    data["penalty"] = penalty
    p = data["X_train"].shape[1]
    m = p if per_feature else 1
    chosen = get_backend(backend)
    dtype = chosen.xp.float64

    def on_backend(a: np.ndarray) -> Any:
        return chosen.asarray(a, dtype=dtype, copy=True)

    fit = RidgeFit(on_backend(data["X_train"]), on_backend(data["y_train"]), m, attacker)
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


def _diabetes_split(n_train: int, n_val: int, seed: int) -> dict[str, Any]:
    """scikit-learn's diabetes data split at random and standardized by the training rows."""
    datasets = require("sklearn.datasets", "nestopt.problems.data_poisoning")

    X_all, y_all = datasets.load_diabetes(return_X_y=True)
    rows = X_all.shape[0]
    if n_train + n_val >= rows:
        raise ValueError(
            f"n_train + n_val = {n_train + n_val} leaves no test rows of the {rows} in the "
            "diabetes data; choose smaller sizes"
        )
    order = np.random.default_rng(seed).permutation(rows)
    train, val, test = np.split(order, [n_train, n_train + n_val])
    mean, scale = X_all[train].mean(axis=0), X_all[train].std(axis=0)
    y_mean, y_scale = y_all[train].mean(), y_all[train].std()
    return {
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
    }


def _validation_level(X: Any, y: Any, gram: Any, fit: RidgeFit, m: int) -> Level:
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
