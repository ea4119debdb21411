"""The ridge losses of the data-poisoning problems: values, gradients, Hessians and their
directional derivatives in ``(lam, [P,] theta)``, written against the array API."""

from __future__ import annotations

from typing import Any

from .._levels.problem import Level

__all__ = ["RidgeFit"]


class RidgeFit:
    """Derivatives of the training loss and the ridge term in ``(lam, [P,] theta)``.

    ``sign * |r|^2 / (2 n)`` plus, for the learner, the ridge term and, for
    the attacker, ``penalty / 2 ||P||^2``; blocks are returned as a nested
    list in the level order ``lam, P, theta`` (``lam, theta`` without ``P``).
    """

    def __init__(self, X: Any, y: Any, m: int, attacker: bool) -> None:
        self.X, self.y, self.m = X, y, m
        self.n, self.p = X.shape
        self.attacker = attacker
        self.n_levels = 3 if attacker else 2

    def _parts(self, xs: tuple[Any, ...]) -> tuple[Any, Any, Any, Any, Any]:
        import array_api_compat

        xp = array_api_compat.array_namespace(*xs)
        lam, theta = xs[0], xs[-1]
        P = xp.reshape(xs[1], (self.n, self.p)) if self.attacker else None
        A = self.X if P is None else self.X + P
        return xp, lam, P, theta, A

    def level(self, *, sign: float, penalty: float, size: int, name: str) -> Level:
        terms = _RidgeTerms(self, sign, penalty)
        return Level(
            grad=terms.grad,
            hess=terms.hess,
            value=terms.value,
            hess_dir=terms.hess_dir,
            size=size,
            name=name,
        )

    def _lam_lam(self, xp: Any, w: Any) -> Any:
        """``(m, m)`` block from per-feature terms ``w``: their sum, or their diagonal."""
        if self.m == 1:
            return xp.reshape(xp.sum(w), (1, 1))
        return _diag(xp, w)

    def _lam_theta(self, xp: Any, w: Any) -> Any:
        """``(m, p)`` block from per-feature terms ``w``: one row, or their diagonal."""
        if self.m == 1:
            return xp.reshape(w, (1, self.p))
        return _diag(xp, w)

    def _P_theta(self, xp: Any, A: Any, theta: Any, r: Any) -> Any:
        """``d (r_i theta_j) / d theta_l = A_il theta_j + r_i delta_jl``, as ``(n p, p)``."""
        n, p = self.n, self.p
        eye = xp.eye(p, dtype=A.dtype, device=_device(A))
        block = A[:, None, :] * theta[None, :, None] + r[:, None, None] * eye[None, :, :]
        return xp.reshape(block, (n * p, p))


