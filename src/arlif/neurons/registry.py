"""The neuron registry: every neuron name arlif knows, with its class, preset options and description.

A neuron module registers its names next to its class (:func:`register_neuron`), and everything else that
needs to know about neurons reads this registry: the factory behind ``neuron="..."`` in models and configs,
the energy report, the plots, the per-epoch metric log, ``arlif bench``, ``arlif info``, ``arlif ablate``
and ``arlif selftest``. What a neuron *does* (its states, learned scalars, update cost, effective
threshold) it declares on its class (:class:`arlif.neurons.BaseNeuron`); the registry only says which
names exist and where each one takes part. docs/custom_neuron.md walks through adding one.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class NeuronEntry:
    """One registered name.

    Attributes:
        name: the name configs and ``--neuron`` use (lower case).
        cls: the ``nn.Module`` class; ``make()`` calls it with ``options`` and the caller's options on top.
        options: the preset's options (e.g. ``{"reset": "hard"}`` for ``lif_hard``).
        label: a short display name for tables and plots (e.g. "AR-LIF w/o adaptive reset").
        description: one line for ``arlif info``.
        ablation: one of ``arlif ablate``'s default variants; the first registered one is the reference
            that every other variant is compared with.
        bench: options of ``arlif bench``'s default set (``None``: not benchmarked unless asked for by name).
        check: options of ``arlif selftest``'s variant: constants and initial parameters away from the
            defaults, so that a kernel that ignores one, or reads another's, fails.
        alias_of: the name this one repeats (listed, not benchmarked or tested twice).
    """

    name: str
    cls: type
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    label: str = ""
    description: str = ""
    ablation: bool = False
    bench: Mapping[str, Any] | None = None
    check: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    alias_of: str | None = None
    _params: frozenset = field(default=frozenset(), repr=False, compare=False)

    def accepts(self) -> frozenset[str]:
        """The keyword options the class takes."""
        return self._params

    def make(self, **options):
        """A neuron of this entry: the preset's options with ``options`` on top."""
        return self.cls(**{**self.options, **options})


_REGISTRY: dict[str, NeuronEntry] = {}


def register_neuron(
    name: str,
    cls: type,
    *,
    label: str,
    description: str,
    options: Mapping[str, Any] | None = None,
    ablation: bool = False,
    bench: Mapping[str, Any] | None = None,
    check: Mapping[str, Any] | None = None,
    alias_of: str | None = None,
) -> NeuronEntry:
    """Register ``name`` for ``cls`` (see :class:`NeuronEntry` for the fields). Registering a name again
    replaces it (re-running a notebook cell that defines a neuron must work); preset options the class does
    not take are refused now, not when a model is first built."""
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"a neuron name must be a non-empty lower-case string, got {name!r}")
    params = frozenset(k for k in inspect.signature(cls.__init__).parameters if k != "self")
    unknown = sorted(set(options or {}) - params)
    if unknown:
        raise TypeError(f"register_neuron({name!r}): {cls.__name__} does not take the preset option(s) {unknown}")
    if alias_of is not None and alias_of not in _REGISTRY:
        raise ValueError(f"register_neuron({name!r}): alias_of={alias_of!r} is not registered")
    entry = NeuronEntry(
        name, cls, MappingProxyType(dict(options or {})), label, description, bool(ablation),
        None if bench is None else MappingProxyType(dict(bench)), MappingProxyType(dict(check or {})),
        alias_of, params,
    )  # fmt: skip
    _REGISTRY[name] = entry
    return entry


def get_neuron(name: str) -> NeuronEntry:
    """The entry of ``name`` (case-insensitive), or a ``ValueError`` listing the registered names."""
    entry = _REGISTRY.get(name.lower()) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(f"unknown neuron {name!r}; registered: {neuron_names()} (arlif info describes them)")
    return entry


def neuron_entries(aliases: bool = False) -> list[NeuronEntry]:
    """Every entry in registration order (``aliases``: with the names that repeat another)."""
    return [e for e in _REGISTRY.values() if aliases or e.alias_of is None]


def neuron_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_REGISTRY)


def ablation_variants() -> list[NeuronEntry]:
    """``arlif ablate``'s default variants, the reference first."""
    return [e for e in neuron_entries() if e.ablation]


def bench_entries() -> list[NeuronEntry]:
    """``arlif bench``'s default neurons."""
    return [e for e in neuron_entries(aliases=True) if e.bench is not None]


def neuron_classes() -> list[type]:
    """The distinct registered classes, in registration order."""
    return list(dict.fromkeys(e.cls for e in _REGISTRY.values()))


class _PresetView(Mapping):
    """``name -> (class, preset options)``, read live from the registry (the older ``NEURON_PRESETS``)."""

    def __getitem__(self, name: str):
        entry = _REGISTRY[name]
        return entry.cls, dict(entry.options)

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


NEURON_PRESETS: Mapping[str, tuple[type, dict]] = _PresetView()
