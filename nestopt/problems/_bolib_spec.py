"""How a `bolib` problem is written down: `Spec`, constraint tuples, shared constants.

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
from dataclasses import dataclass, field
from typing import Any

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

_C = 0.333  # Outrata's rounded coefficients, as in every published copy
_K = 1.333
