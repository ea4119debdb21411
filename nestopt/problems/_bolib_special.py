"""`bolib` problems with an equality or a weakly active constraint at the solution (part 4 of 4)."""

from __future__ import annotations

from ._bolib_nlp import _F_OUTRATA
from ._bolib_spec import _C, _K, BOLIB_START, Spec, inf
from ._terms import monomial as mono
from ._terms import square as sq


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
