"""The problems of `bolib`: formulations, sources, published and refined solutions.

Each problem is a function returning a `Spec`; its docstring records the
source (library, name as listed there, original paper), the formulation, the
published solution and the refined one with every discrepancy. Constraints
are written ``lb <= expr <= ub``; an ``expr`` given as a dict of coefficients
is linear, a tuple of terms (`._terms`) is nonlinear. Bounds of a level's own
variable are written ``(lower, upper)`` per entry and labelled like
``"y1 >= 0"``; the labels name the constraints in ``data["active_lower"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._terms import exponential as ex
from ._terms import monomial as mono
from ._terms import power as pw
from ._terms import square as sq

inf = math.inf

Con = tuple[str, Any, float, float]


@dataclass(frozen=True)
class Spec:
    """One bilevel problem: leader variables ``x``, follower variables ``y``."""

    x: tuple[str, ...]
    y: tuple[str, ...]
    F: tuple[Any, ...]
    f: tuple[Any, ...]
    x_bounds: tuple[tuple[float, float], ...] | None
    y_bounds: tuple[tuple[float, float], ...] | None
    upper: tuple[Con, ...]
    lower: tuple[Con, ...]
    x0: tuple[float, ...]
    y0: tuple[float, ...]
    start: str
    x_star: tuple[float, ...]
    y_star: tuple[float, ...]
    F_star: float
    f_star: float
    published: dict[str, Any]
    active_lower: tuple[str, ...]
    multipliers_lower: dict[str, float]
    source: str
    active_upper: tuple[str, ...] = ()
    multipliers_upper: dict[str, float] = field(default_factory=dict)
    weakly_active: tuple[str, ...] = ()
    closed_form: str = ""
    notes: str = ""
    strongly_convex: bool = True


BOLIB_START = "published: BOLIB v2 xy_init"


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


def shimizu_aiyoshi_1981_ex2() -> Spec:
    """ShimizuAiyoshi1981Ex2: an upper bound on y active; two leader constraints active.

    Sources: BOLIB ``ShimizuAiyoshi1981Ex2``, BASBLib ``QP-QP/sa_1981_02``;
    Shimizu & Aiyoshi, IEEE Trans. Automat. Control 26(2):460-466, 1981.

    min (x1 - 30)^2 + (x2 - 20)^2 - 20y1 + 20y2 s.t. x1 + 2x2 >= 30,
    x1 + x2 <= 25, x2 <= 15; y solves min (x1 - y1)^2 + (x2 - y2)^2 s.t.
    0 <= y <= 10. For x1 > 10, y* = (10, x2) and F = (x1 - 30)^2 +
    (x2 - 10)^2 + 100, minimized on the vertex x1 + 2x2 = 30, x1 + x2 = 25:
    x* = (20, 5), y* = (10, 5), F* = 225, f* = 100; leader multipliers 10
    and 30, follower multiplier 20. BASBLib also bounds x in [0, 25] x
    [0, 15]; BOLIB's form (x2 <= 15 only) is used.
    """
    return Spec(
        x=("x1", "x2"),
        y=("y1", "y2"),
        F=(sq(-30, x1=1), sq(-20, x2=1), mono(-20, y1=1), mono(20, y2=1)),
        f=(sq(x1=1, y1=-1), sq(x2=1, y2=-1)),
        x_bounds=((-inf, inf), (-inf, 15)),
        y_bounds=((0, 10), (0, 10)),
        upper=(
            ("-x1 - 2x2 <= -30", {"x1": -1, "x2": -2}, -inf, -30),
            ("x1 + x2 <= 25", {"x1": 1, "x2": 1}, -inf, 25),
        ),
        lower=(),
        x0=(1.0, 1.0),
        y0=(1.0, 1.0),
        start=BOLIB_START + " (it violates -x1 - 2x2 <= -30)",
        x_star=(20.0, 5.0),
        y_star=(10.0, 5.0),
        F_star=225.0,
        f_star=100.0,
        published={"F": 225, "f": 100, "x": (20.0, 5.0), "y": (10.0, 5.0)},
        active_lower=("y1 <= 10",),
        multipliers_lower={"y1 <= 10": 20.0},
        active_upper=("-x1 - 2x2 <= -30", "x1 + x2 <= 25"),
        multipliers_upper={"-x1 - 2x2 <= -30": 10.0, "x1 + x2 <= 25": 30.0},
        closed_form="x* = (20, 5), y* = (10, 5)",
        source=(
            "BOLIB ShimizuAiyoshi1981Ex2, BASBLib QP-QP/sa_1981_02; K. Shimizu and E. Aiyoshi, "
            "IEEE Trans. Automat. Control 26(2):460-466, 1981"
        ),
    )


def muu_quy_2003_ex1() -> Spec:
    """MuuQuy2003Ex1: a bound on y active, F* = -27/13.

    Sources: BOLIB ``MuuQuy2003Ex1``; Muu & Quy, J. Global Optim.
    26(2):199-219, 2003, Example 1.

    min y1^2 + y2^2 + x^2 - 4x, 0 <= x <= 2; y solves
    min y1^2 + y2^2/2 + y1 y2 + (1 - 3x) y1 + (1 + x) y2 s.t.
    2y1 + y2 - 2x <= 1, y >= 0. For 1/3 <= x <= 2, y* = ((3x - 1)/2, 0)
    (bound multiplier y1 + 1 + x), so F = 13x^2/4 - 11x/2 + 1/4 and
    x* = 11/13, y* = (10/13, 0), F* = -27/13 = -2.076923, f* = -100/169.
    Published (best known): x = 0.8438, y = (0.7657, 0), F* = -2.08 (BOLIB
    paper) and -2.0769 (BOLIB v2), f* = -0.59 and -0.5868. The paper's
    values agree; the v2 f* is near f at the inexact published x (-0.5863),
    not at the optimum (-0.5917); the closed form is trusted.
    """
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=(mono(1, y1=2), mono(1, y2=2), mono(1, x=2), mono(-4, x=1)),
        f=(
            mono(1, y1=2),
            mono(0.5, y2=2),
            mono(1, y1=1, y2=1),
            mono(1, y1=1),
            mono(-3, x=1, y1=1),
            mono(1, y2=1),
            mono(1, x=1, y2=1),
        ),
        x_bounds=((0, 2),),
        y_bounds=((0, inf), (0, inf)),
        upper=(),
        lower=(("2y1 + y2 - 2x <= 1", {"x": -2, "y1": 2, "y2": 1}, -inf, 1),),
        x0=(2.0,),
        y0=(0.0, 0.0),
        start=BOLIB_START,
        x_star=(11 / 13,),
        y_star=(10 / 13, 0.0),
        F_star=-27 / 13,
        f_star=-100 / 169,
        published={"F": -2.08, "f": -0.59, "x": (0.8438,), "y": (0.7657, 0.0), "f_v2": -0.5868},
        active_lower=("y2 >= 0",),
        multipliers_lower={"y2 >= 0": 34 / 13},
        closed_form="x* = 11/13, y* = (10/13, 0)",
        notes="f_published -0.5868 (BOLIB v2) is near f at the inexact x = 0.8438 (-0.5863)",
        source=(
            "BOLIB MuuQuy2003Ex1; L. D. Muu and N. V. Quy, J. Global Optim. 26(2):199-219, "
            "2003, Ex. 1"
        ),
    )


def muu_quy_2003_ex2() -> Spec:
    """MuuQuy2003Ex2: a coupled linear inequality and two bounds active (LICQ holds).

    Sources: BOLIB ``MuuQuy2003Ex2``; Muu & Quy, J. Global Optim.
    26(2):199-219, 2003, Example 2.

    min y1^2 + y3^2 - y1 y3 - 4y2 - 7x1 + 4x2 s.t. x >= 0, x1 + x2 <= 1;
    y solves min y1^2 + y2^2/2 + y3^2/2 + y1 y2 + (1 - 3x1) y1 + (1 + x2) y2
    s.t. 2y1 + y2 - y3 + x1 - 2x2 + 2 <= 0, y >= 0. With y1 = y2 = 0 the
    coupled constraint fixes y3 = x1 - 2x2 + 2 (multiplier y3; bound
    multipliers 5 - x1 - 4x2 and 3 + x1 - x2), so F = y3^2 - 7x1 + 4x2; on
    x1 + x2 = 1 (multiplier 10/3) F = 9x1^2 - 11x1 + 4: x* = (11/18, 7/18),
    y* = (0, 0, 11/6), F* = 23/36 = 0.638889, f* = 121/72 = 1.680556.
    Published (best known): (0.609, 0.391, 0, 0, 1.828), F* = 0.64, f* = 1.67
    (BOLIB paper), F* = 0.6426, f* = 1.6708 (BOLIB v2). The refined F is
    lower, agrees with the paper's F to its digits, and is a verified local
    (and, on the region y1 = y2 = 0, global) minimum. The v2 values are F
    and f at the published point itself (y3 = 1.828 gives 0.6426 and
    1.6708); the paper's f* = 1.67 differs from the refined 1.6806.
    """
    return Spec(
        x=("x1", "x2"),
        y=("y1", "y2", "y3"),
        F=(
            mono(1, y1=2),
            mono(1, y3=2),
            mono(-1, y1=1, y3=1),
            mono(-4, y2=1),
            mono(-7, x1=1),
            mono(4, x2=1),
        ),
        f=(
            mono(1, y1=2),
            mono(0.5, y2=2),
            mono(0.5, y3=2),
            mono(1, y1=1, y2=1),
            mono(1, y1=1),
            mono(-3, x1=1, y1=1),
            mono(1, y2=1),
            mono(1, x2=1, y2=1),
        ),
        x_bounds=((0, inf), (0, inf)),
        y_bounds=((0, inf), (0, inf), (0, inf)),
        upper=(("x1 + x2 <= 1", {"x1": 1, "x2": 1}, -inf, 1),),
        lower=(
            (
                "2y1 + y2 - y3 + x1 - 2x2 <= -2",
                {"x1": 1, "x2": -2, "y1": 2, "y2": 1, "y3": -1},
                -inf,
                -2,
            ),
        ),
        x0=(0.0, 1.0),
        y0=(1.0, 1.0, 1.0),
        start=BOLIB_START,
        x_star=(11 / 18, 7 / 18),
        y_star=(0.0, 0.0, 11 / 6),
        F_star=23 / 36,
        f_star=121 / 72,
        published={
            "F": 0.64,
            "f": 1.67,
            "x": (0.609, 0.391),
            "y": (0.0, 0.0, 1.828),
            "F_v2": 0.6426,
            "f_v2": 1.6708,
        },
        active_lower=("2y1 + y2 - y3 + x1 - 2x2 <= -2", "y1 >= 0", "y2 >= 0"),
        multipliers_lower={
            "2y1 + y2 - y3 + x1 - 2x2 <= -2": 11 / 6,
            "y1 >= 0": 17 / 6,
            "y2 >= 0": 29 / 9,
        },
        active_upper=("x1 + x2 <= 1",),
        multipliers_upper={"x1 + x2 <= 1": 10 / 3},
        closed_form="x* = (11/18, 7/18), y* = (0, 0, 11/6)",
        notes="refined F = 23/36 is below BOLIB v2's 0.6426; f_published 1.67 / 1.6708 differ",
        source=(
            "BOLIB MuuQuy2003Ex2; L. D. Muu and N. V. Quy, J. Global Optim. 26(2):199-219, "
            "2003, Ex. 2"
        ),
    )


_C = 0.333  # Outrata's rounded coefficients, as in every published copy
_K = 1.333


def _outrata_polytope() -> tuple[Con, ...]:
    return (
        ("-0.333y1 + y2 <= 2", {"y1": -_C, "y2": 1}, -inf, 2),
        ("y1 - 0.333y2 <= 2", {"y1": 1, "y2": -_C}, -inf, 2),
    )


def outrata_1990_ex1a() -> Spec:
    """Outrata1990Ex1a: one linear inequality of the follower active, x free.

    Sources: BOLIB ``Outrata1990Ex1a``; Outrata, ZOR 34(4):255-277, 1990,
    Example 1 with r = 0.1.

    min (y1^2 + y2^2)/2 - 3y1 - 4y2 + 0.1 |x|^2 over x in R^2; y solves
    min y^T H y / 2 - x^T y, H = [[1, -2], [-2, 5]], s.t.
    -0.333y1 + y2 <= 2, y1 - 0.333y2 <= 2, y >= 0. With the second
    constraint active y* is affine in x and F a strictly convex quadratic
    (reduced Hessian eigenvalues 0.2 and 0.286); its minimizer is rational:
    x* = (7031973271605/6816791308642, 31675555277500/10225186962963)
    = (1.0315665, 3.0977972), y* = (2.5970479, 1.7929367), multiplier
    2.0203920, F* = -8.9172030, the global minimum over the pieces of the
    follower's active sets. Published (best known): x = (0.97, 3.14),
    y = (2.6, 1.8), F* = -8.92 (agrees), f* = -6.05; f at the refined
    point is -6.1370, the published f* is f at the published, inexact x
    (-6.053 with the follower solved there).
    """
    return Spec(
        x=("x1", "x2"),
        y=("y1", "y2"),
        F=(
            mono(0.5, y1=2),
            mono(0.5, y2=2),
            mono(-3, y1=1),
            mono(-4, y2=1),
            mono(0.1, x1=2),
            mono(0.1, x2=2),
        ),
        f=(
            mono(0.5, y1=2),
            mono(-2, y1=1, y2=1),
            mono(2.5, y2=2),
            mono(-1, x1=1, y1=1),
            mono(-1, x2=1, y2=1),
        ),
        x_bounds=None,
        y_bounds=((0, inf), (0, inf)),
        upper=(),
        lower=_outrata_polytope(),
        x0=(0.0, 0.0),
        y0=(3.0, 3.0),
        start=BOLIB_START,
        x_star=(7031973271605 / 6816791308642, 31675555277500 / 10225186962963),
        y_star=(17703533715605 / 6816791308642, 18333113055500 / 10225186962963),
        F_star=-364720269664445 / 40900747851852,
        f_star=-6.136982851131352,
        published={"F": -8.92, "f": -6.05, "x": (0.97, 3.14), "y": (2.6, 1.8)},
        active_lower=("y1 - 0.333y2 <= 2",),
        multipliers_lower={"y1 - 0.333y2 <= 2": 20658885445000 / 10225186962963},
        closed_form="rational: the follower's active set {y1 - 0.333y2 <= 2} makes F quadratic",
        notes="f_published -6.05 is not reproduced; the refined f is -6.1370",
        source="BOLIB Outrata1990Ex1a; J. V. Outrata, ZOR 34(4):255-277, 1990, Ex. 1 (r = 0.1)",
    )


def _outrata_1990_ex2(hessian_x: tuple[float, float]) -> tuple[Any, ...]:
    """f of Outrata's Example 2: (1 + a x) y1^2/2 + (1 + b x) y2^2/2 - (3 + 1.333x) y1 - x y2."""
    a, b = hessian_x
    terms = [mono(0.5, y1=2), mono(0.5, y2=2), mono(-3, y1=1), mono(-_K, x=1, y1=1)]
    terms += [mono(-1, x=1, y2=1)]
    if a:
        terms.append(mono(0.5 * a, x=1, y1=2))
    if b:
        terms.append(mono(0.5 * b, x=1, y2=2))
    return tuple(terms)


