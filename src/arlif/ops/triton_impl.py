"""Triton implementation of the fused neurons: one kernel launch for the forward over all T steps and one
for the backward (docs/backends.md). Same functions and contract as :mod:`arlif.ops.cpu`.

Each program owns ``BLOCK`` neurons and walks over time with the state in registers. The backward first
re-runs the forward of its neurons, writing ``V_{t-1}`` (and ``m_{t-1}``) to a scratch buffer that lives
only during the backward, then walks back in time recomputing everything else (sigmoid, tanh, surrogate)
from ``x_t`` and that state. Gradients of the scalar parameters are summed per program into a partials
buffer and added up by torch, so the result does not depend on scheduling.

Scalars (V_th, λ, surrogate width, τ) come from a small cached tensor in the compute dtype, so float64 runs
keep full precision (Triton passes Python floats as float32). Runs on CUDA tensors, or on CPU tensors
under ``TRITON_INTERPRET=1`` (set before this module is imported; used by the tests).
"""

from __future__ import annotations

import functools
import math
import os

import torch
import triton
import triton.language as tl

Tensor = torch.Tensor
BLOCK = 1024


def _num_warps() -> int:
    """Warps per program: 4, or ``ARLIF_TRITON_NUM_WARPS`` (a tuning knob for benchmarks: the fp32 AR-LIF
    backward needs ~190 registers per thread at 4 warps on sm_90, which limits how many programs share an SM)."""
    text = os.environ.get("ARLIF_TRITON_NUM_WARPS", "4")
    if text not in ("1", "2", "4", "8", "16"):
        raise ValueError(f"ARLIF_TRITON_NUM_WARPS must be 1, 2, 4, 8 or 16, got {text!r}")
    return int(text)


NUM_WARPS = _num_warps()


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


_CONSTS: dict = {}


def _consts(cd: torch.dtype, device: torch.device, vth: float, k: float, width: float, tau: float) -> Tensor:
    """``[V_th, λ (or 1-1/τ), width, τ, π·width/2]`` in the compute dtype on ``device`` (cached: building a
    CUDA tensor from Python values synchronises with the device)."""
    key = (cd, device, float(vth), float(k), float(width), float(tau))
    t = _CONSTS.get(key)
    if t is None:
        if len(_CONSTS) > 256:
            _CONSTS.clear()
        vals = [vth, k, width, tau, math.pi * width / 2]
        t = _CONSTS[key] = torch.tensor(vals, dtype=cd, device=device)
    return t


def _grid(n: int):
    return (triton.cdiv(max(n, 1), BLOCK),)


# _scratch_barrier_note: each backward kernel stores V_{t-1} (and m_{t-1}) to a global scratch buffer, then
# reads it back. The compiler may give the store and the load different thread layouts (it did for N % 16 != 0
# when compiled for sm_90), so a value can be read by another thread than the one that wrote it, and Triton
# orders global-memory accesses only within one thread. A tl.debug_barrier() (bar.sync, which also orders
# global memory within the block) between the two loops makes the last rows visible; without it the first
# backward step could read uninitialised scratch. The interpreter cannot show this race.


def _on_device(fn):
    """Run a launcher with the tensors' CUDA device current: Triton launches on the current device and stream,
    not on the device of its arguments (an input on cuda:1 would otherwise fail or run on cuda:0's stream)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        dev = next((a.device for a in args if isinstance(a, Tensor)), None)
        if dev is None or dev.type != "cuda":
            return fn(*args, **kwargs)
        with torch.cuda.device(dev):
            return fn(*args, **kwargs)

    return wrapper


# ---- elementwise helpers -----------------------------------------------------------------------------
@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    # 1 - 2/(e^{2x} + 1); the clamp keeps e^{2x} finite (tanh(±40) is ±1 in float64 too)
    z = tl.minimum(tl.maximum(2.0 * x, -80.0), 80.0)
    return 1.0 - 2.0 / (tl.exp(z) + 1.0)


@triton.jit
def _surrogate_grad(u, c_ptr, KIND: tl.constexpr):
    """dS/du of arlif.surrogate (ids of KIND_IDS); width and π·width/2 are read from the constants."""
    width = tl.load(c_ptr + 2)
    if KIND == 0:  # rectangle
        sg = (tl.abs(u) <= width / 2).to(u.dtype) / width
    elif KIND == 1:  # triangle
        sg = tl.maximum(width - tl.abs(u), 0.0) / (width * width)
    elif KIND == 2:  # sigmoid
        sgm = _sigmoid(width * u)
        sg = width * sgm * (1 - sgm)
    else:  # atan
        z = tl.load(c_ptr + 4) * u
        sg = (width / 2) / (1 + z * z)
    return sg


@triton.jit
def _block(N, BLOCK: tl.constexpr):
    """This program's ``(id, neuron offsets, mask)``."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return pid, offs, offs < N


