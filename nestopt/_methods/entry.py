"""Public entry points: the hypergradient and the best response at a point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._deprecation import renamed_keywords
from .._errors import DegeneracyWarning, warn_user
from .._levels.problem import Problem
from .._result import BestResponse
from .run import METHOD_KEYWORDS, Run, start_run

__all__ = ["hypergradient", "best_response"]

_SHARED_PARAMETERS = """
    method : {'implicit', 'itd'} or method object, default 'implicit'
        How the derivatives are computed: `Implicit` (Newton solves and
        implicit differentiation) or `Unrolled` (the ITD baseline of Sato et
        al.). A string builds the object from the keywords below; with an
        object, give those settings to the object instead.
    curvature, linear_solver, fd_step, level_options, predict, newton_curvature
        Settings of the implicit method: see `Implicit`.
    steps, step_size
        Settings of ``method='itd'``: see `Unrolled`.
    symmetry : {'raise', 'warn'}, default 'raise'
        What an asymmetric Hessian (beyond rounding) does; checked once per
        level and run (a level that passed is not probed again).
    check_finite : bool, default True
        Check every callable output for NaN and Inf.
    backend, device : optional
        Per-call backend choice (highest precedence).
"""


@renamed_keywords(xs="x0")
def best_response(
    problem: Problem,
    x0: Sequence[Any],
    method: Any = "implicit",
    *,
    curvature: str | None = None,
    linear_solver: str | None = None,
    fd_step: float | None = None,
    level_options: Any = None,
    predict: bool | None = None,
    newton_curvature: str | None = None,
    steps: Any = None,
    step_size: Any = None,
    symmetry: str = "raise",
    check_finite: bool = True,
    backend: Any = None,
    device: Any = None,
) -> BestResponse:
    """Solve the lower levels at ``x0`` and return every derivative there.

    Parameters
    ----------
    problem : Problem
    x0 : sequence of n arrays
        ``x_1`` (where to differentiate) and starting points for levels 2..n.
    {shared}
    Returns
    -------
    BestResponse
        The hypergradient, the solved levels, every best-response Jacobian
        ``G_k`` and the sensitivities ``dx_k*/dx_1``, with work counters.
    """
    run = _start(problem, x0, method, locals())
    state = run.engine.respond(run.xs, jacobians=True)
    return _result(run, state, with_fun=True, with_jacobians=True)


@renamed_keywords(xs="x0")
def hypergradient(
    problem: Problem,
    x0: Sequence[Any],
    method: Any = "implicit",
    *,
    curvature: str | None = None,
    linear_solver: str | None = None,
    fd_step: float | None = None,
    level_options: Any = None,
    predict: bool | None = None,
    newton_curvature: str | None = None,
    steps: Any = None,
    step_size: Any = None,
    symmetry: str = "raise",
    check_finite: bool = True,
    backend: Any = None,
    device: Any = None,
) -> Any:
    """Gradient of the top-level value function ``F_1`` at ``x0[0]``.

    The lower levels are first solved to tolerance starting from
    ``x0[1:]``; no best-response Jacobian is formed for the top levels (one
    adjoint solve per level instead). Returns an array of shape ``(d_1,)`` on
    the backend of the run (inferred from ``x0`` when no backend was chosen
    anywhere).

    Parameters
    ----------
    problem : Problem
    x0 : sequence of n arrays
        ``x_1`` and starting points for levels 2..n.
    {shared}
    Notes
    -----
    With ``P_n = I`` and for ``k = n, ..., 2``:
    ``H_k = P_k^T hess f_k P_k (+ S_k)``,
    ``G_k = -H_k[k,k]^{{-1}} H_k[k,<k]``, ``P_{{k-1}} = P_k [I; G_k]``;
    the hypergradient is ``P_1^T grad f_1``.

    Examples
    --------
    A bilevel problem with ``f_2 = (x_2 - x_1)^2 / 2`` (so ``x_2* = x_1``) and
    ``f_1 = (x_1 - 1)^2 / 2 + x_2^2 / 2``; ``dF_1/dx_1 = 2 x_1 - 1``:

    >>> import numpy as np, nestopt
    >>> lower = nestopt.Level(
    ...     grad=lambda x1, x2: np.concatenate([x1 - x2, x2 - x1]),
    ...     hess=lambda x1, x2: np.array([[1.0, -1.0], [-1.0, 1.0]]),
    ...     size=1)
    >>> upper = nestopt.Level(
    ...     grad=lambda x1, x2: np.concatenate([x1 - 1.0, x2]),
    ...     hess=lambda x1, x2: np.eye(2),
    ...     size=1)
    >>> problem = nestopt.Problem([upper, lower])
    >>> nestopt.hypergradient(problem, [np.array([2.0]), np.array([0.0])])
    array([3.])
    """
    run = _start(problem, x0, method, locals())
    state = run.engine.respond(run.xs)
    if run.problem.constrained:
        warn_degenerate(run.problem, run.engine.constraint_report(state)["degenerate"])
    return run.engine.hypergradient(state)


for _function in (best_response, hypergradient):
    if _function.__doc__ is not None:  # None under python -OO: nothing to fill in
        _function.__doc__ = _function.__doc__.format(shared=_SHARED_PARAMETERS.strip())
        # The undecorated function too: documentation tools read either.
        getattr(_function, "__wrapped__", _function).__doc__ = _function.__doc__
del _function


def weakly_active(report: dict[str, Any]) -> dict[int, tuple[str, ...]]:
    """The public ``weakly_active``: keyed, like ``multipliers`` and ``active``, by every
    constrained level reported, ``()`` where none of its rows is weakly active."""
    return {k: tuple(report["degenerate"].get(k, ())) for k in report["active"]}


def warn_degenerate(problem: Problem, degenerate: dict[int, tuple[str, ...]]) -> None:
    """One `DegeneracyWarning` naming each level's weakly active rows at the point returned."""
    for k, names in degenerate.items():
        warn_user(
            f"{problem.describe(k)}: {', '.join(names)} {'is' if len(names) == 1 else 'are'} at "
            f"{'its bound' if len(names) == 1 else 'their bounds'} with a zero multiplier "
            "(weakly active): the response is only directionally differentiable here; "
            "nestopt returns the one-sided Jacobian of the piece where "
            f"{'it is' if len(names) == 1 else 'they are'} inactive",
            DegeneracyWarning,
        )


