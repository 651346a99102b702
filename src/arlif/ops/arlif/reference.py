"""The AR-LIF step of docs/neurons.md#ar-lif in plain PyTorch autograd: the definition the fused kernels are
tested against (shapes and dtypes: :mod:`arlif.ops.reference`)."""

from __future__ import annotations

import torch

from ...surrogate import Surrogate

Tensor = torch.Tensor


def arlif_step(
    x: Tensor,
    v: Tensor,
    m: Tensor | None,
    a: Tensor,
    c: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
    decay: float = 0.5,
    threshold_adjust: bool = True,
    adaptive_reset: bool = True,
    carry_memory: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One AR-LIF step (docs/neurons.md#ar-lif). Returns ``(spike, v, m)``; ``m`` is ``None`` when
    ``adaptive_reset=False`` (that variant has no reset memory)."""
    h = decay * v + x
    if threshold_adjust:
        theta = v_threshold + torch.tanh(a.to(x.dtype)) * torch.tanh(x)
    else:
        theta = v_threshold
    s = surrogate(h - theta)
    if not adaptive_reset:
        return s, h - s * theta, None
    sx = torch.sigmoid(x)
    if carry_memory and m is not None:
        g = torch.sigmoid(c.to(x.dtype) * x)
        # positive memory leaks by g, negative memory by (1 - g)
        m_new = m * torch.where(m > 0, g, 1 - g) + (2 * s - 1) * sx
    else:
        m_new = (2 * s - 1) * sx
    v_new = h - s * (theta + torch.sigmoid(m_new))
    return s, v_new, m_new
