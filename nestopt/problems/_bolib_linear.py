"""`bolib` problems with quadratic levels and linear constraints (part 2 of 4)."""

from __future__ import annotations

from ._bolib_spec import BOLIB_START, Spec, inf
from ._terms import monomial as mono
from ._terms import square as sq


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