_F_OUTRATA = (sq(-3, 0.5, y1=1), sq(-4, 0.5, y2=1))
_OUTRATA_2_LOWER = (
    (
        "(0.1x - 0.333)y1 + y2 - x <= 0",
        (mono(0.1, x=1, y1=1), mono(-_C, y1=1), mono(1, y2=1), mono(-1, x=1)),
        -inf,
        0,
    ),
    (
        "y1 - (0.333 + 0.1x)y2 <= 2",
        (mono(1, y1=1), mono(-_C, y2=1), mono(-0.1, x=1, y2=1)),
        -inf,
        2,
    ),
)


def outrata_1990_ex2d() -> Spec:
    """Outrata1990Ex2d: two bilinear coupled inequalities active (a vertex response).

    Sources: BOLIB ``Outrata1990Ex2d``; Outrata, ZOR 34(4):255-277, 1990,
    Example 2 (variant d).

    min ((y1 - 3)^2 + (y2 - 4)^2)/2, x >= 0; y solves
    min |y|^2/2 - (3 + 1.333x) y1 - x y2 s.t. (0.1x - 0.333) y1 + y2 <= x,
    y1 - (0.333 + 0.1x) y2 <= 2, y >= 0. Both coupled constraints are active
    (multipliers 1.676 and 3.006): y*(x) is the vertex of two lines moving
    with x, and F(x) is smooth there. Refined: x* = 2.8563430469091373,
    y* = (3.8807456, 3.0401573), F* = 0.84850542, f* = -22.950557 (a root
    of the reduced stationarity, computed to 30 digits).
    Published (best known): x = 2.498, y = (3.632, 2.8), F* = 0.92,
    f* = -19.47. The published point is bilevel feasible (its follower
    response is about (3.632, 2.800)) but not stationary: F decreases
    towards x* and the refined F* is lower by 0.07; verified with SciPy
    follower solves, so the refined value is trusted.
    """
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=_F_OUTRATA,
        f=_outrata_1990_ex2((0.0, 0.0)),
        x_bounds=((0, inf),),
        y_bounds=((0, inf), (0, inf)),
        upper=(),
        lower=_OUTRATA_2_LOWER,
        x0=(0.0,),
        y0=(0.0, 0.0),
        start=BOLIB_START,
        x_star=(2.8563430469091373,),
        y_star=(3.8807455722305577, 3.0401572592554955),
        F_star=0.848505424981827,
        f_star=-22.95055684952251,
        published={"F": 0.92, "f": -19.47, "x": (2.498,), "y": (3.632, 2.8)},
        active_lower=("(0.1x - 0.333)y1 + y2 - x <= 0", "y1 - (0.333 + 0.1x)y2 <= 2"),
        multipliers_lower={
            "(0.1x - 0.333)y1 + y2 - x <= 0": 1.6758866497357252,
            "y1 - (0.333 + 0.1x)y2 <= 2": 3.0061392457232703,
        },
        notes="refined F* = 0.8485 is below the published best known 0.92 (a better point)",
        source="BOLIB Outrata1990Ex2d; J. V. Outrata, ZOR 34(4):255-277, 1990, Ex. 2",
    )


