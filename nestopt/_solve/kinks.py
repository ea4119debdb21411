"""Certified kinks: is a point with weakly active lower-level rows a minimum of ``F_1``?

With ``k`` weakly active rows of level 2 (at most `MAX_WEAK`) the value
function ``F_1`` is piecewise smooth around the point, with ``2^k`` pieces
(`KinkPieces`). For each piece ``P`` with one-sided hypergradient ``g_P``
and cone ``K_P`` (intersected with level 1's own tangent cone: its active
bounds), one small LP (``scipy.optimize.linprog``, HiGHS) gives

    v_P = min g_P^T dx   over dx in K_P, -1 <= dx <= 1.

* Some ``v_P < 0`` (beyond a tolerance relative to the gradients): a descent
  direction; `solve` steps along it and continues.
* Every ``v_P >= 0`` and, on each piece, either no nonzero direction of its
  cone has ``g_P^T dx <= 0`` (its rows and ``g_P`` positively span the space:
  one feasibility LP) or the piece's
  reduced Hessian (central differences of ``g_P`` on the piece) is positive
  definite on ``{dx: g_P^T dx = 0}``, a subspace that holds those
  directions: a certified strict local minimum. B-stationarity alone is not
  a certificate: a maximum with zero one-sided gradients passes it.
* Otherwise: not certified (`Status.DEGENERATE`, as before).

Weakly active rows of level 2 are examined (any number of levels below it,
none of them with weakly active rows of its own), with level 1 free or
boxed; the others stay DEGENERATE, saying so.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend.host import max_abs, to_numpy
from .._derivatives.compose import stack_response
from .._errors import NestoptError, Status
from .._linalg.kkt_system import KKTSystem
from .._respond.constrained.active_rows import RowSets
from .._respond.constrained.box_pieces import BoxPieces
from .._respond.constrained.large_box import BoxSystem
from .._respond.constrained.pieces import KinkPieces, Piece

__all__ = [
    "MAX_WEAK",
    "MAX_KINK_STEPS",
    "ENDINGS",
    "Verdict",
    "armijo_step",
    "examine_kink",
    "past_kinks",
    "top_row_cone",
]

MAX_WEAK = 8  # weakly active rows examined (2^8 pieces); more stay DEGENERATE


@dataclass
class Verdict:
    """What the pieces say: a certified minimum, a descent direction, or neither."""

    certified: bool
    note: str
    direction: Any = None  # host (d_1,): a descent direction, with |dx_i| <= 1
    slope: float = 0.0  # g_P^T direction (< 0)


def examine_kink(
    run: Any, point: Any, box: Any, top_rows: Any = None, second_order: bool = True,
    slope_tol: float = 0.0,
) -> Verdict | None:  # fmt: skip
    """The verdict at ``point`` (an evaluated level-1 point whose state has weakly active
    level-2 rows), or None when SciPy is missing (nothing is claimed).

    ``top_rows(R_1)`` gives level 1's own rows at a bound as cone rows on a piece (level 1
    with constraints); without ``second_order`` only first-order strictness certifies (the
    second-order test would need level 1's Lagrangian, not ``F_1``). A piece descends only
    where its best slope is below ``-slope_tol`` as well (the run's gradient target: a point
    that stationary is judged by the tests for a minimum, as a smooth one would be)."""
    try:
        from scipy.optimize import linprog
    except ImportError:
        return None
    problem, engine = run.problem, run.engine
    top = point.state.top
    nest = getattr(engine, "nest", None)
    if nest is None or top is None or top.constrained is None:
        return Verdict(False, "kink not examined: only the implicit method's kinks are")
    if set(engine.constraint_report(point.state)["degenerate"]) != {2}:
        return Verdict(False, "kink not examined: weakly active rows below level 2")
    mode = nest.config.curvature_mode(2)
    pieces: KinkPieces | BoxPieces
    if isinstance(top.system, KKTSystem):
        pieces = KinkPieces(nest, top, mode)
    elif isinstance(top.system, BoxSystem):
        pieces = BoxPieces(nest, top, mode)
    else:
        return Verdict(False, "kink not examined: level 2's system has no pieces")
    k = pieces.k
    if k == 0:
        return None
    if k > MAX_WEAK:
        return Verdict(False, f"kink not examined: {k} weakly active rows, over {MAX_WEAK}")
    d1 = problem.sizes[0]
    grad = np.asarray(to_numpy(run.oracles.grad(1, point.state.xs)), dtype=float)
    top_cone = _top_cone(np.asarray(to_numpy(point.x), dtype=float), box)
    found: list[tuple[Piece, Any, Any]] = []
    for keep in itertools.product((False, True), repeat=k):
        piece = pieces.piece(np.array(keep))
        if piece is None:
            return Verdict(False, "kink not certified: a piece's response is not a strict minimum")
        R1 = _stacked(run, piece.G, pieces.point.R)
        extra = top_rows(R1) if top_rows is not None else np.zeros((0, d1))
        found.append((piece, grad[:d1] + R1.T @ grad[d1:], extra))
    scale = max(max(float(np.abs(g).sum()) for _, g, _ in found), float(np.abs(grad).max()))
    tol = 1e-8 * max(scale, 1e-300)
    best = None
    for piece, g, extra in found:
        A = np.vstack([piece.cone, top_cone, extra])
        lp = linprog(g, A_ub=A, b_ub=np.zeros(A.shape[0]), bounds=[(-1.0, 1.0)] * d1)
        if lp.status != 0:
            return Verdict(False, f"kink not certified: an LP failed ({lp.message})")
        if lp.fun < -max(tol, slope_tol) and (best is None or lp.fun < best[0]):
            best = (float(lp.fun), np.asarray(lp.x, dtype=float), g, A)
    pieces_text = f"{k} weakly active row{'s' if k > 1 else ''}, {2**k} pieces checked"
    if best is not None:
        direction = _shortest(linprog, *best)
        slope = float(best[2] @ direction)
        note = f"kink: descent along one piece ({pieces_text})"
        return Verdict(False, note, direction, slope)
    for piece, g, extra in found:
        if _only_zero(linprog, np.vstack([piece.cone, top_cone, extra, g[None, :]]), d1):
            continue
        if not second_order:
            note = (
                "kink not certified: a piece's critical directions are not all excluded to "
                "first order, and level 1's constraints leave out the second-order test "
                f"({pieces_text})"
            )
            return Verdict(False, note)
        if not _curved_up(run, pieces, piece, g, point, tol):
            note = f"kink not certified: a piece is not curved upward ({pieces_text})"
            return Verdict(False, note)
    return Verdict(True, f"kink certified: {pieces_text}")


def _stacked(run: Any, G: Any, R_below: Any) -> Any:
    """``R_1 = [G_P; R_2[:, <2] + R_2[:, 2] G_P]`` on the piece, the levels below level 2 as
    they are (DESIGN 2), on the host."""
    R1 = stack_response(run.xp, G, R_below, run.problem.block(2))
    return np.asarray(to_numpy(R1), dtype=float)


def _one_sided(run: Any, grad: Any, G: Any, R_below: Any) -> Any:
    """``g_P = P_1^T grad f_1`` on the piece."""
    d1 = run.problem.sizes[0]
    return grad[:d1] + _stacked(run, G, R_below).T @ grad[d1:]


def top_row_cone(run: Any, rows: Any, xs: Any) -> tuple[Any, int]:
    """``(R_1 -> rows, k)``: level 1's ``k`` rows at a bound at ``xs`` (to ``sqrt(eps)`` of
    the bound's size) as cone rows ``a dx <= 0`` of the leader's moves on a piece, each
    linearized with the piece's response ``R_1`` (both signs for an equality)."""
    J = np.asarray(to_numpy(rows.jacobian(xs)), dtype=float)
    c = np.asarray(to_numpy(rows.values(xs)), dtype=float)
    sets = RowSets.of(to_numpy(rows.lb), to_numpy(rows.ub))
    lb, ub, upper = sets.lb, sets.ub, sets.at_upper(c)
    eps = float(np.finfo(float).eps)
    gap = sets.slack(c) / np.maximum(1.0, np.abs(c))
    held = np.flatnonzero((lb == ub) | (gap <= np.sqrt(eps)))
    d1 = run.problem.sizes[0]

    def cone(R1: Any) -> Any:
        out = []
        for i in held:
            a = J[i, :d1] + J[i, d1:] @ R1
            if lb[i] == ub[i]:
                out += [a, -a]
            elif upper[i]:
                out.append(a)
            else:
                out.append(-a)
        return np.array(out) if out else np.zeros((0, d1))

    return cone, int(held.size)


def _top_cone(x: Any, box: Any) -> Any:
    """Rows ``a`` (``a dx <= 0``) of level 1's active bounds."""
    if box is None:
        return np.zeros((0, x.size))
    lower = np.asarray(to_numpy(box[0]), dtype=float)
    upper = np.asarray(to_numpy(box[1]), dtype=float)
    size = np.maximum(1.0, np.abs(x))
    rows = []
    for i in range(x.size):
        if np.isfinite(lower[i]) and x[i] - lower[i] <= 1e-10 * size[i]:
            row = np.zeros(x.size)
            row[i] = -1.0
            rows.append(row)
        if np.isfinite(upper[i]) and upper[i] - x[i] <= 1e-10 * size[i]:
            row = np.zeros(x.size)
            row[i] = 1.0
            rows.append(row)
    return np.array(rows) if rows else np.zeros((0, x.size))


def _shortest(linprog: Any, value: float, direction: Any, g: Any, A: Any) -> Any:
    """The direction of least 1-norm in the piece's cone with nearly the best slope
    (``g^T dx <= 0.99 value``): the LP's vertex may move coordinates the slope does not need
    (off a line of kinks, where a step then rises to second order)."""
    d1 = direction.size
    # variables (dx, t), |dx_i| <= t_i <= 1: minimize sum(t)
    eye = np.eye(d1)
    A_ub = np.vstack([
        np.hstack([A, np.zeros((A.shape[0], d1))]),
        np.hstack([g[None, :], np.zeros((1, d1))]),
        np.hstack([eye, -eye]),
        np.hstack([-eye, -eye]),
    ])  # fmt: skip
    b_ub = np.concatenate([np.zeros(A.shape[0]), [0.99 * value], np.zeros(2 * d1)])
    cost = np.concatenate([np.zeros(d1), np.ones(d1)])
    bounds = [(-1.0, 1.0)] * d1 + [(0.0, 1.0)] * d1
    lp = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds)
    return np.asarray(lp.x[:d1], dtype=float) if lp.status == 0 else direction


