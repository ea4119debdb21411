"""The response-curvature term of DESIGN section 3, and what each mode computes.

For level ``j`` the exact reduced Hessian subtracts ``T_{j+1}(x, v)``, the
derivative of level ``j+1``'s Hessian along ``v = (0, c_{j+1} nu)``, where
``nu`` is level ``j+1``'s adjoint for level ``j``'s gradient. The term is
exact when levels ``j+2..n`` are quadratic (their responses are then affine
and their own curvature terms vanish); ``curvature='exact'`` therefore needs
levels ``4..n`` declared quadratic.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, device

__all__ = [
    "CURVATURES",
    "NEWTON_CURVATURES",
    "term_is_exact",
    "affine_response",
    "describe_exactness",
    "third_order_rows",
    "directional_difference",
]

CURVATURES = ("exact", "first_order")
NEWTON_CURVATURES = ("best", "same")


def affine_response(level: Any) -> bool:
    """A level whose response is affine in the upper variables (on a fixed active set):
    declared quadratic, and constrained (if at all) by bounds and linear rows only."""
    if not level.quadratic:
        return False
    return all(
        type(c).__name__ == "LinearConstraint" or getattr(c, "linear", False)
        for c in level.constraints
    )


def term_is_exact(problem: Any, j: int) -> bool:
    """Whether the curvature term of level ``j`` (from level ``j+1``) is exact.

    It is zero when level ``j+1``'s response is affine; it is exact when the
    responses of levels ``j+2..n`` are.
    """
    return all(affine_response(problem.levels[k - 1]) for k in range(j + 2, problem.n + 1))


def term_is_zero(problem: Any, j: int) -> bool:
    """Levels ``j+1..n`` with affine responses: no term at level ``j``."""
    return all(affine_response(problem.levels[k - 1]) for k in range(j + 1, problem.n + 1))


def describe_exactness(problem: Any, curvature: str) -> str:
    """What ``curvature`` computes on ``problem``, in words; raises where it cannot.

    For ``curvature='exact'`` the term of level ``k`` needs the third
    derivatives of ``f_{k+1}`` (``hess_dir`` or a central difference of its
    ``hess``) and, beyond that, derivatives of order ``n - k + 2`` unless the
    levels ``k+2..n`` are quadratic. nestopt computes the exact term when
    levels ``4..n`` are declared quadratic, and refuses otherwise.
    """
    n = problem.n
    if curvature == "first_order":
        return (
            "first order: the response-curvature terms S_k are dropped; exact when every "
            "lower response is affine in the upper variables (e.g. quadratic lower levels)"
        )
    if n == 2:
        return "exact: two levels have no response-curvature term"
    not_quadratic = [k for k in range(4, n + 1) if not affine_response(problem.levels[k - 1])]
    if not_quadratic:
        raise NotImplementedError(
            f"curvature='exact' for {n} levels needs derivatives of order up to {n} of the "
            "lower objectives, which Hessian oracles do not give, unless levels 4.."
            f"{n} are quadratic; level(s) {', '.join(map(str, not_quadratic))} are not "
            "declared quadratic (Level(..., quadratic=True)). Use curvature='first_order' "
            "(exact when every lower response is affine)"
        )
    parts = []
    for k in range(2, n):
        below = problem.levels[k]
        if affine_response(below):
            source = f"zero (level {k + 1} is quadratic)"
        elif below.hess_dir is not None:
            source = f"from hess_dir of level {k + 1}"
        else:
            source = (
                f"from a central difference of level {k + 1}'s hess "
                "(truncation error O(h^2) with h = eps^(1/3) relative)"
            )
        parts.append(f"term of level {k} {source}")
    return "exact: " + "; ".join(parts)


def third_order_rows(
    oracles: Any, i: int, xs: tuple[Any, ...], v: Any, *, start: int, fd_step: float | None
) -> Any:
    """Rows ``start:D`` of ``T_i(x, v) = d/dt hess f_i(x + t v)``: ``hess_dir`` or a difference.

    The first Hessian of the difference is copied before the second call (a
    callable may reuse its output buffer).
    """
    xp = oracles.xp
    if oracles.has(i, "hess_dir"):
        return oracles.hess_dir(i, xs, v, start=start)
    out = directional_difference(
        lambda ys, keep: oracles.hess(i, ys, start=start, keep=keep), xs, v, fd_step
    )
    if out is None:
        dim = v.shape[0]
        return xp.zeros((dim - start, dim), dtype=v.dtype, device=device(v))
    return out


def directional_difference(
    evaluate: Any, xs: tuple[Any, ...], v: Any, fd_step: float | None
) -> Any | None:
    """``d/dt evaluate(x + t v)`` at ``t = 0`` by the central difference
    ``(evaluate(x + h v) - evaluate(x - h v)) / 2h``; None when ``v = 0``.

    ``h`` is ``eps**(1/3)`` (or ``fd_step``) relative to the size of ``x``,
    divided by the size of ``v``: the truncation error is then ``O(h^2)``
    and the rounding error ``O(eps / h)``, balanced. ``evaluate(ys, keep)``
    takes the per-level points and whether its output must survive the next
    call (the user's callable may reuse its output buffer).
    """
    xp = array_namespace(v)
    vmax = float(xp.max(xp.abs(v)))
    if vmax == 0.0:
        return None
    x = xp.concat(list(xs))
    eps = float(xp.finfo(v.dtype).eps)
    rel = fd_step or eps ** (1.0 / 3.0)
    size = float(xp.max(xp.abs(x)))
    h = rel * (size if size > 0.0 else 1.0) / vmax
    cuts = [0]
    for x_k in xs:
        cuts.append(cuts[-1] + x_k.shape[0])

    def split(y: Any) -> tuple[Any, ...]:
        return tuple(y[cuts[k] : cuts[k + 1]] for k in range(len(xs)))

    plus = evaluate(split(x + h * v), True)
    minus = evaluate(split(x - h * v), False)
    return (plus - minus) / (2.0 * h)
