"""Building blocks that let ordinary layers run on time-first spike tensors.

In multi-step mode (``step_mode="m"``) tensors are ``[T, B, ...]``; stateless layers (conv, BN, pooling,
linear) then see ``[T·B, ...]``, so BatchNorm statistics are taken over time and batch together. In
single-step mode they see ``[B, ...]`` directly. :func:`arlif.set_step_mode` switches both kinds.
"""

from __future__ import annotations

import torch
from torch import nn

from .memory import cast_spikes_for_autocast, check_tier, compact_saved_tensors, is_marked_binary


class SeqToANN(nn.Sequential):
    """Run stateless layers on ``[T, B, ...]`` (multi-step) or ``[B, ...]`` (single step).

    ``memory="compact"`` or ``"minimal"`` (normally set for a whole model by :func:`arlif.models.set_memory`)
    keeps spikes that these layers save for backward as bits, and recomputes the saved outputs that have a
    recipe (:mod:`arlif.models.memory`)."""

    memory = "default"  # also for modules pickled whole before the attribute existed
    _arlif_memory_aware = True  # set_memory finds the layers it sets by this flag, not by class

    def __init__(self, *layers: nn.Module, step_mode: str = "m", memory: str = "default"):
        super().__init__(*layers)
        self.step_mode = step_mode
        self.memory = check_tier(memory)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory == "default" or not torch.is_grad_enabled() or torch.compiler.is_compiling():
            return super().forward(x)
        if is_marked_binary(x) and _casts_input(self):
            x = cast_spikes_for_autocast(x)
        with compact_saved_tensors():
            return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "s":
            return self._run(x)
        if x.dim() < 3:
            raise ValueError(f"SeqToANN in multi-step mode expects [T, B, ...], got shape {tuple(x.shape)}")
        T, B = x.shape[:2]
        y = self._run(x.flatten(0, 1))
        return y.unflatten(0, (T, B))

    def extra_repr(self) -> str:
        return "" if self.memory == "default" else f"memory={self.memory!r}"


_SHAPE_ONLY = (nn.Flatten, nn.Identity)
_AUTOCAST_LOWER = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _casts_input(seq: nn.Sequential) -> bool:
    """Whether autocast would cast this stack's input itself: its first layer that computes is a
    convolution or a linear layer (autocast leaves pooling and BatchNorm in the input dtype)."""
    for layer in seq:
        if not isinstance(layer, _SHAPE_ONLY):
            return isinstance(layer, _AUTOCAST_LOWER)
    return False


class SharedDropout(nn.Module):
    """Dropout whose mask is shared by all T steps of a sample (a neuron is either dropped for the whole
    sequence or not). Multi-step: one mask ``[1, B, ...]``; single step: the mask drawn at the first step
    is kept until :meth:`reset`."""

    def __init__(self, p: float = 0.5, step_mode: str = "m"):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.step_mode = step_mode
        self.mask = None

    def reset(self) -> None:
        self.mask = None

    def _draw(self, like: torch.Tensor) -> torch.Tensor:
        keep = torch.empty_like(like).bernoulli_(1 - self.p)
        return keep / (1 - self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.step_mode == "m":
            return x * self._draw(x[:1])
        if self.mask is None or self.mask.shape != x.shape:
            self.mask = self._draw(x)
        return x * self.mask

    def extra_repr(self) -> str:
        return f"p={self.p}, step_mode={self.step_mode!r}"


def conv_bn(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> SeqToANN:
    """conv (no bias, 'same' padding for odd kernels) followed by BatchNorm, applied per step."""
    return SeqToANN(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    )


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) convolutions, BN weight 1 / bias 0, default Linear init."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
