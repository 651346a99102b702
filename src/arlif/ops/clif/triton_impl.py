"""The fused CLIF in Triton: kernels and launchers (shared rules and helpers: :mod:`arlif.ops.triton_common`)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..dtypes import compute_dtype
from ..triton_common import (
    BLOCK,
    NUM_WARPS,
    consts,
    initial_v,
    launch_grid,
    load_or_zero,
    on_device,
    opt,
    prep,
    program_block,
    sigmoid,
    surrogate_grad,
)


# =======================================================================================================
# CLIF
# =======================================================================================================
@triton.jit
def _clif_step(v, m, xi, vth, kc, tau):
    """One CLIF step from ``(V_{t-1}, m_{t-1})``: ``(V_t, m_t, S_t)`` and what the backward reuses,
    ``(u, σ(H/τ), σ(m_t))``."""
    h = v * kc + xi
    q = sigmoid(h / tau)
    u = h - vth
    s = (u >= 0).to(xi.dtype)
    m = m * q + s
    smn = sigmoid(m)
    v = h - s * (vth + smn)
    return v, m, s, u, q, smn


@triton.jit
def _clif_init(v0_ptr, m0_ptr, c_ptr, offs, mask, HAS_V0: tl.constexpr, HAS_M0: tl.constexpr):
    """Initial ``(V, m)`` of this program's neurons and the constants ``(V_th, 1 - 1/τ, τ)``."""
    v = initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0)
    m = load_or_zero(m0_ptr + offs, mask, HAS_M0, v)
    return v, m, tl.load(c_ptr), tl.load(c_ptr + 1), tl.load(c_ptr + 3)


@triton.jit
def _clif_fwd_kernel(x_ptr, v0_ptr, m0_ptr, c_ptr, s_ptr, vT_ptr, mT_ptr, vseq_ptr, mseq_ptr, T, N,
                     HAS_V0: tl.constexpr, HAS_M0: tl.constexpr, KEEP: tl.constexpr,
                     BLOCK: tl.constexpr):  # fmt: skip
    _pid, offs, mask = program_block(N, BLOCK)
    v, m, vth, kc, tau = _clif_init(v0_ptr, m0_ptr, c_ptr, offs, mask, HAS_V0, HAS_M0)
    cdt = v.dtype
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        v, m, s, _u, _q, _sm = _clif_step(v, m, xi, vth, kc, tau)
        tl.store(s_ptr + p, s.to(s_ptr.dtype.element_ty), mask=mask)
        if KEEP:
            tl.store(vseq_ptr + p, v.to(vseq_ptr.dtype.element_ty), mask=mask)
            tl.store(mseq_ptr + p, m.to(mseq_ptr.dtype.element_ty), mask=mask)
        p += N
    tl.store(vT_ptr + offs, v, mask=mask)
    tl.store(mT_ptr + offs, m, mask=mask)


