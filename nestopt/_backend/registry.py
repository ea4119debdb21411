"""The known backends: how to import each and how it reads device strings.

Each backend owns its device parsing: a device string is first put in a
canonical form (``cpu``, ``cuda``, ``cuda:N``, or one of the backend's own
names), then the backend's resolver turns it into the library's device
object, or refuses it saying what that backend accepts.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Spec", "REGISTRY", "REGISTRY_LOCK", "cpu_only", "canonical_device"]

_COMMON_DEVICES = re.compile(r"^(cpu|cuda|cuda:\d+|gpu:\d+)$")


@dataclass(frozen=True)
class Spec:
    """How to load one backend and map device strings to its devices.

    ``device_names`` are extra device strings the backend understands
    besides ``cpu``, ``cuda`` and ``cuda:N``.
    """

    loader: Callable[[], Any]
    package: str
    extra: str | None
    device_resolver: Callable[[Any, str | None], Any]
    device_names: tuple[str, ...] = ()


def canonical_device(name: str, device: object, source: str) -> str | None:
    """``device`` in canonical form for backend ``name``, or a ValueError naming ``source``."""
    if device is None:
        return None
    if not isinstance(device, str):
        raise TypeError(f"a device must be a string such as 'cuda:0', got {device!r} ({source})")
    text = device.strip().lower()
    if not text:
        return None
    spec = REGISTRY.get(name)
    extra = spec.device_names if spec is not None else ()
    if not _COMMON_DEVICES.match(text) and text not in extra:
        known = ", ".join(["'cpu'", "'cuda'", "'cuda:N'", "'gpu:N'", *map(repr, extra)])
        raise ValueError(
            f"device {device!r} ({source}) is not understood by backend {name!r}; "
            f"use one of {known}"
        )
    if text.startswith("gpu:"):
        text = "cuda:" + text[4:]
    return text


def cpu_only(name: str) -> Callable[[Any, str | None], Any]:
    def resolve(xp: Any, device: str | None) -> Any:
        if device in (None, "cpu"):
            return None
        raise ValueError(
            f"backend {name!r} is CPU-only and cannot use device {device!r}; "
            f"use device 'cpu' (or none), or a GPU backend such as 'cupy' or 'torch'"
        )

    return resolve


def _load_numpy() -> Any:
    import array_api_compat.numpy as xp

    return xp


def _load_array_api_strict() -> Any:
    import array_api_strict as xp

    return xp


_STRICT_DEVICES = {"cpu_device": "CPU_DEVICE", "device1": "device1", "device2": "device2"}


def _resolve_strict_device(xp: Any, device: str | None) -> Any:
    if device in (None, "cpu"):
        return None
    if device not in _STRICT_DEVICES:
        raise ValueError(
            f"backend 'array_api_strict' is CPU-only and cannot use device {device!r}; "
            f"its devices are: cpu, {', '.join(sorted(_STRICT_DEVICES))}"
        )
    return xp.Device(_STRICT_DEVICES[device])


def _load_cupy() -> Any:
    import cupy

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError has no stable import path
        raise RuntimeError(
            f"CuPy is installed but no usable CUDA GPU was found ({exc}); "
            "run on a machine with an NVIDIA GPU and driver, or choose another backend"
        ) from exc
    if count == 0:
        raise RuntimeError("CuPy is installed but reports no CUDA device")
    import array_api_compat.cupy as xp

    return xp


def _resolve_cupy_device(xp: Any, device: str | None) -> Any:
    import cupy

    if device in (None, "cuda"):
        return None
    if not device.startswith("cuda:"):
        raise ValueError(f"backend 'cupy' is GPU-only: use 'cuda' or 'cuda:N', not {device!r}")
    index = int(device.split(":")[1])
    count = cupy.cuda.runtime.getDeviceCount()
    if index >= count:
        raise ValueError(f"device {device!r} does not exist: CuPy sees {count} GPU(s)")
    return cupy.cuda.Device(index)


def _load_torch() -> Any:
    import array_api_compat.torch as xp

    return xp


def _resolve_torch_device(xp: Any, device: str | None) -> Any:
    import torch

    if device is None:
        return None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but this torch build sees no CUDA GPU")
    return torch.device(device)


REGISTRY: dict[str, Spec] = {
    "numpy": Spec(_load_numpy, "numpy", None, cpu_only("numpy")),
    "array_api_strict": Spec(
        _load_array_api_strict,
        "array-api-strict",
        "test",
        _resolve_strict_device,
        tuple(sorted(_STRICT_DEVICES)),
    ),
    "cupy": Spec(_load_cupy, "cupy-cuda12x", "cuda12", _resolve_cupy_device),
    "torch": Spec(_load_torch, "torch", "torch", _resolve_torch_device),
}
REGISTRY_LOCK = threading.Lock()
