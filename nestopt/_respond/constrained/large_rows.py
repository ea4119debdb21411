"""A large level with linear rows (and a box): a primal-dual active set solved by products.

Level ``j`` given by products (``hvp``) or a sparse Hessian, with rows
``l <= A_up x_<j + J x_j <= u`` linear in its own and the upper variables (not
in the levels below) and possibly a box. Starting from the box's solution
without the rows (`large_box`'s projected Newton), a working set of bounds
``X`` and rows ``W`` is held at its targets and the rest solved by Newton on
the equality-constrained problem; the step's KKT system
``[A_FF J_WF^T; J_WF 0]`` is solved through its Schur complement
``S = J_WF A_FF^{-1} J_WF^T`` (``m_W + 1`` CG solves on the free variables
``F``, ``S`` small and dense). Then every violated bound or row joins the set
and every held one whose multiplier has the wrong sign leaves it, until the
set settles (the primal-dual active-set method of Hintermueller, Ito and
Kunisch, on bounds and rows together). The answer passes the same tests as a
dense level's: bounds and rows feasible, multipliers of the right sign (zero
ones weakly active, released and reported), the free block positive definite
(the CG evidence), ``S`` nonsingular (LICQ).

The Jacobian system on the active set is that Schur complement: with
``Y = A_FF^{-1} J_WF^T``, ``G u = -(w + Y S^{-1} (C u - J w))`` for
``w = A_FF^{-1} B u``, and ``G^T v = -(B^T nu + C^T mu)`` for
``mu = S^{-1} J A_FF^{-1} v``, ``nu = A_FF^{-1} v - Y mu`` (``C = A_up``
on ``W``: how the rows move with the upper variables).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device

from ..._backend.host import to_numpy
from ..._errors import ConstraintQualificationError, ConvergenceError, OracleError
from ..._levels.rows import ConstraintRows
from ..nest import LevelSolution, Nest
from .active_rows import ConstrainedSolution
from .large_box import WEAK, BoxSystem, box_bounds, box_solve, point_at, system_at

__all__ = ["solve_large_rows_level", "RowsSystem"]

CHANGES = 200  # corrections of the working set (batches first, then one at a time)


def solve_large_rows_level(
    nest: Nest, j: int, xs: tuple[Any, ...], rows: ConstraintRows, opts: Any
) -> LevelSolution:
    """Level ``j`` (linear rows, a box or none, products only) solved for fixed ``x_<j``."""
    xp, problem = nest.xp, nest.problem
    text, own = problem.describe(j), problem.block(j)
    _check_rows(rows, own, text, j)
    mode = nest.config.newton_mode(j)
    A = rows.A
    J, C = A[:, own], A[:, : own.start]
    J_host = np.asarray(to_numpy(J), dtype=float)
    up = xp.concat(list(xs[: j - 1])) if j > 1 else None
    offset = np.asarray(to_numpy(C @ up), dtype=float) if up is not None else 0.0
    lb = np.asarray(to_numpy(rows.lb), dtype=float)[: rows.general] - offset
    ub = np.asarray(to_numpy(rows.ub), dtype=float)[: rows.general] - offset
    lower, upper = box_bounds(nest, j, rows)
    lo = np.asarray(to_numpy(lower), dtype=float)
    hi = np.asarray(to_numpy(upper), dtype=float)
    eps = float(xp.finfo(J.dtype).eps)
    # The box's own solution: a start whose bounds are mostly the right ones.
    point = box_solve(nest, j, xs, lower, upper, opts)[0]
    y = np.asarray(to_numpy(point.x), dtype=float)
    g = np.asarray(to_numpy(point.grad_own), dtype=float)
    X = ((y <= lo) & (g > 0)) | ((y >= hi) & (g < 0))
    box_target = np.where(y >= hi, hi, lo)
    Jy = J_host @ y
    equal = lb == ub
    W = equal | (Jy <= lb) | (Jy >= ub)
    row_target = np.where(equal, lb, np.where(Jy >= ub, ub, lb))
    seen: set[bytes] = set()
    stage = 0  # batches; then one change at a time, dropping first; then adding first
    for _ in range(CHANGES):
        point, nu, S, Y = _newton_on_set(
            nest, j, point, X, box_target, W, row_target, J, J_host, mode, opts, text
        )
        y = np.asarray(to_numpy(point.x), dtype=float)
        g = np.asarray(to_numpy(point.grad_own), dtype=float)
        full = g + J_host.T @ nu  # the Lagrangian's gradient: zero on the free variables
        size = max(float(np.max(np.abs(g), initial=0.0)), 1e-300)
        sign = 1e3 * eps * size
        Jy = J_host @ y
        row_size = np.maximum(np.abs(Jy), 1.0)
        add_box = ~X & ((y < lo - 1e3 * eps * np.maximum(np.abs(lo), 1.0))
                        | (y > hi + 1e3 * eps * np.maximum(np.abs(hi), 1.0)))  # fmt: skip
        drop_box = X & (
            ((box_target == lo) & (full < -sign)) | ((box_target == hi) & (full > sign))
        )
        add_rows = ~W & ((Jy < lb - 1e3 * eps * row_size) | (Jy > ub + 1e3 * eps * row_size))
        inequality = W & ~equal
        drop_rows = inequality & (
            ((row_target == ub) & (nu < -sign)) | ((row_target == lb) & (nu > sign))
        )
        # A held row its free variables could not meet (its bound-held variables fix it
        # otherwise): those variables are released.
        unmet = W & (np.abs(Jy - row_target) > 1e3 * eps * row_size)
        if unmet.any():
            drop_box |= X & np.any(J_host[unmet] != 0.0, axis=0)
        if not (add_box.any() or drop_box.any() or add_rows.any() or drop_rows.any()):
            return _result(nest, j, point, rows, X, W, equal, nu, full, size, J, C, text)
        box_target = np.where(add_box & (y > hi), hi, np.where(add_box, lo, box_target))
        row_target = np.where(add_rows & (Jy > ub), ub, np.where(add_rows, lb, row_target))
        if stage == 0:
            X = (X | add_box) & ~drop_box
            W = (W | add_rows) & ~drop_rows
        else:  # one change at a time
            X, W = _one_change(X, W, add_box, drop_box, add_rows, drop_rows, y, lo, hi, Jy,
                               lb, ub, full, nu, drop_first=stage == 1)  # fmt: skip
        key = X.tobytes() + W.tobytes()
        if key in seen:
            # A cycle (a QP that is no M-matrix): batches, then one change at a time dropping
            # first, then adding first (on random QPs with rows each order settles cases
            # the other cycles on).
            if stage == 2:
                break
            stage, seen = stage + 1, set()
        seen.add(key)
    raise ConvergenceError(
        f"{text}: the active set of its bounds and rows did not settle (it cycles or needs "
        f"more than {CHANGES} corrections); the level may be degenerate or its rows "
        "infeasible at these upper variables",
        level=j,
    )


def _one_change(
    X: Any, W: Any, add_box: Any, drop_box: Any, add_rows: Any, drop_rows: Any, y: Any,
    lo: Any, hi: Any, Jy: Any, lb: Any, ub: Any, full: Any, nu: Any, drop_first: bool,
) -> tuple[Any, Any]:  # fmt: skip
    """The working sets after one correction: the most violated bound or row added, or the
    held one whose multiplier is most wrong dropped (``drop_first`` says which comes first)."""
    X, W = X.copy(), W.copy()
    drops = drop_box.any() or drop_rows.any()
    adds = add_box.any() or add_rows.any()
    if drops and (drop_first or not adds):
        box_wrong = np.where(drop_box, np.abs(full), -np.inf)
        row_wrong = np.where(drop_rows, np.abs(nu), -np.inf)
        if np.max(box_wrong, initial=-np.inf) >= np.max(row_wrong, initial=-np.inf):
            X[int(np.argmax(box_wrong))] = False
        else:
            W[int(np.argmax(row_wrong))] = False
        return X, W
    with np.errstate(invalid="ignore"):
        box_violation = np.where(add_box, np.maximum(lo - y, y - hi), -np.inf)
        row_violation = np.where(add_rows, np.maximum(lb - Jy, Jy - ub), -np.inf)
    if np.max(box_violation, initial=-np.inf) >= np.max(row_violation, initial=-np.inf):
        X[int(np.argmax(box_violation))] = True
    else:
        W[int(np.argmax(row_violation))] = True
    return X, W


def _check_rows(rows: ConstraintRows, own: slice, text: str, j: int) -> None:
    if rows.nonlinear or rows.A is None:
        raise OracleError(
            f"{text}: a level given by products or a sparse Hessian takes linear rows "
            "(nestopt.LinearConstraint) and bounds; nonlinear constraints need a dense hess",
            level=j,
        )
    below = np.asarray(to_numpy(rows.A[:, own.stop :]), dtype=float)
    if below.size and np.any(below != 0.0):
        raise OracleError(
            f"{text}: its linear rows involve the variables of levels below it; on a level "
            "given by products or a sparse Hessian they may involve its own and the upper "
            "levels' variables only (give this level a dense hess for such rows)",
            level=j,
        )


def _newton_on_set(
    nest: Nest, j: int, point: Any, X: Any, box_target: Any, W: Any, row_target: Any, J: Any,
    J_host: Any, mode: str, opts: Any, text: str,
) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """Newton on the equality-constrained problem of the set ``(X, W)`` from ``point``: the
    point, the rows' multipliers (host, zero off ``W``), ``S`` and ``Y`` there."""
    xp = nest.xp
    idx = np.flatnonzero(W)
    eps = float(xp.finfo(J.dtype).eps)
    scale = 1.0
    J_W = xp.take(J, xp.asarray(idx, dtype=xp.int64, device=device(J)), axis=0)
    for _ in range(opts.maxiter + 1):
        y = np.asarray(to_numpy(point.x), dtype=float)
        scale = max(scale, float(np.max(np.abs(y), initial=0.0)))
        system = system_at(nest, j, point, X, mode)
        w = system.solve(point.grad_own)
        onto = np.where(X, box_target - y, 0.0)
        nu = np.zeros(W.size)
        S = Y = None
        if idx.size:
            Y = system.solve(xp.matrix_transpose(J_W))
            S = np.asarray(to_numpy(J_W @ Y), dtype=float)
            S = 0.5 * (S + S.T)
            # J_W (y + onto + p) = target with p = -(w + Y nu) on the free variables
            residual = J_host[idx] @ (y + onto) - row_target[idx]
            rhs = residual - np.asarray(to_numpy(J_W @ w), dtype=float)
            nu[idx] = np.linalg.lstsq(S, rhs, rcond=None)[0]
            p = -(w + Y @ xp.asarray(nu[idx], dtype=J.dtype, device=device(J)))
        else:
            p = -w
        step = np.asarray(to_numpy(p), dtype=float) + onto
        size = float(np.max(np.abs(step), initial=0.0))
        if size <= max(opts.tol, 100.0 * eps) * scale:
            return point, nu, S, Y
        trial = list(point.below.xs)
        trial[j - 1] = point.x + xp.asarray(step, dtype=point.x.dtype, device=device(point.x))
        point = point_at(nest, j, tuple(trial), mode)
    raise ConvergenceError(
        f"{text}: Newton on an active set of its bounds and rows did not converge in "
        f"{opts.maxiter} iterations; raise maxiter in level_options",
        level=j,
    )


