"""``bolib(name)``: published bilevel test problems with constrained, strongly convex followers."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import Bounds, Level, LinearConstraint, NonlinearConstraint
from .._backend.selection import get_backend
from ._base import KnownProblem
from ._bolib_data import PROBLEMS, Spec
from ._terms import compile_terms, namespace

__all__ = ["bolib", "bolib_names"]


def bolib_names() -> tuple[str, ...]:
    """Names accepted by `bolib`, in the order of its table.

    Returns
    -------
    tuple of str
        BOLIB names (BASBLib names for the two problems BOLIB lacks).

    Examples
    --------
    >>> from nestopt.problems import bolib_names
    >>> "ClarkWesterberg1990a" in bolib_names()
    True
    """
    return tuple(PROBLEMS)


def bolib(name: str, *, backend: Any = None) -> KnownProblem:
    """A published bilevel test problem whose follower has active constraints.

    Problems from BOLIB (Zhou, Zemkoho & Tin, "BOLIB: Bilevel Optimization
    LIBrary of test problems", 2020) and BASBLib (Paulavicius, Gao,
    Kleniati & Adjiman), chosen for a follower objective that is strongly
    convex in ``y`` for every ``x``, at least one follower constraint
    active at the solution, smooth data, and a published best solution
    (the exceptions are flagged in ``data``, see Notes). The
    solution stored is refined (closed forms where the active sets give
    them, else 16-digit roots of the reduced stationarity) and verified
    with SciPy in ``tests/test_bolib_reference.py``.

    Parameters
    ----------
    name : str
        One of `bolib_names`.
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('upper', 'lower')`` with analytic ``grad``, ``hess`` and
        ``value``; bounds as `nestopt.Bounds`, linear constraints as one
        `nestopt.LinearConstraint` per level and nonlinear ones as one
        named `nestopt.NonlinearConstraint` each (with ``jac`` and
        ``hess``), all functions of ``(x, y)``. ``x0`` is the published
        start where the source gives one (``data["start"]`` says which);
        ``solution`` the refined ``(x*, y*)``. ``data`` holds ``source``,
        ``F_published``, ``f_published`` (and the rest of ``published``),
        the refined ``F`` and ``f``, ``active_lower`` and
        ``multipliers_lower`` (by constraint label, multipliers of
        inequalities nonnegative), ``active_upper``/``multipliers_upper``,
        ``weakly_active`` (labels of active constraints with a zero
        multiplier), ``strongly_convex``, the constraint labels in order
        (``lower_constraints``, ``upper_constraints``: linear rows first,
        then nonlinear ones), ``notes`` on discrepancies and ``details``
        (the problem's full documentation).

    Notes
    -----
    ``size`` is (leader, follower); kinds of the constraints of either
    level: b = bounds, l = linear (coupled where it involves x and y),
    n = nonlinear, e = equality, G = a leader constraint involving y;
    * = a weakly active follower constraint at the optimum. The active
    follower constraints, and the published and refined F*:

    =============================  ======  =======  ====================  =======  ==========
    name                           size    kinds    active (follower)     F* publ  F* refined
    =============================  ======  =======  ====================  =======  ==========
    ClarkWesterberg1990a           (1, 1)  l        -2x + y <= 1          5        5
    Colson2002BIPA3                (1, 1)  b l G    y >= 0                2        2
    Colson2002BIPA5                (1, 2)  b n      exp constraint, y1    2.75     2.7497676
    b_1998_05 (BASBLib)            (1, 1)  b        y >= 0                1        1
    b_1998_02 (BASBLib)            (2, 1)  b        y <= 1                0        0
    ShimizuAiyoshi1981Ex2          (2, 2)  b l      y1 <= 10              225      225
    MuuQuy2003Ex1                  (1, 2)  b l      y2 >= 0               -2.08    -27/13
    MuuQuy2003Ex2                  (2, 3)  b l      coupled, y1, y2       0.64     23/36
    Outrata1990Ex1a                (2, 2)  b l      y1 - 0.333y2 <= 2     -8.92    -8.9172030
    Outrata1990Ex2d                (1, 2)  b n      both bilinear         0.92     0.84850542
    Outrata1990Ex2e                (1, 2)  b n      first bilinear        0.90     0.89745982
    AiyoshiShimizu1984Ex2          (2, 2)  b l G    y >= -10              5 (0)    0
    FloudasEtal2013                (2, 2)  b l      y >= -10              0        0
    LamparielloSagratella2017Ex23  (1, 2)  b n      y2 >= 0               -1       -1
    Yezza1996Ex41                  (1, 2)  b e      y1 + y2 = x           0.5      0.5
    Outrata1993Ex31 *              (1, 2)  b n      second (+ first)      1.56     1.5628738
    Outrata1994Ex31 *              (1, 2)  b l n    disk (+ linear)       3.21     3.2077000
    DeSilva1978 *                  (2, 2)  b        (y >= 0.5)            -1       -1
    =============================  ======  =======  ====================  =======  ==========

    Fourteen problems meet every criterion. Yezza1996Ex41 is included for
    its follower equality (neither library has an equality in a strongly
    convex follower); its follower Hessian is only positive semidefinite
    (positive definite on the equality's null space): ``strongly_convex``
    is False. The last three have a weakly active follower constraint at
    the optimum (a kink of the leader's value function): ``weakly_active``
    names it. Each problem's documentation (``data["details"]``) gives the
    source, the formulation, the derivation of the solution and every
    discrepancy with the published numbers.

    Examples
    --------
    >>> from nestopt.problems import bolib
    >>> p = bolib("ClarkWesterberg1990a", backend="numpy")
    >>> [float(s[0]) for s in p.solution], p.data["F"], p.data["active_lower"]
    ([1.0, 3.0], 5.0, ('-2x + y <= 1',))
    """
    if not isinstance(name, str) or name not in PROBLEMS:
        close = difflib.get_close_matches(str(name), PROBLEMS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown bolib problem {name!r}; expected one of nestopt.problems.bolib_names(): "
            f"{', '.join(PROBLEMS)}.{hint}"
        )
    make = PROBLEMS[name]
    return _build(name, make(), inspect.getdoc(make) or "", backend)


def _build(name: str, spec: Spec, doc: str, backend: Any) -> KnownProblem:
    on_backend = _on_backend(backend)
    names = spec.x + spec.y
    nx = len(spec.x)
    F = compile_terms(spec.F, names, on_backend)
    f = compile_terms(spec.f, names, on_backend)
    upper_constraints, upper_labels = _constraints(spec.upper, names, on_backend)
    lower_constraints, lower_labels = _constraints(spec.lower, names, on_backend)
    levels = [
        _level(F, nx, _bounds(spec.x_bounds, on_backend), upper_constraints, "upper"),
        _level(f, len(spec.y), _bounds(spec.y_bounds, on_backend), lower_constraints, "lower"),
    ]
    published = dict(spec.published)
    data = {
        "name": name,
        "source": spec.source,
        "start": spec.start,
        "F_published": published.get("F"),
        "f_published": published.get("f"),
        "published": published,
        "F": float(spec.F_star),
        "f": float(spec.f_star),
        "active_lower": spec.active_lower,
        "multipliers_lower": dict(spec.multipliers_lower),
        "active_upper": spec.active_upper,
        "multipliers_upper": dict(spec.multipliers_upper),
        "weakly_active": spec.weakly_active,
        "strongly_convex": spec.strongly_convex,
        "lower_constraints": lower_labels,
        "upper_constraints": upper_labels,
        "lower_bounds": _bound_labels(spec.y, spec.y_bounds),
        "upper_bounds": _bound_labels(spec.x, spec.x_bounds),
        "variables": (spec.x, spec.y),
        "closed_form": spec.closed_form,
        "notes": spec.notes,
        "details": doc,
    }
    summary = doc.splitlines()[0] if doc else name
    return KnownProblem(
        levels,
        x0=(on_backend(spec.x0), on_backend(spec.y0)),
        solution=(on_backend(spec.x_star), on_backend(spec.y_star)),
        data=data,
        description=f"bolib({name!r}): {summary}",
    )


def _on_backend(backend: Any) -> Any:
    """Turns NumPy data into float64 (or bool) constants on the chosen backend and device."""
    chosen = get_backend(backend)
    xp = chosen.xp

    def on_backend(a: Any) -> Any:
        a = np.asarray(a)
        dtype = xp.bool if a.dtype == bool else xp.float64
        return chosen.asarray(a, dtype=dtype, copy=True)

    return on_backend


def _flat(*xs: Any) -> Any:
    return namespace(*xs).concat(list(xs))


def _level(fun: Any, size: int, bounds: Any, constraints: list[Any], name: str) -> Level:
    """A Level whose callables take one array per level and see their concatenation."""

    def value(*xs: Any) -> Any:
        return fun.value(_flat(*xs))

    def grad(*xs: Any) -> Any:
        return fun.grad(_flat(*xs))

    def hess(*xs: Any) -> Any:
        return fun.hess(_flat(*xs))

    return Level(
        grad=grad,
        hess=hess,
        value=value,
        size=size,
        bounds=bounds,
        constraints=constraints,
        name=name,
        quadratic=fun.degree is not None and fun.degree <= 2,
    )


def _bounds(pairs: Sequence[tuple[float, float]] | None, on_backend: Any) -> Bounds | None:
    if pairs is None:
        return None
    lb, ub = zip(*pairs)
    return Bounds(on_backend(np.array(lb, dtype=float)), on_backend(np.array(ub, dtype=float)))


def _bound_labels(
    names: Sequence[str], pairs: Sequence[tuple[float, float]] | None
) -> tuple[str, ...]:
    labels = []
    for name, (lo, hi) in zip(names, pairs or ()):
        if math.isfinite(lo):
            labels.append(f"{name} >= {lo:g}")
        if math.isfinite(hi):
            labels.append(f"{name} <= {hi:g}")
    return tuple(labels)


def _constraints(
    rows: Sequence[Any], names: Sequence[str], on_backend: Any
) -> tuple[list[Any], tuple[str, ...]]:
    """One LinearConstraint for the linear rows, one NonlinearConstraint per other row."""
    index = {v: i for i, v in enumerate(names)}
    linear = [row for row in rows if isinstance(row[1], dict)]
    nonlinear = [row for row in rows if not isinstance(row[1], dict)]
    out: list[LinearConstraint | NonlinearConstraint] = []
    if linear:
        A = np.zeros((len(linear), len(names)))
        for r, (_, coef, _, _) in enumerate(linear):
            for v, a in coef.items():
                A[r, index[v]] = a
        lb = np.array([row[2] for row in linear], dtype=float)
        ub = np.array([row[3] for row in linear], dtype=float)
        out.append(LinearConstraint(on_backend(A), on_backend(lb), on_backend(ub)))
    for label, terms, lo, hi in nonlinear:
        out.append(_nonlinear(compile_terms(terms, names, on_backend), lo, hi, label, on_backend))
    labels = tuple(row[0] for row in linear) + tuple(row[0] for row in nonlinear)
    return out, labels


def _nonlinear(fun: Any, lo: float, hi: float, label: str, on_backend: Any) -> NonlinearConstraint:
    def value(*xs: Any) -> Any:
        w = _flat(*xs)
        return namespace(w).reshape(fun.value(w), (1,))

    def jac(*xs: Any) -> Any:
        return fun.grad(_flat(*xs))[None, :]

    def hess(*args: Any) -> Any:
        *xs, v = args
        return v[0] * fun.hess(_flat(*xs))

    return NonlinearConstraint(
        value,
        on_backend(np.array([lo], dtype=float)),
        on_backend(np.array([hi], dtype=float)),
        jac=jac,
        hess=hess,
        name=label,
    )
