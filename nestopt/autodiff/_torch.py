"""``torch_level`` and ``torch_constraint``: oracles from a function written in PyTorch."""

from __future__ import annotations

import warnings
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

__all__ = ["torch_constraint", "torch_level"]


def torch_level(
    fun: Callable[..., Any],
    size: int,
    *,
    name: str | None = None,
    quadratic: bool = False,
    hessian: str = "dense",
    bounds: Any = None,
    constraints: Sequence[Any] = (),
) -> Level:
    """A `nestopt.Level` whose derivatives `torch.func` computes from the objective alone.

    Parameters
    ----------
    fun : callable
        ``fun(x1, ..., xn)``: the level's objective ``f_k`` as a scalar
        torch function of every level's variable (1-d tensors, top level
        first). It must work under `torch.func` transforms: no in-place
        changes of its arguments, no ``.item()`` or Python branches on their
        values, and operations with forward-mode AD (``hess``, ``hvp`` and
        the third-order callables use ``torch.func.jvp``).
    size : int
        ``d_k``, the length of this level's own variable.
    name : str, optional
        Shown in messages and reports.
    quadratic : bool, default False
        Passed to `nestopt.Level`: declares ``f_k`` quadratic.
    hessian : {'dense', 'hvp'}, default 'dense'
        ``'dense'`` builds every callable: ``value``, ``grad``
        (``torch.func.grad``), ``hess`` (``torch.func.hessian``, forward over
        reverse), ``hess_dir`` (a ``torch.func.jvp`` of the Hessian),
        ``hess_rows`` (the rows as Hessian-vector products), ``hvp`` (a
        ``jvp`` of the gradient) and ``hvp_dir`` (a ``jvp`` of that).
        ``'hvp'`` builds a matrix-free level: ``value``, ``grad``, ``hvp`` and
        ``hvp_dir`` only.
    bounds, constraints : optional
        Passed to `nestopt.Level` (see `torch_constraint`).

    Returns
    -------
    nestopt.Level
        Its callables take and return arrays of the backend nestopt solves
        on, with flat layouts: gradients ``(D,)``, Hessians ``(D, D)``.

    Raises
    ------
    ImportError
        If PyTorch is not installed (``pip install "nestopt[torch]"``).
    TypeError
        When ``fun`` does not return a scalar.

    Notes
    -----
    **Conversions.** On the ``torch`` backend there are none: the callables
    receive nestopt's tensors, on their device, and return torch's results
    as they are. On other backends, inputs enter torch by DLPack
    (`torch.from_dlpack`) and outputs leave by ``Tensor.numpy()`` for NumPy
    and DLPack otherwise; none of these copies on the CPU, nor between CuPy
    and torch on one GPU. The remaining cost is a few microseconds of
    dispatch per array (see the "Autodiff oracles" docs page).

    The functions run eagerly (torch has no counterpart of ``jax.jit``
    here), so each call pays torch's per-operation overhead.

    **float64.** torch computes in the dtype of its inputs: float64 arrays
    give float64 derivatives. Constants inside ``fun`` should be float64
    tensors on the inputs' device (or Python floats), or they round the
    result or fail on a GPU.

    Examples
    --------
    A lower level ``f_2 = (x_2 - x_1)^2 / 2``: its Hessian in ``(x_1, x_2)``
    is ``[[1, -1], [-1, 1]]``.

    >>> import numpy as np
    >>> import nestopt.autodiff
    >>> lower = nestopt.autodiff.torch_level(
    ...     lambda x1, x2: 0.5 * ((x2 - x1) ** 2).sum(), size=1)
    >>> lower.hess(np.array([1.0]), np.array([0.0]))
    array([[ 1., -1.],
           [-1.,  1.]])
    """
    kinds = oracles(hessian)
    label = describe("torch_level", name)
    check_fun(fun, label)
    bridge = _Bridge(_import_torch("torch_level"), label)
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


