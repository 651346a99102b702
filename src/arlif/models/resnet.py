"""Pre-activation spiking ResNet-18 (docs/models.md#spiking_resnet18)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import SeqToANN, conv_bn, init_weights
from .memory import note_sum


class PreActBlock(nn.Module):
    """``s = N(BN(x))``; ``out = conv(s) -> BN -> N -> conv``; ``out += shortcut(s)`` (identity or 1×1 conv
    on the spikes ``s``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, neuron: Callable[[], nn.Module]):
        super().__init__()
        self.bn_in = SeqToANN(nn.BatchNorm2d(in_ch))
        self.sn_in = neuron()
        self.conv1 = conv_bn(in_ch, out_ch, 3, stride)  # conv -> BN
        self.sn_mid = neuron()
        self.conv2 = SeqToANN(nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False))
        self.shortcut = (
            SeqToANN(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False))
            if stride != 1 or in_ch != out_ch
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sn_in(self.bn_in(x))
        out = self.conv2(self.sn_mid(self.conv1(s)))
        shortcut = self.shortcut(s)
        total = out + shortcut
        note_sum(total, out, shortcut)  # in "minimal", the next BatchNorm keeps no input: it is made again
        return total


class SpikingResNet18(nn.Module):
    """Input ``[T, B, C, H, W]`` -> logits ``[T, B, num_classes]`` (one Linear per step, not spiking).

    17 neuron layers: two per block (8 blocks) and one in the head. The head's average pool covers the
    whole remaining map (4×4 for 32×32 inputs, the reference recipe's AvgPool(4)).
    """

    def __init__(self, num_classes: int, in_channels: int, neuron: Callable[[], nn.Module], width: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = SeqToANN(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False))
        blocks, in_ch = [], widths[0]
        for w, stride in zip(widths, [1, 2, 2, 2]):
            blocks += [PreActBlock(in_ch, w, stride, neuron), PreActBlock(w, w, 1, neuron)]
            in_ch = w
        self.blocks = nn.Sequential(*blocks)
        self.head_bn = SeqToANN(nn.BatchNorm2d(in_ch))
        self.head_sn = neuron()
        self.pool = SeqToANN(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.fc = SeqToANN(nn.Linear(in_ch, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(self.pool(self.head_sn(self.head_bn(x))))
