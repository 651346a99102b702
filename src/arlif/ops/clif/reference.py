"""The CLIF step of docs/neurons.md#clif in plain PyTorch autograd: the definition the fused kernels are
tested against (shapes and dtypes: :mod:`arlif.ops.reference`)."""

from __future__ import annotations

import torch

from ...surrogate import Surrogate

Tensor = torch.Tensor


def clif_step(
    x: Tensor,
    v: Tensor,
    m: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
    tau: float = 2.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """One CLIF step (docs/neurons.md#clif): complementary memory ``m`` raises the reset after spikes."""
    h = v * (1 - 1 / tau) + x
    m_prev = m * torch.sigmoid(h / tau)
    s = surrogate(h - v_threshold)
    m_new = m_prev + s
    return s, h - s * (v_threshold + torch.sigmoid(m_new)), m_new
