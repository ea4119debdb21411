"""The user's description of a multilevel problem: levels and their oracles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Level", "Problem"]


@dataclass(frozen=True)
class Level:
    """One level of a multilevel problem: an objective of all variables.

    Level ``k`` chooses its own variable ``x_k`` (``size`` entries); its
    objective ``f_k`` depends on every level's variable.

    Parameters
    ----------
    grad : callable
        ``grad(x1, ..., xn)``: the gradient of ``f_k`` with respect to all
        variables, as one array of length ``D = d_1 + ... + d_n`` or a tuple
        of ``n`` per-level arrays.
    hess : callable
        ``hess(x1, ..., xn)``: the Hessian of ``f_k``, a ``(D, D)`` array or
        an ``n x n`` nested sequence of blocks (``None`` for a zero block).
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
    name : str, optional
        Shown in messages and reports.
    quadratic : bool, default False
        Declares ``f_k`` quadratic (constant Hessian, zero third
        derivatives). Lets ``curvature='exact'`` skip the third-order term
        for this level and makes exact mode available for ``n >= 4`` levels
        when levels 4..n are quadratic.
    """

    grad: Callable[..., Any]
    hess: Callable[..., Any]
    size: int
    value: Callable[..., Any] | None = None
    hess_dir: Callable[..., Any] | None = None
    name: str | None = None
    quadratic: bool = False

    def __post_init__(self) -> None:
        for field in ("grad", "hess"):
            if not callable(getattr(self, field)):
                raise TypeError(
                    f"Level.{field} must be callable, got {type(getattr(self, field)).__name__}"
                )
        for field in ("value", "hess_dir"):
            item = getattr(self, field)
            if item is not None and not callable(item):
                raise TypeError(
                    f"Level.{field} must be callable or None, got {type(item).__name__}"
                )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"Level.size must be a positive int, got {self.size!r}")


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
    """

    def __init__(self, levels: Sequence[Level]) -> None:
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

    def describe(self, k: int) -> str:
        """``'level 2 ("attacker")'``: how messages name level ``k`` (1-based)."""
        name = self.levels[k - 1].name
        return f"level {k}" + (f" ({name!r})" if name and name != f"level {k}" else "")

    def block(self, k: int) -> slice:
        """Slice of level ``k`` (1-based) in the flat vector of all variables."""
        start = self.offsets[k - 1]
        return slice(start, start + self.sizes[k - 1])

    def __repr__(self) -> str:
        names = ", ".join(
            f"{level.name or f'level {i}'}: {level.size}"
            for i, level in enumerate(self.levels, start=1)
        )
        return f"Problem(n={self.n}, {names})"