def outrata_1990_ex2e() -> Spec:
    """Outrata1990Ex2e: a bilinear coupled inequality active, x-dependent curvature.

    Sources: BOLIB ``Outrata1990Ex2e``; Outrata, ZOR 34(4):255-277, 1990,
    Example 2 (variant e).

    As `outrata_1990_ex2d` with follower objective
    (1 + x) y1^2/2 + y2^2/2 - (3 + 1.333x) y1 - x y2. Only the first
    coupled constraint is active (multiplier 0.1113). Refined:
    x* = 3.9985352158278, y* = (1.6650089, 3.8872235), F* = 0.89745982,
    f* = -14.928944. Published (best known): (3.999, 1.665, 3.887),
    F* = 0.90 (agrees), f* = -14.94; f at the published point is -14.931,
    so the published f carries an error in its last digit.
    """
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=_F_OUTRATA,
        f=_outrata_1990_ex2((1.0, 0.0)),
        x_bounds=((0, inf),),
        y_bounds=((0, inf), (0, inf)),
        upper=(),
        lower=_OUTRATA_2_LOWER,
        x0=(0.0,),
        y0=(0.0, 0.0),
        start=BOLIB_START,
        x_star=(3.9985352158278,),
        y_star=(1.6650089483069106, 3.8872235041666423),
        F_star=0.897459823056536,
        f_star=-14.92894370206455,
        published={"F": 0.90, "f": -14.94, "x": (3.999,), "y": (1.665, 3.887)},
        active_lower=("(0.1x - 0.333)y1 + y2 - x <= 0",),
        multipliers_lower={"(0.1x - 0.333)y1 + y2 - x <= 0": 0.11131171166115791},
        notes="f_published -14.94 differs from the refined -14.929 in the last printed digit",
        source="BOLIB Outrata1990Ex2e; J. V. Outrata, ZOR 34(4):255-277, 1990, Ex. 2",
    )


