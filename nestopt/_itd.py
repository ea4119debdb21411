"""Iterative differentiation (ITD), the baseline of Sato, Tanaka & Takeda (2021).

Every lower level ``k`` is replaced by ``T_k`` gradient steps of size
``alpha_k`` from a fixed start, nested (each step of level ``k`` reruns the
unrolled levels below it), and the Jacobian of the last iterate with respect
to the upper variables is propagated forward through the steps:

    x_k <- x_k - alpha_k g_k,           g_k = c^T grad f_k
    Z_k <- Z_k - alpha_k (H[k,<k] + H[k,k] Z_k),   H[k,:] = c^T hess f_k P

with ``c``/``P`` built from the unrolled Jacobian of the levels below. Only
Hessian oracles are used, so the derivatives of those Jacobians are dropped:
ITD is first order in the sense of ``curvature='first_order'``, and the cost
grows as the product of the ``T_k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from array_api_compat import device

from ._options import prepare_points
from ._oracle import Oracles
from ._problem import Problem
from ._respond import split_sensitivity
from ._result import BestResponse

__all__ = ["itd_best_response"]


def _per_level(value: Any, problem: Problem, name: str, kind: type) -> list[Any]:
    """One value per lower level (index k - 1 for level k; level 1 unused)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != problem.n - 1:
            raise ValueError(
                f"{name} as a sequence needs one entry per lower level ({problem.n - 1}), "
                f"got {len(value)}"
            )
        values = [None, *value]
    else:
        values = [None] + [value] * (problem.n - 1)
    for k, item in enumerate(values[1:], start=2):
        if item is None:
            continue
        if kind is int and (isinstance(item, bool) or not isinstance(item, int) or item < 1):
            raise ValueError(f"{name} of level {k} must be a positive int, got {item!r}")
        if kind is float and not (isinstance(item, (int, float)) and item > 0):
            raise ValueError(f"{name} of level {k} must be a positive number, got {item!r}")
    return values


class _Unroller:
    def __init__(self, problem: Problem, oracles: Oracles, steps: list[Any], alphas: list[Any]):
        self.problem = problem
        self.oracles = oracles
        self.xp = oracles.xp
        self.steps = steps
        self.alphas = alphas
        self.iterations = [0] * problem.n

    def step_size(self, k: int, xs: tuple[Any, ...]) -> float:
        """The given step, or ``1 / lambda_max`` of level k's own block at the start."""
        if self.alphas[k - 1] is None:
            xp = self.xp
            block = self.problem.block(k)
            own = self.oracles.hess(k, xs)[block, block]
            self.alphas[k - 1] = 1.0 / float(xp.max(xp.linalg.eigvalsh(own)))
        return float(self.alphas[k - 1])

    def unroll(self, k: int, xs: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
        """Unroll levels ``k..n`` from ``xs`` for fixed ``x_<k``.

        Returns the final iterates and ``J = d(x_k, ..., x_n)/d x_<k`` of
        shape ``(D - s_{k-1}, s_{k-1})``.
        """
        xp, problem = self.xp, self.problem
        n = problem.n
        block = problem.block(k)
        s_prev = problem.offsets[k - 1]
        s_k = self.problem.ends[k - 1]
        alpha = self.step_size(k, xs)
        x_k = xs[k - 1]
        Z = xp.zeros((problem.sizes[k - 1], s_prev), dtype=x_k.dtype, device=device(x_k))
        for _ in range(self.steps[k - 1]):
            current = (*xs[: k - 1], x_k, *xs[k:])
            below, J = self.unroll(k + 1, current) if k < n else (current, None)
            g_full = self.oracles.grad(k, below)
            M = self.oracles.hess(k, below)
            if J is None:
                g = g_full[block]
                H = M[block, :]
            else:
                Jk = xp.matrix_transpose(J[:, block])
                g = g_full[block] + Jk @ g_full[s_k:]
                row = M[block, :] + Jk @ M[s_k:, :]
                H = row[:, :s_k] + row[:, s_k:] @ J
            Z = Z - alpha * (H[:, :s_prev] + H[:, s_prev:s_k] @ Z)
            x_k = x_k - alpha * g
            self.iterations[k - 1] += 1
        current = (*xs[: k - 1], x_k, *xs[k:])
        if k == n:
            return current, Z
        below, J = self.unroll(k + 1, current)
        total = xp.concat([Z, J[:, :s_prev] + J[:, s_prev:s_k] @ Z], axis=0)
        return below, total


def itd_best_response(
    problem: Problem,
    xs: Sequence[Any],
    *,
    steps: Any,
    step_size: Any = None,
    backend: Any = None,
    device: Any = None,
    check_finite: bool = True,
) -> BestResponse:
    """The ITD hypergradient at ``xs`` (see `nestopt.best_response`, ``method='itd'``).

    ``steps`` (``T``) is required: one int for every lower level or one per
    level 2..n. ``step_size`` (``alpha``) defaults per level to ``1/L`` with
    ``L`` the largest eigenvalue of the level's own Hessian block at the start.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a nestopt.Problem, got {type(problem).__name__}")
    if steps is None:
        raise ValueError("method='itd' needs steps=T, the number of unrolled steps per level")
    steps_list = _per_level(steps, problem, "steps", int)
    alphas = _per_level(step_size, problem, "step_size", float)
    xp, dev, start = prepare_points(problem, xs, backend, device)
    oracles = Oracles(problem, xp, start[0].dtype, dev, check_finite=check_finite)
    unroller = _Unroller(problem, oracles, steps_list, alphas)
    below, J = unroller.unroll(2, start)
    g_full = oracles.grad(1, below)
    d1 = problem.sizes[0]
    hypergrad = g_full[:d1] + xp.matrix_transpose(J) @ g_full[d1:]
    sensitivity = split_sensitivity(problem, J)
    fun = float(oracles.value(1, below)) if problem.levels[0].value is not None else None
    return BestResponse(
        hypergrad=hypergrad,
        xs=below,
        fun=fun,
        jacobians=None,
        sensitivity=sensitivity,
        nit=tuple(unroller.iterations),
        nfev={name: tuple(c) for name, c in oracles.counts.items()},
        method="itd",
        curvature="first_order",
        exactness=(
            f"ITD with steps {tuple(steps_list[1:])} and step sizes "
            f"{tuple(float(a) for a in unroller.alphas[1:])}: approximate; its error is set "
            "by how far the unrolled iterates are from the solutions, and it drops the "
            "response-curvature terms"
        ),
        backend=getattr(xp, "__name__", str(xp)),
    )
