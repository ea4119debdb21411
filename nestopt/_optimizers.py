"""Level-1 steps: projected gradient, Adam and projected L-BFGS.

Each optimizer is a small object with ``step(state) -> state``; the outer
loop in ``_solve.py`` owns stopping, history and callbacks. A state is
``(x, fun, grad)`` with ``fun`` a float (or ``None`` without a ``value``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from array_api_compat import device

from ._errors import NestoptError

__all__ = ["OPTIMIZERS", "Point", "make_optimizer", "LineSearchFailed"]

OPTIMIZERS = ("lbfgs", "gd", "adam")


@dataclass
class Point:
    """An evaluated level-1 point: ``x``, ``fun`` (float or None), ``grad``."""

    x: Any
    fun: float | None
    grad: Any
    extra: Any = None


class LineSearchFailed(Exception):
    """Internal: no step along the search direction was accepted."""


Evaluate = Callable[[Any], Point]
Project = Callable[[Any], Any]


def _accept(old: Point, new: Point, slope: float, eps: float) -> bool:
    """Armijo, with a slack of a few rounding errors of ``f``.

    Near a minimum the decrease a good step brings falls below the rounding
    of ``f``; without the slack the search would reject it and stall before
    the gradient tolerance is met.
    """
    return new.fun <= old.fun + 1e-4 * slope + 10.0 * eps * abs(old.fun)


@dataclass
class GradientDescent:
    """Projected gradient steps; backtracking (Armijo) when level 1 has a value."""

    step: float = 1.0
    _t: float = field(default=0.0, init=False)

    def __call__(self, xp: Any, point: Point, evaluate: Evaluate, project: Project) -> Point:
        if point.fun is None:
            return evaluate(project(point.x - self.step * point.grad))
        eps = float(xp.finfo(point.x.dtype).eps)
        t = self._t * 2.0 if self._t else self.step
        trials = _Trials(evaluate)
        for _ in range(40):
            x_new = project(point.x - t * point.grad)
            new = trials(x_new)
            if new is not None:
                slope = float(xp.sum(point.grad * (x_new - point.x)))
                if _accept(point, new, slope, eps):
                    self._t = t
                    return new
            t *= 0.5
        raise trials.fail()


@dataclass
class Adam:
    """Adam on the hypergradient (Kingma & Ba), projected after each step."""

    lr: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    _m: Any = field(default=None, init=False)
    _v: Any = field(default=None, init=False)
    _k: int = field(default=0, init=False)

    def __call__(self, xp: Any, point: Point, evaluate: Evaluate, project: Project) -> Point:
        g = point.grad
        if self._m is None:
            self._m = xp.zeros_like(g)
            self._v = xp.zeros_like(g)
        self._k += 1
        self._m = self.beta1 * self._m + (1 - self.beta1) * g
        self._v = self.beta2 * self._v + (1 - self.beta2) * g * g
        m_hat = self._m / (1 - self.beta1**self._k)
        v_hat = self._v / (1 - self.beta2**self._k)
        return evaluate(project(point.x - self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)))


@dataclass
class LBFGS:
    """Limited-memory BFGS; on a box only the free variables move (projected arc search)."""

    memory: int = 10
    lower: Any = None
    upper: Any = None
    _pairs: list[tuple[Any, Any, float]] = field(default_factory=list, init=False)

    def __call__(self, xp: Any, point: Point, evaluate: Evaluate, project: Project) -> Point:
        if point.fun is None:
            raise ValueError(
                "optimizer='lbfgs' needs level 1's value for its line search; pass "
                "Level(..., value=...) or use optimizer='gd' or 'adam'"
            )
        free = self._free(xp, point)
        g = xp.where(free, point.grad, xp.zeros_like(point.grad))
        d = -self._two_loop(xp, g)
        d = xp.where(free, d, xp.zeros_like(d))
        if not float(xp.sum(d * g)) < 0.0:
            self._pairs.clear()
            d = -g
        eps = float(xp.finfo(point.x.dtype).eps)
        t = 1.0
        if not self._pairs:
            # First step: scale so that it moves at most about one unit.
            t = min(1.0, 1.0 / max(float(xp.max(xp.abs(d))), 1e-300))
        trials = _Trials(evaluate)
        for _ in range(40):
            x_new = project(point.x + t * d)
            new = trials(x_new)
            if new is not None:
                slope = float(xp.sum(point.grad * (x_new - point.x)))
                if _accept(point, new, slope, eps):
                    self._remember(xp, point, new)
                    return new
            t *= 0.5
        if self._pairs:
            # The curvature pairs gave a poor direction (e.g. bent by a projection):
            # forget them and search along the projected gradient once more.
            self._pairs.clear()
            return self(xp, point, evaluate, project)
        raise trials.fail()

    def _free(self, xp: Any, point: Point) -> Any:
        free = xp.ones(point.x.shape, dtype=xp.bool, device=device(point.x))
        if self.lower is not None:
            free = free & ~((point.x <= self.lower) & (point.grad > 0))
        if self.upper is not None:
            free = free & ~((point.x >= self.upper) & (point.grad < 0))
        return free

    def _two_loop(self, xp: Any, g: Any) -> Any:
        q = g
        alphas = []
        for s, y, rho in reversed(self._pairs):
            a = rho * float(xp.sum(s * q))
            alphas.append(a)
            q = q - a * y
        if self._pairs:
            s, y, _ = self._pairs[-1]
            q = q * (float(xp.sum(s * y)) / float(xp.sum(y * y)))
        for (s, y, rho), a in zip(self._pairs, reversed(alphas)):
            b = rho * float(xp.sum(y * q))
            q = q + (a - b) * s
        return q

    def _remember(self, xp: Any, old: Point, new: Point) -> None:
        s = new.x - old.x
        y = new.grad - old.grad
        sy = float(xp.sum(s * y))
        if sy > 1e-10 * float(xp.linalg.vector_norm(s)) * float(xp.linalg.vector_norm(y)):
            self._pairs.append((s, y, 1.0 / sy))
            if len(self._pairs) > self.memory:
                self._pairs.pop(0)


class _Trials:
    """Evaluate trial points; a lower level failing at one rejects that trial.

    If every trial failed, the last failure is what the caller should see.
    """

    def __init__(self, evaluate: Evaluate) -> None:
        self.evaluate = evaluate
        self.error: NestoptError | None = None
        self.any_evaluated = False

    def __call__(self, x: Any) -> Point | None:
        try:
            point = self.evaluate(x)
        except NestoptError as exc:
            if exc.status is None:
                raise
            self.error = exc
            return None
        self.any_evaluated = True
        return point

    def fail(self) -> Exception:
        if not self.any_evaluated and self.error is not None:
            return self.error
        return LineSearchFailed()


def make_optimizer(name: str, options: dict[str, Any], lower: Any, upper: Any) -> Any:
    if name == "gd":
        return GradientDescent(step=float(options.get("step", 1.0)))
    if name == "adam":
        return Adam(
            lr=float(options.get("lr", 1e-2)),
            beta1=float(options.get("beta1", 0.9)),
            beta2=float(options.get("beta2", 0.999)),
        )
    return LBFGS(memory=int(options.get("memory", 10)), lower=lower, upper=upper)
