"""`bolib` problems with quadratic objectives and linear or simple constraints (part 1 of 4)."""

from __future__ import annotations

import math

from ._bolib_spec import BOLIB_START, Spec, inf
from ._terms import exponential as ex
from ._terms import monomial as mono
from ._terms import power as pw
from ._terms import square as sq


def clark_westerberg_1990a() -> Spec:
    """ClarkWesterberg1990a: a coupled linear inequality active, F* = 5.

    Sources: BOLIB ``ClarkWesterberg1990a`` (same as ``SahinCiric1998Ex2``),
    BASBLib ``QP-QP/cw_1990_02``; Clark & Westerberg, Comput. Chem. Eng.
    14(1) 87-97, 1990, Sect. 3.2.

    min (x - 3)^2 + (y - 2)^2, 0 <= x <= 8; y solves min (y - 5)^2 s.t.
    -2x + y <= 1, x - 2y <= -2, x + 2y <= 14. Solution (1, 3), F* = 5,
    f* = 4: y* = 2x + 1 on x <= 2, F(x) = (x - 3)^2 + (2x - 1)^2, x* = 1.
    BASBLib adds 0 <= y <= 8 (inactive); BOLIB's form is used.
    """
    return Spec(
        x=("x",),
        y=("y",),
        F=(sq(-3, x=1), sq(-2, y=1)),
        f=(sq(-5, y=1),),
        x_bounds=((0, 8),),
        y_bounds=None,
        upper=(),
        lower=(
            ("-2x + y <= 1", {"x": -2, "y": 1}, -inf, 1),
            ("x - 2y <= -2", {"x": 1, "y": -2}, -inf, -2),
            ("x + 2y <= 14", {"x": 1, "y": 2}, -inf, 14),
        ),
        x0=(1.0,),
        y0=(1.0,),
        start=BOLIB_START,
        x_star=(1.0,),
        y_star=(3.0,),
        F_star=5.0,
        f_star=4.0,
        published={"F": 5, "f": 4, "x": (1.0,), "y": (3.0,)},
        active_lower=("-2x + y <= 1",),
        multipliers_lower={"-2x + y <= 1": 4.0},
        closed_form="x* = 1, y* = 2x* + 1 = 3",
        source=(
            "BOLIB ClarkWesterberg1990a (= SahinCiric1998Ex2), BASBLib QP-QP/cw_1990_02; "
            "P. A. Clark and A. W. Westerberg, Comput. Chem. Eng. 14(1):87-97, 1990"
        ),
    )


def colson_2002_bipa3() -> Spec:
    """Colson2002BIPA3: a bound on y active, and a leader constraint in (x, y).

    Sources: BOLIB ``Colson2002BIPA3``, BASBLib ``NLP-NLP/c_2002_03``;
    B. Colson, BIPA test problems, 2002 (BIPA3).

    min (x - 5)^4 + (2y + 1)^4 s.t. x + y <= 4, x >= 0; y solves
    min exp(y - x) + x^2 + 2xy + y^2 + 2x + 6y s.t. y - x <= 2, y >= 0.
    The follower's derivative at y = 0 is exp(-x) + 2x + 6 > 0, so y*(x) = 0
    with multiplier exp(-x) + 2x + 6; F(x) = (x - 5)^4 + 1 decreases up to
    the leader constraint x + y <= 4 (multiplier 4): x* = 4, F* = 2,
    f* = 24 + exp(-4). The published start (4, 0) is the solution.
    """
    return Spec(
        x=("x",),
        y=("y",),
        F=(pw(4, -5, x=1), pw(4, 1, y=2)),
        f=(ex(0, y=1, x=-1), sq(x=1, y=1), mono(2, x=1), mono(6, y=1)),
        x_bounds=((0, inf),),
        y_bounds=((0, inf),),
        upper=(("x + y <= 4", {"x": 1, "y": 1}, -inf, 4),),
        lower=(("-x + y <= 2", {"x": -1, "y": 1}, -inf, 2),),
        x0=(4.0,),
        y0=(0.0,),
        start=BOLIB_START,
        x_star=(4.0,),
        y_star=(0.0,),
        F_star=2.0,
        f_star=24.0 + math.exp(-4.0),
        published={"F": 2, "f": 24.02, "x": (4.0,), "y": (0.0,)},
        active_lower=("y >= 0",),
        multipliers_lower={"y >= 0": 14.0 + math.exp(-4.0)},
        active_upper=("x + y <= 4",),
        multipliers_upper={"x + y <= 4": 4.0},
        closed_form="x* = 4, y* = 0",
        source="BOLIB Colson2002BIPA3, BASBLib NLP-NLP/c_2002_03; B. Colson, BIPA, 2002",
    )