def _result(
    nest: Nest, j: int, point: Any, rows: ConstraintRows, X: Any, W: Any, equal: Any, nu: Any,
    full: Any, size: float, J: Any, C: Any, text: str,
) -> LevelSolution:  # fmt: skip
    """Vet the settled set (weak bounds and rows released) and build the Jacobian system."""
    xp = nest.xp
    mode = nest.config.curvature_mode(j)
    weak_box = X & (np.abs(full) <= WEAK * size)
    weak_rows = W & ~equal & (np.abs(nu) <= WEAK * size)
    held_box, held_rows = X & ~weak_box, W & ~weak_rows
    system = system_at(nest, j, point, held_box, mode)
    final: Any = system
    if held_rows.any():
        idx = np.flatnonzero(held_rows)
        take = xp.asarray(idx, dtype=xp.int64, device=device(J))
        J_W = xp.take(J, take, axis=0)
        Y = system.solve(xp.matrix_transpose(J_W))
        S = np.asarray(to_numpy(J_W @ Y), dtype=float)
        S = 0.5 * (S + S.T)
        values = np.linalg.eigvalsh(S)
        if not values[0] > 1e3 * np.finfo(float).eps * max(values[-1], 1e-300):
            raise ConstraintQualificationError(
                f"{text}: the gradients of its active rows are linearly dependent on its free "
                "variables (LICQ fails): multipliers and derivatives are not unique",
                level=j,
            )
        final = RowsSystem(system, J_W, xp.take(C, take, axis=0), S, Y)
    else:
        system.solve(point.grad_own)  # the free block's curvature evidence, before any use
    box_lam = np.where(held_box, -full, 0.0)
    row_lam = np.where(held_rows, nu, 0.0)
    if rows.box is not None:
        lam = np.concatenate([row_lam, box_lam])
        active = np.concatenate([held_rows, held_box])
        weak = np.concatenate([weak_rows, weak_box])
    else:
        lam, active, weak = row_lam, held_rows, weak_rows
    labels = rows.labels
    solution = ConstrainedSolution(
        lam, active, labels, [labels[i] for i in np.flatnonzero(weak)], rows, weak
    )
    return LevelSolution(j, point.below, final, 0, solution)


