"""Names of a package loaded on first use (PEP 562), so importing the package costs nothing until they are."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable


def lazy_attributes(
    package: str, names: dict[str, str], namespace: dict, public: list[str], fallback: str | None = None
) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: each of ``names`` (name -> submodule defining it),
    every submodule (``arlif.neurons``, as if the package had imported it) and, with ``fallback``, every name
    in that submodule's ``__all__`` load when first read, and stay in ``namespace`` (the package's globals)
    so later reads skip the look-up. ``__all__`` itself is ``public``, ``names`` and the fallback's names, so
    reading it (``from package import *``) loads the fallback."""

    def _fallback_names() -> list[str]:
        return list(importlib.import_module(f".{fallback}", package).__all__) if fallback else []

    def __getattr__(name: str):
        if name == "__all__":
            value = [*public, *names, *_fallback_names()]
        elif name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f".{name}", package)
        elif fallback and not name.startswith("__") and name in _fallback_names():
            value = getattr(importlib.import_module(f".{fallback}", package), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        loaded = f"{package}.{fallback}" in sys.modules if fallback else False
        return sorted(set(namespace) | set(public) | set(names) | set(_fallback_names() if loaded else ()))

    return __getattr__, __dir__