def colson_2002_bipa5() -> Spec:
    """Colson2002BIPA5: a nonlinear coupled inequality and a bound active.

    Sources: BOLIB ``Colson2002BIPA5``, BASBLib ``NLP-NLP/c_2002_05``;
    B. Colson, BIPA test problems, 2002 (BIPA5).

    min (x - y2)^4 + (y1 - 1)^2 + (y1 - y2)^2, x >= 0; y solves
    min 2x + exp(y1) + y1^2 + 4y1 + 2y2^2 - 6y2 s.t. 6x + y1^2 + exp(y2) <= 15,
    5x + y1^4 - y2 <= 25, 0 <= y1 <= 4, 0 <= y2 <= 2. Near the solution
    y1* = 0 (multiplier 5) and y2* = L(x) = log(15 - 6x) (the exponential
    constraint, multiplier (6 - 4 L) / exp(L)); x* is the root of
    d/dx [(x - L)^4 + 1 + L^2] = 0, x* = 1.9405290631821217, F* = 2.7497676.
    Published: F* = 2.75 (both), f* = 0.57 (BOLIB) and 0.548 (BASBLib);
    f at the refined point is 0.54811, which agrees with BASBLib; BOLIB's
    0.57 is not reproduced near its own point (1.94, 0, 1.21), where f is
    0.548, so the refined value is trusted.
    """
    x_star = 1.9405290631821217
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=(pw(4, x=1, y2=-1), sq(-1, y1=1), sq(y1=1, y2=-1)),
        f=(mono(2, x=1), ex(0, y1=1), mono(1, y1=2), mono(4, y1=1), mono(2, y2=2), mono(-6, y2=1)),
        x_bounds=((0, inf),),
        y_bounds=((0, 4), (0, 2)),
        upper=(),
        lower=(
            ("6x + y1^2 + exp(y2) <= 15", (mono(6, x=1), mono(1, y1=2), ex(0, y2=1)), -inf, 15),
            ("5x + y1^4 - y2 <= 25", (mono(5, x=1), mono(1, y1=4), mono(-1, y2=1)), -inf, 25),
        ),
        x0=(1.0,),
        y0=(1.0, 1.0),
        start=BOLIB_START,
        x_star=(x_star,),
        y_star=(0.0, math.log(15.0 - 6.0 * x_star)),
        F_star=2.749767635061966,
        f_star=0.5481050142803293,
        published={"F": 2.75, "f": 0.57, "x": (1.94,), "y": (0.0, 1.21), "f_BASBLib": 0.548},
        active_lower=("6x + y1^2 + exp(y2) <= 15", "y1 >= 0"),
        multipliers_lower={"6x + y1^2 + exp(y2) <= 15": 0.3443780057804375, "y1 >= 0": 5.0},
        closed_form="y* = (0, log(15 - 6x*)), x* the root of the reduced stationarity",
        notes="f_published 0.57 (BOLIB) disagrees; BASBLib's 0.548 agrees with the refined f",
        source="BOLIB Colson2002BIPA5, BASBLib NLP-NLP/c_2002_05; B. Colson, BIPA, 2002",
    )


