"""``constrained_trilevel(which)``: quadratic trilevel problems with active constraints below."""

from __future__ import annotations

from typing import Any

from .. import Bounds, LinearConstraint
from ._base import KnownProblem
from ._bolib import _level, _on_backend
from ._terms import compile_terms
from ._terms import monomial as mono
from ._terms import square as sq

__all__ = ["constrained_trilevel"]

_INF = float("inf")


def constrained_trilevel(which: str, *, backend: Any = None) -> KnownProblem:
    """A trilevel problem with constraints active at levels 2 and 3 and a closed-form optimum.

    Every level is quadratic and strongly convex in its own variable; level
    3 has a bound and a coupled linear inequality, both active at the
    solution with positive multipliers, and level 2 has an equality
    (``which="equality"``) or an active bound (``which="bound"``). The
    variables are ``x`` (level 1), ``y`` (level 2) and ``z`` (level 3).

    Parameters
    ----------
    which : {"equality", "bound"}
        The problem; see Notes.
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('upper', 'middle', 'lower')``, all declared quadratic;
        linear constraints as `nestopt.LinearConstraint` of all variables
        and bounds as `nestopt.Bounds`. ``x0`` is a stated point (not a
        solution), ``solution`` the closed form below; ``data`` holds the
        exact values (``F``, ``f2``, ``f3``), the active constraints and
        multipliers of each level (``active``, ``multipliers``, by level
        name) and the responses ``y*(x)`` and ``z*(x, y)`` as strings.

    Notes
    -----
    Multipliers are those of ``L = f + sum_i lambda_i c_i`` with the
    inequalities written ``c_i <= 0`` (nonnegative) and the equality as
    ``c = 0``.

    **which="equality"**: ``x`` in R, ``y`` in R^2, ``z`` in R^3.

        f3 = (z1 - y1)^2/2 + (z2 - y2)^2/2 + (z3 + 1)^2/2,
             s.t. z3 >= 0,  z1 + z2 <= x
        f2 = (y1 - 3)^2/2 + (y2 - 1)^2/2 + |z|^2/2,   s.t. y1 + y2 = 2 + x
        f1 = x^2/2 + (z1 - 2)^2/2 + (y2 - 1)^2

    Level 3 projects ``(y1, y2, -1)`` onto its feasible set. The bound is
    active with multiplier 1 (``z3 = 0``); the coupled constraint is active
    when ``y1 + y2 > x``, which level 2's equality makes true for every
    ``x`` (``y1 + y2 - x = 2``), with multiplier ``(y1 + y2 - x)/2 = 1``.
    So ``z*(x, y) = ((x + y1 - y2)/2, (x - y1 + y2)/2, 0)`` everywhere on
    level 2's feasible set. Level 2 then minimizes, on ``y1 + y2 = 2 + x``
    with ``d = y1 - y2``, ``(x + d - 4)^2/8 + (x - d)^2/8 + (x^2 + d^2)/4``,
    whose derivative in ``d`` is ``d - 1``: ``y*(x) = ((3 + x)/2,
    (1 + x)/2)``, equality multiplier ``1 - x/2``. Level 1 minimizes
    ``F(x) = x^2/2 + (x - 3)^2/8 + (x - 1)^2/4``, ``F' = (7x - 5)/4``:

        x* = 5/7,  y* = (13/7, 6/7),  z* = (6/7, -1/7, 0),  F* = 13/14,

    with ``f2* = 51/49``, ``f3* = 3/2``, equality multiplier ``9/14``.

    **which="bound"**: ``x`` in R, ``y`` in R^2, ``z`` in R^2.

        f3 = z1^2 + z1 z2 + z2^2 - (x + y1) z1 - 2 y2 z2,
             s.t. z2 >= 0,  z1 + z2 <= y1
        f2 = (y1 - 1)^2/2 + (y2 + 1)^2/2 + (z1 - x)^2/2,   s.t. y2 >= 0
        f1 = (x - 3)^2/2 + (z1 - 1)^2/2 + y2,             s.t. x <= 2

    With both level-3 constraints active, ``z*(x, y) = (y1, 0)``; the KKT
    conditions give the multipliers ``x - 2 y2`` (bound) and ``x - y1``
    (coupled), positive where ``x > max(2 y2, y1)``. Level 2's objective
    along this response is ``(y1 - 1)^2/2 + (y2 + 1)^2/2 + (y1 - x)^2/2``:
    ``y1 = (1 + x)/2``, and ``y2 = 0`` at its bound with multiplier 1.
    Level 3's multipliers are then ``x`` and ``(x - 1)/2``, positive for
    ``1 < x``. Level 1 minimizes ``F(x) = (x - 3)^2/2 + (x - 1)^2/8``, whose
    minimizer 13/5 lies beyond the bound: ``F'(2) = -3/4``, so the bound is
    active with multiplier 3/4 and

        x* = 2,  y* = (3/2, 0),  z* = (3/2, 0),  F* = 5/8,

    with ``f2* = 3/4``, ``f3* = -3``, level-3 multipliers 2 and 1/2. For
    ``x <= 1`` another active set holds, where ``F >= (x - 3)^2/2 >= 2``,
    so the optimum is global.

    Examples
    --------
    >>> from nestopt.problems import constrained_trilevel
    >>> p = constrained_trilevel("bound", backend="numpy")
    >>> [s.tolist() for s in p.solution], p.data["F"]
    ([[2.0], [1.5, 0.0], [1.5, 0.0]], 0.625)
    """
    makers = {"equality": _equality, "bound": _bound}
    if which not in makers:
        raise ValueError(
            f"constrained_trilevel got which={which!r}; expected one of {sorted(makers)}"
        )
    return makers[which](backend)


