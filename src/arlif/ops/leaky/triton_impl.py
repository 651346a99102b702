"""The fused LIF (soft or hard reset) and PLIF in Triton: kernels and launchers (shared rules and helpers:
:mod:`arlif.ops.triton_common`)."""

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
    store_partial,
    surrogate_grad,
    total_partials,
)

Tensor = torch.Tensor


# =======================================================================================================
# LIF (soft/hard) and PLIF: one leaky integrator H = k·V + x with the leak k read from a tensor
# =======================================================================================================
@triton.jit
def _leaky_step(v, xi, k, vth, HARD: tl.constexpr):
    """One LIF/PLIF step from ``V_{t-1}``: ``(V_t, S_t, H_t, u)``."""
    h = k * v + xi
    u = h - vth
    s = (u >= 0).to(xi.dtype)
    if HARD:
        v = h * (1 - s)
    else:
        v = h - s * vth
    return v, s, h, u


@triton.jit
def _leaky_init(v0_ptr, k_ptr, c_ptr, offs, mask, HAS_V0: tl.constexpr):
    """Initial ``V`` of this program's neurons and the constants ``(V_th, leak)``."""
    v = initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0)
    return v, tl.load(c_ptr), tl.load(k_ptr).to(v.dtype)


@triton.jit
def _leaky_fwd_kernel(x_ptr, v0_ptr, k_ptr, c_ptr, s_ptr, vT_ptr, vseq_ptr, T, N, HARD: tl.constexpr,
                      HAS_V0: tl.constexpr, KEEP: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    _pid, offs, mask = program_block(N, BLOCK)
    v, vth, k = _leaky_init(v0_ptr, k_ptr, c_ptr, offs, mask, HAS_V0)
    cdt = v.dtype
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        v, s, _h, _u = _leaky_step(v, xi, k, vth, HARD)
        tl.store(s_ptr + p, s.to(s_ptr.dtype.element_ty), mask=mask)
        if KEEP:
            tl.store(vseq_ptr + p, v.to(vseq_ptr.dtype.element_ty), mask=mask)
        p += N
    tl.store(vT_ptr + offs, v, mask=mask)


@triton.jit
def _leaky_bwd_kernel(gs_ptr, gvT_ptr, gvseq_ptr, x_ptr, v0_ptr, k_ptr, c_ptr, sv_ptr, gx_ptr, gv0_ptr,
                      pk_ptr, T, N, last, HARD: tl.constexpr, HAS_V0: tl.constexpr, HAS_GVT: tl.constexpr,
                      HAS_GVSEQ: tl.constexpr, KIND: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    pid, offs, mask = program_block(N, BLOCK)
    v, vth, k = _leaky_init(v0_ptr, k_ptr, c_ptr, offs, mask, HAS_V0)
    cdt = v.dtype
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        tl.store(sv_ptr + p, v, mask=mask)
        v, _s, _h, _u = _leaky_step(v, xi, k, vth, HARD)
        p += N
    tl.debug_barrier()  # see the scratch-barrier note in triton_common.py
    gv = load_or_zero(gvT_ptr + offs, mask, HAS_GVT, v)
    acc = tl.zeros([BLOCK], dtype=cdt)
    p = offs + last
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        vp = tl.load(sv_ptr + p, mask=mask, other=0.0)
        g_s = tl.load(gs_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GVSEQ:
            gv += tl.load(gvseq_ptr + p, mask=mask, other=0.0).to(cdt)
        _v, s, h, u = _leaky_step(vp, xi, k, vth, HARD)
        sg = surrogate_grad(u, c_ptr, KIND)
        if HARD:
            gh = gv * (1 - s) + (g_s - gv * h) * sg
        else:
            gh = gv + (g_s - gv * vth) * sg
        acc += gh * vp
        gv = k * gh
        tl.store(gx_ptr + p, gh.to(gx_ptr.dtype.element_ty), mask=mask)
        p -= N
    if HAS_V0:
        tl.store(gv0_ptr + offs, gv, mask=mask)
    store_partial(pk_ptr, pid, acc, mask)


def _leak_tensor(k, cd, device) -> Tensor:
    if isinstance(k, Tensor):
        return k.detach().to(device=device, dtype=cd).reshape(1).contiguous()
    return consts(cd, device, float(k), 0.0, 0.0, 0.0)  # element 0 is the leak


@on_device
def leaky_forward(x, v0, k, vth, hard, keep):
    cd = compute_dtype(x.dtype)
    x = prep(x)
    T, N = x.shape
    v0 = prep(v0, cd)
    spikes = torch.empty_like(x)
    vT = torch.empty(N, dtype=cd, device=x.device)
    vseq = torch.empty_like(x) if keep else None
    _leaky_fwd_kernel[launch_grid(N)](
        x, opt(v0, vT), _leak_tensor(k, cd, x.device), consts(cd, x.device, vth, 0.0, 1.0, 1.0), spikes, vT,
        opt(vseq, vT), T, N, HARD=bool(hard), HAS_V0=v0 is not None, KEEP=bool(keep), BLOCK=BLOCK,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    return spikes, vT, vseq


@on_device
def leaky_backward(gs, gvT, gvseq, x, v0, k, vth, hard, kind, width, need_k):
    cd = compute_dtype(x.dtype)
    x = prep(x)
    T, N = x.shape
    v0 = prep(v0, cd)
    gs, gvT, gvseq = prep(gs), prep(gvT), prep(gvseq)
    gx = torch.empty_like(x)
    gv0 = torch.empty(N, dtype=cd, device=x.device) if v0 is not None else None
    sv = torch.empty((T, N), dtype=cd, device=x.device)
    grid = launch_grid(N)
    pk = torch.empty(grid[0], dtype=cd, device=x.device)
    d = sv  # a compute-dtype tensor for the pointers of absent tensors
    _leaky_bwd_kernel[grid](
        gs, opt(gvT, d), opt(gvseq, d), x, opt(v0, d),
        _leak_tensor(k, cd, x.device), consts(cd, x.device, vth, 0.0, width, 1.0), sv, gx, opt(gv0, d), pk,
        T, N, (T - 1) * N, HARD=bool(hard), HAS_V0=v0 is not None, HAS_GVT=gvT is not None,
        HAS_GVSEQ=gvseq is not None,
        KIND=int(kind), BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return gx, gv0, (total_partials(pk, cd) if need_k else None)