def _only_zero(linprog: Any, A: Any, d1: int) -> bool:
    """Whether ``{dx: A dx <= 0} = {0}``: exactly when the rows of ``A`` positively span
    ``R^d1``, that is, they span it and some strictly positive combination of them is zero
    (one feasibility LP, ``lambda >= 1``, ``A^T lambda = 0``)."""
    if A.shape[0] == 0 or np.linalg.matrix_rank(A) < d1:
        return False
    m = A.shape[0]
    lp = linprog(np.zeros(m), A_eq=A.T, b_eq=np.zeros(d1), bounds=[(1.0, None)] * m)
    return bool(lp.status == 0)


def _curved_up(run: Any, pieces: Any, piece: Piece, g: Any, point: Any, tol: float) -> bool:
    """The piece's reduced Hessian of ``F_1`` is positive definite on ``{dx: g^T dx = 0}``
    (central differences of its one-sided hypergradient along a basis of that subspace)."""
    x = np.asarray(to_numpy(point.x), dtype=float)
    d1 = x.size
    norm = float(np.linalg.norm(g))
    if norm > tol:
        basis = np.linalg.svd(g[None, :])[2][1:].T  # orthonormal, orthogonal to g
    else:
        basis = np.eye(d1)
    if basis.shape[1] == 0:
        return True
    xp = run.xp
    h = float(np.finfo(float).eps) ** (1.0 / 3.0) * max(1.0, float(np.max(np.abs(x))))
    columns = []
    for b in basis.T:
        sides = []
        for sign in (1.0, -1.0):
            moved = xp.asarray(x + sign * h * b, dtype=point.state.xs[0].dtype)
            got = pieces.moved((moved,), piece, maxiter=20)
            if got is None:
                return False
            xs, G, R = got
            grad = np.asarray(to_numpy(run.oracles.grad(1, xs)), dtype=float)
            sides.append(_one_sided(run, grad, G, R))
        columns.append((sides[0] - sides[1]) / (2.0 * h))
    H = basis.T @ np.array(columns).T
    H = 0.5 * (H + H.T)
    eigenvalues = np.linalg.eigvalsh(H)
    size = max(float(np.max(np.abs(eigenvalues))), tol, 1e-300)
    return bool(eigenvalues.min() > math.sqrt(float(np.finfo(float).eps)) * size)