def _aiyoshi_shimizu(coupled_in_lower: bool) -> dict[str, Any]:
    coupled = ("x1 + x2 + y1 - 2y2 <= 40", {"x1": 1, "x2": 1, "y1": 1, "y2": -2}, -inf, 40)
    lower = (
        ("-x1 + 2y1 <= -10", {"x1": -1, "y1": 2}, -inf, -10),
        ("-x2 + 2y2 <= -10", {"x2": -1, "y2": 2}, -inf, -10),
    )
    return dict(
        x=("x1", "x2"),
        y=("y1", "y2"),
        F=(mono(2, x1=1), mono(2, x2=1), mono(-3, y1=1), mono(-3, y2=1), mono(-60)),
        f=(sq(20, y1=1, x1=-1), sq(20, y2=1, x2=-1)),
        x_bounds=((0, 50), (0, 50)),
        y_bounds=((-10, 20), (-10, 20)),
        upper=() if coupled_in_lower else (coupled,),
        lower=lower + ((coupled,) if coupled_in_lower else ()),
        x0=(10.0, 10.0),
        y0=(20.0, 20.0),
        start=BOLIB_START,
        x_star=(0.0, 0.0),
        y_star=(-10.0, -10.0),
        F_star=0.0,
        f_star=200.0,
        active_lower=("y1 >= -10", "y2 >= -10"),
        multipliers_lower={"y1 >= -10": 20.0, "y2 >= -10": 20.0},
        active_upper=("x1 >= 0", "x2 >= 0"),
        multipliers_upper={"x1 >= 0": 2.0, "x2 >= 0": 2.0},
        closed_form="x* = (0, 0), y* = (-10, -10)",
    )


