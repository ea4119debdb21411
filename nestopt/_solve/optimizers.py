"""Level-1 optimizers: projected gradient, Adam and projected L-BFGS.

Each optimizer is a frozen object of settings; its state is explicit:
``init(point)`` makes it and ``update(xp, state, point, evaluate, project,
box)`` returns the next point and state. The outer loop in ``_solve`` owns
stopping, history and callbacks; GD and L-BFGS share one backtracking search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._backend.host import max_abs
from .._backend.names import machine_eps
from .._errors import NestoptError
from .._methods.options import check_count, check_number

__all__ = [
    "GradientDescent",
    "Adam",
    "LBFGS",
    "Optimizer",
    "Point",
    "LineSearchFailed",
    "OPTIMIZERS",
]

OPTIMIZERS = ("lbfgs", "gd", "adam")


@dataclass
class Point:
    """An evaluated level-1 point: ``x``, ``fun`` (float or None), ``grad``, engine state."""

    x: Any
    fun: float | None
    grad: Any
    state: Any = None


class LineSearchFailed(Exception):
    """Internal: no step along the search direction was accepted."""


Evaluate = Callable[[Any], Point]
Project = Callable[[Any], Any]


@runtime_checkable
class Optimizer(Protocol):
    """What `solve` needs of a level-1 optimizer; nestopt's three and a user's own alike.

    ``init(point)`` returns the optimizer's state at the first point;
    ``update(xp, state, point, evaluate, project, box)`` returns the next
    `Point` and state, where ``evaluate(x)`` solves the lower levels at ``x``
    and returns its `Point` (``x``, ``fun``, ``grad``), ``project`` maps a
    trial onto the feasible set, and ``box`` is ``(lower, upper)`` or None.
    The outer loop owns stopping, history and callbacks.
    """

    name: str

    def init(self, point: Point) -> Any: ...

    def update(
        self,
        xp: Any,
        state: Any,
        point: Point,
        evaluate: Evaluate,
        project: Project,
        box: tuple[Any, Any] | None = None,
    ) -> tuple[Point, Any]: ...


def backtrack(
    xp: Any, point: Point, trial_x: Callable[[float], Any], t: float, evaluate: Evaluate
) -> tuple[Point, float]:
    """Halve ``t`` until ``trial_x(t)`` passes Armijo; the accepted point and its ``t``.

    The Armijo test allows a slack of a few rounding errors of ``f``: near a
    minimum the decrease a good step brings falls below the rounding of
    ``f``, and without the slack the search would stall before the gradient
    tolerance is met. A lower level failing at a trial rejects that trial;
    if every trial failed so, that failure is raised.
    """
    eps = machine_eps(xp, point.x.dtype)
    fun = point.fun
    assert fun is not None, "backtracking runs only when level 1 has a value"
    error: NestoptError | None = None
    evaluated = False
    for _ in range(40):
        x_new = trial_x(t)
        try:
            new = evaluate(x_new)
        except NestoptError as exc:
            if exc.status is None:
                raise
            error = exc
            t *= 0.5
            continue
        evaluated = True
        slope = float(point.grad @ (x_new - point.x))
        assert new.fun is not None, "a point is evaluated with its value when level 1 has one"
        if new.fun <= fun + 1e-4 * slope + 10.0 * eps * abs(fun):
            return new, t
        t *= 0.5
    if not evaluated and error is not None:
        raise error
    raise LineSearchFailed()


@dataclass(frozen=True)
class GradientDescent:
    """Projected gradient steps: backtracking (Armijo) when level 1 has a ``value``.

    Parameters
    ----------
    step : float, default 1.0
        Initial (with a value) or fixed (without) step length.
    """

    step: float = 1.0

    def __post_init__(self) -> None:
        check_number("step", self.step, strict=True)

    name = "gd"

    def init(self, point: Point) -> float:
        return 0.0  # the last accepted step length (0: none yet)

    def update(
        self,
        xp: Any,
        state: float,
        point: Point,
        evaluate: Evaluate,
        project: Project,
        box: tuple[Any, Any] | None = None,
    ) -> tuple[Point, float]:
        if point.fun is None:
            return evaluate(project(point.x - self.step * point.grad)), state
        t0 = state * 2.0 if state else self.step
        new, t = backtrack(xp, point, lambda t: project(point.x - t * point.grad), t0, evaluate)
        return new, t


@dataclass(frozen=True)
class Adam:
    """Adam on the hypergradient (Kingma & Ba), projected after each step.

    Its step length is set by ``lr``: a small step is never a sign of
    convergence, so only the gradient tolerance ends an Adam run successfully.
    """

    lr: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check_number("lr", self.lr, strict=True)
        for name in ("beta1", "beta2"):
            value = check_number(name, getattr(self, name))
            if not value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        check_number("eps", self.eps, strict=True)

    name = "adam"

    def init(self, point: Point) -> tuple[Any, Any, int]:
        xp_zeros = point.grad * 0.0
        return xp_zeros, xp_zeros, 0

    def update(
        self,
        xp: Any,
        state: tuple[Any, Any, int],
        point: Point,
        evaluate: Evaluate,
        project: Project,
        box: tuple[Any, Any] | None = None,
    ) -> tuple[Point, tuple[Any, Any, int]]:
        m, v, k = state
        g = point.grad
        k += 1
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1**k)
        v_hat = v / (1 - self.beta2**k)
        new = evaluate(project(point.x - self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)))
        return new, (m, v, k)


@dataclass
class _Pairs:
    """L-BFGS curvature pairs ``(s, y, 1 / s.y)``, newest last."""

    items: list[tuple[Any, Any, float]] = field(default_factory=list)


@dataclass(frozen=True)
class LBFGS:
    """Limited-memory BFGS; on a box only the free variables move (projected arc search).

    Parameters
    ----------
    memory : int, default 10
        Curvature pairs kept.
    """

    memory: int = 10

    def __post_init__(self) -> None:
        check_count("memory", self.memory, minimum=1)

    name = "lbfgs"

    def init(self, point: Point) -> _Pairs:
        if point.fun is None:
            raise ValueError(
                "optimizer='lbfgs' needs level 1's value for its line search; pass "
                "Level(..., value=...) or use optimizer='gd' or 'adam'"
            )
        return _Pairs()

    def update(
        self,
        xp: Any,
        state: _Pairs,
        point: Point,
        evaluate: Evaluate,
        project: Project,
        box: tuple[Any, Any] | None = None,
    ) -> tuple[Point, _Pairs]:
        pairs = list(state.items)
        if box is None:
            g = point.grad
            d = -_two_loop(xp, pairs, g)
        else:
            free = _free(xp, point, box)
            g = xp.where(free, point.grad, xp.zeros_like(point.grad))
            d = -_two_loop(xp, pairs, g)
            d = xp.where(free, d, xp.zeros_like(d))
        if not float(d @ g) < 0.0:
            pairs = []
            d = -g
        # First step (no curvature yet): a length of max(|x|, 1) whatever the size of the
        # gradient, so that scaling F_1 does not change the run; the backtracking search
        # shortens a step that is too long, while one too short would stall.
        if pairs:
            t = 1.0
        else:
            size = max_abs(xp, point.x)
            t = max(size, 1.0) / max(max_abs(xp, d), 1e-300)
        try:
            new, _ = backtrack(xp, point, lambda t: project(point.x + t * d), t, evaluate)
        except LineSearchFailed:
            if not pairs:
                raise
            # The curvature pairs gave a poor direction (e.g. bent by a projection):
            # forget them and search along the projected gradient once more.
            return self.update(xp, _Pairs(), point, evaluate, project, box)
        return new, _Pairs(_remember(xp, pairs, point, new, self.memory))


def _free(xp: Any, point: Point, box: tuple[Any, Any]) -> Any:
    """The variables that the box lets move along the negative gradient."""
    lower, upper = box
    free = ~((point.x <= lower) & (point.grad > 0))
    return free & ~((point.x >= upper) & (point.grad < 0))


def _two_loop(xp: Any, pairs: list[tuple[Any, Any, float]], g: Any) -> Any:
    q = g
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        alphas.append(a)
        q = q - a * y
    if pairs:
        s, y, _ = pairs[-1]
        q = q * (float(s @ y) / float(y @ y))
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * float(y @ q)
        q = q + (a - b) * s
    return q


def _remember(
    xp: Any, pairs: list[tuple[Any, Any, float]], old: Point, new: Point, memory: int
) -> list[tuple[Any, Any, float]]:
    s = new.x - old.x
    y = new.grad - old.grad
    sy = float(s @ y)
    if sy > 1e-10 * math.sqrt(float(s @ s) * float(y @ y)):
        pairs = [*pairs, (s, y, 1.0 / sy)][-memory:]
    return pairs


def make_optimizer(optimizer: Any, options: dict[str, Any], has_value: bool, project: bool) -> Any:
    """The optimizer object for a name (with its shorthand options) or an object."""
    if isinstance(optimizer, (GradientDescent, Adam, LBFGS)) or (
        optimizer is not None
        and not isinstance(optimizer, str)
        and isinstance(optimizer, Optimizer)
    ):  # (a runtime protocol check costs tens of microseconds: not for None or a name)
        return optimizer
    if optimizer is None:
        optimizer = "lbfgs" if has_value and not project else "gd"
    given = {name: value for name, value in options.items() if value is not None}
    if optimizer == "gd":
        return GradientDescent(**_pick(given, ("step",)))
    if optimizer == "adam":
        return Adam(**_pick(given, ("lr", "beta1", "beta2")))
    if optimizer == "lbfgs":
        return LBFGS(**_pick(given, ("memory",)))
    raise ValueError(
        f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}, newton, or pass "
        "an optimizer object (nestopt.LBFGS(...), nestopt.GradientDescent(...), "
        "nestopt.Adam(...), or your own with name, init and update: see docs/solving.md)"
    )


def _pick(options: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: options[name] for name in names if name in options}