ENDINGS = (Status.SUCCESS, Status.SMALL_STEP, Status.LINE_SEARCH_FAILED)
MAX_KINK_STEPS = 5  # optimizer restarts past kinks in one run
MAX_KINK_WALK = 50  # steps from kink to kink (along a line of kinks) in one run


def past_kinks(run: Any, loop: Any, restart: Any, box: Any) -> Any:
    """Examine the kink where ``loop`` stopped and move on while a piece descends: a step
    that lands on a kink again (a kink along a line or surface, where the optimizer's own
    steps zig-zag) is followed by the next examination there, up to `MAX_KINK_WALK` steps;
    one that leaves the kinks restarts the optimizer (``restart(x1, loop)``, at most
    `MAX_KINK_STEPS` times). Returns the last loop, with its `Verdict` as ``loop.kink``."""
    restarts = walked = 0
    while True:
        point = loop.point
        if point is None or loop.status not in ENDINGS:
            return loop
        if not run.engine.constraint_report(point.state)["degenerate"]:
            return loop
        verdict = examine_kink(run, point, box, slope_tol=loop.target)
        if verdict is None:
            return loop
        loop.kink = verdict
        if verdict.certified or verdict.direction is None:
            return loop
        if restarts == MAX_KINK_STEPS or walked == MAX_KINK_WALK:
            loop.kink = Verdict(
                False, f"{verdict.note}: not followed ({restarts} restarts and {walked} "
                "steps along kinks already)",
            )  # fmt: skip
            return loop
        moved = _descend(run, loop, verdict)
        if moved is None:
            return loop
        if run.engine.constraint_report(moved.state)["degenerate"]:
            loop.walk(moved)
            walked += 1
            continue
        loop = restart(moved.x, loop)
        restarts += 1


