"""One level's bounds and constraints as rows ``lb <= c(x) <= ub``, evaluated and checked.

Every constraint object of a level (nestopt's or SciPy's) and its bounds
become one stacked function of all variables: values ``(m,)``, Jacobian
``(m, D)`` and the weighted Hessian ``sum_i v_i hess c_i`` ``(D, D)``;
bounds on ``x_k`` come last, as rows of the identity. Outputs get the same
checks as ``grad`` and ``hess`` (type, backend, device, dtype, shape, NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import NonFiniteError, OracleError
from .oracles import abbreviate
from .outputs import Target, Where, check_array, matrix_layout

__all__ = ["ConstraintRows", "Nonlinear", "as_jacobian", "as_vector"]


@dataclass(frozen=True)
class Nonlinear:
    """A nonlinear constraint with callables taking one array per level."""

    fun: Any
    jac: Any
    hess: Any
    hess_dir: Any
    linear: bool
    size: int
    label: str


class ConstraintRows:
    """The rows of one level: linear block, nonlinear blocks, then the box on ``x_k``.

    Attributes
    ----------
    lb, ub : arrays (m,)
        Bounds of every row (``-inf``/``inf`` for an open side).
    labels : list of str
        One label per row, for messages and results.
    all_linear : bool
        No row has curvature (linear constraints and bounds only).
    """

    def __init__(self, k: int, text: str, sizes: tuple[int, ...], target: Target) -> None:
        self.k, self.text, self.sizes, self.target = k, text, tuple(sizes), target
        self.xp = target.xp
        self.dim = sum(sizes)
        self.A: Any = None
        self.nonlinear: list[Nonlinear] = []
        self.box: tuple[Any, Any] | None = None
        self.labels: list[str] = []
        self.lb: Any = None
        self.ub: Any = None
        self.notes: list[str] = []

    @property
    def m(self) -> int:
        return len(self.labels)

    @property
    def all_linear(self) -> bool:
        return all(item.linear for item in self.nonlinear)

    # -- evaluation -----------------------------------------------------------

    def values(self, xs: Sequence[Any]) -> Any:
        xp = self.xp
        parts = []
        x = xp.concat(list(xs))
        if self.A is not None:
            parts.append(self.A @ x)
        for item in self.nonlinear:
            out = _call(item.fun, xs, self._where(item, "fun"))
            out = as_vector(xp, out, self.target, self._where(item, "fun"), item.size)
            self._finite(out, self._where(item, "fun"), xs)
            parts.append(out)
        if self.box is not None:
            parts.append(xs[self.k - 1])
        return xp.concat(parts) if parts else xp.zeros((0,), dtype=x.dtype)

    @property
    def general(self) -> int:
        """The number of rows before the box (constraints proper)."""
        return self.m - self.sizes[self.k - 1] if self.box is not None else self.m

    def jacobian(self, xs: Sequence[Any], *, box: bool = True) -> Any:
        """``(m, D)``; without the box's rows of the identity when ``box`` is False."""
        xp = self.xp
        parts = []
        if self.A is not None:
            parts.append(self.A)
        for item in self.nonlinear:
            where = self._where(item, "jac")
            out = _call(item.jac, xs, where)
            out = as_jacobian(out, self.sizes, item.size, self.target, where)
            self._finite(xp.sum(out, axis=1), where, xs)
            parts.append(out)
        if self.box is not None and box:
            parts.append(self._box_rows())
        if not parts:
            return xp.zeros((0, self.dim), dtype=self.target.dtype, device=self.target.device)
        return xp.concat(parts, axis=0)

    def _curved_weights(self, weights: Any) -> Any:
        """Each curved nonlinear constraint with its slice of the row weights."""
        offset = 0 if self.A is None else self.A.shape[0]
        for item in self.nonlinear:
            if not item.linear:
                yield item, weights[offset : offset + item.size]
            offset += item.size

    def weighted_hessian(self, xs: Sequence[Any], weights: Any) -> Any | None:
        """``sum_i weights_i hess c_i`` over the nonlinear rows; None when all are linear."""
        xp = self.xp
        total = None
        for item, w in self._curved_weights(weights):
            where = self._where(item, "hess")
            if item.hess is None:
                term = self._hessian_by_difference(item, xs, w)
            else:
                out = _call(item.hess, [*xs, w], where)
                term = matrix_layout(out, self.sizes, self.target, where)
                self._finite(term @ xp.ones((self.dim,), dtype=term.dtype), where, xs)
            total = term if total is None else total + term
        return total

    def weighted_hessian_dir(self, xs: Sequence[Any], weights: Any, u: Any) -> Any | None:
        """``d/dt sum_i weights_i hess c_i(x + t u)`` from the constraints' ``hess_dir``;
        None unless every curved constraint has one."""
        curved = [item for item in self.nonlinear if not item.linear]
        if not curved or any(item.hess_dir is None for item in curved):
            return None
        total = None
        for item, w in self._curved_weights(weights):
            where = self._where(item, "hess_dir")
            out = _call(item.hess_dir, [*xs, w, u], where)
            term = matrix_layout(out, self.sizes, self.target, where)
            total = term if total is None else total + term
        return total

    def _hessian_by_difference(self, item: Nonlinear, xs: Sequence[Any], w: Any) -> Any:
        """Central differences of ``w^T jac`` along each coordinate (no ``hess`` given)."""
        xp = self.xp
        x = xp.concat(list(xs))
        eps = float(xp.finfo(x.dtype).eps)
        note = f"{self.text}: {item.label} has no hess; its curvature comes from differences"
        if note not in self.notes:
            self.notes.append(note)
        columns = []
        cuts = np.cumsum((0, *self.sizes))
        for i in range(self.dim):
            h = eps ** (1 / 3) * max(1.0, abs(float(x[i])))
            e = xp.zeros_like(x)
            e = xp.where(xp.arange(self.dim) == i, xp.ones_like(x) * h, e)
            plus = [(x + e)[cuts[j] : cuts[j + 1]] for j in range(len(self.sizes))]
            minus = [(x - e)[cuts[j] : cuts[j + 1]] for j in range(len(self.sizes))]
            jp = as_jacobian(_call(item.jac, plus, ""), self.sizes, item.size, self.target, "")
            jm = as_jacobian(_call(item.jac, minus, ""), self.sizes, item.size, self.target, "")
            columns.append(w @ (jp - jm) / (2 * h))
        H = xp.stack(columns, axis=1)
        return 0.5 * (H + xp.matrix_transpose(H))

    # -- helpers ----------------------------------------------------------------

    def _box_rows(self) -> Any:
        xp = self.xp
        start = sum(self.sizes[: self.k - 1])
        d = self.sizes[self.k - 1]
        eye = xp.eye(d, self.dim, k=start, dtype=self.target.dtype, device=self.target.device)
        return eye

    def _where(self, item: Nonlinear, what: str) -> Where:
        return Where(self.k, self.text, f"{item.label}.{what}")

    def _finite(self, out: Any, where: Where, xs: Sequence[Any]) -> None:
        if not bool(self.xp.all(self.xp.isfinite(out))):
            raise NonFiniteError(
                f"{where} returned NaN or Inf at {abbreviate(xs, len(self.sizes))}; check the "
                "callable at this point",
                level=self.k,
            )