def aiyoshi_shimizu_1984_ex2() -> Spec:
    """AiyoshiShimizu1984Ex2: bounds on y and on x active; a leader constraint in (x, y).

    Sources: BOLIB ``AiyoshiShimizu1984Ex2``, BASBLib ``LP-QP/as_1984_01``;
    Aiyoshi & Shimizu, IEEE Trans. Automat. Control 29(12):1111-1114, 1984,
    Example 2.

    min 2x1 + 2x2 - 3y1 - 3y2 - 60 s.t. x1 + x2 + y1 - 2y2 <= 40,
    0 <= x <= 50; y solves min (y1 - x1 + 20)^2 + (y2 - x2 + 20)^2 s.t.
    2y_i - x_i <= -10, -10 <= y_i <= 20. For x_i < 10, y_i* = -10 (the
    bound, multiplier 2(10 - x_i)), so F = 2x1 + 2x2 and the
    solution is the corner x* = (0, 0), y* = (-10, -10), F* = 0, f* = 200
    (leader bound multipliers 2). BASBLib lists F* = 0 at this point and at
    (0, 30, -10, 10); BOLIB lists F* = 5, f* = 0 at (25, 30, 5, 10), which
    is not optimal (F = 0 here is lower). At both other points a follower
    constraint is weakly active (2y2 - x2 <= -10 meets y2 = x2 - 20 at
    x2 = 30), so the nondegenerate minimizer (0, 0, -10, -10) is used.
    """
    return Spec(
        **_aiyoshi_shimizu(coupled_in_lower=False),
        published={"F": 5, "f": 0, "x": (25.0, 30.0), "y": (5.0, 10.0), "F_BASBLib": 0.0},
        notes=(
            "BOLIB's F* = 5 at (25, 30, 5, 10) is not optimal; BASBLib's F* = 0 agrees; "
            "its other minimizer (0, 30, -10, 10) has y2 <= (x2 - 10)/2 weakly active"
        ),
        source=(
            "BOLIB AiyoshiShimizu1984Ex2, BASBLib LP-QP/as_1984_01; E. Aiyoshi and K. Shimizu, "
            "IEEE Trans. Automat. Control 29(12):1111-1114, 1984, Ex. 2"
        ),
    )


def floudas_etal_2013() -> Spec:
    """FloudasEtal2013: as AiyoshiShimizu1984Ex2 with the coupled constraint in the lower level.

    Sources: BOLIB ``FloudasEtal2013``; C. A. Floudas et al., Handbook of
    Test Problems in Local and Global Optimization, Kluwer 1999 (BOLIB cites
    the 2013 reprint); the problem of Aiyoshi & Shimizu (1984) with
    x1 + x2 + y1 - 2y2 <= 40 moved to the follower.

    Same data and solution as `aiyoshi_shimizu_1984_ex2`: x* = (0, 0),
    y* = (-10, -10), F* = 0, f* = 200, matching BOLIB's F* = 0, f* = 200.
    The coupled constraint is inactive at the solution (30 - 40 < 0).
    """
    return Spec(
        **_aiyoshi_shimizu(coupled_in_lower=True),
        published={"F": 0, "f": 200, "x": (0.0, 0.0), "y": (-10.0, -10.0)},
        source=(
            "BOLIB FloudasEtal2013; C. A. Floudas et al., Handbook of Test Problems in Local "
            "and Global Optimization (from Aiyoshi and Shimizu 1984)"
        ),
    )


