"""The exact curvature term of level ``j`` from the level below it, unconstrained or not.

Level ``j+1`` unconstrained (DESIGN 3): ``S_j = -P_j^T T_{j+1}(x, v) P_j`` with
``v = (0, c_{j+1} nu)`` and ``nu = A_{j+1}^{-1} c_{j+1}^T grad L_j``.

Level ``j+1`` constrained (DESIGN 7), with ``(nu_x, nu_lambda) = K^{-1} (c_{j+1}^T
grad L_j, 0)`` from its KKT matrix, multipliers ``lambda``, ``Lambda =
d lambda_A / d x_<=j`` and ``v = (0, c_{j+1} nu_x)``:

    S_j = -(P_j^T H P_j + P_j^T K Lambda + Lambda^T K^T P_j)
    H   = T_{f_{j+1}}(x, v) + d/dt sum_i lambda_i hess c_i (x + t v) + sum_i nu_lambda,i hess c_i
    K   = [hess c_i v]  (one column per active row; zero for linear rows and bounds)

Returned as ``H``'s rows (subtracted from ``M_j`` before the reduction) and the
own rows of the two ``K`` terms (subtracted after it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device

from .._backend.host import to_numpy
from .compose import pull_back, reduced_grad
from .curvature import third_order_rows

__all__ = ["curvature_terms"]


def curvature_terms(
    nest: Any, j: int, below: Any, grad_L: Any, start: int
) -> tuple[Any, Any | None]:
    """``(H rows start:D, extra own rows or None)`` of level ``j``'s exact curvature term."""
    xp, problem = nest.xp, nest.problem
    top = below.top
    i = j + 1
    own_i = problem.block(i)
    R_i = top.below.R()
    rhs = reduced_grad(xp, grad_L, R_i, own_i)
    constrained = top.constrained
    if constrained is None:
        nu = top.system.adjoint(rhs)
    else:
        nu, nu_lambda = top.system.adjoint_full(rhs)
    parts = [xp.zeros((own_i.start,), dtype=nu.dtype, device=device(nu)), nu]
    if R_i is not None:
        parts.append(R_i[:, own_i] @ nu)
    v = xp.concat(parts)
    fd = nest.config.fd_step
    H = third_order_rows(nest.oracles, i, below.xs, v, start=start, fd_step=fd)
    if constrained is None:
        return H, None
    rows = nest.level_cache[("rows", i)]
    if rows.all_linear:
        return H, None
    lam = xp.asarray(constrained.lam, dtype=nu.dtype, device=device(nu))
    active = np.flatnonzero(constrained.active)
    weights = np.zeros(rows.m)
    weights[active] = np.asarray(_host(nu_lambda))
    nu_weights = xp.asarray(weights, dtype=nu.dtype, device=device(nu))
    H = H + _lagrangian_curvature(nest, rows, below.xs, lam, v, fd)[start:, :]
    H = H + rows.weighted_hessian(below.xs, nu_weights)[start:, :]
    extra = None
    if active.size:
        extra = _multiplier_terms(nest, j, below, rows, active, v, top.system.Lambda())
    return H, extra


def _lagrangian_curvature(nest: Any, rows: Any, xs: Any, lam: Any, v: Any, fd: Any) -> Any:
    """``d/dt sum_i lam_i hess c_i(x + t v)`` at ``t = 0``: the constraints' ``hess_dir``
    where every nonlinear one has it, else central differences of their ``hess``."""
    analytic = rows.weighted_hessian_dir(xs, lam, v)
    if analytic is not None:
        return analytic
    xp = nest.xp
    vmax = float(xp.max(xp.abs(v)))
    if vmax == 0.0:
        return xp.zeros((v.shape[0], v.shape[0]), dtype=v.dtype, device=device(v))
    x = xp.concat(list(xs))
    eps = float(xp.finfo(v.dtype).eps)
    size = float(xp.max(xp.abs(x)))
    h = (fd or eps ** (1.0 / 3.0)) * (size if size > 0.0 else 1.0) / vmax
    cuts = np.cumsum((0, *nest.problem.sizes))

    def split(y: Any) -> list[Any]:
        return [y[int(cuts[k]) : int(cuts[k + 1])] for k in range(len(cuts) - 1)]

    plus = rows.weighted_hessian(split(x + h * v), lam)
    minus = rows.weighted_hessian(split(x - h * v), lam)
    return (plus - minus) / (2.0 * h)


def _multiplier_terms(
    nest: Any, j: int, below: Any, rows: Any, active: Any, v: Any, Lambda: Any
) -> Any:
    """Own rows of ``P_j^T K Lambda + Lambda^T K^T P_j`` (``d_j x s_j``)."""
    xp = nest.xp
    own = nest.problem.block(j)
    columns = []
    for row in active:
        e = np.zeros(rows.m)
        e[row] = 1.0
        weight = xp.asarray(e, dtype=v.dtype, device=device(v))
        hessian = rows.weighted_hessian(below.xs, weight)
        columns.append(hessian @ v)
    K = xp.stack(columns, axis=1)  # (D, a)
    R = below.R()
    PK = pull_back(xp, K, R, own.stop)  # P_j^T K: (s_j, a)
    cK = PK[own, :]  # c_j^T K
    return cK @ Lambda + xp.matrix_transpose(Lambda[:, own]) @ xp.matrix_transpose(PK)


def _host(a: Any) -> Any:

    return to_numpy(a)
