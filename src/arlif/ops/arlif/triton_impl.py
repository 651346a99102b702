"""The fused AR-LIF in Triton: kernels and launchers (shared rules and helpers: :mod:`arlif.ops.triton_common`)."""

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
    store_partial,
    surrogate_grad,
    tanh,
    total_partials,
)


# =======================================================================================================
# AR-LIF
# =======================================================================================================
@triton.jit
def _arlif_step(v, m, xi, vth, decay, ta, cc, TA: tl.constexpr, AR: tl.constexpr, CARRY: tl.constexpr):
    """One AR-LIF step from ``(V_{t-1}, m_{t-1})``: ``(V_t, m_t, S_t)`` and what the backward reuses,
    ``(u, θ, tanh x, σ(x), σ(c·x), k, σ(m_t))`` with ``k`` the factor on ``m_{t-1}`` (zeros where a
    feature is off; the compiler drops what a caller does not use)."""
    zero = tl.zeros_like(xi)
    h = decay * v + xi
    if TA:
        tx = tanh(xi)
        theta = vth + ta * tx
    else:
        tx = zero
        theta = vth + tx
    u = h - theta
    s = (u >= 0).to(xi.dtype)
    sx = zero
    g = zero
    k = zero
    smn = zero
    if AR:
        sx = sigmoid(xi)
        if CARRY:
            g = sigmoid(cc * xi)
            k = tl.where(m > 0, g, 1 - g)
            mp = m * k
        else:
            mp = zero
        m = mp + (2 * s - 1) * sx
        smn = sigmoid(m)
        v = h - s * (theta + smn)
    else:
        v = h - s * theta
    return v, m, s, u, theta, tx, sx, g, k, smn


@triton.jit
def _arlif_init(v0_ptr, m0_ptr, a_ptr, cp_ptr, c_ptr, offs, mask, HAS_V0: tl.constexpr, HAS_M0: tl.constexpr):
    """Initial ``(V, m)`` of this program's neurons and the constants ``(V_th, λ, tanh a, c)``."""
    v = initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0)
    m = load_or_zero(m0_ptr + offs, mask, HAS_M0, v)
    vth = tl.load(c_ptr)
    decay = tl.load(c_ptr + 1)
    return v, m, vth, decay, tanh(tl.load(a_ptr).to(v.dtype)), tl.load(cp_ptr).to(v.dtype)


