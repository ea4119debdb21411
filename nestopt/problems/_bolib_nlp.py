"""`bolib` problems with nonlinear lower-level constraints and coupled rows (part 3 of 4)."""

from __future__ import annotations

from typing import Any

from ._bolib_spec import _C, _K, BOLIB_START, Con, Spec, inf
from ._terms import monomial as mono
from ._terms import square as sq


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
