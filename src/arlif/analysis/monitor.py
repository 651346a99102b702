"""Firing-rate monitor: forward hooks on every arlif neuron of a model (docs/energy.md#firing-rates).

Usage::

    with FiringRateMonitor(model) as mon:
        model(x)                      # any number of forwards, single- or multi-step
    mon.layer_rates()                 # {layer name: spikes / (neurons · steps)}
    mon.step_rates()                  # {layer name: [rate at t=1, ..., t=T]}
    mon.overall_rate()                # all layers together

Hooks only read the outputs, so results are unchanged; leaving the ``with`` block removes them.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import BaseNeuron
from ..neurons.base import output_spikes


class FiringRateMonitor:
    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, BaseNeuron)]
        self._handles: list = []
        self.clear()

    def clear(self) -> None:
        """Forget everything counted so far."""
        self._spikes: dict[str, torch.Tensor] = {}  # per step spike counts (float64)
        self._counts: dict[str, torch.Tensor] = {}  # per step neuron counts
        self._step: dict[str, int] = {}  # next step index of single-step calls

    # hooks -------------------------------------------------------------------------------------------
    def _pre_hook(self, name: str):
        def hook(mod, inputs):
            if mod.step_mode == "s" and not isinstance(mod.v, torch.Tensor):
                self._step[name] = 0  # the neuron was reset: a new sequence starts

        return hook

    def _hook(self, name: str):
        def hook(mod, inputs, out):
            out = output_spikes(out).detach()
            if mod.step_mode == "m":
                spikes = out.flatten(1).sum(1, dtype=torch.float64)
                counts = torch.full_like(spikes, out[0].numel())
                self._add(name, 0, spikes, counts)
            else:
                t = self._step.get(name, 0)
                self._step[name] = t + 1
                spikes = out.sum(dtype=torch.float64).reshape(1)
                self._add(name, t, spikes, torch.full_like(spikes, out.numel()))

        return hook

    def _add(self, name: str, start: int, spikes: torch.Tensor, counts: torch.Tensor) -> None:
        need = start + spikes.numel()
        for store, new in ((self._spikes, spikes), (self._counts, counts)):
            cur = store.get(name)
            if cur is None or cur.numel() < need:
                grown = torch.zeros(need, dtype=torch.float64, device=new.device)
                if cur is not None:
                    grown[: cur.numel()] = cur
                cur = grown
            cur[start:need] += new
            store[name] = cur

    def __enter__(self) -> FiringRateMonitor:
        for name, mod in self.layers:
            self._handles.append(mod.register_forward_pre_hook(self._pre_hook(name)))
            self._handles.append(mod.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # results -----------------------------------------------------------------------------------------
    def layer_rates(self) -> dict[str, float]:
        return {n: float(self._spikes[n].sum() / self._counts[n].sum()) for n in self._spikes}

    def step_rates(self) -> dict[str, list[float]]:
        return {n: (self._spikes[n] / self._counts[n].clamp_min(1)).tolist() for n in self._spikes}

    def layer_counts(self) -> dict[str, tuple[float, float]]:
        """``{layer: (spikes, neuron-steps)}`` summed over everything seen."""
        return {n: (float(self._spikes[n].sum()), float(self._counts[n].sum())) for n in self._spikes}

    def overall_rate(self) -> float:
        spikes = sum(float(s.sum()) for s in self._spikes.values())
        counts = sum(float(c.sum()) for c in self._counts.values())
        return spikes / counts if counts else 0.0
