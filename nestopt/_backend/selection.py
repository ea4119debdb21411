"""Which array library and device nestopt creates arrays on.

The core never asks this module for a namespace when it has arrays in hand:
it infers ``xp`` from them. The configured backend matters where nothing can
be inferred: starting points, problem generators, and the check that user
callables answer on the right backend and device.

Precedence, highest first: a per-call ``backend=`` argument, the innermost
``with nestopt.backend(...)``, ``nestopt.set_backend(...)``, the environment
variables ``NESTOPT_BACKEND``/``NESTOPT_DEVICE`` (read once at import), then
``numpy``. The device travels with the name from the same source.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .registry import REGISTRY as _REGISTRY
from .registry import REGISTRY_LOCK as _REGISTRY_LOCK
from .registry import Spec, canonical_device, cpu_only

__all__ = [
    "Backend",
    "backend",
    "get_backend",
    "get_namespace",
    "list_backends",
    "register_backend",
    "set_backend",
]

_ENV_NAME = "NESTOPT_BACKEND"
_ENV_DEVICE = "NESTOPT_DEVICE"


def register_backend(
    name: str,
    loader: Callable[[], Any] | str,
    *,
    package: str | None = None,
    extra: str | None = None,
    device: Callable[[Any, str | None], Any] | None = None,
    device_names: tuple[str, ...] = (),
) -> None:
    """Make another array-API library selectable by ``name``.

    Parameters
    ----------
    name : str
        Case-insensitive name used with ``set_backend``, ``backend`` and
        ``NESTOPT_BACKEND``. Registering an existing name replaces it.
    loader : callable or str
        A function returning the library's array-API namespace, or the name
        of a module that is one (it is imported on first use, not now).
    package : str, optional
        Name of the pip package, quoted when the import fails.
    extra : str, optional
        nestopt extra that installs it, quoted when the import fails.
    device : callable, optional
        ``device(xp, device_string)`` returning the library's device object
        (``None`` for its default). Without it the backend is CPU-only.
    device_names : tuple of str, optional
        Device strings the backend understands besides ``'cpu'``,
        ``'cuda'`` and ``'cuda:N'`` (passed to ``device`` as given, lower-case).
    """
    key = _normalize_name(name)
    if isinstance(loader, str):
        module_name = loader

        def loader() -> Any:
            return importlib.import_module(module_name)

    if not callable(loader):
        raise TypeError(f"loader must be callable or a module name, got {loader!r}")
    spec = Spec(loader, package or key, extra, device or cpu_only(key), tuple(device_names))
    with _REGISTRY_LOCK:
        _REGISTRY[key] = spec
        _NAMESPACES.pop(key, None)


def list_backends() -> tuple[str, ...]:
    """Names of the registered backends, installed or not."""
    return tuple(sorted(_REGISTRY))


def _normalize_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"a backend name must be a non-empty string, got {name!r}")
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class Backend:
    """The backend in force: its name, device, and where the choice came from.

    ``source`` is one of ``'argument'``, ``'context'``, ``'set_backend'``,
    ``'environment'`` or ``'default'``.
    """

    name: str
    device: str | None
    source: str

    @property
    def xp(self) -> Any:
        """The array-API namespace (imports the library on first use)."""
        return _namespace(self.name, self.source)

    @property
    def native_device(self) -> Any:
        """The library's own device object for ``device`` (``None``: its default)."""
        return _REGISTRY[self.name].device_resolver(self.xp, self.device)

    def asarray(self, x: Any, *, dtype: Any = None, copy: bool | None = None) -> Any:
        """``x`` as an array of this backend on this device."""
        xp = self.xp
        kwargs: dict[str, Any] = {}
        if dtype is not None:
            kwargs["dtype"] = dtype
        if copy is not None:
            kwargs["copy"] = copy
        native = self.native_device
        if native is not None:
            kwargs["device"] = native
        return xp.asarray(x, **kwargs)


_NAMESPACES: dict[str, Any] = {}


def _loaded_name(xp: Any) -> str | None:
    """The registered name under which namespace ``xp`` was loaded, if any."""
    for name, loaded in list(_NAMESPACES.items()):
        if loaded is xp:
            return name
    return None


