"""Names of a package loaded on first use (PEP 562), so importing the package costs nothing until they are."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable


def lazy_attributes(
    package: str, names: dict[str, str], namespace: dict, public: list[str]
) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: each of ``names`` (name -> submodule defining it) and
    every submodule (``arlif.neurons``, as if the package had imported it) load when first read, and stay in
    ``namespace`` (the package's globals) so later reads skip the look-up."""

    def __getattr__(name: str):
        if name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
