"""Readers for the two AEDAT event formats used by the DVS benchmarks.

Both readers return four 1-D numpy arrays of equal length ``(t, x, y, p)`` in file order:

- ``t``: int64 timestamps in microseconds,
- ``x``, ``y``: int16 pixel coordinates (column, row) in the dataset's convention,
- ``p``: uint8 polarity, 0 or 1.

The decoding is vectorised: whole files (AEDAT 2.0) or whole packets (AEDAT 3.1) are decoded by numpy;
the only Python loop is over AEDAT 3.1 packets, of which a recording has a few thousand at most.
Malformed files raise :class:`~arlif.errors.DataError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

Events = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

AEDAT2_MAGIC = b"#!AER-DAT2.0"
AEDAT31_MAGIC = b"#!AER-DAT3.1"
AEDAT31_END_HEADER = b"#!END-HEADER\r\n"

# AEDAT 2.0 event: big-endian uint32 address, big-endian int32 timestamp (µs)
_AEDAT2_EVENT = np.dtype([("address", ">u4"), ("t", ">i4")])
# AEDAT 3.1 packet header, little-endian (28 bytes)
_AEDAT31_HEADER = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
POLARITY_EVENT = 1

CONVENTIONS = ("spikingjelly", "raw")


def _read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"event file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read event file {path}: {exc}") from None


def _skip_aedat2_header(data: bytes, path) -> int:
    """Offset of the first event: every leading line that starts with ``#`` is header."""
    if not data:
        raise DataError(f"{path}: empty file, expected an AEDAT 2.0 recording (first line {AEDAT2_MAGIC!r})")
    if not data.startswith(AEDAT2_MAGIC):
        first = data[:40].split(b"\n", 1)[0]
        raise DataError(
            f"{path}: not an AEDAT 2.0 file: it starts with {first!r}, expected a header whose first line "
            f"is {AEDAT2_MAGIC!r}"
        )
    pos = 0
    # The events start with a big-endian address whose high byte is 0 on a DVS128, never b"#".
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            raise DataError(f"{path}: truncated AEDAT 2.0 header (a '#' line without its line end)")
        pos = end + 1
    return pos


