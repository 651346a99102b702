"""Host side of the fused AR-LIF CPU kernels (``cpu_kernels.cpp`` in this folder) through ctypes; the
conventions are those of :mod:`arlif.ops.cpu_host`."""

from __future__ import annotations

import torch

from ..cpu_host import F64, I64, INT, PTR, Kernels, out, partials, prep, ptr, scalar, threads, total
from ..dtypes import compute_dtype

# the C ABI of this family's entry points (cpu_kernels.cpp, extern "C"), declared once
KERNELS = Kernels(
    arlif_fwd=[PTR, PTR, PTR, I64, I64, F64, F64, F64, F64, INT, INT, INT, PTR, PTR, PTR, PTR, PTR, INT],
    arlif_bwd=[PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, I64, I64, F64, F64, F64, F64, INT, INT, INT, INT, F64,
               PTR, PTR, PTR, PTR, PTR, INT],
)  # fmt: skip


def arlif_forward(x, v0, m0, a, c, vth, decay, ta_on, ar, carry, keep):
    cd = compute_dtype(x.dtype)
    xc, v0, m0 = prep(x, cd), prep(v0, cd), prep(m0 if (ar and carry) else None, cd)
    T, N = xc.shape
    ta = float(torch.tanh(a.detach().to(cd)).item()) if ta_on else 0.0
    cv = scalar(c, cd) if (ar and carry) else 0.0
    spikes = torch.empty_like(xc)
    vT = torch.empty(N, dtype=cd)
    mT = torch.empty(N, dtype=cd) if ar else None
    vseq = torch.empty_like(xc) if keep else None
    mseq = torch.empty_like(xc) if (keep and ar) else None
    KERNELS("arlif_fwd", cd)(
        ptr(xc), ptr(v0), ptr(m0), T, N, ta, cv, vth, decay, int(ta_on), int(ar), int(carry),
        ptr(spikes), ptr(vT), ptr(mT), ptr(vseq), ptr(mseq), threads(xc.numel()),
    )  # fmt: skip
    return spikes.to(x.dtype), vT, mT, out(vseq, x.dtype), out(mseq, x.dtype)


def arlif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, a, c, vth, decay, ta_on, ar, carry, kind, width):
    """Returns ``(grad_x [x.dtype], grad_v0 | None, grad_m0 | None, dL/dtanh(a), dL/dc)`` (compute dtype)."""
    cd = compute_dtype(x.dtype)
    xc, v0 = prep(x, cd), prep(v0, cd)
    m0 = prep(m0 if (ar and carry) else None, cd)
    gs, gvT, gvseq = prep(gs, cd), prep(gvT, cd), prep(gvseq, cd)
    gmT, gmseq = (prep(gmT, cd), prep(gmseq, cd)) if ar else (None, None)
    T, N = xc.shape
    ta = float(torch.tanh(a.detach().to(cd)).item()) if ta_on else 0.0
    cv = scalar(c, cd) if (ar and carry) else 0.0
    gx = torch.empty_like(xc)
    gv0 = torch.empty(N, dtype=cd) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd) if m0 is not None else None
    part_a, part_c = partials(N), partials(N)
    KERNELS("arlif_bwd", cd)(
        ptr(gs), ptr(gvT), ptr(gmT), ptr(gvseq), ptr(gmseq), ptr(xc), ptr(v0), ptr(m0), T, N,
        ta, cv, vth, decay, int(ta_on), int(ar), int(carry), kind, width,
        ptr(gx), ptr(gv0), ptr(gm0), ptr(part_a), ptr(part_c), threads(xc.numel()),
    )  # fmt: skip
    return gx.to(x.dtype), gv0, gm0, total(part_a, cd), total(part_c, cd)
