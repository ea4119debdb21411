"""Triangular solves written in the array API standard alone (the portable fallback).

The standard has ``linalg.cholesky`` but no triangular solve; backends without
a native one (array_api_strict, or any registered library) use these.
"""

from __future__ import annotations

from typing import Any

__all__ = ["forward_substitution", "backward_substitution"]

_BLOCK = 64


def forward_substitution(low: Any, b: Any, *, xp: Any) -> Any:
    """Solve ``low @ y = b`` for lower-triangular ``low`` using the standard only.

    Works block by block: each diagonal block (at most 64 wide) is solved with
    ``linalg.solve`` and the rest is matrix products, so the cost is that of
    a triangular solve, ``O(n^2 k)``, up to small dense solves.
    """
    n = low.shape[0]
    pieces: list[Any] = []
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        rhs = b[start:stop, :]
        if pieces:
            done = xp.concat(pieces, axis=0)
            rhs = rhs - low[start:stop, :start] @ done
        pieces.append(xp.linalg.solve(low[start:stop, start:stop], rhs))
    return xp.concat(pieces, axis=0)


def backward_substitution(up: Any, b: Any, *, xp: Any) -> Any:
    """Solve ``up @ x = b`` for upper-triangular ``up`` using the standard only."""
    n = up.shape[0]
    pieces: list[Any] = []
    stop = n
    while stop > 0:
        start = max(stop - _BLOCK, 0)
        rhs = b[start:stop, :]
        if pieces:
            done = xp.concat(pieces[::-1], axis=0)
            rhs = rhs - up[start:stop, stop:] @ done
        pieces.append(xp.linalg.solve(up[start:stop, start:stop], rhs))
        stop = start
    return xp.concat(pieces[::-1], axis=0)
