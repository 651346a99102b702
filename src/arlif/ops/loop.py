"""The per-step loop of the ``"torch"`` backend: one family's step function run over time."""

from __future__ import annotations

from collections.abc import Callable

import torch

Tensor = torch.Tensor


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
