"""Lazy re-exports for the subpackages' `__init__`: `from face_sentiment.data import
load_dataset` works, but importing a subpackage does not import every module in it (several
import TensorFlow, TFDV or Beam, which take seconds and are not needed by most callers)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """`exports` maps a public name to the submodule defining it; returns the package's
    `__getattr__`, `__dir__` and `__all__`."""

    def get_attribute(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def names() -> list[str]:
        return sorted(exports)

    return get_attribute, names, sorted(exports)
