"""Fused multi-step neurons as ``torch.library`` custom ops (docs/backends.md).

One op family per neuron, each a forward op over all T steps and a hand-written BPTT backward op:

========================  ===========================================================================
``arlif::arlif_fwd/bwd``  AR-LIF; ``threshold_adjust``, ``adaptive_reset``, ``carry_memory`` are arguments
``arlif::lif_fwd/bwd``    LIF, soft or hard reset (``hard_reset``)
``arlif::plif_fwd/bwd``   PLIF (learnable leak ``w``)
``arlif::clif_fwd/bwd``   CLIF
========================  ===========================================================================

The ``backend`` argument (``"cpu"`` or ``"triton"``) picks the implementation: :mod:`arlif.ops.cpu`
(C++ kernels) or :mod:`arlif.ops.triton_impl` (Triton; CUDA tensors, or CPU tensors under
``TRITON_INTERPRET=1``). Both have the same contract, so this file only adapts shapes and dtypes and wires
autograd.

Memory: the forward saves only ``x`` and the initial states it was given: ``v0`` and ``m0`` are optional
(None = zeros, a fresh neuron's state, which the modules pass without making a tensor for it). The backward
recomputes the forward, so a float32 AR-LIF keeps 4 bytes per element for backward when it starts from
rest, and ``4 + 4·k/T`` with k given initial states, instead of ~43 for the per-step autograd loop
(measured in benchmarks/RESULTS.md).

Dtypes: the computation runs in float64 for float64 input and in float32 otherwise (bf16/fp16 inputs,
autocast). Spikes and state sequences are returned in the input dtype; final states are returned in the
compute dtype, so a carried state stays in float32 under AMP. Gradients come back in the dtype of the
tensor they belong to.

Spikes use the surrogate derivative of ``u = H - θ`` everywhere S is used (memory update and reset), as
in :mod:`arlif.ops.reference`; nothing is detached.
"""

from __future__ import annotations

import importlib

import torch

from . import backends

Tensor = torch.Tensor
_IMPL_MODULES = {"cpu": "arlif.ops.cpu", "triton": "arlif.ops.triton_impl"}


def _impl(backend: str):
    if backend not in _IMPL_MODULES:
        raise ValueError(f"fused backend must be 'cpu' or 'triton', got {backend!r}")
    return importlib.import_module(_IMPL_MODULES[backend])