def lampariello_sagratella_2017_ex23() -> Spec:
    """LamparielloSagratella2017Ex23: a bound on y active beside a cubic constraint; x at a bound.

    Sources: BOLIB ``LamparielloSagratella2017Ex23``; Lampariello &
    Sagratella, Numerically tractable optimistic bilevel problems,
    Optimization Online, 2017, Example 2.3.

    min x, -1 <= x <= 1; y solves min (x - y1)^2 + (y2 + 1)^2 s.t.
    y1^3 - y2 <= 0, y2 >= 0. The feasible set {y2 >= max(0, y1)^3} is convex,
    the objective strongly convex. For x <= 0, y* = (x, 0) (bound
    multiplier 2, the cubic constraint inactive); x* = -1 (leader bound
    multiplier 1), y* = (-1, 0), F* = -1, f* = 1.
    """
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=(mono(1, x=1),),
        f=(sq(x=1, y1=-1), sq(1, y2=1)),
        x_bounds=((-1, 1),),
        y_bounds=((-inf, inf), (0, inf)),
        upper=(),
        lower=(("y1^3 - y2 <= 0", (mono(1, y1=3), mono(-1, y2=1)), -inf, 0),),
        x0=(1.0,),
        y0=(1.0, 1.0),
        start=BOLIB_START,
        x_star=(-1.0,),
        y_star=(-1.0, 0.0),
        F_star=-1.0,
        f_star=1.0,
        published={"F": -1, "f": 1, "x": (-1.0,), "y": (-1.0, 0.0)},
        active_lower=("y2 >= 0",),
        multipliers_lower={"y2 >= 0": 2.0},
        active_upper=("x >= -1",),
        multipliers_upper={"x >= -1": 1.0},
        closed_form="x* = -1, y* = (-1, 0)",
        source=(
            "BOLIB LamparielloSagratella2017Ex23; L. Lampariello and S. Sagratella, "
            "Numerically tractable optimistic bilevel problems, Optimization Online, 2017"
        ),
    )


def yezza_1996_ex41() -> Spec:
    """Yezza1996Ex41 in its original form: an equality in the lower level (PSD Hessian).

    Sources: BOLIB ``Yezza1996Ex41`` (which eliminates y2 = x - y1);
    Floudas et al. handbook problem 9.3.5 (MacMPEC ``ex9.2.4``); Yezza,
    J. Optim. Theory Appl. 89(1):189-219, 1996, Example 4.1.

    min ((y1 - 2)^2 + (y2 - 2)^2)/2, x >= 0; y solves min y1^2/2 + y2 s.t.
    y1 + y2 = x, y >= 0. The follower's Hessian diag(1, 0) is only positive
    semidefinite; on the null space of the equality it is 1 > 0, so the
    response is unique (second-order sufficiency, DESIGN section 7), but the
    problem is not strongly convex in y: ``data["strongly_convex"]`` is
    False. For x >= 1, y* = (1, x - 1) (equality multiplier -1, bounds
    inactive) and F = (1 + (x - 3)^2)/2: x* = 3, y* = (1, 2), F* = 0.5,
    f* = 2.5, as published. BOLIB's start (-1, -1) belongs to the reduced
    form and is infeasible (x < 0); x0 = 1, y0 = (1, 0) is stated here.
    """
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=(sq(-2, 0.5, y1=1), sq(-2, 0.5, y2=1)),
        f=(mono(0.5, y1=2), mono(1, y2=1)),
        x_bounds=((0, inf),),
        y_bounds=((0, inf), (0, inf)),
        upper=(),
        lower=(("y1 + y2 - x = 0", {"x": -1, "y1": 1, "y2": 1}, 0, 0),),
        x0=(1.0,),
        y0=(1.0, 0.0),
        start="stated: BOLIB's (-1, -1) is for the reduced form and infeasible",
        x_star=(3.0,),
        y_star=(1.0, 2.0),
        F_star=0.5,
        f_star=2.5,
        published={"F": 0.5, "f": 2.5, "x": (3.0,), "y": (1.0, 2.0)},
        active_lower=("y1 + y2 - x = 0",),
        multipliers_lower={"y1 + y2 - x = 0": -1.0},
        closed_form="x* = 3, y* = (1, 2)",
        notes=(
            "lower-level Hessian only positive semidefinite (positive definite on the "
            "equality's null space)"
        ),
        strongly_convex=False,
        source=(
            "BOLIB Yezza1996Ex41 (reduced form), MacMPEC ex9.2.4 (original form); A. Yezza, "
            "J. Optim. Theory Appl. 89(1):189-219, 1996, Ex. 4.1"
        ),
    )