@triton.jit
def _load_or_zero(ptr, mask, HAS: tl.constexpr, like):
    """``ptr`` loaded in the dtype of ``like``, or zeros like ``like`` when the tensor is absent."""
    if HAS:
        val = tl.load(ptr, mask=mask, other=0.0).to(like.dtype)
    else:
        val = tl.zeros_like(like)
    return val


@triton.jit
def _initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0: tl.constexpr):
    """Initial ``V`` of this program's neurons in the compute dtype (that of the constants ``c_ptr``); zeros
    when there is no ``v0``."""
    return _load_or_zero(v0_ptr + offs, mask, HAS_V0, tl.zeros_like(offs).to(tl.load(c_ptr).dtype))


@triton.jit
def _store_partial(ptr, pid, acc, mask):
    """This program's sum of ``acc`` over its valid neurons."""
    tl.store(ptr + pid, tl.sum(tl.where(mask, acc, 0.0), axis=0))


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
        tx = _tanh(xi)
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
        sx = _sigmoid(xi)
        if CARRY:
            g = _sigmoid(cc * xi)
            k = tl.where(m > 0, g, 1 - g)
            mp = m * k
        else:
            mp = zero
        m = mp + (2 * s - 1) * sx
        smn = _sigmoid(m)
        v = h - s * (theta + smn)
    else:
        v = h - s * theta
    return v, m, s, u, theta, tx, sx, g, k, smn


@triton.jit
def _arlif_init(v0_ptr, m0_ptr, a_ptr, cp_ptr, c_ptr, offs, mask, HAS_V0: tl.constexpr, HAS_M0: tl.constexpr):
    """Initial ``(V, m)`` of this program's neurons and the constants ``(V_th, λ, tanh a, c)``."""
    v = _initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0)
    m = _load_or_zero(m0_ptr + offs, mask, HAS_M0, v)
    vth = tl.load(c_ptr)
    decay = tl.load(c_ptr + 1)
    return v, m, vth, decay, _tanh(tl.load(a_ptr).to(v.dtype)), tl.load(cp_ptr).to(v.dtype)


