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


class _Columns:
    """``X^T (X theta - y) / n + e * theta`` for sparse ``X``, on its used columns where few.

    Sparse regression data may leave many features unused (about two thirds
    of them at ``p = 10^6`` here); the products with ``X`` and ``X^T`` touch only
    the used ones. Where at most half are used, keeping those columns turns
    the length-``p`` gather and scatter of ``X @ theta`` and ``X.T @ r`` into
    ones over the used columns; the result is written once, without a
    length-``p`` temporary.
    """

    def __init__(self, X: Any, y: Any) -> None:
        used = np.unique(X.indices).astype(np.intp)
        self.used = used if 2 * used.shape[0] <= X.shape[1] else None
        self.X = X if self.used is None else X[:, used].tocsr()
        self.XT = self.X.T  # CSC: its product scatters X's rows, faster than a CSR walk
        self.y, self.n = y, X.shape[0]

    def residual(self, theta: Any) -> Any:
        """``X theta - y``."""
        return self.X @ (theta if self.used is None else theta[self.used]) - self.y

    def gradient(self, out: Any, theta: Any, weights: Any = None, *, shift: bool = True) -> Any:
        """``out = X^T (X theta - y) / n + e * theta`` (``- y`` only with ``shift``; ``e``
        and its used entries as ``weights``, ``None`` for none), returned."""
        used = self.used
        part = theta if used is None else theta[used]
        r = self.X @ part
        if shift:
            r -= self.y
        r /= self.n
        w = self.XT @ r
        if weights is None:
            out[...] = 0.0
        else:
            np.multiply(weights[0], theta, out=out)
        if used is None:
            out += w
            return out
        if weights is not None:
            w += weights[1] * part
        out[used] = w
        return out


def _group_sums(a: Any, b: Any, n_groups: int) -> Any:
    """``sum_{j in g} a_j b_j`` per group ``g`` (feature ``j`` in group ``j mod G``)."""
    whole = a.shape[0] - a.shape[0] % n_groups
    sums = np.einsum("ij,ij->j", a[:whole].reshape(-1, n_groups), b[:whole].reshape(-1, n_groups))
    rest = a.shape[0] - whole
    if rest:
        sums[:rest] += a[whole:] * b[whole:]
    return sums


class _Learner:
    """The follower's callables (kept as methods: they pickle, for solve_many).

    Written as a careful NumPy user would for ``p`` in the millions: the used
    columns only (`_Columns`), per-group sums without a length-``p`` temporary,
    the output written once.
    """

    def __init__(self, X: Any, y: Any, groups: Any, n_groups: int) -> None:
        self.columns = _Columns(X, y)
        self.groups, self.G = groups, n_groups
        self._last: tuple[bytes, Any] | None = None

    def _weights(self, lam: Any) -> tuple[Any, Any]:
        """``exp(lam_g(j))`` per feature and on the used columns, kept for the last ``lam``
        (Krylov solves ask often)."""
        key = np.asarray(lam).tobytes()
        if self._last is None or self._last[0] != key:
            e = np.exp(lam)[self.groups]
            used = self.columns.used
            self._last = (key, (e, e if used is None else e[used]))
        return self._last[1]

    def value(self, lam: Any, theta: Any) -> float:
        r = self.columns.residual(theta)
        penalty = np.exp(lam) @ _group_sums(theta, theta, self.G)
        return float(r @ r / (2 * self.columns.n) + 0.5 * penalty)

    def grad(self, lam: Any, theta: Any) -> tuple[Any, Any]:
        g_theta = self.columns.gradient(np.empty_like(theta), theta, self._weights(lam))
        return 0.5 * np.exp(lam) * _group_sums(theta, theta, self.G), g_theta

    def hvp(self, lam: Any, theta: Any, v: Any) -> Any:
        G = self.G
        v_lam, v_theta = v[:G], v[G:]
        out = np.empty_like(v)
        out_lam, out_theta = out[:G], out[G:]
        self.columns.gradient(out_theta, v_theta, self._weights(lam), shift=False)
        out_lam[:] = np.exp(lam) * _group_sums(theta, v_theta, G)
        if np.any(v_lam):  # Krylov products on theta alone skip the lam terms
            out_lam += 0.5 * np.exp(lam) * _group_sums(theta, theta, G) * v_lam
            out_theta += self._weights(lam)[0] * theta * v_lam[self.groups]
        return out


class _Leader:
    def __init__(self, X: Any, y: Any, n_groups: int) -> None:
        self.columns = _Columns(X, y)
        self.G = n_groups

    def value(self, lam: Any, theta: Any) -> float:
        r = self.columns.residual(theta)
        return float(r @ r / (2 * self.columns.n))

    def grad(self, lam: Any, theta: Any) -> tuple[Any, Any]:
        return np.zeros(self.G), self.columns.gradient(np.empty_like(theta), theta)

    def hvp(self, lam: Any, theta: Any, v: Any) -> Any:
        out = np.zeros_like(v)
        self.columns.gradient(out[self.G :], v[self.G :], shift=False)
        return out
