"""The smooth pieces of a constrained level's response at a kink (DESIGN 9, "Kinks").

Where ``k`` rows of level ``j`` are weakly active (at a bound, zero
multiplier), its response is only piecewise smooth: each subset ``P`` of
those rows kept active, the others released, gives a piece whose Jacobian
``G_P`` and multiplier sensitivities ``Lambda_P`` come from the KKT system of
the active set plus ``P``. A move ``dx`` of the upper variables stays on
piece ``P`` to first order when the kept rows' multipliers keep their sign
(``Lambda_P dx``) and the released rows stay feasible (``(C + J G_P) dx``);
those ``k`` inequalities are the piece's cone, returned here as rows ``a``
with ``a dx <= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._backend.host import to_numpy
from ..._errors import FactorizationError, NestoptError
from ..nest import LevelSolution, Nest
from .active_rows import RowSets, active_kkt, kkt_system
from .polish import newton_on
from .reduced import LevelModel

__all__ = ["KinkPieces", "Piece"]


@dataclass
class Piece:
    """One piece: which weak rows it keeps, its response Jacobian and its cone rows."""

    keep: Any  # host bool (k,)
    active: Any  # host bool (m,): the strictly active rows and the kept weak ones
    G: Any  # (d_j, s_{j-1})
    cone: Any  # host (k, s_{j-1}): the piece's cone is {dx: cone @ dx <= 0}


class KinkPieces:
    """The pieces of level ``j``'s response at its solution ``solution`` (curvature ``mode``)."""

    def __init__(self, nest: Nest, solution: LevelSolution, mode: str) -> None:
        found = solution.constrained
        self.nest, self.j, self.mode = nest, solution.j, mode
        self.model = LevelModel(nest, solution.j, found.rows)
        self.xs = solution.below.xs
        self.point = self.model.at(self.xs)
        self.lam = np.asarray(to_numpy(found.lam), dtype=float)
        xp = nest.xp
        lam = xp.asarray(self.lam, dtype=self.point.g.dtype)
        self.W = self.model.lagrangian_rows(self.point, lam, mode)
        self.strict = np.asarray(found.active, dtype=bool)
        self.weak = np.flatnonzero(np.asarray(found.weak, dtype=bool))
        sets = RowSets.of(to_numpy(found.rows.lb), to_numpy(found.rows.ub))
        c = np.asarray(to_numpy(self.point.c), dtype=float)
        self.at_upper = sets.at_upper(c)[self.weak]

    @property
    def k(self) -> int:
        return int(self.weak.size)

    def piece(self, keep: Any) -> Piece | None:
        """The piece keeping the weak rows ``keep``; None where its KKT matrix is not that of
        a strict minimum (the piece has no smooth response to certify)."""
        model, point = self.model, self.point
        active = self.strict.copy()
        active[self.weak[keep]] = True
        try:
            kkt = active_kkt(model, self.W, point, active)
        except FactorizationError:
            return None
        if not kkt.minimum:
            return None
        system = kkt_system(model, point, self.W, kkt, active)
        G = system.G()
        Lam = np.asarray(to_numpy(system.Lambda()), dtype=float)
        G_host = np.asarray(to_numpy(G), dtype=float)
        C = np.asarray(to_numpy(model.cross_jacobian(point)), dtype=float)
        J = np.asarray(to_numpy(point.J), dtype=float)
        general = model.rows.general
        order = np.flatnonzero(active)  # Lambda's rows follow the active rows' order
        cone = np.zeros((self.k, G_host.shape[1]))
        for n, (row, kept, upper) in enumerate(zip(self.weak, keep, self.at_upper, strict=True)):
            if kept:  # its multiplier keeps its sign: <= 0 at a lower bound, >= 0 at an upper
                change = Lam[int(np.searchsorted(order, row))]
                cone[n] = -change if upper else change
            else:  # it stays feasible
                if row < general:
                    change = C[row] + J[row] @ G_host
                else:
                    change = G_host[row - general]
                cone[n] = change if upper else -change
        return Piece(np.asarray(keep, dtype=bool), active, G, cone)

    def moved(self, upper: Any, piece: Piece, maxiter: int) -> tuple[Any, Any, Any] | None:
        """``(xs, G_P, R_j)`` of the piece at the upper variables ``upper`` (a tuple of levels
        ``< j``; ``R_j`` that of the levels below): Newton on its fixed active set, started
        here; None where that fails."""
        model = self.model
        start = (*upper, *self.xs[self.j - 1 :])
        try:
            point = model.at(start)
            point, lam, W, kkt = newton_on(model, point, piece.active, self.lam, self.mode, maxiter)
        except (NestoptError, ArithmeticError, ValueError):
            return None
        if kkt is None or not kkt.minimum:
            return None
        return point.xs, kkt_system(model, point, W, kkt, piece.active).G(), point.R
