"""The LIF and PLIF steps (docs/neurons.md#lif, #plif) in plain PyTorch autograd: the definitions the fused
kernels are tested against (shapes and dtypes: :mod:`arlif.ops.reference`)."""

from __future__ import annotations

import torch

from ...surrogate import Surrogate

Tensor = torch.Tensor


def lif_step(
    x: Tensor,
    v: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
    decay: float = 0.5,
    hard_reset: bool = False,
) -> tuple[Tensor, Tensor]:
    """One LIF step (docs/neurons.md#lif) with soft (``V = H - S·V_th``) or hard (``V = H·(1 - S)``) reset."""
    h = decay * v + x
    s = surrogate(h - v_threshold)
    v_new = h * (1 - s) if hard_reset else h - s * v_threshold
    return s, v_new


def plif_step(
    x: Tensor,
    v: Tensor,
    w: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """One PLIF step (docs/neurons.md#plif): leak ``1 - σ(w)`` with learnable ``w``, no input decay, soft reset."""
    h = v * (1 - torch.sigmoid(w.to(x.dtype))) + x
    s = surrogate(h - v_threshold)
    return s, h - s * v_threshold
