"""The user's description of a multilevel problem: levels and their oracles."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Level", "Problem"]


@dataclass(frozen=True, kw_only=True)
class Level:
    """One level of a multilevel problem: an objective of all variables.

    Level ``k`` chooses its own variable ``x_k`` (``size`` entries); its
    objective ``f_k`` depends on every level's variable. All arguments are
    keywords.

    Parameters
    ----------
    grad : callable
        ``grad(x1, ..., xn)``: the gradient of ``f_k`` with respect to all
        variables, as one array of length ``D = d_1 + ... + d_n`` or a tuple
        of ``n`` per-level arrays (``None`` for a zero block).
    hess : callable, optional
        ``hess(x1, ..., xn)``: the Hessian of ``f_k``, a ``(D, D)`` array, an
        ``n x n`` nested sequence of blocks (``None`` for a zero block), or a
        sparse matrix of the backend (``scipy.sparse`` on NumPy). Required
        unless ``hvp`` is given.
    size : int
        ``d_k``, the length of this level's variable.
    value : callable, optional
        ``value(x1, ..., xn)``: ``f_k`` itself; used by line searches and
        reports.
    hess_dir : callable, optional
        ``hess_dir(x1, ..., xn, v)``: ``d/dt hess(x + t v)`` at ``t = 0``, in
        the layout of ``hess``; ``v`` is a flat length-``D`` array. Used by
        ``curvature='exact'``; without it a central difference of ``hess``
        serves.
    hvp : callable, optional
        ``hvp(x1, ..., xn, v)``: ``hess f_k @ v`` for a flat length-``D``
        ``v``, returned as a length-``D`` array. Makes the level usable
        without forming its Hessian (matrix-free: Krylov solves). ``v`` is
        nestopt's (CG updates it after the call, as SciPy's does): read it,
        do not modify or keep it.
    hvp_dir : callable, optional
        ``hvp_dir(x1, ..., xn, v, u)``: ``d/dt hess f_k(x + t u) @ v`` at
        ``t = 0``; the matrix-free third-order term (a central difference of
        ``hvp`` serves without it).
    hess_rows : bool, default False
        Declares that ``hess`` and ``hess_dir`` accept a keyword ``start``
        and then return only rows ``start:D`` (shape ``(D - start, D)``).
        nestopt needs only the rows of a level's own variable and those
        below it (for level ``k``, ``start = d_1 + ... + d_{k-1}``): a level
        that can skip the rest saves that work.
    bounds : Bounds, optional
        A box on ``x_k`` (`nestopt.Bounds` or ``scipy.optimize.Bounds``).
    constraints : sequence, optional
        `nestopt.LinearConstraint` and `nestopt.NonlinearConstraint` objects
        (or SciPy's) that restrict level ``k``'s choice of ``x_k``; they are
        functions of all variables, the levels below entering as their
        responses.
    name : str, optional
        Shown in messages and reports.
    quadratic : bool, default False
        Declares ``f_k`` quadratic (constant Hessian, zero third
        derivatives). Lets ``curvature='exact'`` skip the third-order term
        for this level and makes exact mode available for ``n >= 4`` levels
        when levels 4..n are quadratic.

    Notes
    -----
    nestopt copies nothing it does not need, but never keeps a reference to
    an array a callable returned across a second call of that callable
    without copying it: a callable may reuse one output buffer.
    """

    grad: Callable[..., Any]
    hess: Callable[..., Any] | None = None
    size: int
    value: Callable[..., Any] | None = None
    hess_dir: Callable[..., Any] | None = None
    hvp: Callable[..., Any] | None = None
    hvp_dir: Callable[..., Any] | None = None
    hess_rows: bool = False
    bounds: Any = None
    constraints: Sequence[Any] = ()
    name: str | None = None
    quadratic: bool = False

    def __post_init__(self) -> None:
        if not callable(self.grad):
            raise TypeError(f"Level.grad must be callable, got {type(self.grad).__name__}")
        for field in ("hess", "value", "hess_dir", "hvp", "hvp_dir"):
            item = getattr(self, field)
            if item is not None and not callable(item):
                raise TypeError(
                    f"Level.{field} must be callable or None, got {type(item).__name__}"
                )
        for flag in ("hess_rows", "quadratic"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"Level.{flag} must be True or False, got {getattr(self, flag)!r}")
        if self.hess is None and self.hvp is None:
            raise TypeError(
                "Level needs hess (the Hessian) or hvp (Hessian-vector products); got neither"
            )
        size = self.size
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"Level.size must be a positive int, got {size!r}")
        object.__setattr__(self, "size", int(size))
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"Level.name must be a string or None, got {self.name!r}")
        constraints = self.constraints
        if constraints is None:
            constraints = ()
        elif not isinstance(constraints, (list, tuple)):
            constraints = (constraints,)
        object.__setattr__(self, "constraints", tuple(constraints))
        if self.hess is None and any(not _is_linear(c) for c in self.constraints):
            raise TypeError(
                "Level has nonlinear constraints but only hvp: a matrix-free level takes "
                "bounds and linear constraints (solved by projected Newton with conjugate "
                "gradients, its rows' multipliers by Newton on their Schur complement), but "
                "nonlinear constraints need its Hessian as hess (a dense array or blocks)"
            )

    @property
    def constrained(self) -> bool:
        """Whether the level has bounds or constraints."""
        return self.bounds is not None or bool(self.constraints)


class Problem:
    """An n-level problem, levels ordered from the top (level 1) down.

    Parameters
    ----------
    levels : sequence of Level
        At least two levels. ``levels[0]`` is the leader (level 1),
        ``levels[-1]`` the innermost follower (level n).

    Attributes
    ----------
    n : int
        Number of levels.
    sizes : tuple of int
        ``(d_1, ..., d_n)``.
    offsets : tuple of int
        Start of each level's block in the flat vector of all variables.
    ends : tuple of int
        End of each level's block: ``s_k = d_1 + ... + d_k``.
    dim : int
        ``D = d_1 + ... + d_n``.
    constrained : bool
        Whether any level has bounds or constraints.
    """

    def __init__(self, levels: Sequence[Level]) -> None:
        if isinstance(levels, Level) or not isinstance(levels, Sequence):
            raise TypeError(
                "Problem takes a list of Level objects, top level first: "
                f"Problem([upper, lower]); got {type(levels).__name__}"
            )
        levels = tuple(levels)
        if len(levels) < 2:
            raise ValueError(
                f"a multilevel problem needs at least 2 levels, got {len(levels)}; "
                "for a single level use an ordinary optimizer"
            )
        for index, level in enumerate(levels, start=1):
            if not isinstance(level, Level):
                raise TypeError(
                    f"level {index} must be a nestopt.Level, got {type(level).__name__}"
                )
        self.levels = levels
        self.n = len(levels)
        self.sizes = tuple(level.size for level in levels)
        offsets = [0]
        for size in self.sizes[:-1]:
            offsets.append(offsets[-1] + size)
        self.offsets = tuple(offsets)
        self.ends = tuple(o + d for o, d in zip(self.offsets, self.sizes))
        self.dim = sum(self.sizes)
        # Looked up by every level solve (levels are frozen, so these never change).
        self._texts = tuple(_describe(k, level.name) for k, level in enumerate(levels, 1))
        self._blocks = tuple(slice(o, e) for o, e in zip(self.offsets, self.ends))
        self._constrained = any(level.constrained for level in levels)

    @property
    def constrained(self) -> bool:
        """Whether any level has bounds or constraints."""
        return self._constrained

    def describe(self, k: int) -> str:
        """``'level 2 ("attacker")'``: how messages name level ``k`` (1-based)."""
        return self._texts[k - 1]

    def block(self, k: int) -> slice:
        """Slice of level ``k`` (1-based) in the flat vector of all variables."""
        return self._blocks[k - 1]

    def __repr__(self) -> str:
        names = ", ".join(
            f"{level.name or f'level {i}'}: {level.size}"
            for i, level in enumerate(self.levels, start=1)
        )
        return f"Problem(n={self.n}, {names})"


def _describe(k: int, name: str | None) -> str:
    return f"level {k}" + (f" ({name!r})" if name and name != f"level {k}" else "")


def _is_linear(constraint: Any) -> bool:
    """A nestopt or SciPy ``LinearConstraint`` (by type name: SciPy is not imported)."""
    return type(constraint).__name__ == "LinearConstraint" and hasattr(constraint, "A")