@triton.jit
def _clif_bwd_kernel(gs_ptr, gvT_ptr, gmT_ptr, gvseq_ptr, gmseq_ptr, x_ptr, v0_ptr, m0_ptr, c_ptr, sv_ptr,
                     sm_ptr, gx_ptr, gv0_ptr, gm0_ptr, T, N, last, HAS_V0: tl.constexpr, HAS_M0: tl.constexpr,
                     HAS_GVT: tl.constexpr, HAS_GMT: tl.constexpr, HAS_GVSEQ: tl.constexpr,
                     HAS_GMSEQ: tl.constexpr, KIND: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    _pid, offs, mask = program_block(N, BLOCK)
    v, m, vth, kc, tau = _clif_init(v0_ptr, m0_ptr, c_ptr, offs, mask, HAS_V0, HAS_M0)
    cdt = v.dtype
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        tl.store(sv_ptr + p, v, mask=mask)
        tl.store(sm_ptr + p, m, mask=mask)
        v, m, _s, _u, _q, _sm = _clif_step(v, m, xi, vth, kc, tau)
        p += N
    tl.debug_barrier()  # see the scratch-barrier note in triton_common.py
    gv = load_or_zero(gvT_ptr + offs, mask, HAS_GVT, v)
    gm = load_or_zero(gmT_ptr + offs, mask, HAS_GMT, v)
    p = offs + last
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        vp = tl.load(sv_ptr + p, mask=mask, other=0.0)
        mprev = tl.load(sm_ptr + p, mask=mask, other=0.0)
        g_s = tl.load(gs_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GVSEQ:
            gv += tl.load(gvseq_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GMSEQ:
            gm += tl.load(gmseq_ptr + p, mask=mask, other=0.0).to(cdt)
        _v, _m, s, u, q, smn = _clif_step(vp, mprev, xi, vth, kc, tau)
        sg = surrogate_grad(u, c_ptr, KIND)
        gmn = gm - gv * s * (smn * (1 - smn))
        g_tot = g_s - gv * (vth + smn) + gmn
        gh = gv + g_tot * sg + (gmn * mprev) * (q * (1 - q)) / tau
        gm = gmn * q
        gv = kc * gh
        tl.store(gx_ptr + p, gh.to(gx_ptr.dtype.element_ty), mask=mask)
        p -= N
    if HAS_V0:
        tl.store(gv0_ptr + offs, gv, mask=mask)
    if HAS_M0:
        tl.store(gm0_ptr + offs, gm, mask=mask)


@on_device
def clif_forward(x, v0, m0, vth, tau, keep):
    cd = compute_dtype(x.dtype)
    x = prep(x)
    T, N = x.shape
    v0, m0 = prep(v0, cd), prep(m0, cd)
    spikes = torch.empty_like(x)
    vT = torch.empty(N, dtype=cd, device=x.device)
    mT = torch.empty(N, dtype=cd, device=x.device)
    vseq = torch.empty_like(x) if keep else None
    mseq = torch.empty_like(x) if keep else None
    _clif_fwd_kernel[launch_grid(N)](
        x, opt(v0, vT), opt(m0, vT), consts(cd, x.device, vth, 1 - 1 / tau, 1.0, tau), spikes, vT, mT,
        opt(vseq, vT), opt(mseq, vT), T, N, HAS_V0=v0 is not None, HAS_M0=m0 is not None, KEEP=bool(keep),
        BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return spikes, vT, mT, vseq, mseq


@on_device
def clif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, vth, tau, kind, width):
    cd = compute_dtype(x.dtype)
    x = prep(x)
    T, N = x.shape
    v0, m0 = prep(v0, cd), prep(m0, cd)
    gs, gvT, gmT, gvseq, gmseq = (prep(g) for g in (gs, gvT, gmT, gvseq, gmseq))
    gx = torch.empty_like(x)
    gv0 = torch.empty(N, dtype=cd, device=x.device) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd, device=x.device) if m0 is not None else None
    sv = torch.empty((T, N), dtype=cd, device=x.device)
    sm = torch.empty((T, N), dtype=cd, device=x.device)
    d = sv  # a compute-dtype tensor for the pointers of absent tensors
    _clif_bwd_kernel[launch_grid(N)](
        gs, opt(gvT, d), opt(gmT, d), opt(gvseq, d), opt(gmseq, d), x, opt(v0, d), opt(m0, d),
        consts(cd, x.device, vth, 1 - 1 / tau, width, tau), sv, sm, gx, opt(gv0, d), opt(gm0, d),
        T, N, (T - 1) * N, HAS_V0=v0 is not None, HAS_M0=m0 is not None, HAS_GVT=gvT is not None,
        HAS_GMT=gmT is not None, HAS_GVSEQ=gvseq is not None, HAS_GMSEQ=gmseq is not None, KIND=int(kind), BLOCK=BLOCK,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    return gx, gv0, gm0