def _namespace(name: str, source: str = "argument") -> Any:
    try:
        return _NAMESPACES[name]
    except KeyError:
        pass
    spec = _REGISTRY[name]
    try:
        xp = spec.loader()
    except ImportError as exc:
        hint = (
            f"pip install {spec.package} (the nestopt[{spec.extra}] extra: in a nestopt "
            f"checkout, pip install '.[{spec.extra}]')"
            if spec.extra
            else f"pip install {spec.package}"
        )
        raise ImportError(
            f"backend {name!r} ({_describe_source(source)}) needs the package "
            f"{spec.package!r}, which could not be imported ({exc}); install it with: {hint}"
        ) from exc
    _NAMESPACES[name] = xp
    return xp


def _describe_source(source: str) -> str:
    return {
        "environment": f"from the environment variable {_ENV_NAME}",
        "set_backend": "from nestopt.set_backend",
        "context": "from a nestopt.backend context",
        "argument": "from the backend= argument",
        "default": "the default",
    }.get(source, source)


def _check_known(name: str, source: str, raw: object) -> None:
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown backend {raw!r} ({_describe_source(source)}); "
            f"known backends: {', '.join(list_backends())}; "
            "register others with nestopt.register_backend"
        )


_ENV_SETTING = (os.environ.get(_ENV_NAME) or None, os.environ.get(_ENV_DEVICE) or None)
_GLOBAL_SETTING: tuple[str, str | None] | None = None
_GLOBAL_LOCK = threading.Lock()
_CONTEXT_SETTING: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar(
    "nestopt_backend", default=None
)


def _validated(name: object, device: object, source: str) -> Backend:
    key = _normalize_name(name)
    _check_known(key, source, name)
    where = (
        f"from the environment variable {_ENV_DEVICE}"
        if source == "environment"
        else _describe_source(source)
    )
    return Backend(key, canonical_device(key, device, where), source)


def _load_and_check(chosen: Backend) -> Backend:
    """Import the library and resolve the device now, so mistakes surface here."""
    chosen.native_device  # noqa: B018  (raises on a bad device or missing library)
    return chosen


def set_backend(name: str | None, device: str | None = None) -> Backend | None:
    """Choose the backend for this process (below contexts and arguments).

    ``set_backend(None)`` forgets the choice (and returns ``None``), so the
    environment or the default applies again. The library is imported now, so a missing package
    or a bad device fails here rather than later.
    """
    global _GLOBAL_SETTING
    if name is None:
        with _GLOBAL_LOCK:
            _GLOBAL_SETTING = None
        return None
    chosen = _load_and_check(_validated(name, device, "set_backend"))
    with _GLOBAL_LOCK:
        _GLOBAL_SETTING = (chosen.name, chosen.device)
    return chosen


@contextlib.contextmanager
def backend(name: str, device: str | None = None) -> Iterator[Backend]:
    """Use a backend inside a ``with`` block; safe across threads and tasks.

    Examples
    --------
    >>> import nestopt
    >>> with nestopt.backend("numpy") as chosen:
    ...     print(chosen.name, chosen.source)
    numpy context
    """
    chosen = _load_and_check(_validated(name, device, "context"))
    token = _CONTEXT_SETTING.set((chosen.name, chosen.device))
    try:
        yield chosen
    finally:
        _CONTEXT_SETTING.reset(token)


def get_backend(backend: str | Backend | None = None, device: str | None = None) -> Backend:
    """The backend in force, following the documented precedence.

    Parameters
    ----------
    backend : str or Backend, optional
        A per-call choice, which wins over every other source.
    device : str, optional
        Device for a per-call ``backend`` given by name.
    """
    if isinstance(backend, Backend):
        return backend
    if backend is not None:
        return _validated(backend, device, "argument")
    context = _CONTEXT_SETTING.get()
    if context is not None:
        return Backend(context[0], context[1], "context")
    with _GLOBAL_LOCK:
        chosen = _GLOBAL_SETTING
    if chosen is not None:
        return Backend(chosen[0], chosen[1], "set_backend")
    env_name, env_device = _ENV_SETTING
    if env_name is not None and env_name.strip():
        return _validated(env_name, env_device, "environment")
    if env_device is not None and env_device.strip():
        return _validated("numpy", env_device, "environment")
    return _DEFAULT


_DEFAULT = Backend("numpy", None, "default")  # frozen: one serves every call


def get_namespace(backend: str | Backend | None = None) -> Any:
    """The array-API namespace of the backend in force (see `get_backend`)."""
    return get_backend(backend).xp
