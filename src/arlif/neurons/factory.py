"""Neuron presets by name, so models and configs can say ``neuron="lif_hard"`` and ablations are one override.

:func:`neuron_factory` turns a name (or a callable) plus keyword options into a zero-argument callable that
makes one neuron layer; models call it once per spiking layer.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

from torch import nn

from .arlif import ARLIF
from .lif import CLIF, LIF, PLIF

# name -> (class, preset options); the user's options override the preset
NEURON_PRESETS: dict[str, tuple[type[nn.Module], dict]] = {
    "arlif": (ARLIF, {}),
    "arlif_no_threshold_adjust": (ARLIF, {"threshold_adjust": False}),
    "arlif_no_adaptive_reset": (ARLIF, {"adaptive_reset": False}),
    # the CIFAR10-DVS reference runs: memory not carried, λ = 0.2, triangle surrogate
    # (docs/neurons.md#reference-run-compatibility)
    "arlif_dvs_ref": (ARLIF, {"carry_memory": False, "decay": 0.2, "surrogate": "triangle"}),
    "lif": (LIF, {"reset": "soft"}),
    "lif_soft": (LIF, {"reset": "soft"}),
    "lif_hard": (LIF, {"reset": "hard"}),
    "plif": (PLIF, {}),
    "clif": (CLIF, {}),
}


def neuron_names() -> list[str]:
    return sorted(NEURON_PRESETS)


def _accepted(cls: type, options: dict) -> tuple[dict, list[str]]:
    params = inspect.signature(cls.__init__).parameters
    keep = {k: v for k, v in options.items() if k in params}
    return keep, sorted(set(options) - set(keep))


def neuron_factory(neuron: str | Callable[..., nn.Module] = "arlif", **options) -> Callable[[], nn.Module]:
    """A callable that builds one neuron layer.

    ``neuron`` is a preset name (see :data:`NEURON_PRESETS`) or any callable returning an ``nn.Module``
    (it is called with ``**options``). For a preset, options the neuron class does not take (say ``decay``
    for PLIF, when a config made for AR-LIF is switched to PLIF) are dropped with a warning; an option that
    no neuron takes (a typo) raises ``ValueError``.
    """
    if callable(neuron) and not isinstance(neuron, str):
        return lambda: neuron(**options)
    if not isinstance(neuron, str) or neuron.lower() not in NEURON_PRESETS:
        raise ValueError(f"unknown neuron {neuron!r}; choose one of {neuron_names()} or pass a callable")
    cls, preset = NEURON_PRESETS[neuron.lower()]
    merged, dropped = _accepted(cls, {**preset, **options})
    # a key no neuron takes is a typo (say "decy"), not a setting made for another neuron: refuse it
    known = {k for c, _ in NEURON_PRESETS.values() for k in inspect.signature(c.__init__).parameters} - {"self"}
    typos = sorted(set(options) - known)
    if typos:
        raise ValueError(
            f"neuron option(s) {typos} are not options of any neuron; {cls.__name__} takes "
            f"{sorted(k for k in inspect.signature(cls.__init__).parameters if k != 'self')}"
        )
    if dropped:
        warnings.warn(
            f"neuron {neuron!r} ({cls.__name__}) does not take {dropped}; ignoring them", stacklevel=2
        )
    return lambda: cls(**merged)
