"""Split-by-number framing against a naive per-event loop."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arlif.data import event_counts, events_to_frames


def naive_frames(x, y, p, T, H, W):
    """The definition, one event at a time: frame i holds events [i·di, (i+1)·di), the rest go last."""
    n = len(x)
    di = n // T
    out = np.zeros((T, 2, H, W), np.float32)
    for k in range(n):
        i = T - 1 if di == 0 else min(k // di, T - 1)
        out[i, 1 if p[k] != 0 else 0, y[k], x[k]] += 1
    return out


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 60),
    T=st.integers(1, 9),
    H=st.integers(1, 5),
    W=st.integers(1, 6),
    seed=st.integers(0, 99),
)
def test_matches_naive_loop(n, T, H, W, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, W, n), rng.integers(0, H, n)
    p = rng.choice([0, 1, 3], n)  # any non-zero polarity counts as channel 1
    t = np.arange(n)
    got = events_to_frames(t, x, y, p, T, H, W)
    assert got.dtype == np.float32 and got.shape == (T, 2, H, W)
    np.testing.assert_array_equal(got, naive_frames(x, y, p, T, H, W))


def test_remainder_goes_to_last_frame():
    # 7 events, T = 3: di = 2, frames hold 2, 2 and 3 events
    x = np.arange(7)
    got = events_to_frames(None, x, np.zeros(7, int), np.ones(7, int), 3, 1, 7)
    assert got[:, 1].sum(axis=(1, 2)).tolist() == [2, 2, 3]
    assert got[2, 1, 0].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert got[:, 0].sum() == 0


def test_fewer_events_than_frames_all_in_last():
    got = events_to_frames(None, [0, 1], [0, 0], [0, 1], 5, 1, 2)
    assert got[:4].sum() == 0
    assert got[4, 0, 0].tolist() == [1, 0] and got[4, 1, 0].tolist() == [0, 1]


def test_counts_are_integers_and_frames_float():
    c = event_counts([0, 0, 0], [0, 0, 0], [1, 1, 1], 1, 1, 1)
    assert c.dtype.kind == "i" and c[0, 1, 0, 0] == 3


@pytest.mark.parametrize("x, y", [([2], [0]), ([-1], [0]), ([0], [1])])
def test_out_of_range_coordinates_raise(x, y):
    with pytest.raises(ValueError, match="out of range"):
        events_to_frames(None, x, y, [0], 1, 1, 2)


def test_bad_T_and_lengths_raise():
    with pytest.raises(ValueError, match="positive"):
        events_to_frames(None, [0], [0], [0], 0, 1, 1)
    with pytest.raises(ValueError, match="same length"):
        events_to_frames(None, [0, 0], [0], [0], 1, 1, 1)
