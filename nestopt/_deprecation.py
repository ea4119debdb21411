"""Renamed keyword arguments keep working for one release, with a DeprecationWarning."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["renamed_keywords"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_keywords(**old_to_new: str) -> Callable[[F], F]:
    """Accept each old keyword name as its new one, warning that the old name goes away."""

    def decorate(fun: F) -> F:
        names = list(inspect.signature(fun).parameters)

        @functools.wraps(fun)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs or names.index(new) < len(args):
                    raise TypeError(
                        f"{fun.__name__}() got both {old}= (its old name) and {new}=; give {new}="
                    )
                warnings.warn(
                    f"{fun.__name__}({old}=...) is deprecated and will be removed in the next "
                    f"release; write {fun.__name__}({new}=...)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return fun(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # same signature, as functools.wraps says

    return decorate