def _equality(backend: Any) -> KnownProblem:
    on = _on_backend(backend)
    names = ("x", "y1", "y2", "z1", "z2", "z3")
    f3 = (sq(y1=-1, z1=1, scale=0.5), sq(y2=-1, z2=1, scale=0.5), sq(1, 0.5, z3=1))
    f2 = (sq(-3, 0.5, y1=1), sq(-1, 0.5, y2=1), mono(0.5, z1=2), mono(0.5, z2=2), mono(0.5, z3=2))
    f1 = (mono(0.5, x=2), sq(-2, 0.5, z1=1), sq(-1, y2=1))
    levels = [
        _level(compile_terms(f1, names, on), 1, None, [], "upper"),
        _level(
            compile_terms(f2, names, on),
            2,
            None,
            [LinearConstraint(on([[-1.0, 1, 1, 0, 0, 0]]), on([2.0]), on([2.0]))],
            "middle",
        ),
        _level(
            compile_terms(f3, names, on),
            3,
            Bounds(on([-_INF, -_INF, 0.0]), on([_INF, _INF, _INF])),
            [LinearConstraint(on([[-1.0, 0, 0, 1, 1, 0]]), on([-_INF]), on([0.0]))],
            "lower",
        ),
    ]
    data = {
        "F": 13 / 14,
        "f2": 51 / 49,
        "f3": 1.5,
        "active": {"middle": ("y1 + y2 - x = 2",), "lower": ("z3 >= 0", "z1 + z2 - x <= 0")},
        "multipliers": {
            "middle": {"y1 + y2 - x = 2": 9 / 14},
            "lower": {"z3 >= 0": 1.0, "z1 + z2 - x <= 0": 1.0},
        },
        "responses": {
            "y": "y*(x) = ((3 + x)/2, (1 + x)/2)",
            "z": "z*(x, y) = ((x + y1 - y2)/2, (x - y1 + y2)/2, 0)",
        },
    }
    return KnownProblem(
        levels,
        x0=(on([0.0]), on([1.0, 1.0]), on([0.0, 0.0, 0.0])),
        solution=(on([5 / 7]), on([13 / 7, 6 / 7]), on([6 / 7, -1 / 7, 0.0])),
        data=data,
        description="constrained_trilevel('equality'): level-2 equality, level-3 bound and "
        "coupled inequality active",
    )


def _bound(backend: Any) -> KnownProblem:
    on = _on_backend(backend)
    names = ("x", "y1", "y2", "z1", "z2")
    f3 = (
        mono(1, z1=2),
        mono(1, z1=1, z2=1),
        mono(1, z2=2),
        mono(-1, x=1, z1=1),
        mono(-1, y1=1, z1=1),
        mono(-2, y2=1, z2=1),
    )
    f2 = (sq(-1, 0.5, y1=1), sq(1, 0.5, y2=1), sq(z1=1, x=-1, scale=0.5))
    f1 = (sq(-3, 0.5, x=1), sq(-1, 0.5, z1=1), mono(1, y2=1))
    levels = [
        _level(compile_terms(f1, names, on), 1, Bounds(on([-_INF]), on([2.0])), [], "upper"),
        _level(
            compile_terms(f2, names, on),
            2,
            Bounds(on([-_INF, 0.0]), on([_INF, _INF])),
            [],
            "middle",
        ),
        _level(
            compile_terms(f3, names, on),
            2,
            Bounds(on([-_INF, 0.0]), on([_INF, _INF])),
            [LinearConstraint(on([[0.0, -1, 0, 1, 1]]), on([-_INF]), on([0.0]))],
            "lower",
        ),
    ]
    data = {
        "F": 0.625,
        "f2": 0.75,
        "f3": -3.0,
        "active": {
            "upper": ("x <= 2",),
            "middle": ("y2 >= 0",),
            "lower": ("z2 >= 0", "z1 + z2 - y1 <= 0"),
        },
        "multipliers": {
            "upper": {"x <= 2": 0.75},
            "middle": {"y2 >= 0": 1.0},
            "lower": {"z2 >= 0": 2.0, "z1 + z2 - y1 <= 0": 0.5},
        },
        "responses": {"y": "y*(x) = ((1 + x)/2, 0)", "z": "z*(x, y) = (y1, 0)"},
    }
    return KnownProblem(
        levels,
        x0=(on([0.0]), on([0.0, 0.0]), on([0.0, 0.0])),
        solution=(on([2.0]), on([1.5, 0.0]), on([1.5, 0.0])),
        data=data,
        description="constrained_trilevel('bound'): level-1 and level-2 bounds, level-3 bound "
        "and coupled inequality active",
    )
