"""Readers for the two AEDAT event formats used by the DVS benchmarks.

Both readers return four 1-D numpy arrays of equal length ``(t, x, y, p)`` in file order:

- ``t``: int64 timestamps in microseconds,
- ``x``, ``y``: int16 pixel coordinates (column, row) in the dataset's convention,
- ``p``: uint8 polarity, 0 or 1.

The decoding is vectorised: whole files (AEDAT 2.0) or whole packets (AEDAT 3.1) are decoded by numpy;
the only Python loop is over AEDAT 3.1 packets, of which a recording has a few thousand at most.
Malformed files raise :class:`~arlif.errors.CorruptRecording` (a :class:`~arlif.errors.DataError`) naming
the file and what is wrong with it; a missing or unreadable file raises a plain ``DataError``.

:func:`check_aedat2` and :func:`check_aedat31` check a recording without reading its events: the header, the
size of the body (AEDAT 2.0) or the first packet (AEDAT 3.1). They read a few kilobytes, so a dataset of
10000 recordings is checked in about a second.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import CorruptRecording, DataError

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


# the first read of a header check; a longer header is read on, doubling
_HEAD_BYTES = 4096


def _corrupt(path, problem: str) -> CorruptRecording:
    return CorruptRecording(f"{path}: {problem}", path, problem)


def _read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"event file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read event file {path}: {exc}") from None


def _scan_head(path, parse):
    """Read the start of ``path`` until ``parse(data, eof, file_size)`` returns a result (not ``None``);
    ``parse`` must decide once ``eof`` is true."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data, want = b"", _HEAD_BYTES
            while True:
                chunk = f.read(want)
                data += chunk
                eof = len(chunk) < want
                result = parse(data, eof, size)
                if result is not None or eof:
                    return result
                want = len(data)
    except FileNotFoundError:
        raise DataError(f"event file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read event file {path}: {exc}") from None


def _aedat2_header_end(data: bytes, path, eof: bool = True) -> int | None:
    """Offset of the first event: every leading line that starts with ``#`` is header. ``data`` is the whole
    file, or (``eof=False``) its start, in which case ``None`` means that more is needed to decide."""
    if not eof and len(data) <= len(AEDAT2_MAGIC):
        return None
    if not data:
        raise _corrupt(path, f"empty file, expected an AEDAT 2.0 recording (first line {AEDAT2_MAGIC!r})")
    if not data.startswith(AEDAT2_MAGIC):
        first = data[:40].split(b"\n", 1)[0]
        raise _corrupt(
            path,
            f"not an AEDAT 2.0 file: it starts with {first!r}, expected a header whose first line is "
            f"{AEDAT2_MAGIC!r}",
        )
    pos = 0
    # The events start with a big-endian address whose high byte is 0 on a DVS128, never b"#".
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            if not eof:
                return None
            raise _corrupt(path, "truncated AEDAT 2.0 header (a '#' line without its line end)")
        pos = end + 1
    if pos == len(data) and not eof:
        return None  # the next line may be header too
    return pos


def _check_aedat2_body(path, body: int) -> None:
    if body % _AEDAT2_EVENT.itemsize:
        raise _corrupt(
            path,
            f"truncated or corrupt AEDAT 2.0 file: {body} bytes of events after the header, not a multiple of "
            f"the 8-byte event size",
        )


def check_aedat2(path) -> None:
    """Raise :class:`~arlif.errors.CorruptRecording` if :func:`read_aedat2` would refuse ``path``, reading
    only its header (and the file size). For AEDAT 2.0 this check is complete: the reader fails only on a
    bad header or a body that is not whole 8-byte events, and every address decodes to a pixel of the
    128×128 sensor."""

    def parse(data, eof, size):
        start = _aedat2_header_end(data, path, eof)
        if start is None:
            return None
        _check_aedat2_body(path, size - start)
        return True

    _scan_head(path, parse)


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
    start = _aedat2_header_end(data, path)
    _check_aedat2_body(path, len(data) - start)
    events = np.frombuffer(data, dtype=_AEDAT2_EVENT, offset=start)
    a = events["address"]
    x_raw = ((a & 0xFE) >> 1).astype(np.int16)
    y_raw = ((a & 0x7F00) >> 8).astype(np.int16)
    p_raw = (a & 1).astype(np.uint8)
    t = events["t"].astype(np.int64)
    if convention == "raw":
        return t, x_raw, y_raw, p_raw
    return t, (127 - y_raw).astype(np.int16), (127 - x_raw).astype(np.int16), (1 - p_raw).astype(np.uint8)