def _call(fn: Any, args: Sequence[Any], where: Any) -> Any:
    return fn(*args)


def as_vector(xp: Any, out: Any, target: Target, where: Where, size: int) -> Any:
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        out = xp.asarray([out], dtype=target.dtype, device=target.device)
    out = check_array(out, target, where)
    if out.ndim == 0:
        out = xp.reshape(out, (1,))
    if tuple(out.shape) != (size,):
        raise OracleError(
            f"{where} returned shape {tuple(out.shape)}; expected ({size},)", level=where.level
        )
    return out


def as_jacobian(out: Any, sizes: tuple[int, ...], m: int, target: Target, where: Any) -> Any:
    """``(m, D)`` from one array or a tuple of per-level ``(m, d_k)`` blocks."""
    xp = target.xp
    if isinstance(out, (list, tuple)):
        blocks = [
            xp.zeros((m, d), dtype=target.dtype, device=target.device) if b is None else b
            for b, d in zip(out, sizes)
        ]
        if len(out) != len(sizes):
            raise OracleError(
                f"{where} returned {len(out)} blocks; expected {len(sizes)} (one per level)",
                level=getattr(where, "level", None),
            )
        checked = [check_array(b, target, where) if isinstance(where, Where) else b for b in blocks]
        out = xp.concat([xp.reshape(b, (m, -1)) for b in checked], axis=1)
    out = check_array(out, target, where) if isinstance(where, Where) else out
    if out.ndim == 1 and m == 1:
        out = xp.reshape(out, (1, out.shape[0]))
    if tuple(out.shape) != (m, sum(sizes)):
        raise OracleError(
            f"{where} returned shape {tuple(out.shape)}; expected ({m}, {sum(sizes)})",
            level=getattr(where, "level", None),
        )
    return out