@triton.jit
def _arlif_fwd_kernel(x_ptr, v0_ptr, m0_ptr, a_ptr, cp_ptr, c_ptr, s_ptr, vT_ptr, mT_ptr, vseq_ptr, mseq_ptr,
                      T, N, TA: tl.constexpr, AR: tl.constexpr, CARRY: tl.constexpr, HAS_V0: tl.constexpr,
                      HAS_M0: tl.constexpr, KEEP: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    _pid, offs, mask = _block(N, BLOCK)
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
    pid, offs, mask = _block(N, BLOCK)
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
    tl.debug_barrier()  # see _scratch_barrier_note
    # 2. BPTT, last step first
    gv = _load_or_zero(gvT_ptr + offs, mask, HAS_GVT, v)
    gm = _load_or_zero(gmT_ptr + offs, mask, HAS_GMT, v)
    acc_a = tl.zeros([BLOCK], dtype=cdt)
    acc_c = tl.zeros([BLOCK], dtype=cdt)
    p = offs + last
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        vp = tl.load(sv_ptr + p, mask=mask, other=0.0)
        mprev = _load_or_zero(sm_ptr + p, mask, AR and CARRY, xi)
        g_s = tl.load(gs_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GVSEQ:
            gv += tl.load(gvseq_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GMSEQ:
            gm += tl.load(gmseq_ptr + p, mask=mask, other=0.0).to(cdt)
        _v, _m, s, u, theta, tx, sx, g, k, smn = _arlif_step(vp, mprev, xi, vth, decay, ta, cc, TA, AR, CARRY)
        sg = _surrogate_grad(u, c_ptr, KIND)
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
    _store_partial(pa_ptr, pid, acc_a, mask)
    _store_partial(pc_ptr, pid, acc_c, mask)


def _prep(t: Tensor | None, cd: torch.dtype | None = None) -> Tensor | None:
    if t is None:
        return None
    t = t.detach()
    return (t if cd is None else t.to(cd)).contiguous()


def _or(t: Tensor | None, dummy: Tensor) -> Tensor:
    """``t``, or ``dummy`` for a pointer argument the kernel does not touch (its flag is off)."""
    return dummy if t is None else t


def _total(partials: Tensor, cd: torch.dtype) -> Tensor:
    """The per-program partial sums of a scalar parameter's gradient, added up in float64."""
    return partials.sum(dtype=torch.float64).to(cd)


@_on_device
def arlif_forward(x, v0, m0, a, c, vth, decay, ta_on, ar, carry, keep):
    cd = compute_dtype(x.dtype)
    x = _prep(x)
    T, N = x.shape
    v0 = _prep(v0, cd)
    m0 = _prep(m0 if (ar and carry) else None, cd)
    spikes = torch.empty_like(x)
    vT = torch.empty(N, dtype=cd, device=x.device)
    mT = torch.empty(N, dtype=cd, device=x.device) if ar else None
    vseq = torch.empty_like(x) if keep else None
    mseq = torch.empty_like(x) if (keep and ar) else None
    dummy = vT
    _arlif_fwd_kernel[_grid(N)](
        x, _or(v0, dummy), _or(m0, dummy), a.detach(), c.detach(), _consts(cd, x.device, vth, decay, 1.0, 1.0), spikes,
        vT, _or(mT, dummy), _or(vseq, dummy), _or(mseq, dummy), T, N,
        TA=bool(ta_on), AR=bool(ar), CARRY=bool(ar and carry), HAS_V0=v0 is not None, HAS_M0=m0 is not None,
        KEEP=bool(keep),
        BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return spikes, vT, mT, vseq, mseq


@_on_device
def arlif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, a, c, vth, decay, ta_on, ar, carry, kind, width):
    cd = compute_dtype(x.dtype)
    x = _prep(x)
    T, N = x.shape
    carry = bool(ar and carry)
    v0 = _prep(v0, cd)
    m0 = _prep(m0 if carry else None, cd)
    gs, gvT, gvseq = _prep(gs), _prep(gvT), _prep(gvseq)
    gmT, gmseq = (_prep(gmT), _prep(gmseq)) if ar else (None, None)
    gx = torch.empty_like(x)
    gv0 = torch.empty(N, dtype=cd, device=x.device) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd, device=x.device) if m0 is not None else None
    sv = torch.empty((T, N), dtype=cd, device=x.device)
    sm = torch.empty((T, N), dtype=cd, device=x.device) if carry else sv
    grid = _grid(N)
    pa = torch.empty(grid[0], dtype=cd, device=x.device)
    pc = torch.empty(grid[0], dtype=cd, device=x.device)
    d = sv  # a compute-dtype tensor for the pointers of absent tensors
    _arlif_bwd_kernel[grid](
        gs, _or(gvT, d), _or(gmT, d), _or(gvseq, d), _or(gmseq, d), x, _or(v0, d), _or(m0, d), a.detach(),
        c.detach(), _consts(cd, x.device, vth, decay, width, 1.0), sv, sm, gx, _or(gv0, d), _or(gm0, d),
        pa, pc, T, N, (T - 1) * N,
        TA=bool(ta_on), AR=bool(ar), CARRY=carry, HAS_V0=v0 is not None, HAS_M0=m0 is not None,
        HAS_GVT=gvT is not None,
        HAS_GMT=gmT is not None, HAS_GVSEQ=gvseq is not None, HAS_GMSEQ=gmseq is not None, KIND=int(kind),
        BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return gx, gv0, gm0, _total(pa, cd), _total(pc, cd)


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
    v = _initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0)
    return v, tl.load(c_ptr), tl.load(k_ptr).to(v.dtype)


@triton.jit
def _leaky_fwd_kernel(x_ptr, v0_ptr, k_ptr, c_ptr, s_ptr, vT_ptr, vseq_ptr, T, N, HARD: tl.constexpr,
                      HAS_V0: tl.constexpr, KEEP: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    _pid, offs, mask = _block(N, BLOCK)
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
    pid, offs, mask = _block(N, BLOCK)
    v, vth, k = _leaky_init(v0_ptr, k_ptr, c_ptr, offs, mask, HAS_V0)
    cdt = v.dtype
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        tl.store(sv_ptr + p, v, mask=mask)
        v, _s, _h, _u = _leaky_step(v, xi, k, vth, HARD)
        p += N
    tl.debug_barrier()  # see _scratch_barrier_note
    gv = _load_or_zero(gvT_ptr + offs, mask, HAS_GVT, v)
    acc = tl.zeros([BLOCK], dtype=cdt)
    p = offs + last
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        vp = tl.load(sv_ptr + p, mask=mask, other=0.0)
        g_s = tl.load(gs_ptr + p, mask=mask, other=0.0).to(cdt)
        if HAS_GVSEQ:
            gv += tl.load(gvseq_ptr + p, mask=mask, other=0.0).to(cdt)
        _v, s, h, u = _leaky_step(vp, xi, k, vth, HARD)
        sg = _surrogate_grad(u, c_ptr, KIND)
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
    _store_partial(pk_ptr, pid, acc, mask)


def _leak_tensor(k, cd, device) -> Tensor:
    if isinstance(k, Tensor):
        return k.detach().to(device=device, dtype=cd).reshape(1).contiguous()
    return _consts(cd, device, float(k), 0.0, 0.0, 0.0)  # element 0 is the leak


@_on_device
def leaky_forward(x, v0, k, vth, hard, keep):
    cd = compute_dtype(x.dtype)
    x = _prep(x)
    T, N = x.shape
    v0 = _prep(v0, cd)
    spikes = torch.empty_like(x)
    vT = torch.empty(N, dtype=cd, device=x.device)
    vseq = torch.empty_like(x) if keep else None
    _leaky_fwd_kernel[_grid(N)](
        x, _or(v0, vT), _leak_tensor(k, cd, x.device), _consts(cd, x.device, vth, 0.0, 1.0, 1.0), spikes, vT,
        _or(vseq, vT), T, N, HARD=bool(hard), HAS_V0=v0 is not None, KEEP=bool(keep), BLOCK=BLOCK,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    return spikes, vT, vseq


@_on_device
def leaky_backward(gs, gvT, gvseq, x, v0, k, vth, hard, kind, width, need_k):
    cd = compute_dtype(x.dtype)
    x = _prep(x)
    T, N = x.shape
    v0 = _prep(v0, cd)
    gs, gvT, gvseq = _prep(gs), _prep(gvT), _prep(gvseq)
    gx = torch.empty_like(x)
    gv0 = torch.empty(N, dtype=cd, device=x.device) if v0 is not None else None
    sv = torch.empty((T, N), dtype=cd, device=x.device)
    grid = _grid(N)
    pk = torch.empty(grid[0], dtype=cd, device=x.device)
    d = sv  # a compute-dtype tensor for the pointers of absent tensors
    _leaky_bwd_kernel[grid](
        gs, _or(gvT, d), _or(gvseq, d), x, _or(v0, d),
        _leak_tensor(k, cd, x.device), _consts(cd, x.device, vth, 0.0, width, 1.0), sv, gx, _or(gv0, d), pk,
        T, N, (T - 1) * N, HARD=bool(hard), HAS_V0=v0 is not None, HAS_GVT=gvT is not None,
        HAS_GVSEQ=gvseq is not None,
        KIND=int(kind), BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return gx, gv0, (_total(pk, cd) if need_k else None)


# =======================================================================================================
# CLIF
# =======================================================================================================
@triton.jit
def _clif_step(v, m, xi, vth, kc, tau):
    """One CLIF step from ``(V_{t-1}, m_{t-1})``: ``(V_t, m_t, S_t)`` and what the backward reuses,
    ``(u, σ(H/τ), σ(m_t))``."""
    h = v * kc + xi
    q = _sigmoid(h / tau)
    u = h - vth
    s = (u >= 0).to(xi.dtype)
    m = m * q + s
    smn = _sigmoid(m)
    v = h - s * (vth + smn)
    return v, m, s, u, q, smn


@triton.jit
def _clif_init(v0_ptr, m0_ptr, c_ptr, offs, mask, HAS_V0: tl.constexpr, HAS_M0: tl.constexpr):
    """Initial ``(V, m)`` of this program's neurons and the constants ``(V_th, 1 - 1/τ, τ)``."""
    v = _initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0)
    m = _load_or_zero(m0_ptr + offs, mask, HAS_M0, v)
    return v, m, tl.load(c_ptr), tl.load(c_ptr + 1), tl.load(c_ptr + 3)


@triton.jit
def _clif_fwd_kernel(x_ptr, v0_ptr, m0_ptr, c_ptr, s_ptr, vT_ptr, mT_ptr, vseq_ptr, mseq_ptr, T, N,
                     HAS_V0: tl.constexpr, HAS_M0: tl.constexpr, KEEP: tl.constexpr,
                     BLOCK: tl.constexpr):  # fmt: skip
    _pid, offs, mask = _block(N, BLOCK)
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
    _pid, offs, mask = _block(N, BLOCK)
    v, m, vth, kc, tau = _clif_init(v0_ptr, m0_ptr, c_ptr, offs, mask, HAS_V0, HAS_M0)
    cdt = v.dtype
    p = offs
    for _t in range(T):
        xi = tl.load(x_ptr + p, mask=mask, other=0.0).to(cdt)
        tl.store(sv_ptr + p, v, mask=mask)
        tl.store(sm_ptr + p, m, mask=mask)
        v, m, _s, _u, _q, _sm = _clif_step(v, m, xi, vth, kc, tau)
        p += N
    tl.debug_barrier()  # see _scratch_barrier_note
    gv = _load_or_zero(gvT_ptr + offs, mask, HAS_GVT, v)
    gm = _load_or_zero(gmT_ptr + offs, mask, HAS_GMT, v)
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
        sg = _surrogate_grad(u, c_ptr, KIND)
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


@_on_device
def clif_forward(x, v0, m0, vth, tau, keep):
    cd = compute_dtype(x.dtype)
    x = _prep(x)
    T, N = x.shape
    v0, m0 = _prep(v0, cd), _prep(m0, cd)
    spikes = torch.empty_like(x)
    vT = torch.empty(N, dtype=cd, device=x.device)
    mT = torch.empty(N, dtype=cd, device=x.device)
    vseq = torch.empty_like(x) if keep else None
    mseq = torch.empty_like(x) if keep else None
    _clif_fwd_kernel[_grid(N)](
        x, _or(v0, vT), _or(m0, vT), _consts(cd, x.device, vth, 1 - 1 / tau, 1.0, tau), spikes, vT, mT,
        _or(vseq, vT), _or(mseq, vT), T, N, HAS_V0=v0 is not None, HAS_M0=m0 is not None, KEEP=bool(keep),
        BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip
    return spikes, vT, mT, vseq, mseq


@_on_device
def clif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, vth, tau, kind, width):
    cd = compute_dtype(x.dtype)
    x = _prep(x)
    T, N = x.shape
    v0, m0 = _prep(v0, cd), _prep(m0, cd)
    gs, gvT, gmT, gvseq, gmseq = (_prep(g) for g in (gs, gvT, gmT, gvseq, gmseq))
    gx = torch.empty_like(x)
    gv0 = torch.empty(N, dtype=cd, device=x.device) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd, device=x.device) if m0 is not None else None
    sv = torch.empty((T, N), dtype=cd, device=x.device)
    sm = torch.empty((T, N), dtype=cd, device=x.device)
    d = sv  # a compute-dtype tensor for the pointers of absent tensors
    _clif_bwd_kernel[_grid(N)](
        gs, _or(gvT, d), _or(gmT, d), _or(gvseq, d), _or(gmseq, d), x, _or(v0, d), _or(m0, d),
        _consts(cd, x.device, vth, 1 - 1 / tau, width, tau), sv, sm, gx, _or(gv0, d), _or(gm0, d),
        T, N, (T - 1) * N, HAS_V0=v0 is not None, HAS_M0=m0 is not None, HAS_GVT=gvT is not None,
        HAS_GMT=gmT is not None, HAS_GVSEQ=gvseq is not None, HAS_GMSEQ=gmseq is not None, KIND=int(kind), BLOCK=BLOCK,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    return gx, gv0, gm0
