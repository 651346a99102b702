"""The fused LIF (soft or hard reset) and PLIF (learnable leak ``w``) as ``torch.library`` custom ops:
``arlif::lif_fwd`` and ``arlif::plif_fwd`` over all T steps and their BPTT ops ``arlif::lif_bwd`` and
``arlif::plif_bwd``, both on one leaky integrator ``H = k·V + x`` (``k`` = λ, or 1 - σ(w) for PLIF). The
shared wiring and the memory and dtype rules are in :mod:`arlif.ops.op_glue`."""

from __future__ import annotations

import functools

import torch

from .. import op_glue as glue
from ..dtypes import compute_dtype

Tensor = torch.Tensor
_impl = functools.partial(glue.implementation, __package__)  # backend name -> this family's cpu or triton module


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
        x.reshape(T, -1), glue.flat(v0), decay, v_threshold, hard_reset, keep_states
    )
    return glue.fwd_outputs(x, spikes, (vT,), (vseq,))


@lif_fwd.register_fake
def _(x, v0, v_threshold, decay, hard_reset, surrogate, width, keep_states, backend):
    return torch.empty_like(x), glue.fake_state(x), glue.fake_seq(x, keep_states)


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
        grad_spikes.reshape(T, -1), glue.flat(grad_v), glue.seq_or_none(grad_v_seq, T), x.reshape(T, -1), glue.flat(v0),
        decay, v_threshold, hard_reset, surrogate, width, False,
    )  # fmt: skip
    return gx.reshape(x.shape), glue.state_grad(gv0, v0, x)


@lif_bwd.register_fake
def _(grad_spikes, grad_v, grad_v_seq, x, v0, v_threshold, decay, hard_reset, surrogate, width, backend):
    return torch.empty_like(x), glue.fake_grad(v0, x)


def _lif_backward(ctx, g_spikes, g_v, g_vseq):
    _, grads = glue.call_bwd(ctx, torch.ops.arlif.lif_bwd, g_spikes, g_v, g_vseq)
    return glue.input_grads(ctx, *grads)


torch.library.register_autograd("arlif::lif_fwd", _lif_backward, setup_context=glue.setup_context(2))


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
        x.reshape(T, -1), glue.flat(v0), _plif_leak(w, compute_dtype(x.dtype)), v_threshold, False, keep_states
    )
    return glue.fwd_outputs(x, spikes, (vT,), (vseq,))


@plif_fwd.register_fake
def _(x, v0, w, v_threshold, surrogate, width, keep_states, backend):
    return torch.empty_like(x), glue.fake_state(x), glue.fake_seq(x, keep_states)


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
    cd = compute_dtype(x.dtype)
    gx, gv0, gk = _impl(backend).leaky_backward(
        grad_spikes.reshape(T, -1), glue.flat(grad_v), glue.seq_or_none(grad_v_seq, T), x.reshape(T, -1), glue.flat(v0),
        _plif_leak(w, cd), v_threshold, False, surrogate, width, True,
    )  # fmt: skip
    sw = torch.sigmoid(w.detach().to(cd))
    grad_w = (-gk * sw * (1 - sw)).to(w.dtype)
    return gx.reshape(x.shape), glue.state_grad(gv0, v0, x), grad_w


@plif_bwd.register_fake
def _(grad_spikes, grad_v, grad_v_seq, x, v0, w, v_threshold, surrogate, width, backend):
    return torch.empty_like(x), glue.fake_grad(v0, x), torch.empty_like(w)


def _plif_backward(ctx, g_spikes, g_v, g_vseq):
    _, grads = glue.call_bwd(ctx, torch.ops.arlif.plif_bwd, g_spikes, g_v, g_vseq)
    return glue.input_grads(ctx, *grads)


torch.library.register_autograd("arlif::plif_fwd", _plif_backward, setup_context=glue.setup_context(3))


# =======================================================================================================
# Module contract (arlif.ops.backends): fn(x_seq, states, params, keep_states, **config)
# =======================================================================================================
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


glue.register("lif", _lif)
glue.register("plif", _plif)
