"""A small spiking CNN for the offline digits demo (8×8 grey images)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import SeqToANN, conv_bn, init_weights


class SmallCNN(nn.Module):
    """conv(32) BN N -> conv(64) BN N -> AvgPool(2) -> Linear(128) N -> Linear(classes).

    Input ``[T, B, C, H, W]`` (H, W even) -> logits ``[T, B, num_classes]``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        neuron: Callable[[], nn.Module],
        input_size: tuple[int, int] = (8, 8),
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
    ):
        super().__init__()
        c1, c2 = channels
        h, w = input_size
        self.features = nn.Sequential(
            conv_bn(in_channels, c1), neuron(), conv_bn(c1, c2), neuron(), SeqToANN(nn.AvgPool2d(2))
        )
        self.hidden = SeqToANN(
            nn.Flatten(1), nn.Linear(c2 * (h // 2) * (w // 2), hidden), nn.BatchNorm1d(hidden)
        )
        self.hidden_sn = neuron()
        self.fc = SeqToANN(nn.Linear(hidden, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden_sn(self.hidden(self.features(x))))
