"""arlif: AR-LIF spiking neural networks in PyTorch.

The public names below are loaded on first use (PEP 562), so ``import arlif`` and the ``arlif`` command's
``--help`` do not pay for importing torch; ``from arlif import reset_net`` loads the neurons as usual (every
public name of :mod:`arlif.neurons` is one of ``arlif``, and so is :func:`arlif.fit`, the Python training API).
"""

from __future__ import annotations

from ._lazy import lazy_attributes

__version__ = "0.1.0"

# Every public name of arlif.neurons (the neuron classes, the registry, reset_net, ...) is a public name of
# arlif, so a neuron added there is exported here without an edit.
__getattr__, __dir__ = lazy_attributes(
    __name__, {"fit": "train.fitting"}, globals(), ["surrogate", "__version__"], fallback="neurons"
)