def _aedat31_header_end(data: bytes, path, eof: bool = True) -> int | None:
    """Offset of the first packet (just after ``#!END-HEADER\\r\\n``); with ``eof=False`` (``data`` is the
    file's start) ``None`` means that more is needed."""
    if not eof and len(data) < len(AEDAT31_MAGIC):
        return None
    if not data:
        raise _corrupt(path, f"empty file, expected an AEDAT 3.1 recording (first line {AEDAT31_MAGIC!r})")
    if not data.startswith(b"#!AER-DAT3"):
        first = data[:40].split(b"\n", 1)[0]
        raise _corrupt(
            path,
            f"not an AEDAT 3.x file: it starts with {first!r}, expected a header whose first line is "
            f"{AEDAT31_MAGIC!r} and whose last line is {AEDAT31_END_HEADER!r}",
        )
    end = data.find(AEDAT31_END_HEADER)
    if end < 0:
        if not eof:
            return None
        raise _corrupt(path, f"truncated AEDAT 3.1 header: no {AEDAT31_END_HEADER!r} line")
    return end + len(AEDAT31_END_HEADER)


def _aedat31_packet(data: bytes, pos: int, n_bytes: int, path):
    """The checked header of the packet at ``pos`` of a file of ``n_bytes`` bytes (``data`` holds at least
    its 28 header bytes unless the file ends first): ``(header, start, stop)`` of its events."""
    hsize = _AEDAT31_HEADER.itemsize
    if n_bytes - pos < hsize:
        raise _corrupt(
            path,
            f"truncated AEDAT 3.1 file: {n_bytes - pos} trailing bytes at offset {pos}, too few for a "
            f"{hsize}-byte packet header",
        )
    h = np.frombuffer(data, dtype=_AEDAT31_HEADER, count=1, offset=pos)[0]
    size, capacity, number = int(h["size"]), int(h["capacity"]), int(h["number"])
    if size <= 0 or capacity < 0 or not 0 <= number <= capacity:
        raise _corrupt(
            path,
            f"corrupt AEDAT 3.1 packet header at offset {pos}: eventSize={size}, capacity={capacity}, "
            f"number={number}",
        )
    start = pos + hsize
    stop = start + size * capacity
    if stop > n_bytes:
        raise _corrupt(
            path,
            f"truncated AEDAT 3.1 file: the packet at offset {pos} declares {size * capacity} bytes of events "
            f"but only {n_bytes - start} remain",
        )
    if int(h["type"]) == POLARITY_EVENT and number:
        offset = int(h["ts_offset"])
        if size < 8 or not 4 <= offset <= size - 4:
            raise _corrupt(
                path,
                f"corrupt polarity packet at offset {pos}: eventSize={size}, tsOffset={offset} (expected 8 and 4)",
            )
    return h, start, stop


def check_aedat31(path) -> None:
    """Raise :class:`~arlif.errors.CorruptRecording` if the header of ``path`` or its first packet does not
    parse as :func:`read_aedat31` reads them (wrong magic, no end of header, a first packet that is garbled
    or longer than the file). Later packets are not read: that would read the whole file. A file cut short
    further on is found when its events are read."""
    hsize = _AEDAT31_HEADER.itemsize

    def parse(data, eof, size):
        start = _aedat31_header_end(data, path, eof)
        if start is None or (len(data) < start + hsize and not eof):
            return None
        if start < size:  # a header without packets is a recording without events
            _aedat31_packet(data, start, size, path)
        return True

    _scan_head(path, parse)


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
    pos = _aedat31_header_end(data, path)
    n_bytes = len(data)
    ts, xs, ys, ps = [], [], [], []
    while pos < n_bytes:
        h, start, stop = _aedat31_packet(data, pos, n_bytes, path)
        size, number = int(h["size"]), int(h["number"])
        if int(h["type"]) == POLARITY_EVENT and number:
            offset = int(h["ts_offset"])
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
