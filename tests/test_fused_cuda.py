"""The Triton kernels compiled for a real GPU, against the per-step reference on the same device.
Skipped without CUDA; run by benchmarks/gpu_check.sh on a GPU machine."""

from __future__ import annotations

import os

import pytest
import torch

from arlif import ARLIF
from test_fused import SURROGATES, TOL, VARIANTS, _op_samples, _run

# ARLIF_TEST_DEVICE=cpu runs these through the Triton interpreter (a self-check of this file, slow)
DEV = os.environ.get("ARLIF_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEV == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")


def _pair(name, dtype, surrogate="rectangle"):
    ref = VARIANTS[name](surrogate=surrogate, backend="torch", store_state=True).to(DEV, dtype)
    fused = VARIANTS[name](surrogate=surrogate, backend="triton", store_state=True).to(DEV, dtype)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def _flipped_neurons(xs, out_r, out_f):
    """The neurons (positions in ``shape``) whose spikes differ between the two runs at any step of any chunk."""
    per_chunk = len(out_r) // len(xs)  # _run returns the spikes first in each chunk's outputs
    flipped = torch.zeros(xs[0].shape[1:], dtype=torch.bool, device=xs[0].device)
    for s_r, s_f in zip(out_r[::per_chunk], out_f[::per_chunk]):
        flipped |= (s_r != s_f).any(0)
    return flipped


def _check(name, dtype, surrogate, shape, T, chunks=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = [(torch.randn([T, *shape], generator=g, dtype=torch.float64) * 1.2 + 0.6).to(DEV, dtype)
          for _ in range(chunks)]  # fmt: skip
    ref, fused = _pair(name, dtype, surrogate)
    out_r, grad_r = _run(ref, xs, dtype)
    out_f, grad_f = _run(fused, xs, dtype)
    # float32 on a GPU: a rare u within rounding of 0 may flip a spike; allow a tiny fraction
    mismatch = (out_r[0] != out_f[0]).float().mean().item()
    assert mismatch <= (0 if dtype == torch.float64 else 1e-4), mismatch
    flipped = _flipped_neurons(xs, out_r, out_f)
    if flipped.any():
        # a flip changes its neuron's later states and all its gradients, and through them the parameter
        # gradients (sums over all neurons); neurons do not interact, so run both again on the others alone
        keep = ~flipped
        xs = [x[:, keep] for x in xs]  # [T, neurons kept]
        ref, fused = _pair(name, dtype, surrogate)
        out_r, grad_r = _run(ref, xs, dtype)
        out_f, grad_f = _run(fused, xs, dtype)
        assert not _flipped_neurons(xs, out_r, out_f).any(), "spikes flip on neurons that agreed before"
    for a, b in zip(out_r, out_f):
        torch.testing.assert_close(b.to(a.dtype), a, **TOL[dtype])
    for a, b in zip(grad_r, grad_f):
        if a is None:
            assert b is None or float(b.abs().max()) == 0.0
        else:
            torch.testing.assert_close(b, a, **TOL[dtype])


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_triton_cuda_float64(name, surrogate):
    _check(name, torch.float64, surrogate, [3, 700], 5)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_triton_cuda_float32(name):
    _check(name, torch.float32, "sigmoid", [2, 1500], 8, seed=1)


@pytest.mark.parametrize("T", [1, 3, 16])
def test_triton_cuda_shapes(T):
    _check("arlif", torch.float64, "triangle", [2, 3, 33, 17], T, chunks=1)


def test_triton_cuda_bf16_keeps_fp32_state():
    x = torch.randn(4, 8, 300, device=DEV).bfloat16().requires_grad_()
    mod = ARLIF(init_a=0.3, backend="triton").to(DEV)
    s = mod(x)
    s.float().sum().backward()
    assert s.dtype == torch.bfloat16 and mod.v.dtype == torch.float32 and x.grad.dtype == torch.bfloat16
    ref = ARLIF(init_a=0.3, backend="torch").to(DEV)
    # compiled fp32 code uses fast exp/division and contracts to FMAs: a neuron within ~1e-7 of its threshold
    # may flip, so allow a few in 9600 (the interpreter and the CPU kernels match exactly)
    assert (ref(x.detach().float()) != s.float()).sum().item() <= 3


def test_triton_cuda_opcheck():
    for op, args in _op_samples("triton"):
        args = tuple(a.detach().to(DEV).requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
                     for a in args)  # fmt: skip
        torch.library.opcheck(op, args)


def test_triton_cuda_saved_bytes():
    from arlif.bench import saved_bytes_per_element

    assert saved_bytes_per_element("arlif", "triton", (8, 256), 8, torch.float32, DEV) <= 4.001
