"""Host side of the fused CPU kernels, shared by the families' ``cpu.py``: tensors in, raw pointers out.

A family's ``cpu.py`` takes flattened, time-first tensors (``x`` is ``[T, N]``, states are ``[N]``) and
returns fresh tensors. An initial state given as None is zero (no tensor is made for it), and its gradient
comes back as None. Computation runs in the compute dtype (:func:`arlif.ops.dtypes.compute_dtype`); spikes
and state sequences come back in the input dtype, final states and state gradients in the compute dtype. Its
functions have the same signatures as their Triton twins in the family's ``triton_impl.py``.

The C ABI of a family is declared once, in its ``cpu.py``, as a :class:`Kernels` table;
``tests/test_cpu_abi.py`` checks every table against the ``extern "C"`` definitions of the C++ sources.
"""

from __future__ import annotations

import ctypes

import torch

from . import cpu_build

Tensor = torch.Tensor

# argument types of the C entry points: pointers (null = absent), sizes, scalars, flags and counts
PTR, I64, F64, INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int

# ctypes calls release the GIL; below this many elements one thread is faster than starting others
_MIN_PARALLEL = 1 << 15


class Kernels:
    """The C entry points of one family: base name -> argument ctypes, in the order of the C parameters.

    Each name is exported twice, ``<name>_f32`` and ``<name>_f64`` (the compute dtype), and returns void.
    ``kernels(name, cd)`` is the function of the loaded library, its prototype set from this table."""

    def __init__(self, **signatures: list) -> None:
        self.signatures = signatures

    def __call__(self, name: str, cd: torch.dtype):
        fn = getattr(cpu_build.load(), f"{name}_{'f64' if cd == torch.float64 else 'f32'}")
        if fn.argtypes is None:  # ctypes keeps one function object per name and library
            fn.argtypes = self.signatures[name]
            fn.restype = None
        return fn


def ptr(t: Tensor | None):
    return None if t is None else t.data_ptr()


def prep(t: Tensor | None, cd: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(cd).contiguous()


def threads(numel: int) -> int:
    return 1 if numel < _MIN_PARALLEL else max(1, torch.get_num_threads())


def scalar(t: Tensor, cd: torch.dtype) -> float:
    return float(t.detach().to(cd).item())


def partials(n: int) -> Tensor:
    """One double per block of neurons (``BLOCK`` of cpu_common.h) for a scalar parameter's gradient; unused
    entries stay 0."""
    return torch.zeros(n // cpu_build.BLOCK + 1, dtype=torch.float64)


def total(parts: Tensor, cd: torch.dtype) -> Tensor:
    """The sum of the per-block partials in an order that does not depend on the thread count: torch.sum
    splits long reductions (>32768 partials, layers of >4.2M neurons) across threads, numpy sums pairwise in
    one thread."""
    return torch.tensor(parts.numpy().sum(), dtype=cd)


def out(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype)
