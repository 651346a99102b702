"""The fused AR-LIF as ``torch.library`` custom ops: ``arlif::arlif_fwd`` over all T steps and its BPTT
``arlif::arlif_bwd``; ``threshold_adjust``, ``adaptive_reset`` and ``carry_memory`` are op arguments. The
shared wiring and the memory and dtype rules are in :mod:`arlif.ops.op_glue`."""

from __future__ import annotations

import functools

import torch

from .. import op_glue as glue
from ..dtypes import compute_dtype

Tensor = torch.Tensor
_impl = functools.partial(glue.implementation, __package__)  # backend name -> this family's cpu or triton module


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
        x.reshape(T, -1), glue.flat(v0), glue.flat(m0), a, c, v_threshold, decay,
        threshold_adjust, adaptive_reset, carry_memory, keep_states,
    )  # fmt: skip
    return glue.fwd_outputs(x, spikes, (vT, mT), (vseq, mseq))


@arlif_fwd.register_fake
def _(x, v0, m0, a, c, v_threshold, decay, threshold_adjust, adaptive_reset, carry_memory, surrogate,
      width, keep_states, backend):  # fmt: skip
    seqs = glue.fake_seq(x, keep_states), glue.fake_seq(x, keep_states and adaptive_reset)
    return torch.empty_like(x), glue.fake_state(x), glue.fake_state(x, adaptive_reset), *seqs


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
    cd = compute_dtype(x.dtype)
    gx, gv0, gm0, g_ta, gc = _impl(backend).arlif_backward(
        grad_spikes.reshape(T, -1), glue.flat(grad_v), glue.flat(grad_m), glue.seq_or_none(grad_v_seq, T),
        glue.seq_or_none(grad_m_seq, T), x.reshape(T, -1), glue.flat(v0), glue.flat(m0), a, c, v_threshold, decay,
        threshold_adjust, adaptive_reset, carry_memory, surrogate, width,
    )  # fmt: skip
    ta = torch.tanh(a.detach().to(cd))
    grad_a = (g_ta * (1 - ta * ta)).to(a.dtype)
    return gx.reshape(x.shape), glue.state_grad(gv0, v0, x), glue.state_grad(gm0, m0, x), grad_a, gc.to(c.dtype)


@arlif_bwd.register_fake
def _(grad_spikes, grad_v, grad_m, grad_v_seq, grad_m_seq, x, v0, m0, a, c, v_threshold, decay,
      threshold_adjust, adaptive_reset, carry_memory, surrogate, width, backend):  # fmt: skip
    return torch.empty_like(x), glue.fake_grad(v0, x), glue.fake_grad(m0, x), torch.empty_like(a), torch.empty_like(c)


_ARLIF_CONFIG = ("v_threshold", "decay", "threshold_adjust", "adaptive_reset", "carry_memory",
                 "surrogate", "width")  # fmt: skip


def _arlif_backward(ctx, g_spikes, g_v, g_m, g_vseq, g_mseq):
    cfg = dict(zip(_ARLIF_CONFIG, ctx.config))
    if not cfg["adaptive_reset"]:
        g_m = g_mseq = None
    (x, *_), (gx, gv0, gm0, ga, gc) = glue.call_bwd(ctx, torch.ops.arlif.arlif_bwd, g_spikes, g_v, g_m, g_vseq, g_mseq)
    # c multiplies m_{t-1}: like the reference graph, it is unused when no step has a carried memory
    uses_c = cfg["adaptive_reset"] and cfg["carry_memory"] and (ctx.has_m0 or x.shape[0] > 1)
    # m0 is read only when the memory is carried; otherwise it gets no gradient, as in the reference
    uses_m0 = ctx.has_m0 and cfg["adaptive_reset"] and cfg["carry_memory"]
    return glue.input_grads(
        ctx, gx, gv0, gm0 if uses_m0 else None, ga if cfg["threshold_adjust"] else None, gc if uses_c else None
    )


torch.library.register_autograd("arlif::arlif_fwd", _arlif_backward, setup_context=glue.setup_context(5, has_m0=True))


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


glue.register("arlif", _arlif)