@triton.jit
def _arlif_fwd_kernel(x_ptr, v0_ptr, m0_ptr, a_ptr, cp_ptr, c_ptr, s_ptr, vT_ptr, mT_ptr, vseq_ptr, mseq_ptr,
                      T, N, TA: tl.constexpr, AR: tl.constexpr, CARRY: tl.constexpr, HAS_V0: tl.constexpr,
                      HAS_M0: tl.constexpr, KEEP: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    _pid, offs, mask = program_block(N, BLOCK)
    v, m, vth, decay, ta, cc = _arlif_init(v0_ptr, m0_ptr, a_ptr, cp_ptr, c_ptr, offs, mask, HAS_V0, HAS_M0)
    cdt = v.dtype
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        v, m, s, _u, _th, _tx, _sx, _g, _k, _sm = _arlif_step(v, m, xi, vth, decay, ta, cc, TA, AR, CARRY)
        tl.store(s_ptr + p, s.to(s_ptr.dtype.element_ty), mask=mask)
        if KEEP:
            tl.store(vseq_ptr + p, v.to(vseq_ptr.dtype.element_ty), mask=mask)
            if AR:
                tl.store(mseq_ptr + p, m.to(mseq_ptr.dtype.element_ty), mask=mask)
        p += N
    tl.store(vT_ptr + offs, v, mask=mask)
    if AR:
        tl.store(mT_ptr + offs, m, mask=mask)


@triton.jit
def _arlif_bwd_kernel(gs_ptr, gvT_ptr, gmT_ptr, gvseq_ptr, gmseq_ptr, x_ptr, v0_ptr, m0_ptr, a_ptr, cp_ptr,
                      c_ptr, sv_ptr, sm_ptr, gx_ptr, gv0_ptr, gm0_ptr, pa_ptr, pc_ptr, T, N, last,
                      TA: tl.constexpr, AR: tl.constexpr, CARRY: tl.constexpr, HAS_V0: tl.constexpr,
                      HAS_M0: tl.constexpr, HAS_GVT: tl.constexpr, HAS_GMT: tl.constexpr, HAS_GVSEQ: tl.constexpr,
                      HAS_GMSEQ: tl.constexpr, KIND: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    pid, offs, mask = program_block(N, BLOCK)
    v, m, vth, decay, ta, cc = _arlif_init(v0_ptr, m0_ptr, a_ptr, cp_ptr, c_ptr, offs, mask, HAS_V0, HAS_M0)
    cdt = v.dtype
    # 1. forward again; keep V_{t-1} (and m_{t-1}) in the scratch buffers
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        tl.store(sv_ptr + p, v, mask=mask)
        if AR and CARRY:
            tl.store(sm_ptr + p, m, mask=mask)
        v, m, _s, _u, _th, _tx, _sx, _g, _k, _sm = _arlif_step(v, m, xi, vth, decay, ta, cc, TA, AR, CARRY)
        p += N
    tl.debug_barrier()  # see the scratch-barrier note in triton_common.py
    # 2. BPTT, last step first
    gv = load_or_zero(gvT_ptr + offs, mask, HAS_GVT, v)
    gm = load_or_zero(gmT_ptr + offs, mask, HAS_GMT, v)
    acc_a = tl.zeros([BLOCK], dtype=cdt)
    acc_c = tl.zeros([BLOCK], dtype=cdt)
    p = offs + last
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        vp = tl.load(sv_ptr + p, mask=mask, other=0.0)
        mprev = load_or_zero(sm_ptr + p, mask, AR and CARRY, xi)
        g_s = tl.load(gs_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GVSEQ:
            gv += tl.load(gvseq_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GMSEQ:
            gm += tl.load(gmseq_ptr + p, mask=mask, other=0.0).to(cdt)
        _v, _m, s, u, theta, tx, sx, g, k, smn = _arlif_step(vp, mprev, xi, vth, decay, ta, cc, TA, AR, CARRY)
        sg = surrogate_grad(u, c_ptr, KIND)
        if AR:
            gmn = gm - gv * s * (smn * (1 - smn))
            g_tot = g_s - gv * (theta + smn) + gmn * (2 * sx)
        else:
            g_tot = g_s - gv * theta
        gu = g_tot * sg
        gh = gv + gu
        gx = gh
        if TA:
            gth = -gu - gv * s
            gx += gth * (ta * (1 - tx * tx))
            acc_a += gth * tx
        if AR:
            gx += gmn * (2 * s - 1) * (sx * (1 - sx))
            if CARRY:
                gk = gmn * mprev
                dz = tl.where(mprev > 0, gk, -gk) * (g * (1 - g))
                gx += dz * cc
                # m_{t-1} = 0 (the first step from rest): no c-term, even for an infinite input (0·inf)
                acc_c += dz * tl.where(mprev != 0, xi, 0.0)
                gm = gmn * k
            else:
                gm = tl.zeros([BLOCK], dtype=cdt)
        gv = decay * gh
        tl.store(gx_ptr + p, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        p -= N
    if HAS_V0:
        tl.store(gv0_ptr + offs, gv, mask=mask)
    if HAS_M0:
        tl.store(gm0_ptr + offs, gm, mask=mask)
    store_partial(pa_ptr, pid, acc_a, mask)
    store_partial(pc_ptr, pid, acc_c, mask)


@on_device
def arlif_forward(x, v0, m0, a, c, vth, decay, ta_on, ar, carry, keep):
    cd = compute_dtype(x.dtype)
    x = prep(x)
    T, N = x.shape
    v0 = prep(v0, cd)
    m0 = prep(m0 if (ar and carry) else None, cd)
    spikes = torch.empty_like(x)
    vT = torch.empty(N, dtype=cd, device=x.device)
    mT = torch.empty(N, dtype=cd, device=x.device) if ar else None
    vseq = torch.empty_like(x) if keep else None
    mseq = torch.empty_like(x) if (keep and ar) else None
    dummy = vT
    _arlif_fwd_kernel[launch_grid(N)](
        x, opt(v0, dummy), opt(m0, dummy), a.detach(), c.detach(), consts(cd, x.device, vth, decay, 1.0, 1.0), spikes,
        vT, opt(mT, dummy), opt(vseq, dummy), opt(mseq, dummy), T, N,
        TA=bool(ta_on), AR=bool(ar), CARRY=bool(ar and carry), HAS_V0=v0 is not None, HAS_M0=m0 is not None,
        KEEP=bool(keep),
        BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return spikes, vT, mT, vseq, mseq


@on_device
def arlif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, a, c, vth, decay, ta_on, ar, carry, kind, width):
    cd = compute_dtype(x.dtype)
    x = prep(x)
    T, N = x.shape
    carry = bool(ar and carry)
    v0 = prep(v0, cd)
    m0 = prep(m0 if carry else None, cd)
    gs, gvT, gvseq = prep(gs), prep(gvT), prep(gvseq)
    gmT, gmseq = (prep(gmT), prep(gmseq)) if ar else (None, None)
    gx = torch.empty_like(x)
    gv0 = torch.empty(N, dtype=cd, device=x.device) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd, device=x.device) if m0 is not None else None
    sv = torch.empty((T, N), dtype=cd, device=x.device)
    sm = torch.empty((T, N), dtype=cd, device=x.device) if carry else sv
    grid = launch_grid(N)
    pa = torch.empty(grid[0], dtype=cd, device=x.device)
    pc = torch.empty(grid[0], dtype=cd, device=x.device)
    d = sv  # a compute-dtype tensor for the pointers of absent tensors
    _arlif_bwd_kernel[grid](
        gs, opt(gvT, d), opt(gmT, d), opt(gvseq, d), opt(gmseq, d), x, opt(v0, d), opt(m0, d), a.detach(),
        c.detach(), consts(cd, x.device, vth, decay, width, 1.0), sv, sm, gx, opt(gv0, d), opt(gm0, d),
        pa, pc, T, N, (T - 1) * N,
        TA=bool(ta_on), AR=bool(ar), CARRY=carry, HAS_V0=v0 is not None, HAS_M0=m0 is not None,
        HAS_GVT=gvT is not None,
        HAS_GMT=gmT is not None, HAS_GVSEQ=gvseq is not None, HAS_GMSEQ=gmseq is not None, KIND=int(kind),
        BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return gx, gv0, gm0, total_partials(pa, cd), total_partials(pc, cd)
