"""One level's reduced gradient and reduced Hessian rows at a point, factored.

``linearize`` forms ``c_j^T grad f_j`` and the own block ``A = H_j[j, j] =
c_j^T M_j c_j`` with ``M_j = hess f_j`` (minus the curvature term ``T_{j+1}``
in exact mode), and factors it. At the bottom level the cross rows ``H_j[j, <j]``
are slices of ``M_j``; above it only ``R_j``'s own columns are formed (DESIGN
section 8) and the cross rows are applied as products (`ProductSystem`).
Work is reused exactly: rows, factor and system are kept while ``M_j`` and
``R_j[:, j]`` are bit-for-bit what they were (a system above other levels is
rebuilt on the current levels below). A declared quadratic level's ``M_j``
never changes, so while its ``R_j[:, j]`` does not either its Hessian is not
asked for again; ``M_j`` itself is not kept (it
can be most of the joint Hessian, and only its reduced rows are needed).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any, TypeGuard

from .._derivatives.compose import own_rows
from .._derivatives.curvature import term_is_zero
from .._derivatives.curvature_terms import CurvatureTerm
from .._errors import (
    FactorizationError,
    NestoptError,
    not_positive_definite,
    numerically_singular,
    singular_block,
    zero_curvature,
)
from .._levels.oracles import abbreviate
from .._linalg.dense_system import DenseSystem
from .._linalg.factor import Factorization, factorize, factorize_shifted, smallest_eigenvalues
from .._linalg.product_system import CrossParts, ProductSystem
from .._linalg.sparse import identity_like, is_sparse, to_dense
from .nest import Nest, Response, same_arrays

__all__ = ["Linearization", "linearize", "block_error"]


@dataclass(eq=False)
class Block:
    """Reduced rows of one level at one point, with ``A = H_j[j, j]`` factored.

    ``source`` tells which ``M_j`` the rows came from without keeping it alive:
    `CONSTANT` for a declared quadratic level, else a weak reference (or None).
    """

    source: Any
    R: Any
    rows: Any
    A: Any
    factor: Factorization
    method: str
    system: Any = None
    cross: CrossParts | None = None  # a level above others: its cross rows' parts


@dataclass(eq=False)
class Linearization:
    """Level ``j`` at one point: ``R_j``, its reduced gradient, and its factored `Block`."""

    nest: Nest
    j: int
    mode: str
    R: Any
    grad_own: Any
    block: Block
    below: Response | None = None

    @property
    def text(self) -> str:
        """How messages name the level."""
        return self.nest.problem.describe(self.j)

    @property
    def own(self) -> slice:
        return self.nest.problem.block(self.j)

    @property
    def A(self) -> Any:
        return self.block.A

    @property
    def method(self) -> str:
        return self.block.method

    @property
    def shifted(self) -> bool:
        return self.block.factor.shift > 0.0

    def solve_step(self, forcing: float = 0.0) -> Any:
        """``A^{-1} grad``: the (possibly shifted) Newton system, solved exactly.

        With least squares the system may have no solution (a gradient outside the
        block's range): then no step makes the level stationary, and that is an error,
        not a zero step taken for convergence.
        """
        try:
            step = self.block.factor.solve(self.grad_own)
        except FactorizationError as exc:
            raise singular_block(self.text, self.j, str(exc), self.method) from None
        if self.method == "lstsq":
            xp = self.nest.xp
            A = self.block.A
            residual = float(xp.linalg.vector_norm(A @ step - self.grad_own))
            scale = float(xp.linalg.vector_norm(A @ step)) + float(
                xp.linalg.vector_norm(self.grad_own)
            )
            eps = float(xp.finfo(step.dtype).eps)
            if residual > math.sqrt(eps) * max(scale, 1e-300):
                raise singular_block(
                    self.text,
                    self.j,
                    "singular, and its gradient has a component outside the block's range "
                    "(no Newton step can make the level stationary)",
                    self.method,
                )
        return step

    def predict_below(self, step: Any) -> Any | None:
        """``R_j[:, j] step``: how the levels below move when ``x_j`` moves by ``step``."""
        if self.R is None:
            return None
        return self.R @ step

    def error(self, where: str) -> NestoptError:
        return block_error(self.nest, self.j, self.block.A, where)

    def system(self) -> Any:
        """The Jacobian's system (factor and cross rows), checked to be a strict minimum."""
        block = self.block
        if block.cross is not None and (
            block.system is None or block.system.below is not self.below
        ):
            # The cross rows' products go through the levels below this point (a reused
            # block's own columns are the same; the upper columns need not be).
            if block.method != "cholesky":
                _check_minimum(self.nest, self.j, block.A, block.factor.negatives)
            block.system = ProductSystem(
                self.nest.xp,
                block.factor,
                block.cross,
                self.below,
                self.text,
                self.j,
                self.nest.config.residual_tol,
            )
        elif block.system is None:
            if block.method != "cholesky":
                _check_minimum(self.nest, self.j, block.A, block.factor.negatives)
            block.system = DenseSystem(
                self.nest.xp,
                block.factor,
                block.rows[:, : self.own.start],
                self.text,
                self.j,
                self.nest.config.residual_tol,
            )
        return block.system


def linearize(
    nest: Nest, j: int, below: Response, g: Any, mode: str, *, for_step: bool
) -> Linearization:
    """Level ``j``'s `Linearization` at ``below.xs`` with curvature ``mode``.

    ``for_step`` factors for a Newton step (Cholesky shifted until positive
    definite); otherwise the factor is the Jacobian's, unshifted. The block
    of the previous call is reused while ``M_j`` is the same array (or the
    level is declared quadratic) and ``R_j`` is bit-for-bit the same.
    """
    xp, problem = nest.xp, nest.problem
    own = problem.block(j)
    opts = nest.config.levels[j - 1]
    # Only R_j's own columns (DESIGN 8): the cross rows are products (`ProductSystem`);
    # all of R_j when every Jacobian will be formed anyway (then the rows are formed at once).
    full = below.top is not None and nest.form_jacobians
    R_full = below.R() if full else None
    if below.top is None:
        R = None
    else:
        R = below.columns(own) if R_full is None else R_full[:, own]
    grad_own = g[own] if R is None else g[own] + xp.matrix_transpose(R) @ g[own.stop :]
    key = (j, mode)
    block = nest.blocks.get(key)
    if block is not None and (block.cross is None) != (R is None or full):
        block = None  # built for the other path (full rows or products): not this one's
    with_term = _has_curvature_term(nest, j, below, mode)
    constant = problem.levels[j - 1].quadratic and not with_term
    if constant and _reusable(block, CONSTANT, R, xp, for_step):
        nest.stats.reused[j - 1] += 1
        return Linearization(nest, j, mode, R, grad_own, block, below)
    M, extra = _hessian_rows(nest, j, below, g, with_term)
    if not constant and _reusable(block, M, R, xp, for_step):
        nest.stats.reused[j - 1] += 1
    else:
        rows, cross = None, None
        if R is None or full:
            rows = own_rows(xp, M, R_full, own)
            if extra is not None:
                rows = rows - extra
            A = rows[:, own]
        else:
            A, cross = _own_block(xp, M, R, extra, own)
        if opts.ridge:
            A = A + opts.ridge * identity_like(A, xp)
        factor = _factor(nest, j, A, for_step=for_step, point=below.xs)
        source = CONSTANT if constant else _weak(M)
        block = Block(source, R, rows, A, factor, opts.linear_solver, cross=cross)
        nest.blocks[key] = block
    return Linearization(nest, j, mode, R, grad_own, block, below)


def _own_block(xp: Any, M: Any, R_own: Any, extra: Any, own: slice) -> tuple[Any, CrossParts]:
    """``A = c_j^T M c_j`` with ``c_j = [I; R_own]``, and the parts of the cross rows.

    ``M`` holds rows ``s_{j-1}:D``; ``extra`` the multiplier terms' own rows (or None).
    Only the columns ``s_{j-1}:D`` of ``c_j^T M`` are formed: ``d_j (D - s_j)
    (D - s_{j-1} + d_j)`` multiplications with ``A``, where all reduced rows
    ``c_j^T M P_j`` took ``d_j (D - s_j) (D + s_j)`` and ``R_j`` all its columns.
    """
    d, start = own.stop - own.start, own.start
    X = M[:d, start:] + xp.matrix_transpose(R_own) @ M[d:, start:]  # (c_j^T M)[:, s_{j-1}:]
    A = X[:, :d] + X[:, d:] @ R_own
    extra_cross = None
    if extra is not None:
        A = A - extra[:, own]
        extra_cross = extra[:, :start]
    Y = xp.asarray(M[:, :start], copy=True)  # a copy: M itself is not kept
    return A, CrossParts(Y, X[:, d:], R_own, extra_cross)


def block_error(nest: Nest, j: int, A: Any, where: str) -> NestoptError:
    """Why the block ``A`` of level ``j`` cannot serve at ``where``, from its eigenvalues."""
    smallest, largest = smallest_eigenvalues(A, xp=nest.xp)
    text = nest.problem.describe(j)
    if smallest > 0.0:
        condition = largest / smallest
        return numerically_singular(
            text, j, f"condition number {condition:.2e} at {where}", A.dtype
        )
    return not_positive_definite(text, j, smallest, largest, where)


CONSTANT = "constant"


def _weak(M: Any) -> Any:
    try:
        return weakref.ref(M)
    except TypeError:  # an array type without weak references: no reuse
        return None


def _reusable(block: Block | None, M: Any, R: Any, xp: Any, for_step: bool) -> TypeGuard[Block]:
    """Whether ``block`` was built from this ``M`` (or the constant one) and this ``R``."""
    if block is None or (not for_step and block.factor.shift != 0.0):
        return False
    if M is CONSTANT or block.source is CONSTANT or block.source is None:
        same_source = M is block.source
    else:
        same_source = block.source() is M
    return same_source and same_arrays(xp, block.R, R)


def _has_curvature_term(nest: Nest, j: int, below: Response, mode: str) -> bool:
    return mode == "exact" and below.top is not None and not term_is_zero(nest.problem, j)


def _hessian_rows(nest: Nest, j: int, below: Response, g: Any, with_term: bool) -> tuple[Any, Any]:
    """Rows ``s_{j-1}:D`` of ``M_j = hess f_j`` less ``T_{j+1}`` (``with_term``), and the own
    rows of the multiplier terms of a constrained level below (or None)."""
    start = nest.problem.block(j).start
    # Copied when they would be kept as they are (bottom level): the callable may
    # reuse its output buffer. A declared quadratic level's values never change.
    keep = below.top is None and not nest.problem.levels[j - 1].quadratic
    M = nest.oracles.hess(j, below.xs, start=start, keep=keep)
    if below.top is not None and is_sparse(M):
        # The reduced rows c^T M P are dense once levels below respond: form them densely.
        M = to_dense(M)
    if not with_term:
        return M, None
    term = CurvatureTerm(nest, j, below, g)
    return M - to_dense(term.rows(start)), term.extra_rows(below.pull)


def _factor(nest: Nest, j: int, A: Any, *, for_step: bool, point: Any) -> Factorization:
    xp = nest.xp
    method = nest.config.levels[j - 1].linear_solver
    text = nest.problem.describe(j)
    nest.stats.factorizations[j - 1] += 1
    try:
        if method == "cholesky" and for_step:
            return factorize_shifted(A, xp=xp)
        return factorize(A, method=method, xp=xp)
    except FactorizationError as exc:
        if "zero curvature" in str(exc):
            raise zero_curvature(text, j, abbreviate(point, len(point))) from None
        if method != "cholesky":
            raise singular_block(text, j, str(exc), method) from None
        raise block_error(nest, j, A, f"its solution ({exc})") from None


def _check_minimum(nest: Nest, j: int, A: Any, negatives: int | None = None) -> None:
    """With LU or least squares nothing proves a minimum: check the eigenvalues (or the
    inertia a symmetric sparse factorization gives)."""
    if negatives == 0:
        return
    smallest, largest = smallest_eigenvalues(A, xp=nest.xp)
    eps = float(nest.xp.finfo(A.dtype).eps)
    if smallest < -100.0 * eps * max(abs(largest), abs(smallest)):
        raise not_positive_definite(
            nest.problem.describe(j), j, smallest, largest, "its solution (not a minimum)"
        )
