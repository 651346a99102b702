"""Host side of the fused CPU kernels: tensors in, raw pointers to ``cpu_kernels.cpp`` (via ctypes) out.

Every function here takes flattened, time-first tensors (``x`` is ``[T, N]``, states are ``[N]``) and
returns fresh tensors. An initial state given as None is zero (no tensor is made for it), and its gradient
comes back as None. Computation runs in float64 for float64 input and in float32 otherwise; spikes and
state sequences come back in the input dtype, final states and state gradients in the compute dtype.
The functions have the same signatures as their Triton twins in :mod:`arlif.ops.triton_impl`;
:mod:`arlif.ops.fused` picks one by backend name.
"""

from __future__ import annotations

import torch

from . import cpu_build

Tensor = torch.Tensor

# ctypes calls release the GIL; below this many elements one thread is faster than starting others
_MIN_PARALLEL = 1 << 15


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _suffix(cd: torch.dtype) -> str:
    return "f64" if cd == torch.float64 else "f32"


def _ptr(t: Tensor | None):
    return None if t is None else t.data_ptr()


def _prep(t: Tensor | None, cd: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(cd).contiguous()


def _threads(numel: int) -> int:
    return 1 if numel < _MIN_PARALLEL else max(1, torch.get_num_threads())


def _scalar(t: Tensor, cd: torch.dtype) -> float:
    return float(t.detach().to(cd).item())


def _partials(n: int) -> Tensor:
    # one double per block of 128 neurons (cpu_kernels.cpp BLOCK); unused entries stay 0
    return torch.zeros(n // 128 + 1, dtype=torch.float64)


def _total(partials: Tensor, cd: torch.dtype) -> Tensor:
    """The sum of the per-block partials in an order that does not depend on the thread count: torch.sum
    splits long reductions (>32768 partials, layers of >4.2M neurons) across threads, numpy sums pairwise in
    one thread."""
    return torch.tensor(partials.numpy().sum(), dtype=cd)


def _out(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype)


# ---- AR-LIF -----------------------------------------------------------------------------------------
def arlif_forward(x, v0, m0, a, c, vth, decay, ta_on, ar, carry, keep):
    lib = cpu_build.load()
    cd = compute_dtype(x.dtype)
    xc, v0, m0 = _prep(x, cd), _prep(v0, cd), _prep(m0 if (ar and carry) else None, cd)
    T, N = xc.shape
    ta = float(torch.tanh(a.detach().to(cd)).item()) if ta_on else 0.0
    cv = _scalar(c, cd) if (ar and carry) else 0.0
    spikes = torch.empty_like(xc)
    vT = torch.empty(N, dtype=cd)
    mT = torch.empty(N, dtype=cd) if ar else None
    vseq = torch.empty_like(xc) if keep else None
    mseq = torch.empty_like(xc) if (keep and ar) else None
    getattr(lib, f"arlif_fwd_{_suffix(cd)}")(
        _ptr(xc), _ptr(v0), _ptr(m0), T, N, ta, cv, vth, decay, int(ta_on), int(ar), int(carry),
        _ptr(spikes), _ptr(vT), _ptr(mT), _ptr(vseq), _ptr(mseq), _threads(xc.numel()),
    )  # fmt: skip
    return spikes.to(x.dtype), vT, mT, _out(vseq, x.dtype), _out(mseq, x.dtype)


def arlif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, a, c, vth, decay, ta_on, ar, carry, kind, width):
    """Returns ``(grad_x [x.dtype], grad_v0 | None, grad_m0 | None, dL/dtanh(a), dL/dc)`` (compute dtype)."""
    lib = cpu_build.load()
    cd = compute_dtype(x.dtype)
    xc, v0 = _prep(x, cd), _prep(v0, cd)
    m0 = _prep(m0 if (ar and carry) else None, cd)
    gs, gvT, gvseq = _prep(gs, cd), _prep(gvT, cd), _prep(gvseq, cd)
    gmT, gmseq = (_prep(gmT, cd), _prep(gmseq, cd)) if ar else (None, None)
    T, N = xc.shape
    ta = float(torch.tanh(a.detach().to(cd)).item()) if ta_on else 0.0
    cv = _scalar(c, cd) if (ar and carry) else 0.0
    gx = torch.empty_like(xc)
    gv0 = torch.empty(N, dtype=cd) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd) if m0 is not None else None
    part_a, part_c = _partials(N), _partials(N)
    getattr(lib, f"arlif_bwd_{_suffix(cd)}")(
        _ptr(gs), _ptr(gvT), _ptr(gmT), _ptr(gvseq), _ptr(gmseq), _ptr(xc), _ptr(v0), _ptr(m0), T, N,
        ta, cv, vth, decay, int(ta_on), int(ar), int(carry), kind, width,
        _ptr(gx), _ptr(gv0), _ptr(gm0), _ptr(part_a), _ptr(part_c), _threads(xc.numel()),
    )  # fmt: skip
    return gx.to(x.dtype), gv0, gm0, _total(part_a, cd), _total(part_c, cd)