_F93 = (
    mono(0.5, y1=2),
    mono(0.1, x=1, y1=2),
    mono(0.5, y2=2),
    mono(0.05, x=1, y2=2),
    mono(-3, y1=1),
    mono(-_K, x=1, y1=1),
    mono(-1, x=1, y2=1),
)


def outrata_1993_ex31() -> Spec:
    """Outrata1993Ex31: WEAKLY ACTIVE. Minimum at a kink where a second constraint activates.

    Sources: BOLIB ``Outrata1993Ex31``; Outrata, J. Optim. Theory Appl.
    76(2):305-320, 1993, Example 3.1.

    min ((y1 - 3)^2 + (y2 - 4)^2)/2, x >= 0; y solves
    min (1 + 0.2x) y1^2/2 + (1 + 0.1x) y2^2/2 - (3 + 1.333x) y1 - x y2 s.t.
    (0.1x - 0.333) y1 + y2 + 0.1x <= 2, y1 - (0.333 + 0.1x) y2 + 0.1x <= 2,
    y >= 0. The second constraint is active for x near the solution; the
    first becomes active at x* = 1.909517968894043, where F has a kink (its
    slope jumps from -1.38 to +0.73), so the minimum sits there with the
    first constraint weakly active (zero multiplier): strict
    complementarity fails. x* solves the follower's KKT system with both
    constraints active and the first multiplier zero. F* = 1.5628738,
    f* = -11.682684. Published: (1.90910, 2.97836, 2.23182), F* = 1.56,
    f* = -11.67 (paper) / -11.68 (v2); the published x is 4e-4 from the kink.
    The BOLIB paper prints 1.33x in f; its code and v2 use 1.333x (used here).
    """
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=_F_OUTRATA,
        f=_F93,
        x_bounds=((0, inf),),
        y_bounds=((0, inf), (0, inf)),
        upper=(),
        lower=(
            (
                "(0.1x - 0.333)y1 + y2 + 0.1x <= 2",
                (mono(0.1, x=1, y1=1), mono(-_C, y1=1), mono(1, y2=1), mono(0.1, x=1)),
                -inf,
                2,
            ),
            (
                "y1 - (0.333 + 0.1x)y2 + 0.1x <= 2",
                (mono(1, y1=1), mono(-_C, y2=1), mono(-0.1, x=1, y2=1), mono(0.1, x=1)),
                -inf,
                2,
            ),
        ),
        x0=(0.0,),
        y0=(0.0, 0.0),
        start=BOLIB_START,
        x_star=(1.909517968894043,),
        y_star=(2.9785878652360678, 2.2321512571744044),
        F_star=1.562873828512594,
        f_star=-11.682684059306851,
        published={"F": 1.56, "f": -11.67, "x": (1.90910,), "y": (2.97836, 2.23182)},
        active_lower=("(0.1x - 0.333)y1 + y2 + 0.1x <= 2", "y1 - (0.333 + 0.1x)y2 + 0.1x <= 2"),
        multipliers_lower={
            "(0.1x - 0.333)y1 + y2 + 0.1x <= 2": 0.0,
            "y1 - (0.333 + 0.1x)y2 + 0.1x <= 2": 1.4292661771800879,
        },
        weakly_active=("(0.1x - 0.333)y1 + y2 + 0.1x <= 2",),
        notes=(
            "weakly active: the optimum is a kink of F; x_published is 4e-4 from it; "
            "f_published -11.67 (paper; -11.68 in v2) vs the refined -11.6827"
        ),
        source="BOLIB Outrata1993Ex31; J. V. Outrata, J. Optim. Theory Appl. 76(2):305-320, 1993",
    )


def outrata_1994_ex31() -> Spec:
    """Outrata1994Ex31: WEAKLY ACTIVE. A disk constraint active and a linear one weakly active.

    Sources: BOLIB ``Outrata1994Ex31`` (``Outrata1993Ex32`` without the
    bound x <= 10); Outrata, SIAM J. Optim. 4(2):340-357, 1994, Example 3.1.

    The follower objective of `outrata_1993_ex31`, s.t.
    -0.333y1 + y2 + 0.1x <= 1, y1^2 + y2^2 - 0.1x <= 9, y >= 0; leader
    0 <= x <= 10. The disk constraint is active (multiplier 0.662); the
    linear one activates at x* = 4.060406427902153, a kink of F with zero
    multiplier: strict complementarity fails there. F* = 3.2077000,
    f* = -20.529606. Published: (4.0604, 2.6822, 1.4871), F* = 3.21,
    f* = -20.53: agrees to every printed digit.
    """
    return Spec(
        x=("x",),
        y=("y1", "y2"),
        F=_F_OUTRATA,
        f=_F93,
        x_bounds=((0, 10),),
        y_bounds=((0, inf), (0, inf)),
        upper=(),
        lower=(
            ("-0.333y1 + y2 + 0.1x <= 1", {"x": 0.1, "y1": -_C, "y2": 1}, -inf, 1),
            (
                "y1^2 + y2^2 - 0.1x <= 9",
                (mono(1, y1=2), mono(1, y2=2), mono(-0.1, x=1)),
                -inf,
                9,
            ),
        ),
        x0=(0.0,),
        y0=(0.0, 0.0),
        start=BOLIB_START,
        x_star=(4.060406427902153,),
        y_star=(2.6822444295831525, 1.4871467522609745),
        F_star=3.207700023601752,
        f_star=-20.529605625879185,
        published={"F": 3.21, "f": -20.53, "x": (4.0604,), "y": (2.6822, 1.4871)},
        active_lower=("-0.333y1 + y2 + 0.1x <= 1", "y1^2 + y2^2 - 0.1x <= 9"),
        multipliers_lower={
            "-0.333y1 + y2 + 0.1x <= 1": 0.0,
            "y1^2 + y2^2 - 0.1x <= 9": 0.662146371713336,
        },
        weakly_active=("-0.333y1 + y2 + 0.1x <= 1",),
        notes="weakly active: the optimum is a kink of F",
        source="BOLIB Outrata1994Ex31; J. V. Outrata, SIAM J. Optim. 4(2):340-357, 1994, Ex. 3.1",
    )


