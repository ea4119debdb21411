"""What the constrained engine solves, how it is told, and what it answers.

The engine solves

    minimize f(x)   subject to   c_lower <= c(x) <= c_upper,   x_lower <= x <= x_upper

for ``x`` of size ``n`` and ``m`` rows, given as a `ConstrainedNLP`. Rows with
``c_lower == c_upper`` are equalities; open sides are ``-inf``/``inf``.
Multipliers use nestopt's sign (DESIGN 7): the Lagrangian is
``L = f + y^T c + z^T x`` with ``y_i <= 0`` at a row's lower side and ``>= 0``
at its upper side, and likewise ``z_j`` for the bounds of ``x_j``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "ConstrainedNLP",
    "Evaluation",
    "EngineStatus",
    "EngineOptions",
    "EngineResult",
    "WarmStart",
]


class Evaluation(NamedTuple):
    """The problem at one ``x``: ``f`` (a float), its gradient ``(n,)``, rows ``(m,)``,
    their Jacobian ``(m, n)``; ``point`` is anything the problem wants back in
    `ConstrainedNLP.lagrangian_hessian` (the engine never reads it)."""

    f: Any
    grad: Any
    c: Any
    jac: Any
    point: Any = None


@runtime_checkable
class ConstrainedNLP(Protocol):
    """A smooth constrained problem, as the engine needs to see it.

    Attributes
    ----------
    x_lower, x_upper : arrays (n,)
        Bounds of ``x`` (``-inf``/``inf`` where open). Kept as bounds: they
        enter the Newton system as a diagonal, never as rows.
    c_lower, c_upper : arrays (m,)
        Bounds of the rows.
    linear_rows : bool
        Every row is linear in ``x`` (its Jacobian is constant). Enables the
        Farkas certificate of infeasibility.
    convex : bool
        ``f`` is a convex quadratic and the rows are linear: the engine then
        uses Mehrotra's predictor-corrector instead of the monotone barrier
        rule and the filter line search.
    """

    x_lower: Any
    x_upper: Any
    c_lower: Any
    c_upper: Any
    linear_rows: bool
    convex: bool

    def evaluate(self, x: Any) -> Evaluation:
        """``f``, its gradient, the rows and their Jacobian at ``x``."""
        ...

    def lagrangian_hessian(self, at: Evaluation, y: Any) -> Any:
        """``hess f + sum_i y_i hess c_i`` ``(n, n)`` at the evaluated point ``at``."""
        ...


class EngineStatus(enum.Enum):
    """How the engine ended; each member carries its message."""

    SOLVED = "solved: the scaled KKT conditions hold to the tolerance"
    INFEASIBLE = (
        "infeasible: no point satisfies the rows and bounds (certified by a Farkas "
        "certificate for linear rows and bounds)"
    )
    LOCALLY_INFEASIBLE = (
        "locally infeasible: the constraint violation has a local minimum at a positive "
        "value; another start may find a feasible point"
    )
    UNBOUNDED = "unbounded: the objective decreases without bound along feasible points"
    MAX_ITER = "stopped: the iteration limit was reached before the tolerance was met"
    STALLED = (
        "stopped: no step made progress (the line search and the feasibility restoration "
        "both failed); the derivatives may be inconsistent with the values"
    )

    @property
    def message(self) -> str:
        return self.value


@dataclass(frozen=True)
class EngineOptions:
    """Settings of the engine; ``None`` means "from the working precision".

    ``tol`` bounds the scaled KKT error (IPOPT's ``s_d``, ``s_c`` scalings);
    by default ``10 eps^(2/3)``: about 4e-10 in float64 and 2.4e-4 (near
    ``sqrt(eps)``) in float32.
    """

    tol: float | None = None
    max_iter: int = 200
    mu_init: float = 0.1
    # Objective and row scaling from the gradients at the start, within these limits.
    scale_limit: float = 1e8
    # Least-squares initial row multipliers are discarded above this size (IPOPT's
    # constr_mult_init_max): a row gradient that vanishes at the start makes them huge.
    multiplier_cap: float = 1e3
    # Push the start this far inside its bounds (IPOPT's bound_push, bound_frac).
    kappa_1: float = 1e-2
    kappa_2: float = 1e-2


@dataclass(frozen=True)
class WarmStart:
    """A start near a solution: ``x``, row multipliers ``y`` and bound multipliers ``z``
    (nestopt's signs); ``delta_w`` the Hessian shift that worked there."""

    x: Any
    y: Any
    z: Any
    delta_w: float = 0.0


@dataclass
class EngineResult:
    """Where the engine stopped.

    Attributes
    ----------
    x : array (n,)
    y : array (m,)
        Row multipliers, nestopt's sign (``L = f + y^T c``).
    z : array (n,)
        Bound multipliers, nestopt's sign: ``z_lower - z_upper`` written as
        ``-z_lower + z_upper`` (``<= 0`` at a lower bound, ``>= 0`` at an upper).
    status : EngineStatus
    iterations : int
    kkt_error : float
        The scaled KKT error at ``x`` (IPOPT's ``E_0``).
    active_rows, active_bounds : host bool arrays (m,), (n,)
        The guess of which rows and bounds hold with equality at the solution
        (equalities always).
    weak_rows, weak_bounds : host bool arrays (m,), (n,)
        Inequality rows and bounds whose slack and multiplier are both below
        their tolerances relative to their own scales: weakly active.
    delta_w : float
        The last Hessian shift (for a warm start).
    violation : float
        The largest scaled row or bound violation (infeasibility measure).
    point : any
        What the problem put in `Evaluation.point` at ``x`` (its own record of the point).
    certificate : array or None
        For INFEASIBLE with linear rows, the Farkas multipliers ``(m,)``;
        for UNBOUNDED, the direction ``(n,)`` along which ``f`` decreases.
    """

    x: Any
    y: Any
    z: Any
    status: EngineStatus
    iterations: int
    kkt_error: float
    active_rows: Any
    active_bounds: Any
    weak_rows: Any
    weak_bounds: Any
    delta_w: float = 0.0
    violation: float = 0.0
    certificate: Any = None
    f: float = float("nan")
    stats: dict[str, Any] | None = None
    point: Any = None  # the problem's own ``Evaluation.point`` at ``x``

    @property
    def success(self) -> bool:
        return self.status is EngineStatus.SOLVED