def _descend(run: Any, loop: Any, verdict: Verdict) -> Any:
    """The evaluated point along the descent direction: the secant step on its slope where
    that lowers the slope and not ``F_1``'s value beyond rounding, else an Armijo decrease of
    ``F_1`` (None when ``F_1`` has no value callable or no step decreases it)."""
    point = loop.point
    found: dict[str, Any] = {}

    def trial_value(trial: Any) -> tuple[Any, float | None]:
        trial = loop.project(trial)
        try:
            moved = loop.evaluate(trial)
        except NestoptError:
            return trial, None
        found["point"] = moved
        return trial, moved.fun

    moved = _secant_step(run, loop, verdict)  # a Newton step along the direction, first
    if moved is not None:
        return moved
    if armijo_step(run.xp, point, verdict, trial_value) is not None:
        return found["point"]
    return None


def _secant_step(run: Any, loop: Any, verdict: Verdict) -> Any:
    """The step that zeroes the slope along the direction, from its value here and at a
    probe (the slope is linear along a quadratic piece): Newton along a line of kinks, where
    ``F_1``'s decreases soon fall below its rounding. Taken where ``F_1`` does not rise
    beyond rounding and the slope's size halves; None otherwise."""
    point, xp = loop.point, run.xp
    if point.fun is None:
        return None
    x = point.x
    direction = xp.asarray(verdict.direction, dtype=x.dtype)
    eps = float(xp.finfo(x.dtype).eps)
    s0 = verdict.slope

    def at(t: float) -> Any:
        try:
            return loop.evaluate(loop.project(x + t * direction))
        except NestoptError:
            return None

    probe = math.sqrt(eps) * max(1.0, max_abs(xp, x))
    ahead = at(probe)
    if ahead is None:
        return None
    s1 = float(ahead.grad @ direction)
    if not s1 > s0:  # no positive curvature along the direction: no zero to aim at
        return None
    moved = at(probe * (-s0) / (s1 - s0))
    if moved is None or moved.fun is None:
        return None
    rises = moved.fun > point.fun + 1e3 * eps * max(1.0, abs(point.fun))
    if rises or not abs(float(moved.grad @ direction)) <= 0.5 * abs(s0):
        return None
    return moved


def armijo_step(xp: Any, point: Any, verdict: Verdict, trial_value: Any) -> Any:
    """``x + t d`` along ``verdict``'s direction from ``point`` (``t`` halved from ``0.1
    max(1, |x|)``) where ``trial_value(x_t) -> (x_t', F_1 or None)`` shows an Armijo
    decrease of ``F_1``; None where ``F_1`` has no value or no step decreases it. ``x_t'``
    is the trial as moved (projected) by ``trial_value``; None for ``F_1`` means refused
    (infeasible, or a level below failed)."""
    if point.fun is None:
        return None
    x = point.x
    direction = xp.asarray(verdict.direction, dtype=x.dtype)
    t = 0.1 * max(1.0, max_abs(xp, x))
    for _ in range(40):
        trial, fun = trial_value(x + t * direction)
        if fun is not None and fun <= point.fun + 1e-4 * t * verdict.slope:
            return trial
        t *= 0.5
    return None
