"""Spiking models for 1-D signals (MNIST-1D): a 1-D CNN for whole signals and a recurrent network for signals
fed one value per step."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .layers import SeqToANN, SharedDropout, init_weights
from .memory import cast_spikes_for_autocast, compact_saved_tensors


def conv_bn1d(in_ch: int, out_ch: int, kernel: int = 3) -> SeqToANN:
    """1-D conv (no bias, 'same' padding for odd kernels) followed by BatchNorm, applied per step."""
    return SeqToANN(nn.Conv1d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(out_ch))


class SpikingCNN1d(nn.Module):
    """conv(c1, k) BN N -> conv(c2) BN N -> AvgPool(2) -> conv(c3) BN N -> AvgPool(2) -> Linear(classes).

    Input ``[T, B, C, L]`` (MNIST-1D: C = 1, L = 40, the signal repeated at every step) -> logits
    ``[T, B, num_classes]``. The first layer sees the real-valued signal; every later one sees spikes (or
    average-pooled spikes). ``dropout`` (one mask for all steps) applies before the classifier.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        neuron: Callable[[], nn.Module],
        input_size: tuple[int] = (40,),
        channels: tuple[int, int, int] = (32, 64, 64),
        kernel: int = 5,
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(tuple(input_size)) != 1:
            raise ValueError(f"SpikingCNN1d takes 1-D signals [C, L]; got samples of size {tuple(input_size)}")
        (length,) = input_size
        if length < 4:
            raise ValueError(f"SpikingCNN1d pools twice by 2, so signals need >= 4 values, got {length}")
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            conv_bn1d(in_channels, c1, kernel), neuron(),
            conv_bn1d(c1, c2), neuron(), SeqToANN(nn.AvgPool1d(2)),
            conv_bn1d(c2, c3), neuron(), SeqToANN(nn.AvgPool1d(2)),
        )  # fmt: skip
        self.dropout = SharedDropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = SeqToANN(nn.Flatten(1), nn.Linear(c3 * (length // 4), num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


class RecurrentSpikingLayer(nn.Module):
    """One layer of recurrently connected spiking neurons: ``s_t = N(BN(W x_t) + U s_{t-1})``.

    ``W`` (the input weights, then BatchNorm over steps and batch) is applied to all steps at once; the
    recurrence ``U s_{t-1}`` forces one step at a time, so the neuron always runs in single-step mode
    (whatever :func:`arlif.set_step_mode` set: this layer's own ``step_mode`` says whether its input is one
    step ``[B, F]`` or a sequence ``[T, B, F]``). Like a neuron, the layer keeps its last spikes between calls
    until :meth:`reset` (``reset_net`` calls it); :meth:`detach` (``detach_net``) cuts them from the graph.
    """

    _arlif_memory_aware = True  # set_memory sets .memory: in compact tiers the recurrent weights keep spikes as bits
    memory = "default"

    def __init__(self, in_features: int, hidden: int, neuron: Callable[[], nn.Module], step_mode: str = "m"):
        super().__init__()
        self.input = SeqToANN(nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden), step_mode=step_mode)
        self.recurrent = nn.Linear(hidden, hidden, bias=False)
        self.neuron = neuron()
        self.neuron.step_mode = "s"
        self.step_mode = step_mode
        self.spikes: torch.Tensor | None = None

    def reset(self) -> None:
        self.spikes = None

    def detach(self) -> None:
        """Keep the last spikes but cut them from earlier steps' graph (truncated BPTT; ``detach_net`` calls
        this)."""
        if self.spikes is not None:
            self.spikes = self.spikes.detach()

    def _step(self, drive: torch.Tensor) -> torch.Tensor:
        if self.spikes is not None:  # no spikes yet: no recurrent input (and no synaptic operations)
            if self.memory != "default" and torch.is_grad_enabled() and not torch.compiler.is_compiling():
                with compact_saved_tensors():
                    drive = drive + self.recurrent(cast_spikes_for_autocast(self.spikes))
            else:
                drive = drive + self.recurrent(self.spikes)
        self.spikes = self.neuron(drive)
        return self.spikes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.neuron.step_mode = "s"
        drive = self.input(x)
        if self.step_mode == "s":
            return self._step(drive)
        return torch.stack([self._step(d) for d in drive.unbind(0)])

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode!r}"


class SpikingRNN(nn.Module):
    """Recurrent spiking layers, then a linear readout of the last layer's spikes at every step.

    Input ``[T, B, C, *size]`` (MNIST-1D sequential: ``[40, B, 1]``, one value per step). With
    ``readout="mean"`` (default) the output is the mean of the per-step logits over the sequence, shaped
    ``[1, B, num_classes]``: a linear readout of the spike counts, so the loss judges the whole sequence. With
    ``readout="steps"`` it is the per-step logits ``[T, B, num_classes]`` as in the other models, and the
    per-step loss then also asks the first steps, which have seen a few values only, for the class. In
    single-step mode (:func:`arlif.set_step_mode`) every call returns the logits of its step ``[B, classes]``.

    Why recurrent rather than feed-forward: when the signal arrives one value per step, a feed-forward network
    can only remember earlier values in its neurons' states, and with the default leak (λ = 0.5) a value from
    five steps back keeps about 3% of its weight, whereas a digit is told apart by the shape of the whole
    signal. Recurrent connections give every neuron type the same learned memory, so the comparison between
    neurons is not decided by which one happens to forget slowest. The cost is one step at a time in the
    neuron's reference (per-step) implementation, which a small layer on the CPU affords: see
    ``configs/mnist1d_seq_srnn.yaml``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        neuron: Callable[[], nn.Module],
        input_size: tuple[int, ...] = (),
        hidden: tuple[int, ...] | int = (128,),
        dropout: float = 0.0,
        readout: str = "mean",
    ):
        super().__init__()
        if readout not in ("mean", "steps"):
            raise ValueError(f"readout must be 'mean' or 'steps', got {readout!r}")
        self.readout = readout
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        if not hidden:
            raise ValueError("SpikingRNN needs at least one hidden layer (hidden=[...])")
        width = in_channels * math.prod(input_size)
        layers = []
        for h in hidden:
            layers.append(RecurrentSpikingLayer(width, h, neuron))
            width = h
        self.layers = nn.Sequential(*layers)
        self.dropout = SharedDropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = SeqToANN(nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layers[0].step_mode == "m":
            x = x.flatten(2)  # [T, B, C, *size] -> [T, B, features]
        else:
            x = x.flatten(1)
        logits = self.fc(self.dropout(self.layers(x)))
        if self.readout == "mean" and self.layers[0].step_mode == "m":
            return logits.mean(0, keepdim=True)
        return logits
