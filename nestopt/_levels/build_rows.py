"""Build a level's `ConstraintRows` from its `Bounds` and constraint objects (nestopt's or SciPy's).

Linear constraints become one block ``A`` (rows first), nonlinear ones keep
their callables (a SciPy one takes the flat ``x``, as in SciPy), and the box
on ``x_k`` comes last as rows of the identity; ``lb > ub`` is refused here.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend.host import to_numpy
from .box import as_bounds, box_arrays
from .constraints import LinearConstraint, NonlinearConstraint, open_side_text
from .outputs import Target
from .rows import ConstraintRows, Nonlinear

__all__ = ["level_rows"]


# Each problem's rows of levels with bounds and linear constraints only, by level and target
# (arrays and labels, read only): every run starts from fresh rows made of them.
_LINEAR: weakref.WeakKeyDictionary[Any, dict[tuple[int, Target], ConstraintRows]] = (
    weakref.WeakKeyDictionary()
)


def level_rows(problem: Any, k: int, target: Target, xs: Sequence[Any]) -> ConstraintRows | None:
    """The rows of level ``k`` (None when it has neither bounds nor constraints).

    ``xs`` (the run's start) is where a nonlinear constraint is first called, to
    learn its number of rows when ``lb`` and ``ub`` are scalars. A level with
    bounds and linear constraints only is built once per problem and target.
    """
    level = problem.levels[k - 1]
    if not level.constrained:
        return None
    if any(not _is_linear(c) for c in level.constraints):
        return _build(problem, k, target, xs)
    try:
        cache = _LINEAR.setdefault(problem, {})
    except TypeError:  # not weakly referenceable: nothing cached
        return _build(problem, k, target, xs)
    built = cache.get((k, target))
    if built is None:
        built = cache[(k, target)] = _build(problem, k, target, xs)
    rows = ConstraintRows(k, built.text, built.sizes, target)
    rows.A, rows.box, rows.lb, rows.ub = built.A, built.box, built.lb, built.ub
    rows.labels = list(built.labels)
    return rows


def _build(problem: Any, k: int, target: Target, xs: Sequence[Any]) -> ConstraintRows:
    level = problem.levels[k - 1]
    xp = target.xp
    text = problem.describe(k)
    rows = ConstraintRows(k, text, problem.sizes, target)
    lbs, ubs = [], []
    linear = [c for c in level.constraints if _is_linear(c)]
    others = [c for c in level.constraints if not _is_linear(c)]
    if linear:
        blocks = [_linear_block(c, problem.dim, text) for c in linear]
        rows.A = xp.asarray(
            np.concatenate([b[0] for b in blocks]), dtype=target.dtype, device=target.device
        )
        for index, (A, lb, ub) in enumerate(blocks):
            lbs.append(lb)
            ubs.append(ub)
            rows.labels += [f"linear[{index}][{i}]" for i in range(A.shape[0])]
    for index, constraint in enumerate(others):
        item, lb, ub = _nonlinear(constraint, index, text, target, xs)
        rows.nonlinear.append(item)
        lbs.append(lb)
        ubs.append(ub)
        rows.labels += [f"{item.label}[{i}]" for i in range(item.size)]
    box = as_bounds(level.bounds, level.size, text)
    if box is not None:
        lower, upper = box_arrays(xp, xs[k - 1], box, text)
        rows.box = (lower, upper)
        lbs.append(np.asarray(_host(lower)))
        ubs.append(np.asarray(_host(upper)))
        rows.labels += [f"bounds[{i}]" for i in range(level.size)]
    lb = np.concatenate(lbs) if lbs else np.zeros(0)
    ub = np.concatenate(ubs) if ubs else np.zeros(0)
    if np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
        raise ValueError(f"constraint bounds of {text} contain NaN; use -inf/inf for no bound")
    if np.any(lb > ub):
        bad = rows.labels[int(np.argmax(lb > ub))]
        raise ValueError(f"{text}: {bad} has lb > ub, so the level has no feasible point")
    unmeetable = (lb == np.inf) | (ub == -np.inf)
    if np.any(unmeetable):
        i = int(np.argmax(unmeetable))
        raise ValueError(f"{text}: {rows.labels[i]} has {open_side_text(lb[i], ub[i])}")
    rows.lb = xp.asarray(lb, dtype=target.dtype, device=target.device)
    rows.ub = xp.asarray(ub, dtype=target.dtype, device=target.device)
    return rows


def _host(a: Any) -> Any:

    return to_numpy(a)


def _is_linear(constraint: Any) -> bool:
    if isinstance(constraint, LinearConstraint):
        return True
    return type(constraint).__name__ == "LinearConstraint" and hasattr(constraint, "A")


def _linear_block(constraint: Any, dim: int, text: str) -> tuple[Any, Any, Any]:
    A = constraint.A
    if hasattr(A, "toarray"):
        A = A.toarray()
    A = np.atleast_2d(np.asarray(_host(A), dtype=float))
    if A.ndim != 2 or A.shape[1] != dim:
        raise ValueError(
            f"a LinearConstraint of {text} has A of shape {A.shape}; A needs {dim} columns "
            "(one per variable of every level, level 1 first)"
        )
    m = A.shape[0]
    lb = np.broadcast_to(np.asarray(_host(constraint.lb), dtype=float), (m,)).copy()
    ub = np.broadcast_to(np.asarray(_host(constraint.ub), dtype=float), (m,)).copy()
    return A, lb, ub


def _nonlinear(
    constraint: Any, index: int, text: str, target: Target, xs: Sequence[Any]
) -> tuple[Nonlinear, Any, Any]:
    label = getattr(constraint, "name", None) or f"nonlinear[{index}]"
    if isinstance(constraint, NonlinearConstraint):
        fun, jac, hess = constraint.fun, constraint.jac, constraint.hess
        hess_dir, linear = constraint.hess_dir, constraint.linear
        _check_arity(fun, len(xs), label, text, scipy=False)
    elif type(constraint).__name__ == "NonlinearConstraint" and hasattr(constraint, "fun"):
        # scipy.optimize.NonlinearConstraint: callables of the flat vector x (SciPy's meaning).
        if not callable(constraint.jac):
            raise TypeError(
                f"scipy NonlinearConstraint {label} has jac={constraint.jac!r}; nestopt needs an "
                "analytic jac callable"
            )
        _check_arity(constraint.fun, len(xs), label, text, scipy=True)
        fun, jac, hess = _flat(constraint.fun), _flat(constraint.jac), None
        if callable(getattr(constraint, "hess", None)):
            hess = _flat(constraint.hess, extra=1)
        hess_dir, linear = None, False
    else:
        raise TypeError(
            f"constraints must be nestopt (or scipy.optimize) LinearConstraint or "
            f"NonlinearConstraint objects; got {type(constraint).__name__} in {text}"
        )
    sizes = {np.size(_host(side)) for side in (constraint.lb, constraint.ub)} - {1}
    if len(sizes) > 1:
        raise ValueError(f"{text}: {label} has lb and ub of different lengths {sorted(sizes)}")
    if sizes:
        size = sizes.pop()
    else:
        probe = fun(*xs)
        size = int(np.prod(getattr(probe, "shape", ()) or (1,)))
    lb = np.broadcast_to(np.asarray(_host(constraint.lb), dtype=float), (size,)).copy()
    ub = np.broadcast_to(np.asarray(_host(constraint.ub), dtype=float), (size,)).copy()
    return Nonlinear(fun, jac, hess, hess_dir, bool(linear), size, label), lb, ub


def _check_arity(fun: Any, n: int, label: str, text: str, *, scipy: bool) -> None:
    """Refuse a constraint ``fun`` written for the other convention, before calling it.

    SciPy's objects are called as SciPy calls them, with one flat vector; nestopt's with
    the ``n`` per-level arrays. A ``fun`` that cannot take its object's arguments but
    takes the other object's is the likely mix-up, said plainly instead of Python's
    "missing 1 required positional argument". One that takes both is used as its object
    says (SciPy's reading for SciPy's objects), and one whose signature is unknown is not
    checked.
    """
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):
        return
    probe = [None] * n

    def takes(count: int) -> bool:
        try:
            signature.bind(*probe[:count])
        except TypeError:
            return False
        return True

    own, other = (1, n) if scipy else (n, 1)
    if takes(own) or not takes(other):
        return
    if scipy:
        raise TypeError(
            f"{text}: the scipy.optimize.NonlinearConstraint {label} has fun{signature}, "
            f"which takes the {n} per-level arrays; SciPy's constraint objects take one flat "
            f"vector x (all levels' variables, level 1 first), as in SciPy: fun(x), jac(x), "
            f"hess(x, v). Write them of x, or use nestopt.NonlinearConstraint, whose "
            f"callables take the per-level arrays fun(x1, ..., x{n})"
        )
    raise TypeError(
        f"{text}: nestopt.NonlinearConstraint {label} has fun{signature}, which takes one "
        f"argument; nestopt's constraint callables take the {n} per-level arrays: "
        f"fun(x1, ..., x{n}), jac(x1, ..., x{n}). Write them so, or pass a "
        "scipy.optimize.NonlinearConstraint, whose callables take one flat vector x"
    )


def _flat(fn: Any, extra: int = 0) -> Any:
    """A SciPy callable of the flat ``x`` (and ``extra`` more arguments), as nestopt calls it."""

    def call(*args: Any) -> Any:
        import array_api_compat

        xs, rest = args[: len(args) - extra], args[len(args) - extra :]
        xp = array_api_compat.array_namespace(*xs)
        return fn(xp.concat(list(xs)), *rest)

    return call
