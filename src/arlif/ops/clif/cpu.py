"""Host side of the fused CLIF CPU kernels (``cpu_kernels.cpp`` in this folder) through ctypes; the
conventions are those of :mod:`arlif.ops.cpu_host`."""

from __future__ import annotations

import torch

from ..cpu_host import F64, I64, INT, PTR, Kernels, out, prep, ptr, threads
from ..dtypes import compute_dtype

# the C ABI of this family's entry points (cpu_kernels.cpp, extern "C"), declared once
KERNELS = Kernels(
    clif_fwd=[PTR, PTR, PTR, I64, I64, F64, F64, F64, PTR, PTR, PTR, PTR, PTR, INT],
    clif_bwd=[PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, I64, I64, F64, F64, F64, INT, F64, PTR, PTR, PTR, INT],
)  # fmt: skip


def clif_forward(x, v0, m0, vth, tau, keep):
    cd = compute_dtype(x.dtype)
    xc, v0, m0 = prep(x, cd), prep(v0, cd), prep(m0, cd)
    T, N = xc.shape
    spikes = torch.empty_like(xc)
    vT, mT = torch.empty(N, dtype=cd), torch.empty(N, dtype=cd)
    vseq = torch.empty_like(xc) if keep else None
    mseq = torch.empty_like(xc) if keep else None
    KERNELS("clif_fwd", cd)(
        ptr(xc), ptr(v0), ptr(m0), T, N, 1 - 1 / tau, tau, vth,
        ptr(spikes), ptr(vT), ptr(mT), ptr(vseq), ptr(mseq), threads(xc.numel()),
    )  # fmt: skip
    return spikes.to(x.dtype), vT, mT, out(vseq, x.dtype), out(mseq, x.dtype)


def clif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, vth, tau, kind, width):
    """Returns ``(grad_x [x.dtype], grad_v0 | None, grad_m0 | None)``."""
    cd = compute_dtype(x.dtype)
    xc, v0, m0 = prep(x, cd), prep(v0, cd), prep(m0, cd)
    gs, gvT, gmT, gvseq, gmseq = (prep(g, cd) for g in (gs, gvT, gmT, gvseq, gmseq))
    T, N = xc.shape
    gx = torch.empty_like(xc)
    gv0 = torch.empty(N, dtype=cd) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd) if m0 is not None else None
    KERNELS("clif_bwd", cd)(
        ptr(gs), ptr(gvT), ptr(gmT), ptr(gvseq), ptr(gmseq), ptr(xc), ptr(v0), ptr(m0), T, N,
        1 - 1 / tau, tau, vth, kind, width, ptr(gx), ptr(gv0), ptr(gm0), threads(xc.numel()),
    )  # fmt: skip
    return gx.to(x.dtype), gv0, gm0
