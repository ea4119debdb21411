"""``jax_level`` and ``jax_constraint``: oracles from a function written in JAX."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import Level, NonlinearConstraint
from ._build import (
    Transforms,
    build_constraint,
    build_level,
    check_fun,
    describe,
    oracles,
)

__all__ = ["jax_constraint", "jax_level"]


def jax_level(
    fun: Callable[..., Any],
    size: int,
    *,
    name: str | None = None,
    quadratic: bool = False,
    hessian: str = "dense",
    jit: bool = True,
    bounds: Any = None,
    constraints: Sequence[Any] = (),
) -> Level:
    """A `nestopt.Level` whose derivatives JAX computes from the objective alone.

    Parameters
    ----------
    fun : callable
        ``fun(x1, ..., xn)``: the level's objective ``f_k`` as a scalar JAX
        function of every level's variable (1-d JAX arrays, top level first).
        It must be traceable by `jax.jit` and differentiable twice (three
        times for the third-order callables): ``jax.numpy`` operations, no
        NumPy calls on its arguments, no Python branches on their values.
    size : int
        ``d_k``, the length of this level's own variable.
    name : str, optional
        Shown in messages and reports.
    quadratic : bool, default False
        Passed to `nestopt.Level`: declares ``f_k`` quadratic.
    hessian : {'dense', 'hvp'}, default 'dense'
        ``'dense'`` builds every callable: ``value``, ``grad``, ``hess``
        (``jax.hessian``, forward over reverse), ``hess_dir`` (a
        ``jax.jvp`` of the Hessian), ``hess_rows`` (the rows as
        Hessian-vector products), ``hvp`` (a ``jax.jvp`` of ``jax.grad``)
        and ``hvp_dir`` (a ``jax.jvp`` of that). ``'hvp'`` builds a
        matrix-free level: ``value``, ``grad``, ``hvp`` and ``hvp_dir`` only,
        no ``(D, D)`` matrix is ever formed.
    jit : bool, default True
        Compile every callable with `jax.jit`. Each compiles on its first
        call and again for new input shapes or dtypes; ``jit=False`` runs
        eagerly (slower, but prints and debuggers work inside ``fun``).
    bounds, constraints : optional
        Passed to `nestopt.Level` (see `jax_constraint`).

    Returns
    -------
    nestopt.Level
        Its callables take and return arrays of the backend nestopt solves
        on (NumPy, CuPy, torch, ...), with flat layouts: gradients ``(D,)``,
        Hessians ``(D, D)``.

    Raises
    ------
    ImportError
        If JAX is not installed (``pip install "nestopt[jax]"``).
    TypeError
        When called with float64 arrays while JAX runs in 32-bit mode (see
        Notes), or when ``fun`` does not return a scalar.

    Notes
    -----
    **Conversions.** JAX arrays are not a nestopt backend, so every call
    converts its inputs to JAX and its output back, outside the compiled
    function:

    - NumPy inputs go straight into the compiled call, which puts them on
      JAX's CPU device (sharing an aligned buffer, copying otherwise); the
      output comes back as a read-only NumPy view of the JAX buffer
      (`numpy.asarray`, no copy).
    - GPU arrays (CuPy, torch on CUDA) cross by DLPack in both directions,
      without a copy, on the same device (this needs a CUDA build of JAX).
      Other CPU arrays (torch, array_api_strict) enter as NumPy views (by
      DLPack) and leave through one, by the backend's ``from_dlpack``.
    - JAX arrays pass through unchanged.

    On NumPy this costs about 2 µs per input array and under 1 µs for the
    output: 6-35 µs per call in the measurements of the "Autodiff oracles"
    docs page, where the derivatives themselves took from 13 µs (a gradient
    of 9 variables) to 5 ms (a Hessian of 300). Each callable compiles on
    its first call (0.2-0.4 s there).

    **float64.** nestopt solves in the dtype of the starting point, float64
    by default. JAX computes in float32 unless 64-bit mode is on, and would
    silently round float64 inputs. nestopt does not change this global JAX
    setting for you; a call with float64 arrays while it is off raises a
    `TypeError` that says how to turn it on, once, at the start of the
    program, before creating JAX arrays::

        import jax
        jax.config.update("jax_enable_x64", True)

    (or the environment variable ``JAX_ENABLE_X64=1``). Float32 problems
    run without it.

    Examples
    --------
    A lower level ``f_2 = (x_2 - x_1)^2 / 2``: its Hessian in ``(x_1, x_2)``
    is ``[[1, -1], [-1, 1]]``.

    >>> import jax, numpy as np
    >>> jax.config.update("jax_enable_x64", True)
    >>> import nestopt.autodiff
    >>> lower = nestopt.autodiff.jax_level(lambda x1, x2: 0.5 * ((x2 - x1) ** 2).sum(), size=1)
    >>> lower.hess(np.array([1.0]), np.array([0.0]))
    array([[ 1., -1.],
           [-1.,  1.]])
    """
    kinds = oracles(hessian)
    label = describe("jax_level", name)
    check_fun(fun, label)
    bridge = _Bridge(_import_jax("jax_level"), jit, label)
    return build_level(
        bridge,
        fun,
        label,
        kinds,
        size=size,
        name=name,
        quadratic=quadratic,
        bounds=bounds,
        constraints=constraints,
    )


def jax_constraint(
    fun: Callable[..., Any],
    lb: Any,
    ub: Any,
    *,
    name: str | None = None,
    jit: bool = True,
) -> NonlinearConstraint:
    """A `nestopt.NonlinearConstraint` ``lb <= fun(x1, ..., xn) <= ub`` differentiated by JAX.

    Parameters
    ----------
    fun : callable
        ``fun(x1, ..., xn)``: the ``m`` constraint values as a 1-d JAX array
        (a scalar counts as ``m = 1``), traceable as in `jax_level`.
    lb, ub : float or array_like of shape (m,)
        Bounds of ``fun``; equal entries make equalities.
    name : str, optional
        Shown in messages.
    jit : bool, default True
        Compile every callable with `jax.jit`.

    Returns
    -------
    nestopt.NonlinearConstraint
        With ``fun``, ``jac`` (``(m, D)``, `jax.jacrev`: one reverse pass per
        constraint), ``hess(x1, ..., xn, v) = sum_i v_i hess c_i`` (``(D, D)``,
        the Hessian of ``v @ c``) and ``hess_dir(x1, ..., xn, v, u)`` (its
        `jax.jvp` along ``u``), converting arrays as `jax_level` does.

    Examples
    --------
    The unit disc ``x_1^2 + x_2^2 <= 1``:

    >>> import jax, numpy as np
    >>> jax.config.update("jax_enable_x64", True)
    >>> import nestopt.autodiff
    >>> disc = nestopt.autodiff.jax_constraint(
    ...     lambda x1, x2: x1 @ x1 + x2 @ x2, lb=-np.inf, ub=1.0)
    >>> disc.jac(np.array([0.5]), np.array([2.0]))
    array([[1., 4.]])
    >>> disc.hess(np.array([0.5]), np.array([2.0]), np.array([3.0]))
    array([[6., 0.],
           [0., 6.]])
    """
    label = describe("jax_constraint", name)
    check_fun(fun, label)
    bridge = _Bridge(_import_jax("jax_constraint"), jit, label)
    return build_constraint(bridge, fun, lb, ub, label, name)


def _import_jax(adapter: str) -> Any:
    try:
        import jax
        import jax.dlpack
    except ImportError as exc:
        raise ImportError(
            f"nestopt.autodiff.{adapter} needs JAX, which could not be imported "
            f'({exc}); install it with: pip install "nestopt[jax]"'
        ) from exc
    return jax


_DLPACK_CPU = 1  # kDLCPU in DLPack's device enumeration


class _Bridge:
    """JAX's transforms, compilation, and the conversions at each callable's edge."""

    def __init__(self, jax: Any, jit: bool, label: str) -> None:
        import jax.numpy as jnp

        self.jax = jax
        self.jit = bool(jit)
        self.label = label
        # Host arrays go to JAX's CPU device. Where that is JAX's default device,
        # the compiled call copies NumPy arguments in itself, ten times faster
        # than an explicit device_put; otherwise (a GPU build of JAX) they are
        # placed on the CPU explicitly, never shipped to the GPU behind the user's back.
        try:
            cpu = jax.devices("cpu")[0]
        except RuntimeError:  # JAX_PLATFORMS excludes the CPU: only its default device is left
            cpu = None
        self.place_on = None if cpu is None or jax.default_backend() == "cpu" else cpu
        self.namespaces: dict[type, Any] = {}

        def split(z: Any, sizes: Sequence[int]) -> Any:
            return jnp.split(z, np.cumsum(sizes[:-1]).tolist())

        self.transforms = Transforms(
            grad=jax.grad,
            jvp=jax.jvp,
            hessian=jax.hessian,
            jacrev=jax.jacrev,
            vmap=jax.vmap,
            concat=jnp.concatenate,
            split=split,
            eye=lambda n, like: jnp.eye(n, dtype=like.dtype),
        )

    def to_jax(self, x: Any) -> Any:
        if isinstance(x, self.jax.Array):
            return x
        if not isinstance(x, np.ndarray):
            if x.__dlpack_device__()[0] != _DLPACK_CPU:
                return self.from_device(x)
            x = np.from_dlpack(x)  # a view; copying it in beats JAX's DLPack import
        # The compiled call takes it in itself (shared if aligned, else copied).
        return x if self.place_on is None else self.jax.device_put(x, self.place_on)

    def from_device(self, x: Any) -> Any:
        """An accelerator's array, shared by DLPack: zero copy, on the same device."""
        try:
            return self.jax.dlpack.from_dlpack(x)
        except Exception as exc:  # the error type depends on the JAX build and the device
            raise TypeError(
                f"{self.label} received a {type(x).__name__} on device "
                f"{x.__dlpack_device__()} (DLPack type, index) that JAX could not share "
                f"({exc}). GPU arrays need a JAX build for that GPU "
                '(pip install "jax[cuda12]"); or solve on the CPU'
            ) from exc

    def from_jax(self, out: Any, like: Any) -> Any:
        if isinstance(like, np.ndarray):
            return np.asarray(out)  # a read-only view of the JAX buffer, no copy
        if isinstance(like, self.jax.Array):
            return out
        kind = type(like)
        xp = self.namespaces.get(kind)
        if xp is None:
            import array_api_compat

            xp = self.namespaces[kind] = array_api_compat.array_namespace(like)
        if like.__dlpack_device__()[0] == _DLPACK_CPU:
            # Through the NumPy view: JAX's own DLPack export costs ~20 µs more.
            return xp.from_dlpack(np.asarray(out))
        return xp.from_dlpack(out)

    def check_dtype(self, x: Any) -> None:
        if str(getattr(x, "dtype", "")).rsplit(".", 1)[-1] == "float64":
            raise TypeError(
                f"{self.label} received float64 arrays, but JAX runs in 32-bit mode "
                "(jax_enable_x64 is off) and would round them to float32. Turn 64-bit JAX "
                'on once, at the start of the program: jax.config.update("jax_enable_x64", '
                "True) (or set JAX_ENABLE_X64=1); or solve in float32 (float32 starting "
                "points)"
            )

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        compiled = self.jax.jit(fn) if self.jit else fn
        config, to_jax, from_jax = self.jax.config, self.to_jax, self.from_jax

        def call(*args: Any) -> Any:
            if not config.jax_enable_x64:
                self.check_dtype(args[0])
            return from_jax(compiled(*[to_jax(a) for a in args]), args[0])

        call.__name__ = call.__qualname__ = fn.__name__
        return call

    def wrap_rows(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        # ``start`` is static: one compilation per distinct start (one per level).
        compiled = self.jax.jit(fn, static_argnums=0) if self.jit else fn
        config, to_jax, from_jax = self.jax.config, self.to_jax, self.from_jax

        def hess_rows(*args: Any) -> Any:
            *xs, start = args
            if not config.jax_enable_x64:
                self.check_dtype(xs[0])
            return from_jax(compiled(int(start), *[to_jax(x) for x in xs]), xs[0])

        return hess_rows
