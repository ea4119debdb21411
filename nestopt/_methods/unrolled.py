"""``nestopt.Unrolled``: iterative differentiation (ITD), the baseline of Sato, Tanaka & Takeda.

Every lower level ``k`` is replaced by ``T_k`` gradient steps of size
``alpha_k`` from its start, nested (each step of level ``k`` reruns the
unrolled levels below it), and the Jacobian of the last iterate with respect
to the upper variables is propagated forward through the steps:

    x_k <- x_k - alpha_k c^T grad f_k,
    Z_k <- Z_k - alpha_k (H_k[k, <k] + H_k[k, k] Z_k),     H_k[k, :] = c^T hess f_k P

with ``c``, ``P`` built from the unrolled Jacobian of the levels below, by the
same algebra as the implicit method (``_compose``). Only Hessian oracles are
used, so the derivatives of those Jacobians are dropped: ITD is first order
in the sense of ``curvature='first_order'``, and its cost grows as the
product of the ``T_k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from array_api_compat import device

from .._derivatives.compose import own_rows, pull_back, reduced_grad, stack_response
from .._respond.nest import Stats
from .implicit import split_sensitivity

__all__ = ["Unrolled", "UnrolledEngine"]


@dataclass(frozen=True)
class Unrolled:
    """Hypergradients by iterative differentiation (ITD) of unrolled gradient steps.

    Parameters
    ----------
    steps : int or sequence of int
        ``T``: unrolled steps per lower level, one for all or one per level
        2..n (required).
    step_size : float or sequence of float, optional
        ``alpha`` of each lower level (default ``1/L`` with ``L`` the largest
        eigenvalue of the level's own Hessian block at its first start).

    Examples
    --------
    >>> import nestopt
    >>> nestopt.Unrolled(steps=50)
    Unrolled(steps=50, step_size=None)
    """

    steps: Any = None
    step_size: Any = None

    name = "itd"

    def __post_init__(self) -> None:
        if self.steps is None:
            raise ValueError(
                "method='itd' (nestopt.Unrolled) needs steps=T, the number of unrolled steps "
                "per level"
            )
        _per_level(self.steps, None, "steps", int)
        if self.step_size is not None:
            _per_level(self.step_size, None, "step_size", float)

    def bind(self, problem: Any, oracles: Any, *, deadline: float | None = None) -> UnrolledEngine:
        """The engine that unrolls with these settings on ``problem`` for one run."""
        return UnrolledEngine(self, problem, oracles)


def _per_level(value: Any, n: int | None, name: str, kind: type) -> list[Any]:
    """One value per lower level (index ``k - 1`` for level ``k``; level 1 unused)."""
    many = isinstance(value, Sequence) and not isinstance(value, str)
    if many and n is not None and len(value) != n - 1:
        raise ValueError(
            f"{name} as a sequence needs one entry per lower level ({n - 1}), got {len(value)}"
        )
    items = list(value) if many else [value]
    for item in items:
        if item is None:
            continue
        if kind is int and (isinstance(item, bool) or not isinstance(item, int) or item < 1):
            raise ValueError(f"{name} must be a positive int (per level), got {item!r}")
        if kind is float and (
            isinstance(item, bool) or not isinstance(item, (int, float)) or not item > 0
        ):
            raise ValueError(f"{name} must be a positive number (per level), got {item!r}")
    if n is None:
        return items
    return [None, *items] if many else [None] + [value] * (n - 1)


@dataclass(eq=False)
class UnrolledState:
    """The unrolled levels at one ``x_1``: final iterates and ``J = d x_>1 / d x_1``."""

    xs: tuple[Any, ...]
    J: Any


class UnrolledEngine:
    """Unroll, differentiate and (plainly) warm start on one problem for one run."""

    exactness_template = (
        "ITD with steps {steps} and step sizes {sizes}: approximate; its error is set by "
        "how far the unrolled iterates are from the solutions, and it drops the "
        "response-curvature terms"
    )
    curvature = "first_order"

    def __init__(self, method: Unrolled, problem: Any, oracles: Any) -> None:
        self.method = method
        self.problem = problem
        self.oracles = oracles
        self.xp = oracles.xp
        self.steps = _per_level(method.steps, problem.n, "steps", int)
        self.alphas = _per_level(method.step_size, problem.n, "step_size", float)
        self.stats = Stats.zeros(problem.n)
        self._first: tuple[Any, ...] | None = None

    @property
    def exactness(self) -> str:
        return self.exactness_template.format(
            steps=tuple(self.steps[1:]),
            sizes=tuple(None if a is None else float(a) for a in self.alphas[1:]),
        )

    def respond(self, xs: tuple[Any, ...], *, jacobians: bool = False) -> UnrolledState:
        """Unroll levels 2..n at ``x_1 = xs[0]`` (``jacobians``: they always are formed)."""
        if any(level.constrained for level in self.problem.levels[1:]):
            raise NotImplementedError(
                "method='itd' unrolls unconstrained gradient steps; this problem has "
                "constrained lower levels: use the implicit method"
            )
        if self._first is None:
            self._first = tuple(xs)
        below, J = self._unroll(2, tuple(xs))
        return UnrolledState(below, J)

    def hypergradient(self, state: UnrolledState) -> Any:
        g = self.oracles.grad(1, state.xs)
        return pull_back(self.xp, g, state.J, self.problem.sizes[0])

    def predict(self, state: UnrolledState, x1: Any) -> tuple[Any, ...]:
        """The lower levels unroll from the run's first start, whatever ``x1``.

        ITD's hypergradient is the exact gradient of the unrolled objective
        only if that objective is one fixed function of ``x_1``: starting the
        unrolling anywhere else would make it depend on the evaluation
        history (and line searches compare values of different functions).
        """
        assert self._first is not None, "the loop predicts only after a first respond"
        return (x1, *self._first[1:])

    def jacobians(self, state: UnrolledState) -> None:
        return None

    def sensitivity(self, state: UnrolledState) -> dict[int, Any]:
        return split_sensitivity(self.problem, state.J)

    def level_nit(self) -> tuple[int, ...]:
        return tuple(self.stats.newton)

    def constraint_report(self, state: UnrolledState) -> dict[str, Any]:
        return {"multipliers": {}, "active": {}, "degenerate": {}}

    def _step_size(self, k: int, xs: tuple[Any, ...]) -> float:
        """The given step, or ``1 / lambda_max`` of level k's own block at its first start."""
        if self.alphas[k - 1] is None:
            xp = self.xp
            block = self.problem.block(k)
            own = self.oracles.hess(k, xs, start=block.start)[: block.stop - block.start, block]
            self.alphas[k - 1] = 1.0 / float(xp.max(xp.linalg.eigvalsh(own)))
        return float(self.alphas[k - 1])

    def _unroll(self, k: int, xs: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
        """Unroll levels ``k..n`` from ``xs`` for fixed ``x_<k``.

        Returns the final iterates and ``J = d(x_k, ..., x_n)/d x_<k`` of
        shape ``(D - s_{k-1}, s_{k-1})``.
        """
        xp, problem = self.xp, self.problem
        own = problem.block(k)
        alpha = self._step_size(k, xs)
        self.stats.solves[k - 1] += 1
        x_k = xs[k - 1]
        Z = xp.zeros((own.stop - own.start, own.start), dtype=x_k.dtype, device=device(x_k))
        for _ in range(self.steps[k - 1]):
            current = (*xs[: k - 1], x_k, *xs[k:])
            below, J = self._unroll(k + 1, current) if k < problem.n else (current, None)
            g = self.oracles.grad(k, below)
            rows = own_rows(xp, self.oracles.hess(k, below, start=own.start), J, own)
            Z = Z - alpha * (rows[:, : own.start] + rows[:, own] @ Z)
            x_k = x_k - alpha * reduced_grad(xp, g, J, own)
            self.stats.newton[k - 1] += 1
        current = (*xs[: k - 1], x_k, *xs[k:])
        if k == problem.n:
            return current, Z
        below, J = self._unroll(k + 1, current)
        return below, stack_response(xp, Z, J, own)
