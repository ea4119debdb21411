"""What every problem family returns: a Problem with its known answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._levels.problem import Level, Problem

__all__ = ["KnownProblem"]


class KnownProblem(Problem):
    """A `Problem` that also carries a starting point and, where known, its solution.

    Attributes
    ----------
    x0 : tuple of arrays
        A suggested starting point, one array per level.
    solution : tuple of arrays or None
        The known solution of every level (``None`` where none is known).
    data : dict
        The family's data (matrices, vectors, sizes), for inspection.
    description : str
        One line on what the problem is.
    """

    def __init__(
        self,
        levels: Sequence[Level],
        *,
        x0: Sequence[Any],
        solution: Sequence[Any] | None = None,
        data: dict[str, Any] | None = None,
        description: str = "",
    ) -> None:
        super().__init__(levels)
        self.x0 = tuple(x0)
        self.solution = None if solution is None else tuple(solution)
        self.data = dict(data or {})
        self.description = description
