"""``nestopt.Implicit``: Newton solves and implicit differentiation (DESIGN sections 2-4, 8)."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

from .._backend.names import dtype_name
from .._derivatives.curvature import (
    CURVATURES,
    NEWTON_CURVATURES,
    describe_exactness,
    term_is_exact,
    term_is_zero,
)
from .._linalg.factor import LINEAR_SOLVERS
from .._respond.nest import Nest, Response
from .._respond.newton import solve_level
from .options import LevelSettings, check_choice, check_number, level_settings

__all__ = ["Implicit", "ImplicitEngine", "split_sensitivity"]


@dataclass(frozen=True)
class Implicit:
    """Hypergradients by implicit differentiation of Newton-solved lower levels.

    Each lower level is solved by Newton's method; at its solution the
    best-response Jacobian ``G_k = -H_k[k,k]^{-1} H_k[k,<k]`` comes from one
    factorization of its own reduced Hessian block, and the hypergradient is
    composed from the top down with one adjoint solve per level.

    Parameters
    ----------
    curvature : {'exact', 'first_order'}
        Whether the Jacobians include the response-curvature terms ``S_k``
        (third derivatives; see the Mathematics page). ``'first_order'`` is
        exact when every lower response is affine.
    linear_solver : {'cholesky', 'lu', 'lstsq', 'cg', 'minres'}, optional
        How each level's own block is solved (per level: ``level_options``):
        factored (``'cholesky'``, ``'lu'``, ``'lstsq'``), or matrix-free by a
        Krylov method on Hessian-vector products (``'cg'``, ``'minres'``).
        Default: ``'cholesky'`` for a level with ``hess``, ``'cg'`` for one
        with only ``hvp``.
    fd_step : float, optional
        Relative step of the central difference that stands in for a
        missing ``hess_dir`` (default ``eps**(1/3)``).
    level_options : dict or sequence of dict, optional
        ``tol`` (relative Newton step; 0 solves to rounding), ``maxiter``,
        ``ridge``, ``linear_solver``, and for matrix-free levels
        ``krylov_rtol`` (relative residual of the Jacobian's Krylov solves,
        default ``0.01 sqrt(eps)``) and ``krylov_maxiter`` (1000) of the lower
        levels: one dict for all,
        one per level 2..n, or a dict keyed by level number or name.
        ``ridge`` adds ``ridge * I`` to the level's own block in the Newton
        steps *and* the Jacobian, so it biases the hypergradient.
    predict : bool, default True
        Start the levels below a moving level from the first-order
        prediction of their response (``x_>k + R_k dx``) rather than where
        they were; keeps a level with several minima on its branch.
    newton_curvature : {'best', 'same'}
        Curvature of the Newton steps. ``'best'`` uses the exact reduced
        Hessian wherever the oracles allow, whatever ``curvature`` (the
        solution does not depend on it; the steps converge quadratically);
        ``'same'`` uses ``curvature``.

    Examples
    --------
    >>> import nestopt
    >>> nestopt.Implicit(curvature="first_order")
    Implicit(curvature='first_order', linear_solver=None, fd_step=None, \
level_options=None, predict=True, newton_curvature='best')
    """

    curvature: str = "exact"
    linear_solver: str | None = None
    fd_step: float | None = None
    level_options: Any = None
    predict: bool = True
    newton_curvature: str = "best"

    def __post_init__(self) -> None:
        check_choice("curvature", self.curvature, CURVATURES)
        if self.linear_solver is not None:
            check_choice("linear_solver", self.linear_solver, LINEAR_SOLVERS)
        check_choice("newton_curvature", self.newton_curvature, NEWTON_CURVATURES)
        if self.fd_step is not None:
            check_number("fd_step", self.fd_step, strict=True)
        if not isinstance(self.predict, bool):
            raise TypeError(f"predict must be True or False, got {self.predict!r}")

    name = "implicit"

    def bind(self, problem: Any, oracles: Any, *, deadline: float | None = None) -> ImplicitEngine:
        """The engine that computes with these settings on ``problem`` for one run."""
        return ImplicitEngine(self, problem, oracles, deadline=deadline)


@dataclass(frozen=True)
class ImplicitConfig:
    """What the level solvers read: per-level settings and the curvature policy.

    Built once per problem, method and dtype (`configure`); it holds no reference
    to the problem, so that caching it keeps nothing alive.
    """

    levels: tuple[LevelSettings, ...]
    curvature: str
    newton_curvature: str
    fd_step: float | None
    predict: bool
    residual_tol: float
    eps: float
    exactness: str
    modes: tuple[tuple[str, str], ...]  # (Jacobian, Newton) curvature of each level

    def curvature_mode(self, j: int) -> str:
        """Curvature of level ``j``'s Jacobian (``'first_order'`` where the term is zero)."""
        return self.modes[j - 1][0]

    def newton_mode(self, j: int) -> str:
        """Curvature of level ``j``'s Newton steps: the best the oracles allow, or the same."""
        return self.modes[j - 1][1]


def _modes(problem: Any, curvature: str, newton_curvature: str) -> tuple[tuple[str, str], ...]:
    """Each level's Jacobian curvature (first order where its term is zero) and its Newton
    steps' (the best the oracles allow, or the same)."""
    out = []
    for j in range(1, problem.n + 1):
        jacobian = "first_order" if term_is_zero(problem, j) else curvature
        if newton_curvature == "same" or term_is_zero(problem, j):
            newton = jacobian
        else:
            newton = "exact" if term_is_exact(problem, j) else "first_order"
        out.append((jacobian, newton))
    return tuple(out)