def _start(problem: Problem, x0: Sequence[Any], method: Any, given: dict[str, Any]) -> Run:
    return start_run(
        problem,
        x0,
        method,
        {name: given[name] for name in METHOD_KEYWORDS},
        backend=given["backend"],
        device=given["device"],
        check_finite=given["check_finite"],
        symmetry=given["symmetry"],
    )


def _result(run: Run, state: Any, *, with_fun: bool, with_jacobians: bool) -> BestResponse:
    engine = run.engine
    hypergrad = engine.hypergradient(state)
    fun = None
    if with_fun and run.oracles.has(1, "value"):
        fun = float(run.oracles.value(1, state.xs))
    level_nit = engine.level_nit()
    report = engine.constraint_report(state)
    warn_degenerate(run.problem, report["degenerate"])
    return BestResponse(
        hypergrad=hypergrad,
        xs=state.xs,
        fun=fun,
        jacobians=engine.jacobians(state) if with_jacobians else None,
        sensitivity=engine.sensitivity(state) if with_jacobians else None,
        nit=sum(level_nit),
        level_nit=level_nit,
        level_solves=tuple(engine.stats.solves),
        factorizations=tuple(engine.stats.factorizations),
        krylov=engine.stats.krylov_summary(),
        nfev=run.nfev(),
        method=run.method.name,
        curvature=engine.curvature,
        exactness=engine.exactness,
        notes=list(engine.stats.notes),
        multipliers=report["multipliers"],
        active=report["active"],
        weakly_active=weakly_active(report),
        backend=run.backend,
    )
