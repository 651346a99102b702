"""The neuron dynamics of docs/neurons.md, written once, step by step, in plain PyTorch autograd.

This is the single definition of each neuron's math. The modules in :mod:`arlif.neurons` call these
functions for the ``"torch"`` backend and in single-step mode, and every fused kernel is tested against
them. All functions are pure: they take the previous state and return the new one.

Shapes: in a step function ``x``, ``v`` and ``m`` share one shape (any, e.g. ``[B, C, H, W]``); in a
multi-step function ``x_seq`` is ``[T, *shape]`` and the states are ``[*shape]``. Learnable parameters
(``a``, ``c``, ``w``) are 0-dim tensors; they are cast to the input's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..surrogate import Surrogate

Tensor = torch.Tensor


def arlif_step(
    x: Tensor,
    v: Tensor,
    m: Tensor | None,
    a: Tensor,
    c: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
    decay: float = 0.5,
    threshold_adjust: bool = True,
    adaptive_reset: bool = True,
    carry_memory: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One AR-LIF step (docs/neurons.md#ar-lif). Returns ``(spike, v, m)``; ``m`` is ``None`` when
    ``adaptive_reset=False`` (that variant has no reset memory)."""
    h = decay * v + x
    if threshold_adjust:
        theta = v_threshold + torch.tanh(a.to(x.dtype)) * torch.tanh(x)
    else:
        theta = v_threshold
    s = surrogate(h - theta)
    if not adaptive_reset:
        return s, h - s * theta, None
    sx = torch.sigmoid(x)
    if carry_memory and m is not None:
        g = torch.sigmoid(c.to(x.dtype) * x)
        # positive memory leaks by g, negative memory by (1 - g)
        m_new = m * torch.where(m > 0, g, 1 - g) + (2 * s - 1) * sx
    else:
        m_new = (2 * s - 1) * sx
    v_new = h - s * (theta + torch.sigmoid(m_new))
    return s, v_new, m_new


def lif_step(
    x: Tensor,
    v: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
    decay: float = 0.5,
    hard_reset: bool = False,
) -> tuple[Tensor, Tensor]:
    """One LIF step (docs/neurons.md#lif) with soft (``V = H - S·V_th``) or hard (``V = H·(1 - S)``) reset."""
    h = decay * v + x
    s = surrogate(h - v_threshold)
    v_new = h * (1 - s) if hard_reset else h - s * v_threshold
    return s, v_new


def plif_step(
    x: Tensor,
    v: Tensor,
    w: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """One PLIF step (docs/neurons.md#plif): leak ``1 - σ(w)`` with learnable ``w``, no input decay, soft reset."""
    h = v * (1 - torch.sigmoid(w.to(x.dtype))) + x
    s = surrogate(h - v_threshold)
    return s, h - s * v_threshold


def clif_step(
    x: Tensor,
    v: Tensor,
    m: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
    tau: float = 2.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """One CLIF step (docs/neurons.md#clif): complementary memory ``m`` raises the reset after spikes."""
    h = v * (1 - 1 / tau) + x
    m_prev = m * torch.sigmoid(h / tau)
    s = surrogate(h - v_threshold)
    m_new = m_prev + s
    return s, h - s * (v_threshold + torch.sigmoid(m_new)), m_new


def run_steps(
    step: Callable[..., tuple],
    x_seq: Tensor,
    states: tuple[Tensor | None, ...],
    params: tuple[Tensor, ...] = (),
    keep_states: bool = True,
    **config,
) -> tuple[Tensor, tuple[Tensor | None, ...], tuple[Tensor | None, ...]]:
    """Run ``step`` over the first axis of ``x_seq`` ([T, *shape]).

    Returns ``(spikes [T, *shape], final states, state sequences)``; each state sequence is
    ``[T, *shape]`` (``None`` for an absent state, or for all when ``keep_states=False``).
    """
    spikes = []
    seqs: list[list[Tensor]] = [[] for _ in states]
    for t in range(x_seq.shape[0]):
        s, *states = step(x_seq[t], *states, *params, **config)
        spikes.append(s)
        if keep_states:
            for seq, st in zip(seqs, states):
                if st is not None:
                    seq.append(st)
    stacked = tuple(torch.stack(seq) if seq else None for seq in seqs)
    return torch.stack(spikes), tuple(states), stacked
