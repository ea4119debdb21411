"""Public entry points: the hypergradient and the best response at a point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._options import check_choice, make_settings, prepare_points
from ._oracle import Oracles
from ._problem import Problem
from ._respond import LowerSolver, Node, Settings, split_sensitivity
from ._result import BestResponse

__all__ = ["hypergradient", "best_response", "METHODS", "Session"]

METHODS = ("implicit", "itd")


class Session:
    """One problem on one backend with one set of options (shared by solve)."""

    def __init__(
        self,
        problem: Problem,
        xs: Sequence[Any],
        *,
        curvature: str = "exact",
        linear_solver: str = "cholesky",
        level_options: Any = None,
        backend: Any = None,
        device: Any = None,
        check_finite: bool = True,
        fd_step: float | None = None,
        predict: bool = True,
    ) -> None:
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a nestopt.Problem, got {type(problem).__name__}")
        self.problem = problem
        self.backend_arg, self.device_arg = backend, device
        self.xp, self.device, self.xs = prepare_points(problem, xs, backend, device)
        self.dtype = self.xs[0].dtype
        self.settings: Settings = make_settings(
            problem,
            self.xp,
            self.dtype,
            curvature=curvature,
            linear_solver=linear_solver,
            level_options=level_options,
            fd_step=fd_step,
            predict=predict,
        )
        self.exactness = describe_exactness(problem, curvature)
        self.oracles = Oracles(problem, self.xp, self.dtype, self.device, check_finite=check_finite)
        self.solver = LowerSolver(problem, self.oracles, self.settings)

    def respond(self, xs: tuple[Any, ...]) -> Node:
        return self.solver.respond(1, xs)

    def result(self, node: Node, *, with_fun: bool = True) -> BestResponse:
        problem, xp = self.problem, self.xp
        hypergrad = self.solver.hypergradient(node)
        jacobians = {}
        solution = node.child
        while solution is not None:
            jacobians[solution.j] = solution.G
            solution = solution.below.child
        sensitivity = split_sensitivity(problem, node.R)
        fun = None
        if with_fun and problem.levels[0].value is not None:
            fun = float(self.oracles.value(1, node.xs))
        return BestResponse(
            hypergrad=hypergrad,
            xs=node.xs,
            fun=fun,
            jacobians=jacobians,
            sensitivity=sensitivity,
            nit=tuple(self.solver.counters.newton),
            nfev={name: tuple(c) for name, c in self.oracles.counts.items()},
            method="implicit",
            curvature=self.settings.curvature,
            exactness=self.exactness,
            backend=getattr(xp, "__name__", str(xp)),
        )


def describe_exactness(problem: Problem, curvature: str) -> str:
    """What ``curvature`` computes on ``problem``, in words; raises where it cannot.

    For ``curvature='exact'`` the term of level ``k`` needs the third
    derivatives of ``f_{k+1}`` (``hess_dir`` or a central difference of its
    ``hess``) and, beyond that, derivatives of order ``n - k + 2`` unless the
    levels ``k+2..n`` are quadratic. nestopt computes the exact term when
    levels ``4..n`` are declared quadratic, and refuses otherwise.
    """
    n = problem.n
    if curvature == "first_order":
        return (
            "first order: the response-curvature terms S_k are dropped; exact when every "
            "lower response is affine in the upper variables (e.g. quadratic lower levels)"
        )
    if n == 2:
        return "exact: two levels have no response-curvature term"
    not_quadratic = [k for k in range(4, n + 1) if not problem.levels[k - 1].quadratic]
    if not_quadratic:
        raise NotImplementedError(
            f"curvature='exact' for {n} levels needs derivatives of order up to {n} of the "
            "lower objectives, which Hessian oracles do not give, unless levels 4.."
            f"{n} are quadratic; level(s) {', '.join(map(str, not_quadratic))} are not "
            "declared quadratic (Level(..., quadratic=True)). Use curvature='first_order' "
            "(exact when every lower response is affine)"
        )
    parts = []
    for k in range(2, n):
        below = problem.levels[k]
        if below.quadratic:
            source = f"zero (level {k + 1} is quadratic)"
        elif below.hess_dir is not None:
            source = f"from hess_dir of level {k + 1}"
        else:
            source = (
                f"from a central difference of level {k + 1}'s hess "
                "(truncation error O(h^2) with h = eps^(1/3) relative)"
            )
        parts.append(f"term of level {k} {source}")
    return "exact: " + "; ".join(parts)


def best_response(
    problem: Problem,
    xs: Sequence[Any],
    *,
    method: str = "implicit",
    curvature: str = "exact",
    steps: Any = None,
    step_size: Any = None,
    linear_solver: str = "cholesky",
    level_options: Any = None,
    backend: Any = None,
    device: Any = None,
    check_finite: bool = True,
    fd_step: float | None = None,
    _with_fun: bool = True,
) -> BestResponse:
    """Solve the lower levels at ``xs`` and return every derivative there.

    Parameters
    ----------
    problem : Problem
    xs : sequence of n arrays
        ``x_1`` (where to differentiate) and starting points for levels 2..n.
    method : {'implicit', 'itd'}
        ``'implicit'``: Newton solves and implicit differentiation (see the
        Mathematics page of the docs). ``'itd'``: the iterative-differentiation
        baseline of Sato et al., ``steps`` unrolled gradient steps of size
        ``step_size`` per lower level from ``xs``.
    curvature : {'exact', 'first_order'}
        Whether the response-curvature terms ``S_k`` are included
        (``'implicit'`` only).
    steps : int or sequence of int, optional
        ``method='itd'`` only (required there): unrolled steps per lower
        level, one for all or one per level 2..n.
    step_size : float or sequence of float, optional
        ``method='itd'`` only: step of each lower level (default ``1/L`` with
        ``L`` the largest eigenvalue of the level's own Hessian block at the
        start).
    linear_solver : {'cholesky', 'lu', 'lstsq'}
        How each level's own Hessian block is factored.
    level_options : dict or sequence of dict, optional
        ``tol`` (gradient infinity norm), ``maxiter`` and ``ridge`` of the
        lower levels' Newton solves: one dict for all, one per level 2..n,
        or a dict keyed by level number or name. ``ridge`` adds ``ridge * I``
        to the level's own Hessian block in the Newton steps *and* in the
        Jacobian solve, so it biases the hypergradient: use it to regularize
        a level that is not strongly convex, knowingly.
    backend, device : optional
        Per-call backend choice (highest precedence).
    check_finite : bool
        Check every callable output for NaN and Inf.
    fd_step : float, optional
        Relative step of the central difference used for the third-order
        term when a level has no ``hess_dir`` (default ``eps**(1/3)``).

    Returns
    -------
    BestResponse
    """
    check_choice("method", method, METHODS)
    if method == "itd":
        from ._itd import itd_best_response

        return itd_best_response(
            problem,
            xs,
            steps=steps,
            step_size=step_size,
            backend=backend,
            device=device,
            check_finite=check_finite,
        )
    if steps is not None or step_size is not None:
        raise ValueError("steps and step_size apply to method='itd' only")
    session = Session(
        problem,
        xs,
        curvature=curvature,
        linear_solver=linear_solver,
        level_options=level_options,
        backend=backend,
        device=device,
        check_finite=check_finite,
        fd_step=fd_step,
    )
    return session.result(session.respond(session.xs), with_fun=_with_fun)


def hypergradient(problem: Problem, xs: Sequence[Any], **options: Any) -> Any:
    """Gradient of the top-level value function ``F_1`` at ``xs[0]``.

    The lower levels are first solved to tolerance starting from
    ``xs[1:]``. Takes the options of `best_response`; returns an array of
    shape ``(d_1,)`` on the backend of the run (inferred from ``xs`` when no
    backend was chosen anywhere).

    Notes
    -----
    With ``P_n = I`` and for ``k = n, ..., 2``:
    ``H_k = P_k^T hess f_k P_k (+ S_k)``,
    ``G_k = -H_k[k,k]^{-1} H_k[k,<k]``, ``P_{k-1} = P_k [I; G_k]``;
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
    return best_response(problem, xs, _with_fun=False, **options).hypergrad
