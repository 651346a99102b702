"""Neurons by name, so models and configs can say ``neuron="lif_hard"`` and ablations are one override.

:func:`neuron_factory` turns a registered name (:mod:`arlif.neurons.registry`) or a callable, plus keyword
options, into a zero-argument callable that makes one neuron layer; models call it once per spiking layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import nn

from .._imports import import_object, is_import_spec
from .registry import NEURON_PRESETS, get_neuron, neuron_entries, neuron_names

__all__ = ["NEURON_PRESETS", "neuron_factory", "neuron_names"]


def neuron_factory(neuron: str | Callable[..., nn.Module] = "arlif", **options) -> Callable[[], nn.Module]:
    """A callable that builds one neuron layer.

    ``neuron`` is a registered name (``arlif info`` lists them), ``"package.module:Name"`` (a neuron class
    or function of your own, imported here, so that configs and ``--neuron`` can name it) or any callable
    returning an ``nn.Module`` (it is called with ``**options``). For a name, options its class does not
    take (say ``decay`` for PLIF, when a config made for AR-LIF is switched to PLIF) are dropped with a
    warning; an option that no registered neuron takes (a typo) raises ``ValueError``.
    """
    if callable(neuron) and not isinstance(neuron, str):
        return lambda: neuron(**options)
    if is_import_spec(neuron):
        maker = import_object(neuron, "neuron")
        return lambda: maker(**options)
    if not isinstance(neuron, str):
        raise ValueError(f"unknown neuron {neuron!r}; choose one of {neuron_names()} or pass a callable")
    entry = get_neuron(neuron)
    takes = entry.accepts()
    # a key no neuron takes is a typo (say "decy"), not a setting made for another neuron: refuse it
    known = set().union(*(e.accepts() for e in neuron_entries(aliases=True)))
    typos = sorted(set(options) - known)
    if typos:
        raise ValueError(
            f"neuron option(s) {typos} are not options of any neuron; {entry.cls.__name__} takes {sorted(takes)}"
        )
    dropped = sorted(set(options) - takes)
    if dropped:
        warnings.warn(f"neuron {neuron!r} ({entry.cls.__name__}) does not take {dropped}; ignoring them", stacklevel=2)
    merged = {**entry.options, **{k: v for k, v in options.items() if k in takes}}
    return lambda: entry.cls(**merged)

