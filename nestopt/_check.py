"""Check user derivatives and hypergradients against finite differences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from array_api_compat import array_namespace, device

from ._hypergrad import best_response
from ._options import prepare_points
from ._oracle import Oracles
from ._problem import Level, Problem
from ._result import Result

__all__ = ["check_derivatives", "check_hypergradient"]


def _five_point(fun: Any, h: float) -> Any:
    """Fourth-order central difference ``d/dt fun(t)`` at 0: error ``O(h^4)``."""
    return (fun(-2 * h) - 8 * fun(-h) + 8 * fun(h) - fun(2 * h)) / (12 * h)


def _relative(xp: Any, actual: Any, reference: Any) -> float:
    diff = float(xp.max(xp.abs(actual - reference)))
    scale = float(xp.max(xp.abs(reference)))
    return diff / max(scale, 1.0) if scale < 1.0 else diff / scale


def check_derivatives(
    level: Level | Problem,
    xs: Sequence[Any],
    *,
    rtol: float = 1e-6,
    h: float | None = None,
    seed: int = 0,
    backend: Any = None,
) -> Result:
    """Compare a level's ``grad``, ``hess`` and ``hess_dir`` with differences of the others.

    Each pair is compared along a random direction ``u`` by a fourth-order
    central difference: ``grad . u`` against ``d/dt value(x + t u)``,
    ``hess @ u`` against ``d/dt grad(x + t u)``, ``hess_dir(x, u)`` against
    ``d/dt hess(x + t u)``. The symmetry of ``hess`` is checked too.

    Parameters
    ----------
    level : Level or Problem
        One level, or a problem (then every level is checked).
    xs : sequence of arrays
        The point: one array per level.
    rtol : float
        Largest relative error reported as ``ok``.
    h : float, optional
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
        reports = [
            check_derivatives(lv, xs, rtol=rtol, h=h, seed=seed + k, backend=backend)
            for k, lv in enumerate(level.levels)
        ]
        lines = [f"level {k}: {r.summary}" for k, r in enumerate(reports, start=1)]
        return Result(ok=all(r.ok for r in reports), levels=reports, summary="\n".join(lines))
    if not isinstance(level, Level):
        raise TypeError(f"expected a nestopt.Level or Problem, got {type(level).__name__}")
    sizes = []
    for x in xs:
        shape = getattr(x, "shape", None)
        sizes.append(int(shape[0]) if shape else len(x))
    layout = SimpleNamespace(
        levels=(level,) * len(sizes),
        n=len(sizes),
        sizes=tuple(sizes),
        dim=sum(sizes),
        describe=lambda k: f"the level ({level.name})" if level.name else "the level",
    )
    xp, dev, points = prepare_points(layout, xs, backend)  # type: ignore[arg-type]
    dtype = points[0].dtype
    oracles = Oracles(layout, xp, dtype, dev)  # type: ignore[arg-type]
    x = xp.concat(points)
    dim = layout.dim
    offsets = [0]
    for s in sizes:
        offsets.append(offsets[-1] + s)

    def split(y: Any) -> tuple[Any, ...]:
        return tuple(y[offsets[i] : offsets[i + 1]] for i in range(len(sizes)))

    import numpy as np

    direction = np.random.default_rng(seed).standard_normal(dim)
    u = xp.asarray(direction / np.linalg.norm(direction), dtype=dtype, device=dev)
    eps = float(xp.finfo(dtype).eps)
    step = h if h is not None else eps**0.2 * max(1.0, float(xp.max(xp.abs(x))))

    errors: dict[str, float | None] = {}
    g = oracles.grad(1, points)
    H = oracles.hess(1, points)
    if level.value is not None:
        fd = _five_point(lambda t: oracles.value(1, split(x + t * u)), step)
        errors["grad"] = _relative(xp, xp.reshape(g @ u, (1,)), xp.reshape(fd, (1,)))
    else:
        errors["grad"] = None
    fd_grad = _five_point(lambda t: oracles.grad(1, split(x + t * u)), step)
    errors["hess"] = _relative(xp, H @ u, fd_grad)
    errors["hess_symmetry"] = _relative(xp, H, xp.matrix_transpose(H))
    if level.hess_dir is not None:
        T = oracles.hess_dir(1, points, u)
        fd_hess = _five_point(lambda t: oracles.hess(1, split(x + t * u)), step)
        errors["hess_dir"] = _relative(xp, T, fd_hess)
    else:
        errors["hess_dir"] = None
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


def check_hypergradient(
    problem: Problem,
    xs: Sequence[Any],
    *,
    h: float | None = None,
    tol: float = 1e-13,
    **options: Any,
) -> Result:
    """Compare `hypergradient` with central differences of the value function ``F_1``.

    ``F_1(x_1 + t e_i)`` is evaluated by solving the lower levels again
    (Newton, to ``tol``, started from the prediction of the best-response
    Jacobians) and reading level 1's ``value``; the derivative is a
    fourth-order central difference per coordinate of ``x_1``. Costs
    ``4 d_1`` lower-level solves.

    Returns
    -------
    Result
        ``hypergrad``, ``finite_difference``, ``rel_error`` (max-norm,
        relative), ``curvature`` and ``step``.
    """
    if problem.levels[0].value is None:
        raise ValueError("check_hypergradient needs level 1's value callable")
    level_options = options.pop("level_options", None) or {"tol": tol}
    base = best_response(problem, xs, level_options=level_options, **options)
    xp = array_namespace(base.hypergrad)
    x1 = base.xs[0]
    eps = float(xp.finfo(x1.dtype).eps)
    step = h if h is not None else eps**0.2 * max(1.0, float(xp.max(xp.abs(x1))))
    d1 = problem.sizes[0]
    fd = []
    for i in range(d1):
        e = xp.zeros((d1,), dtype=x1.dtype, device=device(x1))
        e = xp.where(xp.arange(d1, device=device(x1)) == i, xp.ones_like(e), e)

        def value(t: float, e: Any = e) -> float:
            start = [x1 + t * e] + [
                base.xs[k - 1] + t * (base.sensitivity[k] @ e) for k in range(2, problem.n + 1)
            ]
            return best_response(problem, start, level_options=level_options, **options).fun

        fd.append(_five_point(value, step))
    reference = xp.asarray(fd, dtype=x1.dtype, device=device(x1))
    err = _relative(xp, base.hypergrad, reference)
    return Result(
        hypergrad=base.hypergrad,
        finite_difference=reference,
        rel_error=err,
        curvature=base.curvature,
        step=step,
        ok=bool(err <= math.sqrt(eps)),
    )
