"""Spiking neuron modules: AR-LIF, the LIF, PLIF and CLIF baselines and ALIF (docs/neurons.md), and the
registry that names them (docs/custom_neuron.md shows how to add one)."""

from .alif import ALIF, ALIFState
from .arlif import ARLIF
from .base import BaseNeuron, NeuronState, check_backends, detach_net, reset_net, set_backend, set_step_mode
from .factory import NEURON_PRESETS, neuron_factory, neuron_names
from .lif import CLIF, LIF, PLIF
from .registry import NeuronEntry, get_neuron, neuron_entries, register_neuron

__all__ = [
    "ARLIF",
    "LIF",
    "PLIF",
    "CLIF",
    "ALIF",
    "ALIFState",
    "BaseNeuron",
    "NeuronState",
    "reset_net",
    "detach_net",
    "set_step_mode",
    "set_backend",
    "check_backends",
    "NEURON_PRESETS",
    "NeuronEntry",
    "get_neuron",
    "neuron_entries",
    "neuron_factory",
    "neuron_names",
    "register_neuron",
]