def bard_1998_05() -> Spec:
    """b_1998_05: a nonnegativity bound on y active, F* = 1.

    Sources: BASBLib ``QP-QP/b_1998_05``: Example 8.1.3 of J. F. Bard,
    Practical Bilevel Optimization, Kluwer 1998, with y >= 0 added by
    BASBLib (without it the problem is BOLIB's ``MacalHurter1997``, whose
    lower level has no active constraint).

    min (x - 1)^2 + (y - 1)^2, -100 <= x <= 100; y solves
    min y^2 / 2 + 500y - 50xy s.t. 0 <= y <= 100. y*(x) = 0 for x < 10
    (multiplier 500 - 50x), so F = (x - 1)^2 + 1 and x* = 1, F* = 1, f* = 0.
    Starts with x > 10 lead to the other branch, a local minimum with
    F ~ 81.33 near x = 10.02. BASBLib gives no start; x0 = 5 (y0 = 0) is a
    feasible point of the right branch.
    """
    return Spec(
        x=("x",),
        y=("y",),
        F=(sq(-1, x=1), sq(-1, y=1)),
        f=(mono(0.5, y=2), mono(500, y=1), mono(-50, x=1, y=1)),
        x_bounds=((-100, 100),),
        y_bounds=((0, 100),),
        upper=(),
        lower=(),
        x0=(5.0,),
        y0=(0.0,),
        start="stated: BASBLib gives none",
        x_star=(1.0,),
        y_star=(0.0,),
        F_star=1.0,
        f_star=0.0,
        published={"F": 1.0, "f": 0.0, "x": (1.0,), "y": (0.0,)},
        active_lower=("y >= 0",),
        multipliers_lower={"y >= 0": 450.0},
        closed_form="x* = 1, y* = 0",
        source=(
            "BASBLib QP-QP/b_1998_05; J. F. Bard, Practical Bilevel Optimization, 1998, "
            "Ex. 8.1.3 (with y >= 0)"
        ),
    )


def bard_1998_02() -> Spec:
    """b_1998_02: an upper bound on y active, F* = 0.

    Sources: BASBLib ``QP-QP/b_1998_02``: Example 7.2.1 of J. F. Bard,
    Practical Bilevel Optimization, Kluwer 1998 (BASBLib's sign fix of the
    follower's linear term).

    min (x1 - 0.8)^2 / 2 + (x2 - 0.2)^2 / 2 + (y - 1)^2 / 2, x in [0, 1]^2;
    y solves min y^2 / 2 - y - x1 y + 2 x2 y s.t. 0 <= y <= 1:
    y*(x) = clip(1 + x1 - 2 x2, 0, 1). At x* = (0.8, 0.2) the unclipped
    value is 1.4, so y* = 1 with multiplier 0.4 and F* = 0 (a lower bound
    of F), f* = -0.9. BASBLib gives no start; x0 = (0.5, 0.5), y0 = 0.5 is
    feasible with the bound inactive there.
    """
    return Spec(
        x=("x1", "x2"),
        y=("y",),
        F=(sq(-0.8, 0.5, x1=1), sq(-0.2, 0.5, x2=1), sq(-1, 0.5, y=1)),
        f=(mono(0.5, y=2), mono(-1, y=1), mono(-1, x1=1, y=1), mono(2, x2=1, y=1)),
        x_bounds=((0, 1), (0, 1)),
        y_bounds=((0, 1),),
        upper=(),
        lower=(),
        x0=(0.5, 0.5),
        y0=(0.5,),
        start="stated: BASBLib gives none",
        x_star=(0.8, 0.2),
        y_star=(1.0,),
        F_star=0.0,
        f_star=-0.9,
        published={"F": 0.0, "f": -0.9, "x": (0.8, 0.2), "y": (1.0,)},
        active_lower=("y <= 1",),
        multipliers_lower={"y <= 1": 0.4},
        closed_form="x* = (0.8, 0.2), y* = 1",
        source=(
            "BASBLib QP-QP/b_1998_02; J. F. Bard, Practical Bilevel Optimization, 1998, Ex. 7.2.1"
        ),
    )
