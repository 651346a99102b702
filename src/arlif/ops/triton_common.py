"""What the families' Triton kernels share: launch geometry, the constants tensor, device handling and the
elementwise helpers (sigmoid, tanh, surrogate derivatives, loads with absent tensors).

Each program owns ``BLOCK`` neurons and walks over time with the state in registers. A backward kernel first
re-runs the forward of its neurons, writing ``V_{t-1}`` (and ``m_{t-1}``) to a scratch buffer that lives only
during the backward, then walks back in time recomputing everything else (sigmoid, tanh, surrogate) from
``x_t`` and that state. Gradients of the scalar parameters are summed per program into a partials buffer and
added up by torch, so the result does not depend on scheduling.

Scalars (V_th, λ, surrogate width, τ) come from a small cached tensor in the compute dtype, so float64 runs
keep full precision (Triton passes Python floats as float32). Runs on CUDA tensors, or on CPU tensors under
``TRITON_INTERPRET=1`` (set before this module is imported; used by the tests). Each family's
``triton_impl.py`` has the functions and contract of its ``cpu.py``.
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


_CONSTS: dict = {}


def consts(cd: torch.dtype, device: torch.device, vth: float, k: float, width: float, tau: float) -> Tensor:
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


def launch_grid(n: int):
    return (triton.cdiv(max(n, 1), BLOCK),)


# Scratch barrier note: each backward kernel stores V_{t-1} (and m_{t-1}) to a global scratch buffer, then
# reads it back. The compiler may give the store and the load different thread layouts, so a value can be read
# by another thread than the one that wrote it, and Triton orders global-memory accesses only within one
# thread. A tl.debug_barrier() (bar.sync, which also orders global memory within the block) between the two
# loops makes every row visible before the reverse pass reads it. The interpreter cannot show this race.


def on_device(fn):
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
def sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def tanh(x):
    # 1 - 2/(e^{2x} + 1); the clamp keeps e^{2x} finite (tanh(±40) is ±1 in float64 too)
    z = tl.minimum(tl.maximum(2.0 * x, -80.0), 80.0)
    return 1.0 - 2.0 / (tl.exp(z) + 1.0)


@triton.jit
def surrogate_grad(u, c_ptr, KIND: tl.constexpr):
    """dS/du of arlif.surrogate (ids of KIND_IDS); width and π·width/2 are read from the constants."""
    width = tl.load(c_ptr + 2)
    if KIND == 0:  # rectangle
        sg = (tl.abs(u) <= width / 2).to(u.dtype) / width
    elif KIND == 1:  # triangle
        sg = tl.maximum(width - tl.abs(u), 0.0) / (width * width)
    elif KIND == 2:  # sigmoid
        sgm = sigmoid(width * u)
        sg = width * sgm * (1 - sgm)
    else:  # atan
        z = tl.load(c_ptr + 4) * u
        sg = (width / 2) / (1 + z * z)
    return sg


@triton.jit
def program_block(N, BLOCK: tl.constexpr):
    """This program's ``(id, neuron offsets, mask)``."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return pid, offs, offs < N


@triton.jit
def load_or_zero(ptr, mask, HAS: tl.constexpr, like):
    """``ptr`` loaded in the dtype of ``like``, or zeros like ``like`` when the tensor is absent."""
    if HAS:
        val = tl.load(ptr, mask=mask, other=0.0).to(like.dtype)
    else:
        val = tl.zeros_like(like)
    return val


@triton.jit
def initial_v(v0_ptr, c_ptr, offs, mask, HAS_V0: tl.constexpr):
    """Initial ``V`` of this program's neurons in the compute dtype (that of the constants ``c_ptr``); zeros
    when there is no ``v0``."""
    return load_or_zero(v0_ptr + offs, mask, HAS_V0, tl.zeros_like(offs).to(tl.load(c_ptr).dtype))


@triton.jit
def store_partial(ptr, pid, acc, mask):
    """This program's sum of ``acc`` over its valid neurons."""
    tl.store(ptr + pid, tl.sum(tl.where(mask, acc, 0.0), axis=0))


def prep(t: Tensor | None, cd: torch.dtype | None = None) -> Tensor | None:
    if t is None:
        return None
    t = t.detach()
    return (t if cd is None else t.to(cd)).contiguous()


def opt(t: Tensor | None, dummy: Tensor) -> Tensor:
    """``t``, or ``dummy`` for a pointer argument the kernel does not touch (its flag is off)."""
    return dummy if t is None else t


def total_partials(partials: Tensor, cd: torch.dtype) -> Tensor:
    """The per-program partial sums of a scalar parameter's gradient, added up in float64."""
    return partials.sum(dtype=torch.float64).to(cd)
