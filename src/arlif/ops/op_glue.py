"""What every family's fused custom ops share (docs/backends.md): shapes, dtypes, fakes, autograd wiring.

Each family registers one forward op over all T steps and one hand-written BPTT backward op
(``torch.ops.arlif.<name>_fwd`` / ``_bwd``, in its ``op.py``). The ``backend`` argument (``"cpu"`` or
``"triton"``) picks the family's implementation module: ``cpu.py`` (C++ kernels through ctypes) or
``triton_impl.py`` (Triton; CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``). Both take flattened,
time-first tensors (``x`` is ``[T, N]``, states ``[N]``) and have the same contract, so an op only adapts
shapes and dtypes and wires autograd, with the helpers here.

Memory: the forward saves only ``x`` and the initial states it was given: ``v0`` and ``m0`` are optional
(None = zeros, a fresh neuron's state, which the modules pass without making a tensor for it). The backward
recomputes the forward, so a float32 neuron keeps 4 bytes per element for backward when it starts from rest,
and ``4 + 4·k/T`` with k given initial states (benchmarks/RESULTS.md).

Dtypes (:func:`arlif.ops.dtypes.compute_dtype`): the computation runs in float64 for float64 input and in
float32 otherwise. Spikes and state sequences are returned in the input dtype; final states are returned in
the compute dtype, so a carried state stays in float32 under AMP. Gradients come back in the dtype of the
tensor they belong to. An output or gradient that does not exist is returned as an empty tensor
(:func:`empty`), since a custom op cannot return None.

Spikes use the surrogate derivative of ``u = H - θ`` everywhere S is used (memory update and reset), as in
:mod:`arlif.ops.reference`; nothing is detached.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch

from . import backends
from .dtypes import compute_dtype

Tensor = torch.Tensor
# a family's implementation module per backend, inside the family's package
_IMPL_MODULES = {"cpu": "cpu", "triton": "triton_impl"}


def implementation(package: str, backend: str):
    """The ``backend`` implementation module of the family ``package`` (e.g. ``"arlif.ops.leaky"``),
    imported on first use: Triton is imported only when a Triton op runs."""
    if backend not in _IMPL_MODULES:
        raise ValueError(f"fused backend must be 'cpu' or 'triton', got {backend!r}")
    return importlib.import_module(f"{package}.{_IMPL_MODULES[backend]}")


def flat(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.reshape(-1)


def seq_or_none(t: Tensor | None, T: int) -> Tensor | None:
    """An optional [T, ...] gradient, flattened; empty placeholders count as absent."""
    if t is None or t.numel() == 0:
        return None
    return t.reshape(T, -1)


def empty(like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """The placeholder of an absent output: no elements, on ``like``'s device, in ``dtype`` (default:
    ``like``'s)."""
    return like.new_empty(0, dtype=dtype)


def _unflat(t: Tensor | None, shape, like: Tensor) -> Tensor:
    return empty(like) if t is None else t.reshape(shape)


def fake_state(x: Tensor, present: bool = True) -> Tensor:
    """Fake final state ``[*S]`` in the compute dtype (empty when the neuron does not return it)."""
    cd = compute_dtype(x.dtype)
    return x.new_empty(x.shape[1:], dtype=cd) if present else empty(x, cd)


def fake_seq(x: Tensor, present: bool) -> Tensor:
    """Fake state sequence ``[T,*S]`` in the input dtype (empty when it is not kept)."""
    return torch.empty_like(x) if present else empty(x)


def fwd_outputs(x: Tensor, spikes: Tensor, finals, seqs) -> tuple[Tensor, ...]:
    """A forward op's outputs from the flat results: ``spikes [T,*S]``, the final states ``[*S]`` (in the
    compute dtype) and the state sequences ``[T,*S]``; an absent state or sequence is returned empty."""
    shape, vT = x.shape[1:], finals[0]
    return (
        spikes.reshape(x.shape),
        *(_unflat(t, shape, vT) for t in finals),
        *(_unflat(t, x.shape, spikes) for t in seqs),
    )


def state_grad(g: Tensor | None, t: Tensor | None, like: Tensor) -> Tensor:
    """A flat gradient of the initial state ``t`` in its shape and dtype; empty when ``t`` is None."""
    return empty(like) if (t is None or g is None) else g.reshape(t.shape).to(t.dtype)


def fake_grad(t: Tensor | None, like: Tensor) -> Tensor:
    """Fake gradient of the optional initial state ``t`` (see :func:`state_grad`)."""
    return empty(like) if t is None else torch.empty_like(t)


def setup_context(n_tensors: int, has_m0: bool = False):
    """``setup_context`` for a forward op whose inputs are ``n_tensors`` tensors, the configuration its
    backward op takes, ``keep_states`` and ``backend`` (``has_m0``: the third input is the optional ``m0``)."""

    def setup(ctx, inputs, output):
        ctx.set_materialize_grads(False)  # unused outputs get no zero-filled gradient
        ctx.config = tuple(inputs[n_tensors:-2])
        ctx.backend = inputs[-1]
        ctx.has_m0 = has_m0 and inputs[2] is not None
        ctx.save_for_backward(*inputs[:n_tensors])

    return setup


def call_bwd(ctx, op, g_spikes: Tensor | None, *grads):
    """The saved tensors and ``op`` (a backward op) applied to the output gradients, the saved tensors and the
    saved configuration; an unused spike output gets a zero gradient."""
    saved = ctx.saved_tensors
    g_spikes = torch.zeros_like(saved[0]) if g_spikes is None else g_spikes
    return saved, op(g_spikes, *grads, *saved, *ctx.config, ctx.backend)


def input_grads(ctx, gx: Tensor, *grads):
    """What a backward returns: ``gx``, then each of ``grads`` where its input wants a gradient, then None
    for the non-tensor inputs."""
    need = ctx.needs_input_grad
    wanted = tuple(g if need[i] else None for i, g in enumerate(grads, 1))
    return (gx, *wanted) + (None,) * (len(need) - 1 - len(grads))


def _cpu_unavailable(build: bool) -> str | None:
    from . import cpu_build

    return cpu_build.unavailable_reason(build)


def register(neuron: str, factory: Callable[[str], Callable]) -> None:
    """Register ``factory(backend)``, a function with the contract of :mod:`arlif.ops.backends`, as the fused
    ``"cpu"`` and ``"triton"`` implementations of ``neuron``."""
    backends.register_fused(neuron, "cpu", factory("cpu"), unavailable=_cpu_unavailable)
    backends.register_fused(neuron, "triton", factory("triton"))
