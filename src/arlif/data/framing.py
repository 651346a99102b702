"""Event streams → frames ("split by number", docs/datasets.md#framing-split-by-number)."""

from __future__ import annotations

import numpy as np


def event_counts(x, y, p, T: int, H: int, W: int) -> np.ndarray:
    """Per-pixel event counts of ``T`` frames, int64 ``[T, 2, H, W]``.

    With ``N`` events and ``di = N // T``, frame ``i`` counts events ``[i·di, (i+1)·di)`` in file order and
    the last frame also takes the ``N mod T`` remaining ones (so with ``N < T`` every event lands in the last
    frame). Channel 0 counts events with ``p == 0``, channel 1 those with ``p != 0``. ``x`` is the column
    (``0 <= x < W``) and ``y`` the row (``0 <= y < H``); coordinates outside the frame raise ``ValueError``.
    """
    if int(T) < 1:
        raise ValueError(f"T must be a positive number of frames, got {T}")
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p)
    n = x.shape[0]
    if y.shape[0] != n or p.shape[0] != n:
        raise ValueError(f"x, y, p must have the same length, got {x.shape[0]}, {y.shape[0]}, {p.shape[0]}")
    if n and (x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H):
        raise ValueError(
            f"event coordinates out of range for a {H}×{W} frame: x in [{x.min()}, {x.max()}], "
            f"y in [{y.min()}, {y.max()}]"
        )
    di = n // T
    if di:
        frame = np.minimum(np.arange(n, dtype=np.int64) // di, T - 1)
    else:
        frame = np.full(n, T - 1, dtype=np.int64)
    channel = (p != 0).astype(np.int64)
    flat = ((frame * 2 + channel) * H + y) * W + x
    return np.bincount(flat, minlength=T * 2 * H * W).reshape(T, 2, H, W)


def events_to_frames(t, x, y, p, T: int, H: int, W: int) -> np.ndarray:
    """Integrate events into float32 frames ``[T, 2, H, W]`` of per-pixel counts, split by number.

    ``t`` (µs) is accepted for symmetry with the readers; split-by-number only uses the event order.
    See :func:`event_counts` for the exact split.
    """
    return event_counts(x, y, p, T, H, W).astype(np.float32)
