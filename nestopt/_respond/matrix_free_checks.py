"""Is a matrix-free level's solution a strict minimum? Ritz values, a Lanczos probe, symmetry.

A level given by ``hvp`` has no factorization to prove its own block ``A``
positive definite, so nestopt collects evidence from the products it makes
anyway: every CG run builds the Lanczos matrix ``T_k`` of ``A`` on its
Krylov space (`nestopt._linalg.cg`), and a Ritz value of ``T_k`` at or below
``64 eps`` times the largest curvature seen proves that ``A`` is not
positive definite (or singular to rounding), whatever the scale of the
level. A CG run sees only the directions its right-hand side reaches: at a
saddle with zero gradient it makes no iteration at all. So when every CG run
at a solution was short (fewer than `PROBE_STEPS` iterations, or than the
level's size if that is smaller), a short
Lanczos run from a pseudo-random start probes the whole spectrum: its
smallest Ritz value approaches ``A``'s smallest eigenvalue from above within
a few steps when that eigenvalue is well separated. This is evidence, not a
proof (a direction of negative curvature that no right-hand side and no
probe reaches stays unseen), at a cost of at most `PROBE_STEPS` products.

An asymmetric ``hvp`` breaks CG in ways that look like negative curvature;
it is probed once per level object (``u^T H v`` against ``v^T H u``, two
products, as the dense path probes ``hess``) and reported as asymmetric.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import device

from .._backend.host import host_floats
from .._errors import SymmetryError, SymmetryWarning, warn_user
from .._levels.oracles import check_passed, mark_check_passed
from .._linalg.cg import CGRun, cg, lanczos_count_below, smallest_ritz

__all__ = ["CurvatureWatch", "PROBE_STEPS", "check_hvp_symmetry"]

PROBE_STEPS = 12
_RELATIVE_FLOOR = 64.0  # Ritz values below this many eps times the largest are "not positive"


class CurvatureWatch:
    """The Lanczos evidence gathered at one point of one matrix-free level."""

    def __init__(self, eps: float, size: int) -> None:
        self.eps = eps
        # A run of `size` iterations spans the whole space: a smaller level needs no more.
        self.enough = min(PROBE_STEPS, size)
        self.depth = 0  # the most iterations of one CG run (or probe) at this point
        self.worst: float | None = None  # the smallest curvature or Ritz value found too low
        self.probed = False

    def record(self, run: CGRun) -> None:
        """Take one CG run's Lanczos matrix (and a direction where it stopped, if any)."""
        self.depth = max(self.depth, run.iterations)
        if run.negative is not None:
            self._low(run.negative)
        if not run.diagonal:
            return
        largest = max(run.diagonal)
        sigma = _RELATIVE_FLOOR * self.eps * max(largest, 0.0)
        if not largest > 0.0 or lanczos_count_below(run.diagonal, run.offdiagonal, sigma) > 0:
            self._low(smallest_ritz(run.diagonal, run.offdiagonal))

    def record_curvature(self, curvature: float, largest: float) -> None:
        """A Rayleigh quotient seen outside CG (MINRES products), against the largest seen."""
        if not curvature > _RELATIVE_FLOOR * self.eps * max(largest, 0.0):
            self._low(curvature)

    def _low(self, value: float) -> None:
        self.worst = value if self.worst is None else min(self.worst, value)

    @property
    def failed(self) -> bool:
        return self.worst is not None

    @property
    def settled(self) -> bool:
        """Enough evidence to stop looking: a failure, a probe, or a long CG run."""
        return self.failed or self.probed or self.depth >= self.enough

    def probe(
        self, matvec: Any, size: int, like: Any, xp: Any, seed: int, mask: Any = None
    ) -> None:
        """A short Lanczos run (CG on a pseudo-random right-hand side) over ``A``'s spectrum
        (over the subspace where ``mask`` is 1, for an operator restricted to it)."""
        self.probed = True
        if size == 0:
            return
        index = xp.arange(size, dtype=like.dtype, device=device(like))
        # A hash of the index (no random generator in the array API): entries in
        # [-0.5, 0.5) with no structure a level's own directions would share.
        t = xp.sin(index * 12.9898 + 78.233 * (seed + 1)) * 43758.5453
        start = t - xp.floor(t) - 0.5
        if mask is not None:
            start = start * mask
        run = cg(matvec, start, rtol=0.0, maxiter=min(PROBE_STEPS, size), xp=xp)
        self.record(run)


def check_hvp_symmetry(nest: Any, j: int, xs: tuple[Any, ...]) -> None:
    """``u^T (H v) = v^T (H u)`` for level ``j``'s ``hvp``, once per level object and dtype."""
    oracles, xp = nest.oracles, nest.xp
    level = nest.problem.levels[j - 1]
    if not oracles.has(j, "hvp"):
        return
    dtype = xs[0].dtype
    if check_passed(level, 0, "hvp_symmetry", dtype):
        return
    dim = sum(nest.problem.sizes)
    index = xp.arange(dim, dtype=dtype, device=device(xs[0]))
    u = xp.sin(1.0 + 0.7 * index)
    v = 1.5 + xp.cos(2.0 + 1.3 * index)
    hv = xp.asarray(oracles.hvp(j, xs, v), copy=True)  # the callable may reuse its buffer
    hu = oracles.hvp(j, xs, u)
    gap, scale = host_floats(
        xp, xp.abs(u @ hv - v @ hu), xp.linalg.vector_norm(hv) + xp.linalg.vector_norm(hu)
    )
    tol = 1e3 * float(xp.finfo(dtype).eps) * max(scale * math.sqrt(dim), 1e-300)
    if not gap > tol:
        mark_check_passed(level, 0, "hvp_symmetry", dtype)
        return
    message = (
        f"{nest.problem.describe(j)}: hvp is not symmetric (|u^T (H v) - v^T (H u)| = "
        f"{gap:.3e} for probe vectors u, v, tolerance {tol:.1e}); a Hessian is symmetric, so "
        "the callable is wrong (conjugate gradients and the negative-curvature test assume "
        "symmetry): check it with nestopt.check_derivatives"
    )
    if oracles.symmetry == "warn":
        warn_user(message + "; nestopt uses its products as given", SymmetryWarning)
        mark_check_passed(level, 0, "hvp_symmetry", dtype)  # warn once per level object
        return
    raise SymmetryError(
        message + ". To use the products as given anyway, pass symmetry='warn'", level=j
    )
