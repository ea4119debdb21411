"""The pieces of a large box-constrained level's response at a kink (`large_box`, DESIGN 9).

The same pieces as `pieces.KinkPieces`, for a level solved by products on its
free variables: with ``k`` weakly active bounds, a piece holds some of them on
their bound and frees the others. Its Jacobian is the masked operator system's
(``G_F = -A_FF^{-1} B_F``, one CG solve per upper variable), and its cone
rows come from products: a held bound's multiplier ``-g_i`` must keep its sign
(``d g_i / dx = A_i G + B_i``: one product with ``A e_i`` and one with
``B^T e_i``), a freed variable must stay feasible (``d y_i / dx = G_i``).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from array_api_compat import device

from ..._backend.host import to_numpy
from ..._errors import NestoptError
from ..nest import LevelSolution, Nest
from .large_box import BoxSystem, masked_system, solve_on_mask
from .pieces import Piece

__all__ = ["BoxPieces"]


class BoxPieces:
    """`KinkPieces` for a box-constrained level solved by products (same verbs)."""

    def __init__(self, nest: Nest, solution: LevelSolution, mode: str) -> None:
        found = solution.constrained
        self.nest, self.j, self.mode = nest, solution.j, mode
        self.xs = solution.below.xs
        self.strict = np.asarray(found.active, dtype=bool)
        self.weak = np.flatnonzero(np.asarray(found.weak, dtype=bool))
        lower, upper = found.rows.box
        x = np.asarray(to_numpy(self.xs[self.j - 1]), dtype=float)
        self.at_upper = (x >= np.asarray(to_numpy(upper), dtype=float))[self.weak]
        self.point = SimpleNamespace(R=solution.below.R())

    @property
    def k(self) -> int:
        return int(self.weak.size)

    def _mask(self, keep: Any) -> Any:
        held = self.strict.copy()
        held[self.weak[keep]] = True
        return held

    def piece(self, keep: Any) -> Piece | None:
        """The piece holding the weak bounds ``keep``; None where its free block is not
        positive definite (no smooth response to certify)."""
        held = self._mask(keep)
        try:
            system: BoxSystem = masked_system(self.nest, self.j, self.xs, held, self.mode)
            G = system.G()
        except NestoptError:
            return None
        xp = self.nest.xp
        G_host = np.asarray(to_numpy(G), dtype=float)
        products = system.products.inner  # the whole own block, not the free one
        d = G_host.shape[0]
        cone = np.zeros((self.k, G_host.shape[1]))
        for n, (i, kept, upper) in enumerate(zip(self.weak, keep, self.at_upper, strict=True)):
            if kept:  # its multiplier -g_i keeps its sign: g_i >= 0 at a lower bound
                e = xp.asarray(np.eye(1, d, int(i))[0], dtype=G.dtype, device=device(G))
                column = np.asarray(to_numpy(products.A(e)), dtype=float)
                change = column @ G_host + np.asarray(to_numpy(products.BT(e)), dtype=float)
                cone[n] = change if upper else -change
            else:  # it stays feasible
                cone[n] = G_host[i] if upper else -G_host[i]
        return Piece(np.asarray(keep, dtype=bool), held, G, cone)

    def moved(self, upper: Any, piece: Piece, maxiter: int) -> tuple[Any, Any, Any] | None:
        """``(xs, G_P, R_j)`` of the piece at the upper variables ``upper``: Newton on its
        free variables, its held ones on their bounds; None where that fails."""
        start = (*upper, *self.xs[self.j - 1 :])
        try:
            below = solve_on_mask(self.nest, self.j, start, piece.active, self.mode, maxiter)
            system = masked_system(self.nest, self.j, below.xs, piece.active, self.mode)
            return below.xs, system.G(), below.R()
        except (NestoptError, ArithmeticError, ValueError):
            return None