# ---- LIF (soft/hard) and PLIF: one leaky integrator with leak k -------------------------------------
def leaky_forward(x, v0, k, vth, hard, keep):
    """``k`` is the leak: a float (LIF's λ) or a 0-dim tensor (PLIF's 1 - σ(w), in the compute dtype)."""
    lib = cpu_build.load()
    cd = compute_dtype(x.dtype)
    xc, v0 = _prep(x, cd), _prep(v0, cd)
    T, N = xc.shape
    kv = float(k.item()) if isinstance(k, Tensor) else float(k)
    spikes = torch.empty_like(xc)
    vT = torch.empty(N, dtype=cd)
    vseq = torch.empty_like(xc) if keep else None
    getattr(lib, f"leaky_fwd_{_suffix(cd)}")(
        _ptr(xc), _ptr(v0), T, N, kv, vth, int(hard), _ptr(spikes), _ptr(vT), _ptr(vseq), _threads(xc.numel())
    )
    return spikes.to(x.dtype), vT, _out(vseq, x.dtype)


def leaky_backward(gs, gvT, gvseq, x, v0, k, vth, hard, kind, width, need_k):
    """Returns ``(grad_x [x.dtype], grad_v0 | None, dL/dk | None)``."""
    lib = cpu_build.load()
    cd = compute_dtype(x.dtype)
    xc, v0 = _prep(x, cd), _prep(v0, cd)
    gs, gvT, gvseq = _prep(gs, cd), _prep(gvT, cd), _prep(gvseq, cd)
    T, N = xc.shape
    kv = float(k.item()) if isinstance(k, Tensor) else float(k)
    gx = torch.empty_like(xc)
    gv0 = torch.empty(N, dtype=cd) if v0 is not None else None
    part_k = _partials(N) if need_k else None
    getattr(lib, f"leaky_bwd_{_suffix(cd)}")(
        _ptr(gs), _ptr(gvT), _ptr(gvseq), _ptr(xc), _ptr(v0), T, N, kv, vth, int(hard), kind, width,
        _ptr(gx), _ptr(gv0), _ptr(part_k), _threads(xc.numel()),
    )  # fmt: skip
    return gx.to(x.dtype), gv0, (_total(part_k, cd) if need_k else None)


# ---- CLIF -------------------------------------------------------------------------------------------
def clif_forward(x, v0, m0, vth, tau, keep):
    lib = cpu_build.load()
    cd = compute_dtype(x.dtype)
    xc, v0, m0 = _prep(x, cd), _prep(v0, cd), _prep(m0, cd)
    T, N = xc.shape
    spikes = torch.empty_like(xc)
    vT, mT = torch.empty(N, dtype=cd), torch.empty(N, dtype=cd)
    vseq = torch.empty_like(xc) if keep else None
    mseq = torch.empty_like(xc) if keep else None
    getattr(lib, f"clif_fwd_{_suffix(cd)}")(
        _ptr(xc), _ptr(v0), _ptr(m0), T, N, 1 - 1 / tau, tau, vth,
        _ptr(spikes), _ptr(vT), _ptr(mT), _ptr(vseq), _ptr(mseq), _threads(xc.numel()),
    )  # fmt: skip
    return spikes.to(x.dtype), vT, mT, _out(vseq, x.dtype), _out(mseq, x.dtype)


def clif_backward(gs, gvT, gmT, gvseq, gmseq, x, v0, m0, vth, tau, kind, width):
    """Returns ``(grad_x [x.dtype], grad_v0 | None, grad_m0 | None)``."""
    lib = cpu_build.load()
    cd = compute_dtype(x.dtype)
    xc, v0, m0 = _prep(x, cd), _prep(v0, cd), _prep(m0, cd)
    gs, gvT, gmT, gvseq, gmseq = (_prep(g, cd) for g in (gs, gvT, gmT, gvseq, gmseq))
    T, N = xc.shape
    gx = torch.empty_like(xc)
    gv0 = torch.empty(N, dtype=cd) if v0 is not None else None
    gm0 = torch.empty(N, dtype=cd) if m0 is not None else None
    getattr(lib, f"clif_bwd_{_suffix(cd)}")(
        _ptr(gs), _ptr(gvT), _ptr(gmT), _ptr(gvseq), _ptr(gmseq), _ptr(xc), _ptr(v0), _ptr(m0), T, N,
        1 - 1 / tau, tau, vth, kind, width, _ptr(gx), _ptr(gv0), _ptr(gm0), _threads(xc.numel()),
    )  # fmt: skip
    return gx.to(x.dtype), gv0, gm0