class _RidgeTerms:
    """One level's callables: ``sign * |r|^2 / (2 n)``, the ridge term when ``sign > 0``,
    and ``penalty / 2 ||P||^2``."""

    def __init__(self, fit: RidgeFit, sign: float, penalty: float) -> None:
        self.fit = fit
        self.sign = sign
        self.penalty = penalty
        self.ridge = sign > 0
        self.iP = 1 if fit.attacker else None  # the attacker's level, when there is one
        self.it = fit.n_levels - 1

    def value(self, *xs: Any) -> Any:
        fit, sign = self.fit, self.sign
        xp, lam, P, theta, A = fit._parts(xs)
        r = A @ theta - fit.y
        out = sign * (r @ r) / (2.0 * fit.n)
        if self.ridge:
            out = out + 0.5 * xp.sum(xp.exp(lam) * theta**2)
        if self.penalty:
            out = out + 0.5 * self.penalty * xp.sum(P * P)
        return out

    def grad(self, *xs: Any) -> Any:
        fit, sign = self.fit, self.sign
        n, p = fit.n, fit.p
        xp, lam, P, theta, A = fit._parts(xs)
        r = A @ theta - fit.y
        g_theta = sign * (A.T @ r) / n
        g_lam = xp.zeros_like(lam)
        if self.ridge:
            e = xp.exp(lam)
            g_theta = g_theta + e * theta
            g_lam = 0.5 * e * theta**2
            if fit.m == 1:
                g_lam = xp.reshape(xp.sum(g_lam), (1,))
        out = [g_lam, g_theta]
        if fit.attacker:
            g_P = sign * (r[:, None] * theta[None, :]) / n
            if self.penalty:
                g_P = g_P + self.penalty * P
            out.insert(1, xp.reshape(g_P, (n * p,)))
        return tuple(out)

    def hess(self, *xs: Any) -> Any:
        fit, sign, iP, it = self.fit, self.sign, self.iP, self.it
        n, p = fit.n, fit.p
        xp, lam, P, theta, A = fit._parts(xs)
        r = A @ theta - fit.y
        blocks: list[list[Any]] = [[None] * fit.n_levels for _ in range(fit.n_levels)]
        H_tt = sign * (A.T @ A) / n
        if self.ridge:
            e = xp.exp(lam)
            H_tt = H_tt + _diag(xp, e * xp.ones_like(theta))
            blocks[0][0] = fit._lam_lam(xp, 0.5 * e * theta**2)
            blocks[0][it] = fit._lam_theta(xp, e * theta)
            blocks[it][0] = blocks[0][it].T
        blocks[it][it] = H_tt
        if iP is not None:
            H_PP = sign * _kron_eye(xp, n, theta[:, None] * theta[None, :]) / n
            if self.penalty:
                H_PP = H_PP + self.penalty * xp.eye(n * p, dtype=P.dtype, device=_device(P))
            blocks[iP][iP] = H_PP
            blocks[iP][it] = sign * fit._P_theta(xp, A, theta, r) / n
            blocks[it][iP] = blocks[iP][it].T
        return blocks

    def hess_dir(self, *args: Any) -> Any:
        fit, sign, iP, it = self.fit, self.sign, self.iP, self.it
        n, p, m = fit.n, fit.p, fit.m
        *xs, v = args
        xp, lam, P, theta, A = fit._parts(tuple(xs))
        v_lam, v_theta = v[:m], v[v.shape[0] - p :]
        blocks: list[list[Any]] = [[None] * fit.n_levels for _ in range(fit.n_levels)]
        dr = A @ v_theta
        dH_tt = None
        if iP is not None:
            v_P = xp.reshape(v[m : m + n * p], (n, p))
            dr = dr + v_P @ theta
            dH_tt = sign * (v_P.T @ A + A.T @ v_P) / n
            dtt = theta[:, None] * v_theta[None, :]
            blocks[iP][iP] = sign * _kron_eye(xp, n, dtt + dtt.T) / n
            moved = xp.reshape(v_P[:, None, :] * theta[None, :, None], (n * p, p))
            blocks[iP][it] = sign * (fit._P_theta(xp, A, v_theta, dr) + moved) / n
            blocks[it][iP] = blocks[iP][it].T
        if self.ridge:
            e = xp.exp(lam)
            ridge_dir = _diag(xp, e * v_lam * xp.ones_like(theta))
            dH_tt = ridge_dir if dH_tt is None else dH_tt + ridge_dir
            blocks[0][0] = fit._lam_lam(xp, e * (0.5 * v_lam * theta**2 + theta * v_theta))
            blocks[0][it] = fit._lam_theta(xp, e * (v_lam * theta + v_theta))
            blocks[it][0] = blocks[0][it].T
        blocks[it][it] = dH_tt
        return blocks


def _diag(xp: Any, w: Any) -> Any:
    """The diagonal matrix of a vector (the standard has no ``diag``)."""
    return w[:, None] * xp.eye(w.shape[0], dtype=w.dtype, device=_device(w))


def _kron_eye(xp: Any, n: int, M: Any) -> Any:
    """``kron(I_n, M)`` for a ``(p, p)`` matrix ``M``."""
    p = M.shape[0]
    eye = xp.eye(n, dtype=M.dtype, device=_device(M))
    return xp.reshape(eye[:, None, :, None] * M[None, :, None, :], (n * p, n * p))


def _device(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)