def de_silva_1978() -> Spec:
    """DeSilva1978: WEAKLY ACTIVE. Both lower bounds of y meet the unconstrained response.

    Sources: BOLIB ``DeSilva1978``, BASBLib ``QP-QP/d_1978_01``; A. H. De
    Silva, PhD thesis, George Washington University, 1978.

    min x1^2 - 2x1 + x2^2 - 2x2 + y1^2 + y2^2; y solves
    min (y1 - x1)^2 + (y2 - x2)^2 s.t. 0.5 <= y <= 1.5, so y* = clip(x,
    0.5, 1.5). Per coordinate F = (x - 1)^2 - 1 + 0.25 for x < 0.5 (slope -1
    at 0.5) and 2x^2 - 2x for 0.5 <= x <= 1.5 (slope 0 at 0.5): the minimum
    is x* = y* = (0.5, 0.5), F* = -1, f* = 0, where each bound y_i >= 0.5 is
    weakly active (zero multiplier). BASBLib also bounds 0 <= x <= 10
    (inactive); BOLIB's unbounded leader is used.
    """
    return Spec(
        x=("x1", "x2"),
        y=("y1", "y2"),
        F=(
            mono(1, x1=2),
            mono(-2, x1=1),
            mono(1, x2=2),
            mono(-2, x2=1),
            mono(1, y1=2),
            mono(1, y2=2),
        ),
        f=(sq(y1=1, x1=-1), sq(y2=1, x2=-1)),
        x_bounds=None,
        y_bounds=((0.5, 1.5), (0.5, 1.5)),
        upper=(),
        lower=(),
        x0=(0.0, 0.0),
        y0=(1.0, 1.0),
        start=BOLIB_START,
        x_star=(0.5, 0.5),
        y_star=(0.5, 0.5),
        F_star=-1.0,
        f_star=0.0,
        published={"F": -1, "f": 0, "x": (0.5, 0.5), "y": (0.5, 0.5)},
        active_lower=("y1 >= 0.5", "y2 >= 0.5"),
        multipliers_lower={"y1 >= 0.5": 0.0, "y2 >= 0.5": 0.0},
        weakly_active=("y1 >= 0.5", "y2 >= 0.5"),
        closed_form="x* = y* = (0.5, 0.5)",
        notes="weakly active: both bounds meet the unconstrained response y = x at the optimum",
        source=(
            "BOLIB DeSilva1978, BASBLib QP-QP/d_1978_01; A. H. De Silva, PhD thesis, "
            "George Washington University, 1978"
        ),
    )


PROBLEMS: dict[str, Callable[[], Spec]] = {
    "ClarkWesterberg1990a": clark_westerberg_1990a,
    "Colson2002BIPA3": colson_2002_bipa3,
    "Colson2002BIPA5": colson_2002_bipa5,
    "b_1998_05": bard_1998_05,
    "b_1998_02": bard_1998_02,
    "ShimizuAiyoshi1981Ex2": shimizu_aiyoshi_1981_ex2,
    "MuuQuy2003Ex1": muu_quy_2003_ex1,
    "MuuQuy2003Ex2": muu_quy_2003_ex2,
    "Outrata1990Ex1a": outrata_1990_ex1a,
    "Outrata1990Ex2d": outrata_1990_ex2d,
    "Outrata1990Ex2e": outrata_1990_ex2e,
    "AiyoshiShimizu1984Ex2": aiyoshi_shimizu_1984_ex2,
    "FloudasEtal2013": floudas_etal_2013,
    "LamparielloSagratella2017Ex23": lampariello_sagratella_2017_ex23,
    "Yezza1996Ex41": yezza_1996_ex41,
    "Outrata1993Ex31": outrata_1993_ex31,
    "Outrata1994Ex31": outrata_1994_ex31,
    "DeSilva1978": de_silva_1978,
}
