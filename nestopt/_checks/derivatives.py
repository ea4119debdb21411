"""Check user derivatives, hypergradients and responses against independent computations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace, device

from .._backend.points import prepare_points
from .._deprecation import renamed_keywords
from .._errors import NestoptError, OracleError
from .._levels.build_rows import _nonlinear
from .._levels.oracles import Oracles
from .._levels.outputs import Target
from .._levels.problem import Level, Problem
from .._levels.rows import ConstraintRows, as_jacobian
from .._methods.entry import best_response
from .._methods.implicit import Implicit
from .._methods.run import split_keywords
from .._result import Result

__all__ = ["check_derivatives", "check_hypergradient"]


def _five_point(fun: Any, h: float) -> Any:
    """Fourth-order central difference ``d/dt fun(t)`` at 0: error ``O(h^4)``."""
    return (fun(-2 * h) - 8 * fun(-h) + 8 * fun(h) - fun(2 * h)) / (12 * h)


def _relative(xp: Any, actual: Any, reference: Any) -> float:
    diff = float(xp.max(xp.abs(actual - reference)))
    scale = float(xp.max(xp.abs(reference)))
    return diff / max(scale, 1.0) if scale < 1.0 else diff / scale


class _Sizes:
    """The sizes of the variables of a point, for `prepare_points` and messages."""

    def __init__(self, xs: Sequence[Any], text: str) -> None:
        if isinstance(xs, (str, bytes)) or not isinstance(xs, Sequence) or not xs:
            raise TypeError(
                f"xs must be a non-empty sequence of per-level arrays (every level's variable), "
                f"got {type(xs).__name__}"
            )
        sizes = []
        for x in xs:
            shape = getattr(x, "shape", None)
            sizes.append(int(shape[0]) if shape else len(x) if hasattr(x, "__len__") else 1)
        self.sizes = tuple(sizes)
        self.n = len(sizes)
        self.text = text

    def describe(self, k: int) -> str:
        return f"{self.text} (variable x{k})"


@renamed_keywords(xs="x0", h="fd_step")
def check_derivatives(
    level: Level | Problem,
    x0: Sequence[Any],
    *,
    rtol: float | None = None,
    fd_step: float | None = None,
    seed: int = 0,
    backend: Any = None,
    device: Any = None,
) -> Result:
    """Compare a level's ``grad``, ``hess`` and ``hess_dir`` with differences of the others.

    Each pair is compared along a random direction ``u`` by a fourth-order
    central difference: ``grad . u`` against ``d/dt value(x + t u)``,
    ``hess @ u`` against ``d/dt grad(x + t u)``, ``hess_dir(x, u)`` against
    ``d/dt hess(x + t u)``, ``hvp(x, u)`` against ``hess @ u`` (or ``d/dt
    grad`` without ``hess``). The symmetry of ``hess`` is checked too. For
    each nonlinear constraint: ``jac @ u`` against ``d/dt fun``, and
    ``hess(x, v) @ u`` against ``d/dt v^T jac`` (``'<name>.jac'``,
    ``'<name>.hess'`` in ``errors``).

    Parameters
    ----------
    level : Level or Problem
        One level, or a problem (then every level is checked).
    x0 : sequence of arrays
        The point: one array per level (every level's variable).
    rtol : float, optional
        Largest relative error reported as ``ok`` (default ``1e-6``, looser
        in float32: ``100 eps^(4/5)``, what the differences can resolve).
    fd_step : float, optional
        Difference step (default ``eps**(1/5)`` times the size of ``x``).
    seed : int
        Seed of the random direction.

    Returns
    -------
    Result
        ``ok``, ``errors`` (relative error per check; ``None`` when a
        callable is missing) and ``summary``; for a problem, ``levels`` holds
        one such result per level.
    """
    if isinstance(level, Problem):
        reports = []
        for k, lv in enumerate(level.levels, start=1):
            try:
                reports.append(
                    _check_level(
                        lv, x0, level.describe(k), rtol, fd_step, seed + k - 1, backend, device
                    )
                )
            except NestoptError as exc:
                exc.level = k  # each level is checked alone, as level 1 of its own oracles
                raise
        lines = [f"{level.describe(k)}: {r.summary}" for k, r in enumerate(reports, start=1)]
        return Result(ok=all(r.ok for r in reports), levels=reports, summary="\n".join(lines))
    if not isinstance(level, Level):
        raise TypeError(f"expected a nestopt.Level or Problem, got {type(level).__name__}")
    text = f"the level ({level.name!r})" if level.name else "the level checked"
    return _check_level(level, x0, text, rtol, fd_step, seed, backend, device)


def _check_level(
    level: Level, xs: Any, text: str, rtol: Any, h: Any, seed: int, backend: Any, dev: Any
) -> Result:
    import numpy as np

    layout = _Sizes(xs, text)
    xp, where, points = prepare_points(layout, xs, backend, dev)
    dtype = points[0].dtype
    oracles = Oracles((level,), layout.sizes, (text,), Target(xp, where, dtype), symmetry="warn")
    x = xp.concat(list(points))
    dim = x.shape[0]
    bounds = np.concatenate([[0], np.cumsum(layout.sizes)])

    def split(y: Any) -> tuple[Any, ...]:
        return tuple(y[int(bounds[i]) : int(bounds[i + 1])] for i in range(layout.n))

    direction = np.random.default_rng(seed).standard_normal(dim)
    u = xp.asarray(direction / np.linalg.norm(direction), dtype=dtype, device=where)
    eps = float(xp.finfo(dtype).eps)
    rtol = max(1e-6, 100 * eps**0.8) if rtol is None else rtol
    step = h if h is not None else eps**0.2 * max(1.0, float(xp.max(xp.abs(x))))

    names = ("grad", "hess", "hess_symmetry", "hess_dir", "hvp")
    errors: dict[str, float | None] = {name: None for name in names}
    try:
        g = oracles.grad(1, points)
    except (TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, NestoptError):
            raise
        raise OracleError(
            f"{text}: grad raised {type(exc).__name__} ({exc}) when called with "
            f"{layout.n} array(s) of sizes {layout.sizes}. check_derivatives needs the point "
            "as one array per level of the problem (x1, ..., xn: every variable), as the "
            "callables receive it",
            level=None,
        ) from exc
    if level.value is not None:
        fd = _five_point(lambda t: oracles.value(1, split(x + t * u)), step)
        errors["grad"] = _relative(xp, xp.reshape(g @ u, (1,)), xp.reshape(fd, (1,)))
    fd_grad = _five_point(lambda t: oracles.grad(1, split(x + t * u)), step)
    H = None
    if level.hess is not None:
        H = oracles.hess(1, points)
        errors["hess"] = _relative(xp, H @ u, fd_grad)
        errors["hess_symmetry"] = _relative(xp, H, xp.matrix_transpose(H))
    if level.hvp is not None:
        errors["hvp"] = _relative(xp, oracles.hvp(1, points, u), fd_grad if H is None else H @ u)
    if level.hess_dir is not None and level.hess is not None:
        T = oracles.hess_dir(1, points, u)
        fd_hess = _five_point(lambda t: oracles.hess(1, split(x + t * u)), step)
        errors["hess_dir"] = _relative(xp, T, fd_hess)
    errors.update(_check_constraints(level, layout, points, x, u, step, split))
    checked = {name: err for name, err in errors.items() if err is not None}
    ok = all(err <= rtol for err in checked.values())
    summary = ", ".join(
        f"{name} {'-' if err is None else f'{err:.1e}'}" for name, err in errors.items()
    )
    return Result(
        ok=ok,
        errors=errors,
        rtol=rtol,
        step=step,
        summary=("ok: " if ok else "MISMATCH: ") + summary,
    )


def _check_constraints(
    level: Level, layout: _Sizes, points: Any, x: Any, u: Any, step: float, split: Any
) -> dict[str, float]:
    """``jac @ u`` against ``d/dt fun(x + t u)`` and ``hess(v) @ u`` against ``d/dt v^T jac``."""

    xp = array_namespace(x)
    target = Target(xp, device(x), x.dtype)
    errors = {}
    others = [c for c in level.constraints if type(c).__name__ == "NonlinearConstraint"]
    for index, constraint in enumerate(others):
        item, _, _ = _nonlinear(constraint, index, layout.text, target, points)
        rows = ConstraintRows(1, layout.text, layout.sizes, target)
        rows.nonlinear.append(item)
        J = rows.jacobian(points)
        fd = _five_point(lambda t, rows=rows: rows.values(split(x + t * u)), step)
        errors[f"{item.label}.jac"] = _relative(xp, J @ u, fd)
        if item.hess is not None:
            v = xp.cos(1.0 + xp.arange(item.size, dtype=x.dtype, device=device(x)))
            H = rows.weighted_hessian(points, v)

            def weighted(t: float, item: Any = item, v: Any = v) -> Any:
                out = item.jac(*split(x + t * u))
                return v @ as_jacobian(out, layout.sizes, item.size, target, "")

            errors[f"{item.label}.hess"] = _relative(xp, H @ u, _five_point(weighted, step))
    return errors


@renamed_keywords(xs="x0", h="fd_step")
def check_hypergradient(
    problem: Problem,
    x0: Sequence[Any],
    method: Any = "implicit",
    *,
    fd_step: float | None = None,
    rtol: float | None = None,
    **keywords: Any,
) -> Result:
    """Compare `hypergradient` with central differences of the value function ``F_1``.

    ``F_1(x_1 + t e_i)`` is evaluated by solving the lower levels again, to
    rounding (Newton until its step stops shrinking: no tolerance of the run
    being checked is shared), started from the prediction of the
    best-response Jacobians, and reading level 1's ``value``; the derivative
    is a fourth-order central difference per coordinate of ``x_1``. Costs
    ``4 d_1`` lower-level solves.

    Parameters
    ----------
    problem, x0, method, **keywords
        As for `best_response` (``keywords``: its keyword arguments; the
        difference step of the exact curvature term goes in the method object,
        ``method=nestopt.Implicit(fd_step=...)``).
    fd_step : float, optional
        Difference step of the check (default ``eps**(1/5)`` times the size of
        ``x_1``).
    rtol : float, optional
        Largest relative error reported as ``ok`` (default ``sqrt(eps)``).

    Returns
    -------
    Result
        ``hypergrad``, ``finite_difference``, ``rel_error`` (max-norm,
        relative), ``ok``, ``curvature`` and ``step``.
    """
    if problem.levels[0].value is None:
        raise ValueError("check_hypergradient needs level 1's value callable")
    _, run_keywords = split_keywords(keywords)
    base = best_response(problem, x0, method, **keywords)
    xp = array_namespace(base.hypergrad)
    x1 = base.xs[0]
    eps = float(xp.finfo(x1.dtype).eps)
    step = fd_step if fd_step is not None else eps**0.2 * max(1.0, float(xp.max(xp.abs(x1))))
    reference_method = Implicit(curvature="first_order", level_options={"tol": 0.0})
    run_keywords["symmetry"] = "warn"  # the run being checked already said it, if it mattered
    d1 = problem.sizes[0]
    fd = []
    for i in range(d1):
        e = xp.zeros((d1,), dtype=x1.dtype, device=device(x1))
        e = xp.where(xp.arange(d1, device=device(x1)) == i, xp.ones_like(e), e)

        def value(t: float, e: Any = e) -> float:
            start = [x1 + t * e] + [
                base.xs[k - 1] + t * (base.sensitivity[k] @ e) for k in range(2, problem.n + 1)
            ]
            return float(best_response(problem, start, reference_method, **run_keywords).fun)

        fd.append(_five_point(value, step))
    reference = xp.asarray(fd, dtype=x1.dtype, device=device(x1))
    err = _relative(xp, base.hypergrad, reference)
    rtol = math.sqrt(eps) if rtol is None else rtol
    return Result(
        hypergrad=base.hypergrad,
        finite_difference=reference,
        rel_error=err,
        curvature=base.curvature,
        step=step,
        ok=bool(err <= rtol),
    )
