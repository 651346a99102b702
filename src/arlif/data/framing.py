"""Event streams → frames: split by number (docs/datasets.md#framing-split-by-number) or by time."""

from __future__ import annotations

import numpy as np

SPLIT_BY = ("number", "time")


def frame_index(n: int, T: int, t=None, split_by: str = "number") -> np.ndarray:
    """The frame (0..T-1) of each of ``n`` events.

    ``split_by="number"``: with ``di = N // T``, frame ``i`` takes events ``[i·di, (i+1)·di)`` in file order
    and the last frame also the ``N mod T`` remaining ones (with ``N < T`` every event lands in the last frame).
    ``split_by="time"``: with the span ``t_min .. t_max`` of the integer timestamps ``t`` and
    ``dt = (t_max - t_min) // T``, frame ``i`` takes the events with ``t_min + i·dt <= t < t_min + (i+1)·dt``
    and the last frame everything from ``t_min + (T-1)·dt`` on (with a span shorter than T time units,
    ``dt = 0``, every event lands in the last frame). For time-sorted events this is SpikingJelly's
    ``split_by='time'``.
    """
    if int(T) < 1:
        raise ValueError(f"T must be a positive number of frames, got {T}")
    if split_by not in SPLIT_BY:
        raise ValueError(f"unknown split_by {split_by!r}; choose one of {SPLIT_BY}")
    if split_by == "number":
        di = n // T
        if di:
            return np.minimum(np.arange(n, dtype=np.int64) // di, T - 1)
        return np.full(n, T - 1, dtype=np.int64)
    t = np.asarray(t)
    if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"split_by='time' needs one integer timestamp per event, got {t.dtype} of shape {t.shape}")
    if not n:
        return np.zeros(0, dtype=np.int64)
    t = t.astype(np.int64)
    t0 = t.min()
    dt = (t.max() - t0) // T
    if not dt:
        return np.full(n, T - 1, dtype=np.int64)
    return np.minimum((t - t0) // dt, T - 1)


def event_counts(x, y, p, T: int, H: int, W: int, t=None, split_by: str = "number") -> np.ndarray:
    """Per-pixel event counts of ``T`` frames, int64 ``[T, 2, H, W]``.

    Events are assigned to frames by :func:`frame_index` (by default split by number, which needs no
    timestamps ``t``). Channel 0 counts events with ``p == 0``, channel 1 those with ``p != 0``. ``x`` is the
    column (``0 <= x < W``) and ``y`` the row (``0 <= y < H``); coordinates outside the frame raise
    ``ValueError``.
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
    frame = frame_index(n, T, t, split_by)
    channel = (p != 0).astype(np.int64)
    flat = ((frame * 2 + channel) * H + y) * W + x
    return np.bincount(flat, minlength=T * 2 * H * W).reshape(T, 2, H, W)


def events_to_frames(t, x, y, p, T: int, H: int, W: int, split_by: str = "number") -> np.ndarray:
    """Integrate events into float32 frames ``[T, 2, H, W]`` of per-pixel counts, split by number (only the
    event order counts; ``t`` is not used) or by time (see :func:`frame_index`)."""
    return event_counts(x, y, p, T, H, W, t=t, split_by=split_by).astype(np.float32)
