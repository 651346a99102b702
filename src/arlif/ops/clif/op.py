"""The fused CLIF as ``torch.library`` custom ops: ``arlif::clif_fwd`` over all T steps and its BPTT
``arlif::clif_bwd``. The shared wiring and the memory and dtype rules are in :mod:`arlif.ops.op_glue`."""

from __future__ import annotations

import functools

import torch

from .. import op_glue as glue

Tensor = torch.Tensor
_impl = functools.partial(glue.implementation, __package__)  # backend name -> this family's cpu or triton module


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
        x.reshape(T, -1), glue.flat(v0), glue.flat(m0), v_threshold, tau, keep_states
    )
    return glue.fwd_outputs(x, spikes, (vT, mT), (vseq, mseq))


@clif_fwd.register_fake
def _(x, v0, m0, v_threshold, tau, surrogate, width, keep_states, backend):
    seqs = glue.fake_seq(x, keep_states), glue.fake_seq(x, keep_states)
    return torch.empty_like(x), glue.fake_state(x), glue.fake_state(x), *seqs


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
        grad_spikes.reshape(T, -1), glue.flat(grad_v), glue.flat(grad_m), glue.seq_or_none(grad_v_seq, T),
        glue.seq_or_none(grad_m_seq, T), x.reshape(T, -1), glue.flat(v0), glue.flat(m0), v_threshold, tau, surrogate,
        width,
    )  # fmt: skip
    return gx.reshape(x.shape), glue.state_grad(gv0, v0, x), glue.state_grad(gm0, m0, x)


@clif_bwd.register_fake
def _(grad_spikes, grad_v, grad_m, grad_v_seq, grad_m_seq, x, v0, m0, v_threshold, tau, surrogate,
      width, backend):  # fmt: skip
    return torch.empty_like(x), glue.fake_grad(v0, x), glue.fake_grad(m0, x)


def _clif_backward(ctx, g_spikes, g_v, g_m, g_vseq, g_mseq):
    _, (gx, gv0, gm0) = glue.call_bwd(ctx, torch.ops.arlif.clif_bwd, g_spikes, g_v, g_m, g_vseq, g_mseq)
    return glue.input_grads(ctx, gx, gv0, gm0 if ctx.has_m0 else None)


torch.library.register_autograd("arlif::clif_fwd", _clif_backward, setup_context=glue.setup_context(3, has_m0=True))


# =======================================================================================================
# Module contract (arlif.ops.backends): fn(x_seq, states, params, keep_states, **config)
# =======================================================================================================
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


glue.register("clif", _clif)
