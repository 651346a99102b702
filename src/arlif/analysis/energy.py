"""Synaptic operations and energy (docs/energy.md), and the cost of the neuron updates themselves.

Counting convention (documented here and in docs/energy.md):

* **MACs** of every ``Conv1d/2d/3d`` and ``Linear`` are the dense multiply-accumulates counted by
  ``torch.utils.flop_counter`` (its FLOPs / 2), summed over the T steps, per sample.
* A layer is **fed by spikes** when its input lies in [0, 1] and it is not the first such layer executed.
  Its **input firing rate** is the mean of its input: for binary spikes that is the fraction of ones, and for
  average-pooled spikes (VGG pooling) it equals the firing rate of the spikes that were pooled, since
  average pooling preserves the mean. Its **SOPs** = rate × MACs (accumulates triggered by spikes).
* The first layer, and any layer whose input leaves [0, 1], receives real values: its MACs stay MACs.
* **Energy** = E_MAC · (MACs of real-input layers) + E_AC · SOPs, with E_MAC = 4.6 pJ and E_AC = 0.9 pJ
  (45 nm, 32-bit) by default. BatchNorm is not counted (it folds into the conv weights at inference).
* **Neuron updates** are reported beside, not inside, the energy: elementwise operations per neuron per step
  read off each neuron's update rule (:func:`neuron_update_ops`), times neurons × T.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..neurons import BaseNeuron, reset_net
from .monitor import FiringRateMonitor

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def neuron_update_ops(neuron: nn.Module) -> dict[str, int] | None:
    """Elementwise operations one neuron performs per time step: ``{"arith": .., "transcendental": ..}``,
    as the neuron declares them (:meth:`arlif.neurons.BaseNeuron.update_ops`), or ``None`` when it does not.

    ``arith`` counts additions, subtractions, multiplications, comparisons and max/min as 1 each;
    ``transcendental`` counts tanh and sigmoid evaluations. Per-layer constants (tanh(a), σ(w), 1/τ) are
    computed once per layer and not counted. Each neuron's docstring of ``update_ops`` writes its count out.
    """
    return neuron.update_ops()


@dataclass
class SynapticLayer:
    name: str
    kind: str  # conv or linear
    input: str  # "spikes" or "real"
    macs: float  # dense MACs per sample, summed over T
    input_rate: float | None  # mean input (spike-fed layers), None for real-valued input
    sops: float  # synaptic operations per sample (0 for real-input layers)
    energy_pj: float


@dataclass
class NeuronLayer:
    name: str
    neuron: str
    neurons: int  # neurons per sample
    firing_rate: float
    ops_per_update: dict | None  # None: the neuron declares no update_ops()
    update_ops: float  # arith + transcendental ops per sample over T steps


@dataclass
class EnergyReport:
    layers: list[SynapticLayer]
    neuron_layers: list[NeuronLayer]
    T: int
    samples: int
    e_mac_pj: float
    e_ac_pj: float
    totals: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A plain-text table of the layers and the totals."""
        w = max([len(layer.name) for layer in self.layers + self.neuron_layers] + [5])
        rows = [f"{'layer':<{w}}  {'input':6}  {'MACs':>12}  {'rate':>6}  {'SOPs':>12}  {'energy (nJ)':>11}"]
        for L in self.layers:
            rate = "-" if L.input_rate is None else f"{L.input_rate:.4f}"
            rows.append(
                f"{L.name:<{w}}  {L.input:6}  {L.macs:12.4g}  {rate:>6}  {L.sops:12.4g}  {L.energy_pj / 1e3:11.4g}"
            )
        rows.append("")
        rows.append(
            f"{'neuron layer':<{w}}  {'type':8} {'neurons':>9}  {'rate':>6}  {'ops/update':>10}  {'ops':>12}"
        )
        for N in self.neuron_layers:
            ops = N.ops_per_update
            per = "?" if ops is None else str(ops["arith"] + ops["transcendental"])
            rows.append(
                f"{N.name:<{w}}  {N.neuron:8} {N.neurons:9d}  {N.firing_rate:6.4f}  {per:>10}  {N.update_ops:12.4g}"
            )
        t = self.totals
        rows += [
            "",
            f"per sample, T={self.T}, over {self.samples} samples: MACs {t['macs']:.4g} (dense, all layers "
            f"{t['dense_macs']:.4g}), SOPs {t['sops']:.4g}, energy {t['energy_pj'] / 1e6:.4g} µJ "
            f"(E_MAC {self.e_mac_pj} pJ, E_AC {self.e_ac_pj} pJ); firing rate {t['firing_rate']:.4f}; "
            f"neuron-update ops {t['neuron_update_ops']:.4g}",
        ]
        return "\n".join(rows)


