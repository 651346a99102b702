"""arlif: AR-LIF spiking neural networks in PyTorch.

The public names below are loaded on first use (PEP 562), so ``import arlif`` and the ``arlif`` command's
``--help`` do not pay for importing torch; ``from arlif import ARLIF`` loads the neurons as usual.
"""

from __future__ import annotations

import importlib
import importlib.util

__version__ = "0.1.0"

# public name -> the submodule that defines it
_LAZY = {
    "ARLIF": "neurons",
    "LIF": "neurons",
    "PLIF": "neurons",
    "CLIF": "neurons",
    "BaseNeuron": "neurons",
    "NeuronState": "neurons",
    "reset_net": "neurons",
    "detach_net": "neurons",
    "set_step_mode": "neurons",
    "set_backend": "neurons",
    "check_backends": "neurons",
}

__all__ = [*_LAZY, "surrogate", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # a subpackage reached as an attribute (arlif.neurons, arlif.ops.reference), as when it was imported here
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
