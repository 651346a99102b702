"""Host side of the fused LIF/PLIF CPU kernels (``cpu_kernels.cpp`` in this folder: one leaky integrator with
leak k) through ctypes; the conventions are those of :mod:`arlif.ops.cpu_host`."""

from __future__ import annotations

import torch

from ..cpu_host import F64, I64, INT, PTR, Kernels, out, partials, prep, ptr, threads, total
from ..dtypes import compute_dtype

Tensor = torch.Tensor

# the C ABI of this family's entry points (cpu_kernels.cpp, extern "C"), declared once
KERNELS = Kernels(
    leaky_fwd=[PTR, PTR, I64, I64, F64, F64, INT, PTR, PTR, PTR, INT],
    leaky_bwd=[PTR, PTR, PTR, PTR, PTR, I64, I64, F64, F64, INT, INT, F64, PTR, PTR, PTR, INT],
)  # fmt: skip


def leaky_forward(x, v0, k, vth, hard, keep):
    """``k`` is the leak: a float (LIF's λ) or a 0-dim tensor (PLIF's 1 - σ(w), in the compute dtype)."""
    cd = compute_dtype(x.dtype)
    xc, v0 = prep(x, cd), prep(v0, cd)
    T, N = xc.shape
    kv = float(k.item()) if isinstance(k, Tensor) else float(k)
    spikes = torch.empty_like(xc)
    vT = torch.empty(N, dtype=cd)
    vseq = torch.empty_like(xc) if keep else None
    KERNELS("leaky_fwd", cd)(
        ptr(xc), ptr(v0), T, N, kv, vth, int(hard), ptr(spikes), ptr(vT), ptr(vseq), threads(xc.numel())
    )
    return spikes.to(x.dtype), vT, out(vseq, x.dtype)


def leaky_backward(gs, gvT, gvseq, x, v0, k, vth, hard, kind, width, need_k):
    """Returns ``(grad_x [x.dtype], grad_v0 | None, dL/dk | None)``."""
    cd = compute_dtype(x.dtype)
    xc, v0 = prep(x, cd), prep(v0, cd)
    gs, gvT, gvseq = prep(gs, cd), prep(gvT, cd), prep(gvseq, cd)
    T, N = xc.shape
    kv = float(k.item()) if isinstance(k, Tensor) else float(k)
    gx = torch.empty_like(xc)
    gv0 = torch.empty(N, dtype=cd) if v0 is not None else None
    part_k = partials(N) if need_k else None
    KERNELS("leaky_bwd", cd)(
        ptr(gs), ptr(gvT), ptr(gvseq), ptr(xc), ptr(v0), T, N, kv, vth, int(hard), kind, width,
        ptr(gx), ptr(gv0), ptr(part_k), threads(xc.numel()),
    )  # fmt: skip
    return gx.to(x.dtype), gv0, (total(part_k, cd) if need_k else None)
