"""arlif: AR-LIF spiking neural networks in PyTorch.

The public names below are loaded on first use (PEP 562), so ``import arlif`` and the ``arlif`` command's
``--help`` do not pay for importing torch; ``from arlif import ARLIF`` loads the neurons as usual.
"""

from __future__ import annotations

from ._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
