"""``group_ridge``: per-group ridge weights learned on validation data, for very many features.

A matrix-free bilevel problem at scale (issue 14): the follower fits a ridge
regression with ``p`` features (``p`` up to millions) on sparse data, one
log-ridge-weight per group of features; the leader picks the weights that
minimize the validation error. The follower's Hessian is given only as
products, so nestopt solves it by Newton-CG and differentiates it with one
conjugate-gradient solve per hypergradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._extras import require
from .._levels.problem import Level
from ._base import KnownProblem

__all__ = ["group_ridge"]


def group_ridge(
    n_features: int = 100_000,
    n_samples: int = 2_000,
    n_groups: int = 10,
    *,
    per_row: int = 20,
    noise: float = 0.1,
    seed: int = 0,
) -> KnownProblem:
    """Per-group ridge regularization of a sparse regression (NumPy and SciPy only).

    Parameters
    ----------
    n_features : int
        ``p``: the follower's variables (the regression weights ``theta``).
    n_samples : int
        Training rows; as many validation rows.
    n_groups : int
        ``G``: the leader's variables, one log-ridge-weight per group;
        feature ``j`` belongs to group ``j mod G``.
    per_row : int
        Nonzero features per data row (the data are sparse).
    noise : float
        Standard deviation of the noise added to the targets.
    seed : int
        Seed of ``numpy.random.default_rng`` for the data.

    Returns
    -------
    KnownProblem
        Levels ``('leader', 'learner')`` of sizes ``(G, p)``; the learner has
        ``grad``, ``hvp`` and ``value`` (no ``hess``: it is matrix-free), the
        leader ``grad``, ``hvp`` and ``value``. ``x0`` is zero. ``data``
        holds the sparse ``X_train, X_val`` (SciPy CSR), ``y_train, y_val``,
        ``groups`` and ``theta_true``. No closed form: the hypergradient is
        checked against finite differences of the value function in the tests.

    Notes
    -----
    With ``e_g = exp(lam_g)`` and ``g(j)`` the group of feature ``j``::

        f_2 = |X theta - y|^2 / (2 n) + sum_j e_g(j) theta_j^2 / 2     (learner)
        f_1 = |X_val theta - y_val|^2 / (2 n)                           (leader)

    The learner is strongly convex in ``theta`` for every ``lam`` (its
    Hessian is ``X^T X / n + diag(e_g(j))``).
    """
    sp = require("scipy.sparse", "nestopt.problems.group_ridge")

    for name, value in (("n_features", n_features), ("n_samples", n_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    rng = np.random.default_rng(seed)
    groups = np.arange(n_features) % n_groups
    theta_true = rng.standard_normal(n_features) * (rng.random(n_features) < 0.1)

    def data(rows: int) -> tuple[Any, Any]:
        columns = rng.integers(0, n_features, size=(rows, per_row))
        values = rng.standard_normal((rows, per_row))
        indptr = np.arange(0, rows * per_row + 1, per_row)
        X = sp.csr_matrix((values.ravel(), columns.ravel(), indptr), shape=(rows, n_features))
        X.sum_duplicates()
        return X, X @ theta_true + noise * rng.standard_normal(rows)

    X, y = data(n_samples)
    X_val, y_val = data(n_samples)
    learner = _Learner(X, y, groups, n_groups)
    leader = _Leader(X_val, y_val, n_groups)
    return KnownProblem(
        [
            Level(
                grad=leader.grad, hvp=leader.hvp, value=leader.value, size=n_groups, name="leader"
            ),
            Level(
                grad=learner.grad,
                hvp=learner.hvp,
                value=learner.value,
                size=n_features,
                name="learner",
            ),
        ],  # fmt: skip
        x0=(np.zeros(n_groups), np.zeros(n_features)),
        data={
            "X_train": X,
            "y_train": y,
            "X_val": X_val,
            "y_val": y_val,
            "groups": groups,
            "theta_true": theta_true,
        },
        description=(
            f"group_ridge(n_features={n_features}, n_samples={n_samples}, n_groups={n_groups}, "
            f"seed={seed})"
        ),
    )


class _Learner:
    """The follower's callables (kept as methods: they pickle, for solve_many)."""

    def __init__(self, X: Any, y: Any, groups: Any, n_groups: int) -> None:
        self.X, self.y, self.groups, self.G = X, y, groups, n_groups
        self.n = X.shape[0]
        self._last: tuple[bytes, Any] | None = None

    def _weights(self, lam: Any) -> Any:
        """``exp(lam_g(j))`` per feature, kept for the last ``lam`` (Krylov solves ask often)."""
        key = np.asarray(lam).tobytes()
        if self._last is None or self._last[0] != key:
            self._last = (key, np.exp(lam)[self.groups])
        return self._last[1]

    def value(self, lam: Any, theta: Any) -> float:
        r = self.X @ theta - self.y
        return float(r @ r / (2 * self.n) + 0.5 * self._weights(lam) @ (theta * theta))

    def grad(self, lam: Any, theta: Any) -> tuple[Any, Any]:
        e = self._weights(lam)
        r = self.X @ theta - self.y
        g_lam = np.bincount(self.groups, weights=0.5 * e * theta * theta, minlength=self.G)
        return g_lam, self.X.T @ r / self.n + e * theta

    def hvp(self, lam: Any, theta: Any, v: Any) -> Any:
        G = self.G
        v_lam, v_theta = v[:G], v[G:]
        e = self._weights(lam)
        out_lam = np.bincount(self.groups, weights=e * theta * v_theta, minlength=G)
        out_theta = self.X.T @ (self.X @ v_theta) / self.n + e * v_theta
        if np.any(v_lam):  # Krylov products on theta alone skip the lam terms
            out_lam += (
                np.bincount(self.groups, weights=0.5 * e * theta * theta, minlength=G) * v_lam
            )
            out_theta += e * theta * v_lam[self.groups]
        return np.concatenate([out_lam, out_theta])


class _Leader:
    def __init__(self, X: Any, y: Any, n_groups: int) -> None:
        self.X, self.y, self.G = X, y, n_groups
        self.n = X.shape[0]

    def value(self, lam: Any, theta: Any) -> float:
        r = self.X @ theta - self.y
        return float(r @ r / (2 * self.n))

    def grad(self, lam: Any, theta: Any) -> tuple[Any, Any]:
        return np.zeros(self.G), self.X.T @ (self.X @ theta - self.y) / self.n

    def hvp(self, lam: Any, theta: Any, v: Any) -> Any:
        v_theta = v[self.G :]
        return np.concatenate([np.zeros(self.G), self.X.T @ (self.X @ v_theta) / self.n])