def torch_constraint(
    fun: Callable[..., Any],
    lb: Any,
    ub: Any,
    *,
    name: str | None = None,
) -> NonlinearConstraint:
    """A `nestopt.NonlinearConstraint` ``lb <= fun(x1, ..., xn) <= ub`` differentiated by torch.

    Parameters
    ----------
    fun : callable
        ``fun(x1, ..., xn)``: the ``m`` constraint values as a 1-d tensor (a
        scalar counts as ``m = 1``), written as `torch_level` requires.
    lb, ub : float or array_like of shape (m,)
        Bounds of ``fun``; equal entries make equalities.
    name : str, optional
        Shown in messages.

    Returns
    -------
    nestopt.NonlinearConstraint
        With ``fun``, ``jac`` (``(m, D)``, ``torch.func.jacrev``: one reverse
        pass per constraint), ``hess(x1, ..., xn, v) = sum_i v_i hess c_i``
        (``(D, D)``, the Hessian of ``v @ c``) and
        ``hess_dir(x1, ..., xn, v, u)`` (its ``jvp`` along ``u``), converting
        arrays as `torch_level` does.

    Examples
    --------
    The unit disc ``x_1^2 + x_2^2 <= 1``:

    >>> import numpy as np
    >>> import nestopt.autodiff
    >>> disc = nestopt.autodiff.torch_constraint(
    ...     lambda x1, x2: x1 @ x1 + x2 @ x2, lb=-np.inf, ub=1.0)
    >>> disc.jac(np.array([0.5]), np.array([2.0]))
    array([[1., 4.]])
    >>> disc.hess(np.array([0.5]), np.array([2.0]), np.array([3.0]))
    array([[6., 0.],
           [0., 6.]])
    """
    label = describe("torch_constraint", name)
    check_fun(fun, label)
    bridge = _Bridge(_import_torch("torch_constraint"), label)
    return build_constraint(bridge, fun, lb, ub, label, name)


def _import_torch(adapter: str) -> Any:
    try:
        import torch
        import torch.func
    except ImportError as exc:
        raise ImportError(
            f"nestopt.autodiff.{adapter} needs PyTorch, which could not be imported "
            f'({exc}); install it with: pip install "nestopt[torch]"'
        ) from exc
    if not _FORWARD_AD_READY:
        _prepare_forward_ad(torch)
    return torch


_FORWARD_AD_READY = False


# torch's words for it: "`torch.jit.script` is deprecated. Please switch to ..." (2.13: a
# DeprecationWarning; 2.14: a FutureWarning); matched loosely (backticks, wording) so that
# later releases' versions of it match too.
_JIT_SCRIPT_DEPRECATED = r"\W*torch\.jit\.script\W.*deprecated"


def _prepare_forward_ad(torch: Any) -> None:
    """Run one tiny JVP with torch's deprecation of ``torch.jit.script`` silenced.

    torch's first forward-mode call (``torch.func.jvp``) scripts its JVP
    decompositions with ``torch.jit.script``, which warns that it is
    deprecated: a DeprecationWarning in torch 2.13, a FutureWarning from
    2.14 on. It is a warning about torch's internals that users
    cannot act on (torch has no other forward-mode transform that composes
    with ``torch.func``), and an error under ``-W error``. Only that warning
    is silenced, in either category, and only in this call: later calls do
    not warn, and every other warning passes.
    """
    global _FORWARD_AD_READY
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", _JIT_SCRIPT_DEPRECATED, category)
        one = torch.ones(1, dtype=torch.float64)
        torch.func.jvp(torch.sin, (one,), (one,))
    _FORWARD_AD_READY = True


class _Bridge:
    """torch.func's transforms and the conversions at each callable's edge."""

    def __init__(self, torch: Any, label: str) -> None:
        self.torch = torch
        self.label = label
        self.namespaces: dict[type, Any] = {}
        func = torch.func
        self.transforms = Transforms(
            grad=func.grad,
            jvp=func.jvp,
            hessian=func.hessian,
            jacrev=func.jacrev,
            vmap=func.vmap,
            concat=torch.cat,
            split=lambda z, sizes: torch.split(z, list(sizes)),
            eye=lambda n, like: torch.eye(n, dtype=like.dtype, device=like.device),
        )

    def to_torch(self, x: Any) -> Any:
        if isinstance(x, self.torch.Tensor):
            return x
        try:
            return self.torch.from_dlpack(x)  # shares memory: NumPy (read-only too), CuPy, ...
        except Exception as exc:  # the error type depends on the torch build and the device
            raise TypeError(
                f"{self.label} received a {type(x).__name__} on device "
                f"{x.__dlpack_device__()} (DLPack type, index) that torch could not share "
                f"({exc}). GPU arrays need a CUDA build of torch; or solve on the CPU"
            ) from exc

    def from_torch(self, out: Any, like: Any) -> Any:
        if isinstance(like, self.torch.Tensor):
            return out
        if isinstance(like, np.ndarray):
            return out.detach().numpy()  # shares memory
        kind = type(like)
        xp = self.namespaces.get(kind)
        if xp is None:
            import array_api_compat

            xp = self.namespaces[kind] = array_api_compat.array_namespace(like)
        return xp.from_dlpack(out.detach())

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        to_torch, from_torch = self.to_torch, self.from_torch

        def call(*args: Any) -> Any:
            return from_torch(fn(*[to_torch(a) for a in args]), args[0])

        call.__name__ = call.__qualname__ = fn.__name__
        return call

    def wrap_rows(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        to_torch, from_torch = self.to_torch, self.from_torch

        def hess_rows(*args: Any) -> Any:
            *xs, start = args
            return from_torch(fn(int(start), *[to_torch(x) for x in xs]), xs[0])

        return hess_rows
