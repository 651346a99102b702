"""``"package.module:name"`` -> the object it names, so configs and the command line can name a model or a
neuron of the user's own without registering it."""

from __future__ import annotations

import importlib


def is_import_spec(text) -> bool:
    return isinstance(text, str) and ":" in text


def import_object(spec: str, what: str):
    """The callable that ``spec`` (``"package.module:name"``) names; ``what`` ("model", "neuron") goes into
    the ``ValueError`` that says which part is wrong and how to fix it."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"{what} {spec!r}: write a {what} of your own as 'package.module:name'")
    try:
        found = importlib.import_module(module)
    except Exception as exc:  # an ImportError, or any error the module raises while it runs
        raise ValueError(
            f"{what} {spec!r}: cannot import {module!r} ({type(exc).__name__}: {exc}); is it on PYTHONPATH?"
        ) from None
    obj = getattr(found, attr, None)
    if not callable(obj):
        raise ValueError(f"{what} {spec!r}: {module} has no class or function {attr!r}")
    return obj
