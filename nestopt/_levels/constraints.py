"""Bounds and constraints, with scipy.optimize's names and meanings.

A constraint of level ``k`` restricts level ``k``'s choice of ``x_k``; it is
a function of *all* variables, the levels below entering as their responses.
``lb <= c(x) <= ub`` row by row, an equality where ``lb == ub``; ``-inf`` and
``inf`` leave a side open. scipy.optimize's own ``Bounds``,
``LinearConstraint`` and ``NonlinearConstraint`` objects are accepted where
these are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Bounds", "LinearConstraint", "NonlinearConstraint"]

_INF = float("inf")


def open_side_text(lb: Any, ub: Any) -> str:
    """Why a row with ``lb = +inf`` or ``ub = -inf`` is refused, and what to write instead."""
    return (
        f"lb = {lb}, ub = {ub}: no finite point lies above a lower bound of +inf or below "
        "an upper bound of -inf. An infinite bound means an open side: -inf for lb, inf "
        "for ub"
    )


def _check_sides(lb: Any, ub: Any, what: str) -> None:
    """Refuse ``lb = +inf`` or ``ub = -inf`` in any entry, naming the first such entry.

    Sides on a device (CuPy, torch on a GPU) are checked when the level's rows are built.
    """
    import numpy as np

    try:
        low, high = np.broadcast_arrays(np.asarray(lb, dtype=float), np.asarray(ub, dtype=float))
    except (TypeError, ValueError, RuntimeError):
        return  # not host data, or shapes that the rows' construction reports
    bad = (low == _INF) | (high == -_INF)
    if np.any(bad):
        i = int(np.argmax(bad.ravel()))
        entry = "every entry" if bad.ndim == 0 else f"entry {i}"
        raise ValueError(f"{what}: {entry} has {open_side_text(low.ravel()[i], high.ravel()[i])}")


@dataclass(frozen=True)
class Bounds:
    """A box ``lb <= x <= ub`` on one level's own variable.

    Parameters
    ----------
    lb, ub : float or array_like, optional
        Lower and upper bounds: scalars (for every entry) or arrays of the
        level's size; ``-inf``/``inf`` (the defaults) mean no bound.

    Examples
    --------
    >>> import nestopt
    >>> nestopt.Bounds(0.0, [1.0, 2.0])
    Bounds(lb=0.0, ub=[1.0, 2.0])
    """

    lb: Any = -_INF
    ub: Any = _INF

    def __post_init__(self) -> None:
        _check_sides(self.lb, self.ub, "Bounds")


@dataclass(frozen=True)
class LinearConstraint:
    """``lb <= A x <= ub`` with ``x`` the flat vector of all ``D`` variables.

    Parameters
    ----------
    A : array_like, shape (m, D)
        Coefficients of every level's variables (columns ordered level 1
        first). A 1-d array is one constraint.
    lb, ub : float or array_like of shape (m,), optional
        Bounds of ``A x``; equal entries make equalities.
    """

    A: Any
    lb: Any = -_INF
    ub: Any = _INF

    def __post_init__(self) -> None:
        _check_sides(self.lb, self.ub, "LinearConstraint")


@dataclass(frozen=True)
class NonlinearConstraint:
    """``lb <= fun(x1, ..., xn) <= ub`` with analytic derivatives.

    Parameters
    ----------
    fun : callable
        ``fun(x1, ..., xn)`` returns the ``(m,)`` constraint values.
    lb, ub : float or array_like of shape (m,)
        Bounds of ``fun``; equal entries make equalities.
    jac : callable
        ``jac(x1, ..., xn)``: the ``(m, D)`` Jacobian, or a tuple of ``n``
        per-level blocks of shapes ``(m, d_k)``.
    hess : callable, optional
        ``hess(x1, ..., xn, v)``: ``sum_i v_i hess c_i`` as a ``(D, D)``
        array (or ``n x n`` blocks), as in SciPy. Without it a central
        difference of ``jac`` serves (the result says so), unless
        ``linear=True``.
    hess_dir : callable, optional
        ``hess_dir(x1, ..., xn, v, u)``: ``d/dt sum_i v_i hess c_i(x + t u)``
        at ``t = 0``, used by exact curvature of a constrained level below a
        level; a central difference of ``hess`` serves without it.
    linear : bool, default False
        Declares ``fun`` affine: zero Hessian, and no differences taken.
    name : str, optional
        Shown in messages.
    """

    fun: Callable[..., Any]
    lb: Any
    ub: Any
    jac: Callable[..., Any] | None = None
    hess: Callable[..., Any] | None = None
    hess_dir: Callable[..., Any] | None = None
    linear: bool = False
    name: str | None = field(default=None)

    def __post_init__(self) -> None:
        if not callable(self.fun):
            raise TypeError(
                f"NonlinearConstraint.fun must be callable, got {type(self.fun).__name__}"
            )
        if self.jac is None or not callable(self.jac):
            raise TypeError(
                "NonlinearConstraint needs an analytic jac callable (jac(x1, ..., xn) -> "
                f"(m, D) array), got {self.jac!r}; nestopt does not difference constraint "
                "values. Write the Jacobian, or build the constraint with "
                "nestopt.autodiff if you have JAX or PyTorch"
            )
        for name in ("hess", "hess_dir"):
            item = getattr(self, name)
            if item is not None and not callable(item):
                raise TypeError(
                    f"NonlinearConstraint.{name} must be callable or None, got {item!r}"
                )
        _check_sides(self.lb, self.ub, f"NonlinearConstraint {self.name or ''}".rstrip())