def _cd(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _flat(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.reshape(-1)


def _seq_or_none(t: Tensor | None, T: int) -> Tensor | None:
    """An optional [T, ...] gradient, flattened; empty placeholders count as absent."""
    if t is None or t.numel() == 0:
        return None
    return t.reshape(T, -1)


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


def _unflat(t: Tensor | None, shape, like: Tensor) -> Tensor:
    return _empty(like) if t is None else t.reshape(shape)


def _state_dtype(x: Tensor) -> torch.dtype:
    return _cd(x.dtype)


def _fake_state(x: Tensor, present: bool = True) -> Tensor:
    """Fake final state ``[*S]`` in the compute dtype (empty when the neuron does not return it)."""
    return x.new_empty(x.shape[1:] if present else 0, dtype=_state_dtype(x))


def _fake_seq(x: Tensor, present: bool) -> Tensor:
    """Fake state sequence ``[T,*S]`` in the input dtype (empty when it is not kept)."""
    return torch.empty_like(x) if present else x.new_empty(0)


def _fwd_outputs(x: Tensor, spikes: Tensor, finals, seqs) -> tuple[Tensor, ...]:
    """A forward op's outputs from the flat results: ``spikes [T,*S]``, the final states ``[*S]`` (in the
    compute dtype) and the state sequences ``[T,*S]``; an absent state or sequence is returned empty."""
    shape, vT = x.shape[1:], finals[0]
    return (
        spikes.reshape(x.shape),
        *(_unflat(t, shape, vT) for t in finals),
        *(_unflat(t, x.shape, spikes) for t in seqs),
    )


def _state_grad(g: Tensor | None, t: Tensor | None, like: Tensor) -> Tensor:
    """A flat gradient of the initial state ``t`` in its shape and dtype; empty when ``t`` is None."""
    return _empty(like) if (t is None or g is None) else g.reshape(t.shape).to(t.dtype)


def _fake_grad(t: Tensor | None, like: Tensor) -> Tensor:
    """Fake gradient of the optional initial state ``t`` (see :func:`_state_grad`)."""
    return like.new_empty(0) if t is None else torch.empty_like(t)


def _setup_context(n_tensors: int, has_m0: bool = False):
    """``setup_context`` for a forward op whose inputs are ``n_tensors`` tensors, the configuration its
    backward op takes, ``keep_states`` and ``backend`` (``has_m0``: the third input is the optional ``m0``)."""

    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)  # unused outputs get no zero-filled gradient
        ctx.config = tuple(inputs[n_tensors:-2])
        ctx.backend = inputs[-1]
        ctx.has_m0 = has_m0 and inputs[2] is not None
        ctx.save_for_backward(*inputs[:n_tensors])

    return setup_context


def _call_bwd(ctx, op, g_spikes: Tensor | None, *grads):
    """The saved tensors and ``op`` (a backward op) applied to the output gradients, the saved tensors and the
    saved configuration; an unused spike output gets a zero gradient."""
    saved = ctx.saved_tensors
    return saved, op(_spike_grad(g_spikes, saved[0]), *grads, *saved, *ctx.config, ctx.backend)


def _input_grads(ctx, gx: Tensor, *grads):
    """What a backward returns: ``gx``, then each of ``grads`` where its input wants a gradient, then None
    for the non-tensor inputs."""
    need = ctx.needs_input_grad
    wanted = tuple(g if need[i] else None for i, g in enumerate(grads, 1))
    return (gx, *wanted) + (None,) * (len(need) - 1 - len(grads))


def _spike_grad(g: Tensor | None, x: Tensor) -> Tensor:
    return torch.zeros_like(x) if g is None else g


# =======================================================================================================
# AR-LIF
# =======================================================================================================
@torch.library.custom_op("arlif::arlif_fwd", mutates_args=())
def arlif_fwd(
    x: Tensor,
    v0: Tensor | None,
    m0: Tensor | None,
    a: Tensor,
    c: Tensor,
    v_threshold: float,
    decay: float,
    threshold_adjust: bool,
    adaptive_reset: bool,
    carry_memory: bool,
    surrogate: int,
    width: float,
    keep_states: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """AR-LIF over all steps. ``x`` [T, *S]; ``v0``, ``m0`` [*S] (None: zeros).

    Returns ``(spikes [T,*S], v_T [*S], m_T [*S], v_seq [T,*S], m_seq [T,*S])``; ``m_T``/``m_seq`` are
    empty without ``adaptive_reset`` and the sequences are empty without ``keep_states``."""
    T = x.shape[0]
    spikes, vT, mT, vseq, mseq = _impl(backend).arlif_forward(
        x.reshape(T, -1), _flat(v0), _flat(m0), a, c, v_threshold, decay,
        threshold_adjust, adaptive_reset, carry_memory, keep_states,
    )  # fmt: skip
    return _fwd_outputs(x, spikes, (vT, mT), (vseq, mseq))


@arlif_fwd.register_fake
def _(x, v0, m0, a, c, v_threshold, decay, threshold_adjust, adaptive_reset, carry_memory, surrogate,
      width, keep_states, backend):  # fmt: skip
    seqs = _fake_seq(x, keep_states), _fake_seq(x, keep_states and adaptive_reset)
    return torch.empty_like(x), _fake_state(x), _fake_state(x, adaptive_reset), *seqs


@torch.library.custom_op("arlif::arlif_bwd", mutates_args=())
def arlif_bwd(
    grad_spikes: Tensor,
    grad_v: Tensor | None,
    grad_m: Tensor | None,
    grad_v_seq: Tensor | None,
    grad_m_seq: Tensor | None,
    x: Tensor,
    v0: Tensor | None,
    m0: Tensor | None,
    a: Tensor,
    c: Tensor,
    v_threshold: float,
    decay: float,
    threshold_adjust: bool,
    adaptive_reset: bool,
    carry_memory: bool,
    surrogate: int,
    width: float,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """BPTT of :func:`arlif_fwd`: ``(grad_x, grad_v0, grad_m0, grad_a, grad_c)`` (a state's gradient is
    empty when the state is None). Recomputes the forward from ``x`` and the initial state."""
    T = x.shape[0]
    cd = _cd(x.dtype)
    gx, gv0, gm0, g_ta, gc = _impl(backend).arlif_backward(
        grad_spikes.reshape(T, -1), _flat(grad_v), _flat(grad_m), _seq_or_none(grad_v_seq, T),
        _seq_or_none(grad_m_seq, T), x.reshape(T, -1), _flat(v0), _flat(m0), a, c, v_threshold, decay,
        threshold_adjust, adaptive_reset, carry_memory, surrogate, width,
    )  # fmt: skip
    ta = torch.tanh(a.detach().to(cd))
    grad_a = (g_ta * (1 - ta * ta)).to(a.dtype)
    return gx.reshape(x.shape), _state_grad(gv0, v0, x), _state_grad(gm0, m0, x), grad_a, gc.to(c.dtype)


@arlif_bwd.register_fake
def _(grad_spikes, grad_v, grad_m, grad_v_seq, grad_m_seq, x, v0, m0, a, c, v_threshold, decay,
      threshold_adjust, adaptive_reset, carry_memory, surrogate, width, backend):  # fmt: skip
    return torch.empty_like(x), _fake_grad(v0, x), _fake_grad(m0, x), torch.empty_like(a), torch.empty_like(c)


_ARLIF_CONFIG = ("v_threshold", "decay", "threshold_adjust", "adaptive_reset", "carry_memory",
                 "surrogate", "width")  # fmt: skip


def _arlif_backward(ctx, g_spikes, g_v, g_m, g_vseq, g_mseq):
    cfg = dict(zip(_ARLIF_CONFIG, ctx.config))
    if not cfg["adaptive_reset"]:
        g_m = g_mseq = None
    (x, *_), (gx, gv0, gm0, ga, gc) = _call_bwd(ctx, torch.ops.arlif.arlif_bwd, g_spikes, g_v, g_m, g_vseq, g_mseq)
    # c multiplies m_{t-1}: like the reference graph, it is unused when no step has a carried memory
    uses_c = cfg["adaptive_reset"] and cfg["carry_memory"] and (ctx.has_m0 or x.shape[0] > 1)
    # m0 is read only when the memory is carried; otherwise it gets no gradient, as in the reference
    uses_m0 = ctx.has_m0 and cfg["adaptive_reset"] and cfg["carry_memory"]
    return _input_grads(
        ctx, gx, gv0, gm0 if uses_m0 else None, ga if cfg["threshold_adjust"] else None, gc if uses_c else None
    )


torch.library.register_autograd("arlif::arlif_fwd", _arlif_backward, setup_context=_setup_context(5, has_m0=True))


# =======================================================================================================
# LIF (soft / hard reset)
# =======================================================================================================
@torch.library.custom_op("arlif::lif_fwd", mutates_args=())
def lif_fwd(
    x: Tensor,
    v0: Tensor | None,
    v_threshold: float,
    decay: float,
    hard_reset: bool,
    surrogate: int,
    width: float,
    keep_states: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """LIF over all steps: ``(spikes [T,*S], v_T [*S], v_seq [T,*S] or empty)``."""
    T = x.shape[0]
    spikes, vT, vseq = _impl(backend).leaky_forward(
        x.reshape(T, -1), _flat(v0), decay, v_threshold, hard_reset, keep_states
    )
    return _fwd_outputs(x, spikes, (vT,), (vseq,))


@lif_fwd.register_fake
def _(x, v0, v_threshold, decay, hard_reset, surrogate, width, keep_states, backend):
    return torch.empty_like(x), _fake_state(x), _fake_seq(x, keep_states)


@torch.library.custom_op("arlif::lif_bwd", mutates_args=())
def lif_bwd(
    grad_spikes: Tensor,
    grad_v: Tensor | None,
    grad_v_seq: Tensor | None,
    x: Tensor,
    v0: Tensor | None,
    v_threshold: float,
    decay: float,
    hard_reset: bool,
    surrogate: int,
    width: float,
    backend: str,
) -> tuple[Tensor, Tensor]:
    """BPTT of :func:`lif_fwd`: ``(grad_x, grad_v0)``."""
    T = x.shape[0]
    gx, gv0, _ = _impl(backend).leaky_backward(
        grad_spikes.reshape(T, -1), _flat(grad_v), _seq_or_none(grad_v_seq, T), x.reshape(T, -1), _flat(v0),
        decay, v_threshold, hard_reset, surrogate, width, False,
    )  # fmt: skip
    return gx.reshape(x.shape), _state_grad(gv0, v0, x)


@lif_bwd.register_fake
def _(grad_spikes, grad_v, grad_v_seq, x, v0, v_threshold, decay, hard_reset, surrogate, width, backend):
    return torch.empty_like(x), _fake_grad(v0, x)


def _lif_backward(ctx, g_spikes, g_v, g_vseq):
    _, grads = _call_bwd(ctx, torch.ops.arlif.lif_bwd, g_spikes, g_v, g_vseq)
    return _input_grads(ctx, *grads)


torch.library.register_autograd("arlif::lif_fwd", _lif_backward, setup_context=_setup_context(2))


# =======================================================================================================
# PLIF
# =======================================================================================================
def _plif_leak(w: Tensor, cd: torch.dtype) -> Tensor:
    return 1 - torch.sigmoid(w.detach().to(cd))


@torch.library.custom_op("arlif::plif_fwd", mutates_args=())
def plif_fwd(
    x: Tensor,
    v0: Tensor | None,
    w: Tensor,
    v_threshold: float,
    surrogate: int,
    width: float,
    keep_states: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """PLIF over all steps (leak ``1 - σ(w)``): ``(spikes, v_T, v_seq or empty)``."""
    T = x.shape[0]
    spikes, vT, vseq = _impl(backend).leaky_forward(
        x.reshape(T, -1), _flat(v0), _plif_leak(w, _cd(x.dtype)), v_threshold, False, keep_states
    )
    return _fwd_outputs(x, spikes, (vT,), (vseq,))


@plif_fwd.register_fake
def _(x, v0, w, v_threshold, surrogate, width, keep_states, backend):
    return torch.empty_like(x), _fake_state(x), _fake_seq(x, keep_states)


@torch.library.custom_op("arlif::plif_bwd", mutates_args=())
def plif_bwd(
    grad_spikes: Tensor,
    grad_v: Tensor | None,
    grad_v_seq: Tensor | None,
    x: Tensor,
    v0: Tensor | None,
    w: Tensor,
    v_threshold: float,
    surrogate: int,
    width: float,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """BPTT of :func:`plif_fwd`: ``(grad_x, grad_v0, grad_w)``."""
    T = x.shape[0]
    cd = _cd(x.dtype)
    gx, gv0, gk = _impl(backend).leaky_backward(
        grad_spikes.reshape(T, -1), _flat(grad_v), _seq_or_none(grad_v_seq, T), x.reshape(T, -1), _flat(v0),
        _plif_leak(w, cd), v_threshold, False, surrogate, width, True,
    )  # fmt: skip
    sw = torch.sigmoid(w.detach().to(cd))
    grad_w = (-gk * sw * (1 - sw)).to(w.dtype)
    return gx.reshape(x.shape), _state_grad(gv0, v0, x), grad_w


@plif_bwd.register_fake
def _(grad_spikes, grad_v, grad_v_seq, x, v0, w, v_threshold, surrogate, width, backend):
    return torch.empty_like(x), _fake_grad(v0, x), torch.empty_like(w)


def _plif_backward(ctx, g_spikes, g_v, g_vseq):
    _, grads = _call_bwd(ctx, torch.ops.arlif.plif_bwd, g_spikes, g_v, g_vseq)
    return _input_grads(ctx, *grads)


torch.library.register_autograd("arlif::plif_fwd", _plif_backward, setup_context=_setup_context(3))


# =======================================================================================================
# CLIF
# =======================================================================================================
@torch.library.custom_op("arlif::clif_fwd", mutates_args=())
def clif_fwd(
    x: Tensor,
    v0: Tensor | None,
    m0: Tensor | None,
    v_threshold: float,
    tau: float,
    surrogate: int,
    width: float,
    keep_states: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """CLIF over all steps: ``(spikes, v_T, m_T, v_seq, m_seq)`` (sequences empty without keep_states)."""
    T = x.shape[0]
    spikes, vT, mT, vseq, mseq = _impl(backend).clif_forward(
        x.reshape(T, -1), _flat(v0), _flat(m0), v_threshold, tau, keep_states
    )
    return _fwd_outputs(x, spikes, (vT, mT), (vseq, mseq))


@clif_fwd.register_fake
def _(x, v0, m0, v_threshold, tau, surrogate, width, keep_states, backend):
    return torch.empty_like(x), _fake_state(x), _fake_state(x), _fake_seq(x, keep_states), _fake_seq(x, keep_states)


@torch.library.custom_op("arlif::clif_bwd", mutates_args=())
def clif_bwd(
    grad_spikes: Tensor,
    grad_v: Tensor | None,
    grad_m: Tensor | None,
    grad_v_seq: Tensor | None,
    grad_m_seq: Tensor | None,
    x: Tensor,
    v0: Tensor | None,
    m0: Tensor | None,
    v_threshold: float,
    tau: float,
    surrogate: int,
    width: float,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """BPTT of :func:`clif_fwd`: ``(grad_x, grad_v0, grad_m0)`` (empty for a state given as None)."""
    T = x.shape[0]
    gx, gv0, gm0 = _impl(backend).clif_backward(
        grad_spikes.reshape(T, -1), _flat(grad_v), _flat(grad_m), _seq_or_none(grad_v_seq, T),
        _seq_or_none(grad_m_seq, T), x.reshape(T, -1), _flat(v0), _flat(m0), v_threshold, tau, surrogate,
        width,
    )  # fmt: skip
    return gx.reshape(x.shape), _state_grad(gv0, v0, x), _state_grad(gm0, m0, x)


@clif_bwd.register_fake
def _(grad_spikes, grad_v, grad_m, grad_v_seq, grad_m_seq, x, v0, m0, v_threshold, tau, surrogate,
      width, backend):  # fmt: skip
    return torch.empty_like(x), _fake_grad(v0, x), _fake_grad(m0, x)


def _clif_backward(ctx, g_spikes, g_v, g_m, g_vseq, g_mseq):
    _, (gx, gv0, gm0) = _call_bwd(ctx, torch.ops.arlif.clif_bwd, g_spikes, g_v, g_m, g_vseq, g_mseq)
    return _input_grads(ctx, gx, gv0, gm0 if ctx.has_m0 else None)


torch.library.register_autograd("arlif::clif_fwd", _clif_backward, setup_context=_setup_context(3, has_m0=True))


# =======================================================================================================
# Module contract (arlif.ops.backends): fn(x_seq, states, params, keep_states, **config)
# =======================================================================================================
def _arlif(backend: str):
    def fused_arlif(x_seq, states, params, keep_states, *, surrogate, v_threshold, decay,
                    threshold_adjust, adaptive_reset, carry_memory):  # fmt: skip
        v0, m0 = states
        a, c = params
        spikes, vT, mT, vseq, mseq = torch.ops.arlif.arlif_fwd(
            x_seq, v0, m0 if (adaptive_reset and carry_memory) else None, a, c, float(v_threshold),
            float(decay), bool(threshold_adjust), bool(adaptive_reset), bool(carry_memory),
            surrogate.kind_id, float(surrogate.width), bool(keep_states), backend,
        )  # fmt: skip
        final = (vT, mT if adaptive_reset else None)
        seqs = (vseq if keep_states else None, mseq if (keep_states and adaptive_reset) else None)
        return spikes, final, seqs

    return fused_arlif


def _lif(backend: str):
    def fused_lif(x_seq, states, params, keep_states, *, surrogate, v_threshold, decay, hard_reset):
        (v0,) = states
        spikes, vT, vseq = torch.ops.arlif.lif_fwd(
            x_seq, v0, float(v_threshold), float(decay), bool(hard_reset), surrogate.kind_id,
            float(surrogate.width), bool(keep_states), backend,
        )  # fmt: skip
        return spikes, (vT,), (vseq if keep_states else None,)

    return fused_lif


def _plif(backend: str):
    def fused_plif(x_seq, states, params, keep_states, *, surrogate, v_threshold):
        (v0,), (w,) = states, params
        spikes, vT, vseq = torch.ops.arlif.plif_fwd(
            x_seq, v0, w, float(v_threshold), surrogate.kind_id, float(surrogate.width), bool(keep_states),
            backend,
        )  # fmt: skip
        return spikes, (vT,), (vseq if keep_states else None,)

    return fused_plif


def _clif(backend: str):
    def fused_clif(x_seq, states, params, keep_states, *, surrogate, v_threshold, tau):
        v0, m0 = states
        spikes, vT, mT, vseq, mseq = torch.ops.arlif.clif_fwd(
            x_seq, v0, m0, float(v_threshold), float(tau), surrogate.kind_id, float(surrogate.width),
            bool(keep_states), backend,
        )  # fmt: skip
        seqs = (vseq, mseq) if keep_states else (None, None)
        return spikes, (vT, mT), seqs

    return fused_clif


def _cpu_unavailable(build: bool) -> str | None:
    from . import cpu_build

    return cpu_build.unavailable_reason(build)


for _name, _factory in (("arlif", _arlif), ("lif", _lif), ("plif", _plif), ("clif", _clif)):
    backends.register_fused(_name, "cpu", _factory("cpu"), unavailable=_cpu_unavailable)
    backends.register_fused(_name, "triton", _factory("triton"))
