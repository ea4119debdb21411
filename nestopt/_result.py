"""Result objects: dicts with attribute access, in the manner of SciPy's."""

from __future__ import annotations

from typing import Any

__all__ = ["Result", "BestResponse", "SolveResult"]


class Result(dict[str, Any]):
    """A dict whose keys are also attributes, with a readable repr."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no field {name!r}; fields: {', '.join(self)}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        width = max(len(key) for key in self) + 1
        lines = []
        for key, value in self.items():
            text = _short(value).replace("\n", "\n" + " " * (width + 2))
            lines.append(f"{key.rjust(width)}: {text}")
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def _short(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0 and _size(shape) > 6:
        return f"<array shape={tuple(shape)} dtype={value.dtype}>"
    if isinstance(value, dict) and len(repr(value)) > 200:
        return "{" + ", ".join(f"{k!r}: ..." for k in value) + "}"
    if isinstance(value, (list, tuple)) and len(repr(value)) > 200:
        return f"<{type(value).__name__} of {len(value)} items>"
    return repr(value)


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for n in shape:
        size *= n
    return size


class BestResponse(Result):
    """The lower levels solved at a point, with every derivative computed there.

    Attributes
    ----------
    hypergrad : array (d_1,)
        Gradient of the top-level value function ``F_1`` at ``xs[0]``.
    xs : tuple of arrays
        ``x_1`` as given and the solved levels ``2..n``.
    jacobians : dict {k: array (d_k, s_{k-1})} or None
        Best-response Jacobians ``G_k = dx_k*/dx_<k`` for ``k = 2..n``
        (``None`` for ``method='itd'``).
    sensitivity : dict {k: array (d_k, d_1)}
        Total derivative ``dx_k*/dx_1`` of each lower level's solution.
    fun : float or None
        ``f_1`` at the solution, when level 1 has a ``value``.
    nit : int
        Lower-level iterations in all (Newton steps, or unrolled steps).
    level_nit : tuple of int
        The same per level (0 for level 1).
    level_solves : tuple of int
        Solves started per level.
    factorizations : tuple of int
        Factorizations per level (reused factors are not counted).
    krylov : dict or None
        For matrix-free levels: ``iterations`` (Krylov iterations per level,
        Newton steps and Jacobian solves together) and ``residual`` (the worst
        relative residual reached per level); None when no level used one.
    nfev : dict
        Calls of each user callable per level.
    method, curvature : str
        How the derivatives were computed.
    exactness : str
        What ``curvature`` computed on this problem, in words.
    notes : list of str
        Precision notes (a level that stopped at rounding above its tol).
    multipliers : dict {k: array (m_k,)}
        Per constrained level: one multiplier per constraint row and bound,
        in the sign of ``L_k = f_k + lambda^T c``: ``<= 0`` at an active lower
        bound, ``>= 0`` at an active upper bound, 0 where inactive.
    active : dict {k: tuple of str}
        Per constrained level: the labels of its active rows
        (``'linear[0][1]'``, ``'<name>[0]'``, ``'bounds[2]'``).
    weakly_active : dict {k: tuple of str}
        Per constrained level (the same keys as ``active``): rows at their
        bound with a zero multiplier, ``()`` when none (degenerate: the
        Jacobian returned is that of the piece where they are inactive).
    backend : str
        The backend's name, as `get_backend` spells it.
    """


class SolveResult(Result):
    """The outcome of `nestopt.solve`; see the solving guide for every field.

    ``success`` is true only for ``status == Status.SUCCESS``: the projected
    hypergradient met ``gtol``. A small step, ``maxiter``, ``max_time`` and a
    callback are stops, not successes.
    """