# Each problem's configurations, by method (a frozen, hashable settings object) and dtype:
# a loop of hypergradient calls on one problem checks its settings once.
_CONFIGS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, str], ImplicitConfig]] = (
    weakref.WeakKeyDictionary()
)


def configure(method: Implicit, problem: Any, xp: Any, dtype: Any) -> ImplicitConfig:
    """The checked `ImplicitConfig` of ``method`` on ``problem`` in ``dtype`` (cached)."""
    try:
        cache = _CONFIGS.setdefault(problem, {})
        key = (method, dtype_name(dtype))
        config = cache.get(key)  # an unhashable method (level_options as a dict): no cache
    except TypeError:
        return _configure(method, problem, xp, dtype)
    if config is None:
        config = cache[key] = _configure(method, problem, xp, dtype)
    return config


def _configure(method: Implicit, problem: Any, xp: Any, dtype: Any) -> ImplicitConfig:
    eps = float(xp.finfo(dtype).eps)
    return ImplicitConfig(
        levels=level_settings(problem, eps, dtype, method.level_options, method.linear_solver),
        curvature=method.curvature,
        newton_curvature=method.newton_curvature,
        fd_step=method.fd_step,
        predict=method.predict,
        residual_tol=math.sqrt(eps),
        eps=eps,
        exactness=describe_exactness(problem, method.curvature),
        modes=_modes(problem, method.curvature, method.newton_curvature),
    )


class ImplicitEngine:
    """Respond, differentiate and predict on one problem for one run."""

    def __init__(self, method: Implicit, problem: Any, oracles: Any, *, deadline: Any) -> None:
        self.method = method
        self.problem = problem
        self.oracles = oracles
        self.xp = oracles.xp
        config = configure(method, problem, self.xp, oracles.target.dtype)
        self.exactness = config.exactness
        self.nest = Nest(problem, oracles, config, solve_level, deadline=deadline)
        self.curvature = method.curvature

    @property
    def stats(self) -> Any:
        return self.nest.stats

    def respond(self, xs: tuple[Any, ...], *, jacobians: bool = False) -> Response:
        """Solve levels 2..n at ``x_1 = xs[0]``, starting from ``xs[1:]``.

        ``jacobians``: every best-response Jacobian will be asked for (`best_response`),
        so each level forms its full reduced rows at once rather than only its own block
        with its cross rows as products (the adjoint path of DESIGN 8).
        """
        self.nest.form_jacobians = jacobians
        return self.nest.respond(1, xs)

    def hypergradient(self, state: Response) -> Any:
        """``P_1^T grad f_1 = g_1 + R_1^T g_>1``: one adjoint solve per level."""
        g = self.oracles.grad(1, state.xs)
        d1 = self.problem.sizes[0]
        return g[:d1] + state.vjp(g[d1:])

    def predict(self, state: Response, x1: Any) -> tuple[Any, ...]:
        """Start for levels 2..n when level 1 moves to ``x1``: ``x_>1 + R_1 dx``."""
        if not self.method.predict:
            return (x1, *state.xs[1:])
        self.nest.predicting = True
        try:
            change = state.jvp(x1 - state.xs[0])
        finally:
            self.nest.predicting = False
        d1 = self.problem.sizes[0]
        out = [x1]
        for k in range(2, self.problem.n + 1):
            block = self.problem.block(k)
            out.append(state.xs[k - 1] + change[block.start - d1 : block.stop - d1])
        return tuple(out)

    def jacobians(self, state: Response) -> dict[int, Any]:
        """``{k: G_k}`` for ``k = 2..n``, formed now."""
        out = {}
        solution = state.top
        while solution is not None:
            out[solution.j] = solution.system.G()
            solution = solution.below.top
        return out

    def sensitivity(self, state: Response) -> dict[int, Any]:
        """``{k: dx_k*/dx_1}`` from ``R_1`` (formed now)."""
        return split_sensitivity(self.problem, state.R())

    def level_nit(self) -> tuple[int, ...]:
        return tuple(self.nest.stats.newton)

    def constraint_report(self, state: Response) -> dict[str, Any]:
        """``multipliers`` and ``active`` (labels) per constrained level, and degeneracies."""
        multipliers, active, degenerate = {}, {}, {}
        solutions = []
        solution = state.top
        while solution is not None:
            solutions.append(solution)
            solution = solution.below.top
        for solution in solutions:
            found = solution.constrained
            if found is None:
                continue
            k = solution.j
            multipliers[k] = self.xp.asarray(found.lam, dtype=state.xs[0].dtype)
            active[k] = tuple(label for label, on in zip(found.labels, found.active) if on)
            if found.degenerate:
                degenerate[k] = tuple(found.degenerate)
        return {"multipliers": multipliers, "active": active, "degenerate": degenerate}


def split_sensitivity(problem: Any, R: Any) -> dict[int, Any]:
    """``{k: dx_k/dx_1}`` for ``k = 2..n`` from the stacked ``R_1`` (rows of levels 2..n)."""
    d1 = problem.sizes[0]
    return {
        k: R[problem.block(k).start - d1 : problem.block(k).stop - d1, :]
        for k in range(2, problem.n + 1)
    }
