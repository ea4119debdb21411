"""The nested state of one run: each level's latest solution, kept while its inputs hold.

``Nest.respond(k, xs)`` solves levels ``k+1..n`` for fixed ``x_<=k`` and
returns a `Response`: the solved point and, lazily, ``R_k`` and its products.
A response whose inputs (every variable, bit for bit) repeat is returned
again without solving; Jacobians are stacked only when a dense ``R_k`` is
asked for, and products ``R_k u``, ``R_k^T w`` otherwise go through one solve
per level (DESIGN section 8).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from .._backend.host import all_equal
from .._derivatives.compose import response_jvp, response_vjp, stack_response
from .._errors import TimeLimitError
from .._levels.oracles import Oracles
from .._levels.problem import Problem

__all__ = ["Nest", "Response", "LevelSolution", "Stats", "same_arrays"]


@dataclass
class Stats:
    """Work counters of a run, per level (index ``k - 1``)."""

    newton: list[int]
    solves: list[int]
    factorizations: list[int]
    reused: list[int]
    krylov_iterations: list[int]
    krylov_residual: list[float]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def zeros(cls, n: int) -> Stats:
        return cls([0] * n, [0] * n, [0] * n, [0] * n, [0] * n, [0.0] * n)

    def krylov_summary(self) -> dict[str, tuple[Any, ...]] | None:
        """Krylov iterations and the worst relative residual of the derivatives' solves, per
        level (None: no Krylov solve)."""
        if not any(self.krylov_iterations):
            return None
        return {
            "iterations": tuple(self.krylov_iterations),
            "residual": tuple(self.krylov_residual),
        }

    def record_krylov(self, j: int, result: Any, *, derivative: bool) -> None:
        """One Krylov solve of level ``j``: its iterations, and for the derivatives' solves
        (not the inexact Newton steps) the worst residual so far."""
        self.krylov_iterations[j - 1] += result.iterations
        if derivative:
            self.krylov_residual[j - 1] = max(self.krylov_residual[j - 1], result.residual)


@dataclass(eq=False)
class LevelSolution:
    """Level ``j`` solved for fixed ``x_<j``: its linearization and what is below it."""

    j: int
    below: Response
    system: Any
    iterations: int
    constrained: Any = None  # a ConstrainedSolution: multipliers and active rows


@dataclass(eq=False)
class Response:
    """Levels ``k+1..n`` solved for fixed ``x_<=k``.

    ``xs`` holds every level's variable; ``top`` is level ``k+1``'s solution
    (``None`` for ``k = n``). ``R()`` is ``d r_>k / d x_<=k``, formed on
    first request; ``jvp``/``vjp`` give its products without forming it.
    """

    k: int
    xs: tuple[Any, ...]
    top: LevelSolution | None
    nest: Nest
    _R: Any = None
    _columns: dict[tuple[int, int], Any] | None = None  # made on the first request

    def R(self) -> Any:
        """``R_k`` (``None`` for ``k = n``), stacked from the Jacobians below on request."""
        if self.top is None:
            return None
        if self._R is None:
            self._R = self.nest.stacked(self)
        return self._R

    def columns(self, cols: slice) -> Any:
        """``R_k[:, cols]`` for the columns ``cols`` of one level ``<= k``, without forming
        the others (DESIGN 8: a level's own block needs only its own columns).

        ``R_k[:, cols] = [G_{k+1}[:, cols]; R_{k+1}[:, cols] + R_{k+1}[:, k+1] G_{k+1}[:, cols]]``:
        ``len(cols)`` right-hand sides per level below (constrained and matrix-free levels
        form their ``G`` whole and slice it). Kept with the response; a formed ``R_k`` is
        sliced.
        """
        top = self.top
        assert top is not None, "R_n has no columns: callers ask them only for k < n"
        if self._R is not None:
            return self._R[:, cols]
        key = (cols.start, cols.stop)
        if self._columns is None:
            self._columns = {}
        out = self._columns.get(key)
        if out is not None:
            return out
        G = top.system.G_columns(cols)
        below = top.below
        if below.top is None:
            out = G
        else:
            own = self.nest.problem.block(top.j)
            out = self.nest.xp.concat([G, below.columns(cols) + below.columns(own) @ G], axis=0)
        self._columns[key] = out
        return out

    def jvp(self, u: Any) -> Any:
        """``R_k u`` for ``u`` of length ``s_k`` (or a matrix of such columns)."""
        if self._R is not None:
            return self._R @ u
        top = self.top
        assert top is not None, "R_n has no rows: callers ask R_k's products only for k < n"
        if hasattr(top.system, "lifted_jvp"):
            return top.system.lifted_jvp(u)  # one product of the levels below, not two
        below = top.below
        return response_jvp(
            self.nest.xp, u, top.system.G_apply, below.jvp if below.top is not None else None
        )

    def lift(self, z: Any) -> Any:
        """``P_k z = (z, R_k z)`` for ``z`` of length ``s_k``: a move of ``x_<=k`` with the
        levels below following it to first order."""
        return z if self.top is None else self.nest.xp.concat([z, self.jvp(z)])

    def pull(self, w: Any) -> Any:
        """``P_k^T w = w[:s_k] + R_k^T w[s_k:]`` for ``w`` of length ``D``."""
        s = self.nest.problem.block(self.k).stop
        return w[:s] if self.top is None else w[:s] + self.vjp(w[s:])

    def vjp(self, w: Any) -> Any:
        """``R_k^T w`` for ``w`` of length ``D - s_k``."""
        xp = self.nest.xp
        if self._R is not None:
            return xp.matrix_transpose(self._R) @ w
        top = self.top
        assert top is not None, "R_n has no rows: callers ask R_k's products only for k < n"
        if hasattr(top.system, "lifted_vjp"):
            return top.system.lifted_vjp(w)  # one product of the levels below, not two
        below = top.below
        own = self.nest.problem.block(top.j)
        return response_vjp(
            w, own, top.system.GT_apply, below.vjp if below.top is not None else None
        )


def _same_points(xp: Any, first: tuple[Any, ...], second: tuple[Any, ...]) -> bool:
    """Every level's variable bit-for-bit the same (compared until one differs)."""
    for a, b in zip(first, second, strict=True):
        if not same_arrays(xp, a, b):
            return False
    return True


def same_arrays(xp: Any, first: Any, second: Any) -> bool:
    """Bit-for-bit equal (the same object, or equal shapes and entries)."""
    if first is second:
        return True
    if first is None or second is None or tuple(first.shape) != tuple(second.shape):
        return False
    return all_equal(xp, first, second)


class Nest:
    """One run's levels: settings, oracles, work counters and the reuse caches.

    ``solve_level(nest, j, xs)`` (the level solver) is injected so that this
    module holds only the recursion and the caches.
    """

    def __init__(
        self,
        problem: Problem,
        oracles: Oracles,
        config: Any,
        solve_level: Any,
        *,
        deadline: float | None = None,
    ) -> None:
        self.problem = problem
        self.oracles = oracles
        self.xp = oracles.xp
        self.config = config
        self.solve_level = solve_level
        self.deadline = deadline
        self.stats = Stats.zeros(problem.n)
        # Responses reach back to the nest through a weak proxy: the nest's caches hold
        # responses, and a cycle would keep every run's matrices alive until the cyclic
        # garbage collector ran.
        self._proxy = weakref.proxy(self)
        self._responses: dict[int, tuple[tuple[Any, ...], Response]] = {}
        self._stacks: dict[int, tuple[Any, Any, Any]] = {}
        # Built once per run: each constrained level's rows (by level number).
        self.constraint_rows: dict[int, Any] = {}
        # Each level's latest factored block (by level and curvature mode), kept while its
        # inputs are bit-for-bit the same (`linearize`).
        self.blocks: dict[tuple[int, str], Any] = {}
        # Every best-response Jacobian will be formed (best_response): levels form their
        # full reduced rows instead of their own block with cross rows as products.
        self.form_jacobians = False
        # Each matrix-free level's last adjoint in this run: the next adjoint solve's start.
        self.adjoints: dict[int, Any] = {}
        # Each constrained level's last multipliers and active rows in this run (host
        # arrays): the next solve of that level polishes this active set first.
        self.active_sets: dict[int, tuple[Any, Any]] = {}
        # Box-constrained levels whose Hessian came back sparse in this run: solved by
        # products on their free variables (`large_box`), as matrix-free ones are.
        self.sparse_levels: set[int] = set()
        # A declared quadratic level's Hessian where it is used through products (sparse):
        # asked for once per run (`LevelProducts`).
        self.constant_hessians: dict[int, Any] = {}
        # True while products with R_k only predict where the lower levels will be (a
        # start, corrected by their Newton solves): matrix-free levels solve those loosely.
        self.predicting = False

    def respond(self, k: int, xs: tuple[Any, ...]) -> Response:
        """Solve levels ``k+1..n`` for fixed ``x_<=k``, starting from ``xs``."""
        if k == self.problem.n:
            return Response(k, tuple(xs), None, self._proxy)
        cached = self._responses.get(k)
        if cached is not None and _same_points(self.xp, cached[0], xs):
            self.stats.reused[k] += 1
            return cached[1]
        self.check_time()
        solution = self.solve_level(self._proxy, k + 1, tuple(xs))
        response = Response(k, solution.below.xs, solution, self._proxy)
        self._responses[k] = (tuple(xs), response)
        return response

    def stacked(self, response: Response) -> Any:
        """``R_k = [G_{k+1}; ...]`` for ``response``, reusing it while its inputs are the same."""
        top = response.top
        assert top is not None, "Response.R() forms R_k only for k < n"
        R_below = top.below.R()
        cached = self._stacks.get(response.k)
        if cached is not None and cached[0] is top.system and cached[1] is R_below:
            return cached[2]
        own = self.problem.block(top.j)
        R = stack_response(self.xp, top.system.G(), R_below, own)
        self._stacks[response.k] = (top.system, R_below, R)
        return R

    def check_time(self) -> None:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise TimeLimitError("max_time ran out while the lower levels were being solved")
