"""The algebra of DESIGN section 2 (and the adjoint recursion of section 8), on arrays.

Notation: level ``j`` owns columns ``s_{j-1}:s_j`` of the flat vector of all
``D`` variables; ``R_j = d r_>j / d x_<=j`` has shape ``(D - s_j, s_j)``
(``None`` for ``j = n``); ``P_j = [I; R_j]`` is never formed and
``c_j = P_j[:, block j]``. Every function is pure and works for a vector or
a matrix of right-hand sides where that makes sense. The implicit solver, the
ITD baseline and the matrix-free products all call these; nothing else
re-derives them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "reduced_grad",
    "own_rows",
    "stack_response",
    "pull_back",
    "response_jvp",
    "response_vjp",
]


def reduced_grad(xp: Any, g: Any, R: Any | None, own: slice) -> Any:
    """``c_j^T g = g[j] + R_j[:, j]^T g[>j]``: level ``j``'s reduced gradient (DESIGN 2)."""
    if R is None:
        return g[own]
    return g[own] + xp.matrix_transpose(R[:, own]) @ g[own.stop :]


def own_rows(xp: Any, hess_rows: Any, R: Any | None, own: slice) -> Any:
    """``H_j[j, :] = c_j^T M_j P_j``, shape ``(d_j, s_j)``: level ``j``'s own reduced rows.

    ``hess_rows`` holds rows ``s_{j-1}:D`` of ``M_j`` (only those are read).
    """
    d_j = own.stop - own.start
    if R is None:
        return hess_rows[:d_j, :]
    rows = hess_rows[:d_j, :] + xp.matrix_transpose(R[:, own]) @ hess_rows[d_j:, :]
    return rows[:, : own.stop] + rows[:, own.stop :] @ R


def stack_response(xp: Any, G: Any, R: Any | None, own: slice) -> Any:
    """``R_{j-1} = [G_j; R_j[:, <j] + R_j[:, j] G_j]`` from level ``j``'s Jacobian (DESIGN 2)."""
    if R is None:
        return G
    return xp.concat([G, R[:, : own.start] + R[:, own] @ G], axis=0)


def pull_back(xp: Any, w: Any, R: Any | None, s: int) -> Any:
    """``P_j^T w = w[:s_j] + R_j^T w[s_j:]``: a gradient of all variables, reduced to ``x_<=j``."""
    if R is None:
        return w[:s]
    return w[:s] + xp.matrix_transpose(R) @ w[s:]


def response_jvp(
    xp: Any,
    u: Any,
    G_apply: Callable[[Any], Any],
    below_jvp: Callable[[Any], Any] | None,
) -> Any:
    """``R_{j-1} u = [G_j u; R_j [u; G_j u]]``: forward product, one solve per level (DESIGN 8)."""
    g = G_apply(u)
    if below_jvp is None:
        return g
    return xp.concat([g, below_jvp(xp.concat([u, g], axis=0))], axis=0)


def response_vjp(
    w: Any,
    own: slice,
    GT_apply: Callable[[Any], Any],
    below_vjp: Callable[[Any], Any] | None,
) -> Any:
    """``R_{j-1}^T w = (R_j^T w_>)[<j] + G_j^T (w_j + (R_j^T w_>)[j])`` (DESIGN 8).

    ``w`` stacks the rows of level ``j`` (``w_j``) and of the levels below
    (``w_>``); one adjoint solve with level ``j``'s block, not ``s_{j-1}``.
    """
    d_j = own.stop - own.start
    w_j = w[:d_j]
    if below_vjp is None:
        return GT_apply(w_j)
    y = below_vjp(w[d_j:])
    return y[: own.start] + GT_apply(w_j + y[own])