class RowsSystem:
    """The Jacobian system of a large level with rows held: the box's operator system and the
    rows' Schur complement (see the module)."""

    def __init__(self, base: BoxSystem, J_W: Any, C_W: Any, S: Any, Y: Any) -> None:
        self.base, self.xp = base, base.xp
        self.J, self.C, self.S, self.Y = J_W, C_W, S, Y
        self._G: Any = None

    def _S_solve(self, r: Any) -> Any:
        out = np.linalg.solve(self.S, np.asarray(to_numpy(r), dtype=float))
        return self.xp.asarray(out, dtype=self.J.dtype, device=device(self.J))

    def solve(self, rhs: Any) -> Any:
        if rhs.ndim == 2:
            columns = [self.solve(rhs[:, i]) for i in range(rhs.shape[1])]
            return self.xp.stack(columns, axis=1) if columns else rhs
        w = self.base.solve(rhs)
        return w - self.Y @ self._S_solve(self.J @ w)

    def adjoint(self, v: Any) -> Any:
        return self.solve(v)

    def adjoint_full(self, v: Any) -> tuple[Any, Any]:
        w = self.base.solve(v)
        mu = self._S_solve(self.J @ w)
        return w - self.Y @ mu, mu

    def Lambda(self) -> Any:
        """``d nu_W / d x_<j``: ``S^{-1} (C - J A_FF^{-1} B)``."""
        xp = self.xp
        s = self.C.shape[1]
        eye = xp.eye(s, dtype=self.J.dtype, device=device(self.J))
        columns = []
        for i in range(s):
            w = self.base.solve(self.base.products.B(eye[:, i]))
            columns.append(self._S_solve(self.C[:, i] - self.J @ w))
        return xp.stack(columns, axis=1) if columns else xp.zeros((self.J.shape[0], 0))

    def G_apply(self, u: Any) -> Any:
        if u.ndim == 2:
            return self.xp.stack([self.G_apply(u[:, i]) for i in range(u.shape[1])], axis=1)
        w = self.base.solve(self.base.products.B(u))
        return -(w + self.Y @ self._S_solve(self.C @ u - self.J @ w))

    def GT_apply(self, v: Any) -> Any:
        if v.ndim == 2:
            return self.xp.stack([self.GT_apply(v[:, i]) for i in range(v.shape[1])], axis=1)
        nu, mu = self.adjoint_full(v)
        return -(self.base.products.BT(nu) + self.xp.matrix_transpose(self.C) @ mu)

    def G(self) -> Any:
        if self._G is None:
            s = self.C.shape[1]
            eye = self.xp.eye(s, dtype=self.J.dtype, device=device(self.J))
            self._G = self.G_apply(eye)
        return self._G

    def G_columns(self, cols: slice) -> Any:
        return self.G()[:, cols]
