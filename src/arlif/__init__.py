"""arlif: AR-LIF spiking neural networks in PyTorch."""

from . import surrogate
from .neurons import (
    ARLIF,
    CLIF,
    LIF,
    PLIF,
    BaseNeuron,
    NeuronState,
    check_backends,
    detach_net,
    reset_net,
    set_backend,
    set_step_mode,
)

__version__ = "0.1.0"

__all__ = [
    "ARLIF",
    "LIF",
    "PLIF",
    "CLIF",
    "BaseNeuron",
    "NeuronState",
    "reset_net",
    "detach_net",
    "set_step_mode",
    "set_backend",
    "check_backends",
    "surrogate",
    "__version__",
]
