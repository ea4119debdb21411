"""A constrained level's reduced problem at fixed upper variables (DESIGN section 7).

Level ``j`` minimizes ``F_j(x_<=j)`` over ``x_j`` subject to
``lb <= c~(x_<=j) <= ub`` with ``c~ = c(x_<=j, r_>j(x_<=j))``. At a point the
model gives ``F_j``, its reduced gradient ``c_j^T grad f_j``, the constraint
values, their reduced Jacobian ``J = (jac c) c_j`` and cross Jacobian
``(jac c P_j)[:, <j]``, and the rows of the reduced Hessian of the
Lagrangian ``L_j = f_j + lambda^T c`` (with the curvature term of the level
below taken for ``L_j`` in exact mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from array_api_compat import device

from ..._derivatives.compose import own_rows, pull_back, reduced_grad
from ..._derivatives.curvature import term_is_zero
from ..._derivatives.curvature_terms import CurvatureTerm
from ..._errors import OracleError
from ..._levels.rows import ConstraintRows
from ..._linalg.sparse import is_sparse
from ..nest import Nest, Response

__all__ = ["LevelModel", "LevelPoint", "SparseLevelHessian"]


class SparseLevelHessian(Exception):
    """Internal: a box-constrained level's Hessian is sparse; the box path takes it over."""


@dataclass(eq=False)
class LevelPoint:
    """Level ``j`` evaluated at one ``x_j`` with the levels below solved."""

    below: Response
    g: Any  # grad f_j, all variables
    g_own: Any  # c_j^T grad f_j
    fun: float | None
    c: Any  # values of every row (m,), the box's (x_j itself) last
    J_full: Any  # (m_g, D): the general rows' Jacobian (the box's rows are never formed)
    J: Any  # (m_g, d_j): (jac c) c_j
    R: Any
    # what is computed once per point from the fields above (host arrays: the rows' scales)
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def xs(self) -> tuple[Any, ...]:
        return self.below.xs


class LevelModel:
    """Evaluations of level ``j``'s reduced problem for the interior-point solver."""

    def __init__(self, nest: Nest, j: int, rows: ConstraintRows) -> None:
        self.nest, self.j, self.rows = nest, j, rows
        self.xp = nest.xp
        self.problem = nest.problem
        self.own = nest.problem.block(j)
        self.text = nest.problem.describe(j)
        self.derived: dict[str, Any] = {}  # host data computed once per model (row kinds)

    def at(self, xs: tuple[Any, ...]) -> LevelPoint:
        """Solve the levels below at ``xs`` and evaluate level ``j`` there."""
        nest, j, xp = self.nest, self.j, self.xp
        below = nest.respond(j, xs)
        oracles = nest.oracles
        g = oracles.grad(j, below.xs)
        R = below.R()
        fun = float(oracles.value(j, below.xs)) if oracles.has(j, "value") else None
        c = self.rows.values(below.xs)
        J_full = self.rows.jacobian(below.xs, box=False)
        J = J_full[:, self.own]
        if R is not None:
            J = J + J_full[:, self.own.stop :] @ R[:, self.own]
        return LevelPoint(below, g, reduced_grad(xp, g, R, self.own), fun, c, J_full, J, R)

    def cross_jacobian(self, point: LevelPoint) -> Any:
        """``(jac c P_j)[:, <j]`` of the general rows: how they move with the upper variables
        (the box's rows do not)."""
        J_full, R, own = point.J_full, point.R, self.own
        C = J_full[:, : own.start]
        if R is not None:
            C = C + J_full[:, own.stop :] @ R[:, : own.start]
        return C

    @property
    def convex_qp(self) -> bool:
        """The bottom level, declared quadratic, with linear rows only."""
        level = self.problem.levels[self.j - 1]
        return self.j == self.problem.n and bool(level.quadratic) and self.rows.all_linear

    @property
    def has_curvature_term(self) -> bool:
        """Whether exact mode adds a curvature term of the levels below (else both curvature
        modes give the same `lagrangian_rows`)."""
        return self.j < self.problem.n and not term_is_zero(self.problem, self.j)

    def rows_depend_on_multipliers(self, mode: str) -> bool:
        """Whether `lagrangian_rows` changes with ``lam``: curved rows, or the curvature term
        of a level below (exact mode), which takes the Lagrangian's gradient."""
        return not self.rows.all_linear or (mode == "exact" and self.has_curvature_term)

    def lagrangian_rows(self, point: LevelPoint, lam: Any, mode: str) -> Any:
        """``c_j^T M P_j``, ``M = hess f_j + sum lam_i hess c_i``, less the curvature term of
        the level below taken for ``L_j`` in exact mode (DESIGN 7)."""
        nest, j, xp = self.nest, self.j, self.xp
        start = self.own.start
        M = nest.oracles.hess(j, point.xs, start=start)
        if is_sparse(M):
            if not self.rows.nonlinear:
                raise SparseLevelHessian  # a box and linear rows: by products (`large_box`)
            raise OracleError(
                f"{self.text} returned a sparse Hessian and has nonlinear constraints: a "
                "sparse level takes bounds and linear constraints (solved by products), but "
                "nonlinear constraints need a dense Hessian for now; return a dense array "
                "(e.g. hess(...).toarray())",
                level=j,
            )
        curvature = self.rows.weighted_hessian(point.xs, lam)
        if curvature is not None:
            M = M + curvature[start:, :]
        extra = None
        if mode == "exact" and point.below.top is not None and not term_is_zero(self.problem, j):
            grad_L = point.g + xp.matrix_transpose(point.J_full) @ lam[: self.rows.general]
            if self.rows.box is not None:  # the box's rows: lam on the own block
                pad = (self.own.start, self.problem.dim - self.own.stop)
                zeros = [xp.zeros((k,), dtype=lam.dtype, device=device(lam)) for k in pad]
                grad_L = grad_L + xp.concat([zeros[0], lam[self.rows.general :], zeros[1]])
            term = CurvatureTerm(nest, j, point.below, grad_L)
            M = M - term.rows(start)
            extra = term.extra_rows(lambda w: pull_back(xp, w, point.R, self.own.stop))
        rows = own_rows(xp, M, point.R, self.own)
        return rows if extra is None else rows - extra
