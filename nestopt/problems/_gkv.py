"""The trilevel test problems of Giovannelli, Kent & Vicente: a quadratic and a quartic.

Both follow the classes ``Quadratic`` and ``Quartic`` of the authors' code
(GitHub repository GdKent/TSG, file ``tsg/functions.py``), with the
identity blocks used there. Levels 1 and 2 have the same form in both::

    f_1 = h_x.x + h_y.y + h_z.z + x.x / 2 + x.y + x.z
    f_2 = H_yy y.y / 2 - y.x - y.z
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend.selection import get_backend
from .._levels.problem import Level
from ._base import KnownProblem
from ._quad import _quadratic_level

__all__ = ["gkv_quadratic", "gkv_quartic"]

# Hessians per coordinate, variables ordered (x, y, z); a level on d coordinates
# per variable has the Hessian kron(Q, I_d).
_UPPER = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
_LOWER_QUADRATIC = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [-1.0, -1.0, 1.0]])


def _middle(H_yy: float) -> np.ndarray:
    return np.array([[0.0, -1.0, 0.0], [-1.0, H_yy, -1.0], [0.0, -1.0, 0.0]])


def gkv_quadratic(d: int = 50, seed: int = 42, *, backend: Any = None) -> KnownProblem:
    """The quadratic trilevel problem of Giovannelli, Kent & Vicente.

    Class ``Quadratic`` (deterministic configurations) of ``tsg/functions.py``
    in the authors' repository GdKent/TSG: three levels with variables
    ``x, y, z`` in ``R^d`` and identity blocks, ``H_yy = 4``. The authors run
    ``d = 1`` ("Quadratic1") and ``d = 50`` ("Quadratic2") with seed 42.

    Parameters
    ----------
    d : int, default 50
        Size of each level's variable; ``D = 3 d``.
    seed : int, default 42
        Seed of ``numpy.random.RandomState`` (the legacy Mersenne Twister,
        as ``numpy.random.seed`` in the original), which draws in this order
        ``h_x, h_y, h_z`` uniform on ``[0, 10)`` and then the start ``x0, y0,
        z0`` uniform on ``[0, 20)`` (as ``20 * U[0, 1)``), each of shape
        ``(d,)``: the same numbers as the original for the same ``d`` and
        seed.
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('upper', 'middle', 'lower')`` of sizes ``(d, d, d)``, all
        declared quadratic (their ``hess_dir`` is zero); ``x0`` is the drawn
        start; ``solution`` is the closed form of the Notes; ``data`` holds
        ``h_x, h_y, h_z`` (NumPy arrays), ``d``, ``seed`` and
        ``optimal_value``.

    Notes
    -----
    The three levels, with ``a.b`` the dot product over the ``d`` coordinates:

        f_1(x, y, z) = h_x.x + h_y.y + h_z.z + x.x / 2 + x.y + x.z
        f_2(x, y, z) = 2 y.y - y.x - y.z            (H_yy / 2 = 2)
        f_3(x, y, z) = z.z / 2 - z.x - z.y

    Backward induction (every response is affine):

    - level 3: ``z*(x, y) = x + y`` (Hessian in ``z``: ``I``);
    - level 2: ``f_2(x, y, x + y) = y.y - 2 y.x``, curvature ``2 I``, so
      ``y*(x) = x`` and ``z*(x) = 2 x``;
    - level 1: ``F_1(x) = (h_x + h_y + 2 h_z).x + 7 x.x / 2``, curvature
      ``7 I``.

    The unique solution is

        x* = -(h_x + h_y + 2 h_z) / 7,   y* = x*,   z* = 2 x*,

    with ``F_1* = -|h_x + h_y + 2 h_z|^2 / 14``, as ``x_opt`` of the
    original. The coordinates are independent: the problem is ``d`` copies
    of a scalar trilevel problem.

    Examples
    --------
    >>> import numpy as np
    >>> from nestopt.problems import gkv_quadratic
    >>> p = gkv_quadratic(d=3, backend="numpy")
    >>> h = p.data
    >>> x_star = -(h["h_x"] + h["h_y"] + 2 * h["h_z"]) / 7
    >>> bool(np.allclose(p.solution[0], x_star) and np.allclose(p.solution[2], 2 * x_star))
    True
    """
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be a positive int, got {d!r}")
    # The legacy generator, not default_rng: it reproduces the authors' instances.
    rng = np.random.RandomState(seed)
    h_x, h_y, h_z = (rng.uniform(0.0, 10.0, d) for _ in range(3))
    start = [rng.uniform(0.0, 1.0, d) * 20.0 for _ in range(3)]
    chosen = get_backend(backend)
    dtype = chosen.xp.float64

    def on_backend(a: np.ndarray) -> Any:
        return chosen.asarray(a, dtype=dtype, copy=True)

    eye = np.eye(d)
    zero = np.zeros(3 * d)
    terms = (
        (_UPPER, np.concatenate([h_x, h_y, h_z]), "upper"),
        (_middle(4.0), zero, "middle"),
        (_LOWER_QUADRATIC, zero, "lower"),
    )
    levels = [
        _quadratic_level(on_backend(np.kron(Q, eye)), on_backend(c), d, name)
        for Q, c, name in terms
    ]
    a = h_x + h_y + 2.0 * h_z
    x_star = -a / 7.0
    return KnownProblem(
        levels,
        x0=tuple(on_backend(s) for s in start),
        solution=tuple(on_backend(s) for s in (x_star, x_star, 2.0 * x_star)),
        data={
            "h_x": h_x,
            "h_y": h_y,
            "h_z": h_z,
            "d": d,
            "seed": seed,
            "optimal_value": float(-(a @ a) / 14.0),
        },
        description=f"gkv_quadratic(d={d}, seed={seed})",
    )


def gkv_quartic(*, backend: Any = None) -> KnownProblem:
    """The quartic trilevel problem of Giovannelli, Kent & Vicente (scalar levels).

    Class ``Quartic``, configuration 1 ("Quartic1"), of ``tsg/functions.py``
    in the authors' repository GdKent/TSG: the quadratic upper levels of
    `gkv_quadratic` with ``d = 1``, ``h_x = h_y = h_z = 1`` and ``H_yy = 3``,
    over a quartic lowest level whose minimizer is not unique.

    Parameters
    ----------
    backend : str, optional
        Backend of the problem's arrays (default: the one in force).

    Returns
    -------
    KnownProblem
        Levels ``('upper', 'middle', 'lower')`` of size 1 each; the upper two
        are quadratic, the lowest brings its own ``hess_dir``; ``x0 =
        (-0.4, -0.2, -0.6)``, the original's start; ``solution = (-6/11,
        -12/11, -18/11)``; ``data`` holds the constants and the branch.

    Notes
    -----
    The three levels:

        f_1(x, y, z) = x + y + z + x^2 / 2 + x y + x z
        f_2(x, y, z) = 3 y^2 / 2 - y x - y z
        f_3(x, y, z) = (z^2 - z x - z y)^2 / 2 = z^2 (z - s)^2 / 2,  s = x + y.

    Branches of level 3, for fixed ``s``: ``f_3 >= 0`` vanishes exactly at
    ``z = 0`` and ``z = s``, so both are global minimizers; ``df_3/dz =
    z (z - s) (2 z - s)`` also vanishes at ``z = s / 2``, a local maximum
    (value ``s^4 / 32``). The second derivative

        d^2 f_3 / dz^2 = 6 z^2 - 6 s z + s^2 = 6 (z - s/2)^2 - s^2 / 2

    is ``s^2`` at both minimizers, ``-s^2 / 2`` at the maximum, and
    positive exactly where ``|z - s/2| > |s| / (2 sqrt(3))``. Each minimizer
    is therefore isolated and strongly convex in ``z`` while ``s != 0``;
    at ``s = 0`` the two merge into the degenerate minimum of ``z^4 / 2``.

    The original (its ``z_opt``) follows the branch ``z*(x, y) = x + y``, and
    its start lies on it (``-0.6 = -0.4 - 0.2``). On that branch
    ``f_2(x, y, x + y) = y^2 / 2 - 2 x y`` has curvature ``H_yy - 2 = 1``,
    so ``y*(x) = 2 x`` and ``z*(x) = 3 x``; then
    ``F_1(x) = 6 x + 11 x^2 / 2``, and

        x* = -6/11,   y* = -12/11,   z* = -18/11,   F_1* = -18/11,

    as ``x_opt`` of the original. For ``x`` between the start and ``x*``,
    ``s = x + y*(x) = 3 x`` stays in ``[-18/11, -1.2]``, away from the fold
    ``s = 0``.
    On the other branch, ``z = 0``, the responses are ``y*(x) = x / 3`` and
    the optimum is ``x = -4/5`` with ``F_1 = -8/15``, a larger value: a
    solver that starts a lower level near ``z = 0`` ends there.

    The original's configurations 2 and 3 (``x, y`` in ``R^5``, random ``h``,
    noisy gradients) have no closed-form optimum and are not provided.

    Examples
    --------
    >>> from nestopt.problems import gkv_quartic
    >>> p = gkv_quartic(backend="numpy")
    >>> [float(v[0]) for v in p.x0]
    [-0.4, -0.2, -0.6]
    >>> round(float(p.solution[0][0]) * 11, 12)
    -6.0
    """
    chosen = get_backend(backend)
    dtype = chosen.xp.float64

    def on_backend(a: Any) -> Any:
        return chosen.asarray(np.asarray(a, dtype=np.float64), dtype=dtype, copy=True)

    levels = [
        _quadratic_level(on_backend(_UPPER), on_backend(np.ones(3)), 1, "upper"),
        _quadratic_level(on_backend(_middle(3.0)), on_backend(np.zeros(3)), 1, "middle"),
        Level(
            grad=_quartic_grad,
            hess=_quartic_hess,
            value=_quartic_value,
            hess_dir=_quartic_hess_dir,
            size=1,
            name="lower",
        ),
    ]
    return KnownProblem(
        levels,
        x0=(on_backend([-0.4]), on_backend([-0.2]), on_backend([-0.6])),
        solution=(
            on_backend([-6.0 / 11.0]),
            on_backend([-12.0 / 11.0]),
            on_backend([-18.0 / 11.0]),
        ),
        data={"h": 1.0, "H_yy": 3.0, "branch": "z = x + y", "optimal_value": -18.0 / 11.0},
        description="gkv_quartic(): quartic lowest level, branch z = x + y",
    )


# f_3 = r^2 / 2 with the residual r = z (z - x - y). The Hessian of r is constant,
# so f_3's derivatives up to the third are products of r, grad r and that matrix:
#   grad f_3 = r grad r,   hess f_3 = grad r grad r^T + r R,
#   d/dt hess f_3(w + t v) = (R v) grad r^T + grad r (R v)^T + (grad r . v) R.
def _residual(x: Any, y: Any, z: Any) -> tuple[Any, Any, Any]:
    import array_api_compat

    xp = array_api_compat.array_namespace(x, y, z)
    r = z * (z - x - y)
    grad_r = xp.concat([-z, -z, 2.0 * z - x - y])
    R = xp.asarray(
        [[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [-1.0, -1.0, 2.0]],
        dtype=z.dtype,
        device=array_api_compat.device(z),
    )
    return r, grad_r, R


def _quartic_value(x: Any, y: Any, z: Any) -> Any:
    import array_api_compat

    r, _, _ = _residual(x, y, z)
    return array_api_compat.array_namespace(r).reshape(0.5 * r**2, ())


def _quartic_grad(x: Any, y: Any, z: Any) -> Any:
    r, grad_r, _ = _residual(x, y, z)
    return r * grad_r


def _quartic_hess(x: Any, y: Any, z: Any) -> Any:
    r, grad_r, R = _residual(x, y, z)
    return grad_r[:, None] * grad_r[None, :] + r * R


def _quartic_hess_dir(x: Any, y: Any, z: Any, v: Any) -> Any:
    import array_api_compat

    xp = array_api_compat.array_namespace(x, y, z, v)
    _, grad_r, R = _residual(x, y, z)
    Rv = R @ v
    return Rv[:, None] * grad_r[None, :] + grad_r[:, None] * Rv[None, :] + xp.sum(grad_r * v) * R
