"""Spiking VGG-11/13 with BatchNorm and VGGSNN (docs/models.md)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import SeqToANN, SharedDropout, conv_bn, init_weights

LAYOUTS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vggsnn": [64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
}


def make_features(
    layout: list,
    in_channels: int,
    neuron: Callable[[], nn.Module],
    dropout: float = 0.0,
    width_mult: float = 1.0,
) -> tuple[nn.Sequential, int]:
    """``[conv3×3 -> BN -> N (-> shared dropout)]`` stacks with ``M`` = AvgPool2d(2). Returns the stack and
    its output channels."""
    layers: list[nn.Module] = []
    ch = in_channels
    for item in layout:
        if item == "M":
            layers.append(SeqToANN(nn.AvgPool2d(2)))
            continue
        out = max(1, int(item * width_mult))
        layers += [conv_bn(ch, out), neuron()]
        if dropout > 0:
            layers.append(SharedDropout(dropout))
        ch = out
    return nn.Sequential(*layers), ch


class SpikingVGG(nn.Module):
    """Spiking VGG-11/13-BN: features, AdaptiveAvgPool(7), Linear(512·49, classes).

    Input ``[T, B, C, H, W]`` -> logits ``[T, B, num_classes]``. ``dropout`` (shared over T) follows every
    neuron layer (0.4 for DVS128 Gesture).
    """

    def __init__(
        self,
        layout: str,
        num_classes: int,
        in_channels: int,
        neuron: Callable[[], nn.Module],
        dropout: float = 0.0,
        width_mult: float = 1.0,
    ):
        super().__init__()
        self.features, ch = make_features(LAYOUTS[layout], in_channels, neuron, dropout, width_mult)
        self.pool = SeqToANN(nn.AdaptiveAvgPool2d(7), nn.Flatten(1))
        self.fc = SeqToANN(nn.Linear(ch * 49, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))


class VGGSNN(nn.Module):
    """VGGSNN: 64,128,P,256,256,P,512,512,P,512,512,P then Dropout(0.25) and Linear(512·(H/16)·(W/16)).

    ``input_size`` (H, W) sizes the head (48×48 for CIFAR10-DVS, 64×64 for Tiny-ImageNet); H and W must be
    divisible by 16.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        neuron: Callable[[], nn.Module],
        input_size: tuple[int, int] = (48, 48),
        dropout: float = 0.25,
        width_mult: float = 1.0,
    ):
        super().__init__()
        h, w = input_size
        if h % 16 or w % 16:
            raise ValueError(f"vggsnn needs an input size divisible by 16, got {h}×{w}")
        self.features, ch = make_features(LAYOUTS["vggsnn"], in_channels, neuron, 0.0, width_mult)
        self.flatten = SeqToANN(nn.Flatten(1))
        self.dropout = SharedDropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = SeqToANN(nn.Linear(ch * (h // 16) * (w // 16), num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.flatten(self.features(x))))