@torch.no_grad()
def energy_report(
    model: nn.Module, inputs, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ
) -> EnergyReport:
    """Count MACs, SOPs, energy and neuron-update operations of a multi-step ``model``.

    Args:
        model: a model taking ``[T, B, ...]`` (its neurons in multi-step mode).
        inputs: one input tensor ``[T, B, ...]`` or an iterable of them (all with the same T).
        e_mac_pj, e_ac_pj: energy per MAC and per accumulate, in picojoules.
    Returns an :class:`EnergyReport`; every count is per sample (divided by the number of samples).
    """
    batches = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    if not batches:
        raise ValueError("energy_report needs at least one input batch")
    T = batches[0].shape[0]
    was_training = model.training
    model.eval()
    names = {mod: name for name, mod in model.named_modules() if isinstance(mod, SYNAPTIC)}
    stats: dict[str, list] = {}  # name -> [sum, numel, min, max]
    order: list[str] = []

    def hook(mod, args, out):
        name = names[mod]
        x = args[0].detach()
        s = stats.setdefault(name, [0.0, 0, float("inf"), float("-inf")])
        if name not in order:
            order.append(name)
        s[0] += float(x.sum(dtype=torch.float64))
        s[1] += x.numel()
        s[2] = min(s[2], float(x.min()))
        s[3] = max(s[3], float(x.max()))

    handles = [mod.register_forward_hook(hook) for mod in names]
    samples = 0
    try:
        with FiringRateMonitor(model) as mon, FlopCounterMode(display=False) as counter:
            for x in batches:
                if x.shape[0] != T:
                    raise ValueError(f"all input batches need the same T={T}, got {tuple(x.shape)}")
                reset_net(model)
                model(x)
                samples += x.shape[1]
            reset_net(model)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    flops = counter.get_flop_counts()
    root = type(model).__name__
    layers = []
    for i, name in enumerate(order):
        s, n, lo, hi = stats[name]
        macs = sum(flops.get(f"{root}.{name}", {}).values()) / 2 / samples
        spiking = i > 0 and lo >= 0.0 and hi <= 1.0
        rate = s / n if spiking else None
        sops = rate * macs if spiking else 0.0
        energy = e_ac_pj * sops if spiking else e_mac_pj * macs
        kind = "linear" if isinstance(model.get_submodule(name), nn.Linear) else "conv"
        layers.append(SynapticLayer(name, kind, "spikes" if spiking else "real", macs, rate, sops, energy))

    rates = mon.layer_rates()
    counts = mon.layer_counts()
    neuron_layers, undeclared = [], set()
    for name, mod in model.named_modules():
        if isinstance(mod, BaseNeuron) and name in rates:
            neurons = int(round(counts[name][1] / (T * samples)))
            ops = neuron_update_ops(mod)
            if ops is None:
                undeclared.add(type(mod).__name__)
                total = math.nan
            else:
                total = (ops["arith"] + ops["transcendental"]) * neurons * T
            neuron_layers.append(NeuronLayer(name, mod.short_name(), neurons, rates[name], ops, float(total)))
    if undeclared:
        warnings.warn(f"{sorted(undeclared)} declare no update_ops(): their neuron-update operations are "
                      "reported as nan (see docs/custom_neuron.md)", stacklevel=2)  # fmt: skip

    real_macs = sum(L.macs for L in layers if L.input == "real")
    sops = sum(L.sops for L in layers)
    totals = {
        "macs": real_macs,
        "dense_macs": sum(L.macs for L in layers),
        "sops": sops,
        "energy_pj": e_mac_pj * real_macs + e_ac_pj * sops,
        "firing_rate": mon.overall_rate(),
        "neuron_update_ops": sum(N.update_ops for N in neuron_layers),
    }
    return EnergyReport(layers, neuron_layers, T, samples, e_mac_pj, e_ac_pj, totals)