def read_aedat2(path, convention: str = "spikingjelly") -> Events:
    """Read a DVS128 recording in AEDAT 2.0 (jAER) format, e.g. a CIFAR10-DVS sample.

    Layout: ``#`` header lines ending in CRLF (the first is ``#!AER-DAT2.0``), then 8-byte events: a
    big-endian uint32 address and a big-endian int32 timestamp in µs. The address holds
    ``x_raw = (a & 0xFE) >> 1``, ``y_raw = (a & 0x7F00) >> 8`` and ``p_raw = a & 1`` on a 128×128 sensor.

    ``convention="spikingjelly"`` (default, used by the reference runs) returns ``x = 127 - y_raw``,
    ``y = 127 - x_raw``, ``p = 1 - p_raw``; ``convention="raw"`` returns the raw fields. Every event in the
    file is returned (address bits above 15 are ignored, as in the common pipelines).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown AEDAT 2.0 convention {convention!r}; choose one of {CONVENTIONS}")
    data = _read_bytes(path)
    start = _skip_aedat2_header(data, path)
    body = len(data) - start
    if body % _AEDAT2_EVENT.itemsize:
        raise DataError(
            f"{path}: truncated or corrupt AEDAT 2.0 file: {body} bytes of events after the header, "
            f"not a multiple of the 8-byte event size"
        )
    events = np.frombuffer(data, dtype=_AEDAT2_EVENT, offset=start)
    a = events["address"]
    x_raw = ((a & 0xFE) >> 1).astype(np.int16)
    y_raw = ((a & 0x7F00) >> 8).astype(np.int16)
    p_raw = (a & 1).astype(np.uint8)
    t = events["t"].astype(np.int64)
    if convention == "raw":
        return t, x_raw, y_raw, p_raw
    return t, (127 - y_raw).astype(np.int16), (127 - x_raw).astype(np.int16), (1 - p_raw).astype(np.uint8)


def _aedat31_body_start(data: bytes, path) -> int:
    if not data:
        raise DataError(f"{path}: empty file, expected an AEDAT 3.1 recording (first line {AEDAT31_MAGIC!r})")
    if not data.startswith(b"#!AER-DAT3"):
        first = data[:40].split(b"\n", 1)[0]
        raise DataError(
            f"{path}: not an AEDAT 3.x file: it starts with {first!r}, expected a header whose first line "
            f"is {AEDAT31_MAGIC!r} and whose last line is {AEDAT31_END_HEADER!r}"
        )
    end = data.find(AEDAT31_END_HEADER)
    if end < 0:
        raise DataError(f"{path}: truncated AEDAT 3.1 header: no {AEDAT31_END_HEADER!r} line")
    return end + len(AEDAT31_END_HEADER)


def read_aedat31(path) -> Events:
    """Read the polarity events of an AEDAT 3.1 (cAER) recording, e.g. a DVS128 Gesture trial.

    Layout: text header lines up to ``#!END-HEADER\\r\\n``, then packets, all little-endian. A packet is a
    28-byte header (int16 type, int16 source, int32 eventSize, int32 tsOffset, int32 tsOverflow,
    int32 capacity, int32 number, int32 valid) followed by ``capacity × eventSize`` bytes of events.
    Only polarity packets (type 1) are decoded; other packet types are skipped. Of a polarity packet the
    first ``number`` events are read: uint32 data (bit 1 polarity, bits 2-16 y, bits 17-31 x) and the
    int32 timestamp at byte ``tsOffset`` of the event; the full timestamp is ``ts | (tsOverflow << 31)``.
    Coordinates are returned as stored (no flips).
    """
    data = _read_bytes(path)
    pos = _aedat31_body_start(data, path)
    n_bytes = len(data)
    hsize = _AEDAT31_HEADER.itemsize
    ts, xs, ys, ps = [], [], [], []
    while pos < n_bytes:
        if n_bytes - pos < hsize:
            raise DataError(
                f"{path}: truncated AEDAT 3.1 file: {n_bytes - pos} trailing bytes at offset {pos}, "
                f"too few for a {hsize}-byte packet header"
            )
        h = np.frombuffer(data, dtype=_AEDAT31_HEADER, count=1, offset=pos)[0]
        size, capacity, number = int(h["size"]), int(h["capacity"]), int(h["number"])
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity:
            raise DataError(
                f"{path}: corrupt AEDAT 3.1 packet header at offset {pos}: eventSize={size}, "
                f"capacity={capacity}, number={number}"
            )
        start = pos + hsize
        stop = start + size * capacity
        if stop > n_bytes:
            raise DataError(
                f"{path}: truncated AEDAT 3.1 file: the packet at offset {pos} declares {size * capacity} "
                f"bytes of events but only {n_bytes - start} remain"
            )
        if int(h["type"]) == POLARITY_EVENT and number:
            offset = int(h["ts_offset"])
            if size < 8 or not 4 <= offset <= size - 4:
                raise DataError(
                    f"{path}: corrupt polarity packet at offset {pos}: eventSize={size}, tsOffset={offset} "
                    f"(expected 8 and 4)"
                )
            # rows of raw event bytes; the fields are picked out by byte offset, then reinterpreted
            rows = np.frombuffer(data, dtype=np.uint8, count=size * number, offset=start)
            rows = rows.reshape(number, size)
            word = np.ascontiguousarray(rows[:, 0:4]).view("<u4").ravel()
            stamp = np.ascontiguousarray(rows[:, offset : offset + 4]).view("<i4").ravel()
            # ts | (overflow << 31); a non-negative int32 ts never overlaps the overflow bits
            ts.append(stamp.astype(np.int64) | (np.int64(h["ts_overflow"]) << np.int64(31)))
            xs.append(((word >> 17) & 0x7FFF).astype(np.int16))
            ys.append(((word >> 2) & 0x7FFF).astype(np.int16))
            ps.append(((word >> 1) & 1).astype(np.uint8))
        pos = stop
    if not ts:
        empty = np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int16), np.zeros(0, np.uint8)
        return empty
    return np.concatenate(ts), np.concatenate(xs), np.concatenate(ys), np.concatenate(ps)
