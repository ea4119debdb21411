"""``nnls``: a nonnegative least-squares follower on sparse data, whose targets the leader moves.

A large box-constrained follower (issue 24): ``y >= 0`` with ``p`` variables
(up to 10^5 and more) fitted to sparse data whose right-hand side the leader
shifts; the leader wants the fit near a target. The follower's Hessian is
given in one of three forms, so the same problem exercises the dense, the
sparse and the matrix-free paths of a box-constrained level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._extras import require
from .._levels.constraints import Bounds
from .._levels.problem import Level
from ._base import KnownProblem

__all__ = ["nnls"]

HESSIANS = ("hvp", "sparse", "dense")


def nnls(
    p: int = 100_000,
    *,
    hessian: str = "hvp",
    leader_size: int = 5,
    per_column: int = 5,
    ridge: float = 1e-2,
    mu: float = 1e-2,
    seed: int = 0,
) -> KnownProblem:
    """Bilevel nonnegative least squares with ``p`` follower variables (NumPy and SciPy).

    The follower fits ``y >= 0`` to data ``M`` (``2p x p``, sparse, about
    ``per_column`` nonzeros per column plus the identity's) with a right-hand
    side the leader shifts, ``b(x) = b_0 + C x``:

        min_y  f = |M y - b(x)|^2 / 2 + ridge |y|^2 / 2     s.t.  y >= 0,

    and the leader ``x`` (``leader_size`` entries) wants the fit near a
    target: ``F = |y - y_t|^2 / 2 + mu |x|^2 / 2``. The follower is strongly
    convex (``ridge > 0``), so its response is unique; at the start about
    half of its bounds are active.

    Parameters
    ----------
    p : int
        The follower's variables.
    hessian : {'hvp', 'sparse', 'dense'}
        How the follower gives its Hessian: products (``hvp``), a
        ``scipy.sparse`` matrix (``hess``), or dense blocks (``hess``; small
        ``p`` only).
    leader_size, per_column, ridge, mu, seed
        Sizes, density, regularizations and the data's seed.

    Returns
    -------
    KnownProblem
        Levels ``('leader', 'nnls')``; ``x0`` is ``(zeros, zeros)``.
        ``data`` holds ``M`` (CSR), ``b0``, ``C``, ``y_target``, ``ridge``
        and ``mu``. ``solution`` is None.

    Examples
    --------
    >>> from nestopt.problems import nnls
    >>> problem = nnls(50, hessian="sparse")
    >>> [level.size for level in problem.levels]
    [5, 50]
    """
    sparse = require("scipy.sparse", "nestopt.problems.nnls")
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ValueError(f"nnls needs a positive int p, got {p!r}")
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
    if not ridge > 0.0:
        raise ValueError(f"nnls needs ridge > 0 (a unique response), got {ridge!r}")
    rng = np.random.default_rng(seed)
    m, q = 2 * p, leader_size
    count = per_column * p
    rows, cols = rng.integers(0, m, count), rng.integers(0, p, count)
    values = rng.standard_normal(count) / np.sqrt(per_column)
    M = sparse.csr_matrix((values, (rows, cols)), shape=(m, p)) + sparse.eye(m, p, format="csr")
    M = sparse.csr_matrix(M)
    MT = sparse.csr_matrix(M.T)
    b0 = rng.standard_normal(m)
    C = rng.standard_normal((m, q)) / np.sqrt(q)
    y_target = rng.uniform(0.0, 1.0, p)
    cross = -(MT @ C)  # d(grad_y f)/dx: (p, q)
    CtC = C.T @ C

    def f_value(x: Any, y: Any) -> float:
        r = M @ y - b0 - C @ x
        return 0.5 * float(r @ r) + 0.5 * ridge * float(y @ y)

    def f_grad(x: Any, y: Any) -> tuple[Any, Any]:
        r = M @ y - b0 - C @ x
        return -(C.T @ r), MT @ r + ridge * y

    def f_hvp(x: Any, y: Any, v: Any) -> Any:
        vx, vy = v[:q], v[q:]
        return np.concatenate([CtC @ vx + cross.T @ vy, cross @ vx + MT @ (M @ vy) + ridge * vy])

    def f_hess_sparse(x: Any, y: Any) -> Any:
        own = MT @ M + ridge * sparse.eye(p, format="csr")
        return sparse.bmat(
            [[sparse.csr_matrix(CtC), sparse.csr_matrix(cross.T)], [sparse.csr_matrix(cross), own]],
            format="csr",
        )

    def f_hess_dense(x: Any, y: Any) -> Any:
        own = (MT @ M).toarray() + ridge * np.eye(p)
        return [[CtC, cross.T], [cross, own]]

    forms: dict[str, dict[str, Any]] = {
        "hvp": {"hvp": f_hvp},
        "sparse": {"hess": f_hess_sparse},
        "dense": {"hess": f_hess_dense},
    }
    follower = Level(
        value=f_value,
        grad=f_grad,
        size=p,
        bounds=Bounds(np.zeros(p), np.full(p, np.inf)),
        name="nnls",
        quadratic=True,
        **forms[hessian],
    )
    leader = Level(
        value=lambda x, y: 0.5 * float((y - y_target) @ (y - y_target)) + 0.5 * mu * float(x @ x),
        grad=lambda x, y: (mu * x, y - y_target),
        hvp=lambda x, y, v: np.concatenate([mu * v[:q], v[q:]]),
        size=q,
        name="leader",
        quadratic=True,
    )
    return KnownProblem(
        [leader, follower],
        x0=(np.zeros(q), np.zeros(p)),
        data={"M": M, "b0": b0, "C": C, "y_target": y_target, "ridge": ridge, "mu": mu},
        description=f"nnls(p={p}, hessian={hessian!r}, seed={seed})",
    )
