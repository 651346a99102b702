"""Your own event recordings: ``<root>/{train,test|val}/<class>/<recording>`` (:mod:`arlif.data.folders`).

A recording is one file, in one of these formats:

- ``.npz`` with arrays ``t, x, y, p`` (SpikingJelly's layout), and optionally ``sensor_size`` = (W, H);
- ``.npy`` holding one structured array with fields ``t, x, y, p`` (tonic's layout);
- ``.aedat``: AEDAT 2.0 (a DVS128, 128×128) or AEDAT 3.1 (:mod:`arlif.data.aedat`);
- ``.aedat4``: AEDAT 4, decoded by the optional ``aedat`` package (``pip install 'arlif[aedat4]'``).

``x`` is the column and ``y`` the row; ``p`` is 0/1 (or False/True, or -1/1: ``p > 0`` is channel 1).
The sensor size is the option ``sensor_size`` = (W, H), width first as tonic's ``sensor_size``, or else
what the recordings say. A sample is float32 ``[T, 2, H, W]`` (or ``size × size``), framed by
:mod:`arlif.data.framing` (``split_by`` number or time) and cached as the DVS benchmark sets are
(:class:`~arlif.data.dvs.EventFrames`).

Every recording is checked when the split is built: a recording not yet in the frame cache is read whole,
its fields and coordinates checked and its frames cached, so that a bad file stops the build (and ``arlif
train`` before it makes a run folder); later builds find the frames in the cache and read no events.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import CorruptRecording, DataError
from .aedat import AEDAT2_MAGIC, CONVENTIONS, check_aedat2, check_aedat31, read_aedat2, read_aedat31
from .dvs import EventFrames, EventSample
from .folders import cache_base, list_split
from .framing import SPLIT_BY
from .options import choice, positive_int
from .transforms import EVENT_AUGMENTS, event_augment

NAME = "events"
FIELDS = ("t", "x", "y", "p")
SUFFIXES = (".npz", ".npy", ".aedat", ".aedat4")
AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
AEDAT4_EXTRA = "pip install 'arlif[aedat4]' (or: pip install aedat)"
LAYOUT = (
    "<root>/train/<class>/<recording>   training recordings, one folder per class (any depth below it)\n"
    "<root>/test/<class>/<recording>    test recordings (or <root>/val/...), the same class names\n"
    "  a recording: .npz with arrays t, x, y, p; .npy with a structured array of fields t, x, y, p;\n"
    "  .aedat (AEDAT 2.0 or 3.1); .aedat4 (needs the aedat package). One format per class folder."
)
# sensors named in the "#Source" line of an AEDAT 3.1 header: (W, H)
AEDAT31_SENSORS = {"DVS128": (128, 128), "DAVIS240": (240, 180), "DAVIS346": (346, 260)}
_SOURCE = re.compile(rb"#Source \d+: *([A-Za-z]+\d+)")
_UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def _corrupt(path, problem: str) -> CorruptRecording:
    return CorruptRecording(f"{path}: {problem}", path, problem)


def _fields_error(path, present) -> DataError:
    missing = [f for f in FIELDS if f not in present]
    return DataError(
        f"{NAME}: the recording {path} lacks the field(s) {', '.join(missing)} (it has: "
        f"{', '.join(present) or 'nothing'}). A recording needs t (timestamps), x (column), y (row) and p "
        f"(polarity): an .npz with one array per field (np.savez(path, t=t, x=x, y=y, p=p)), or an .npy with "
        f"a structured array of these fields"
    )


def _aedat_module(path):
    try:
        import aedat
    except ImportError:
        raise DataError(
            f"{NAME}: {path} is an AEDAT 4 recording; reading it needs the optional package aedat: {AEDAT4_EXTRA}"
        ) from None
    return aedat


def _aedat4_decoder(path):
    aedat = _aedat_module(path)
    with open(path, "rb") as f:
        head = f.read(len(AEDAT4_MAGIC))
    if head != AEDAT4_MAGIC:
        raise _corrupt(path, f"not an AEDAT 4 file: it starts with {head!r}, expected {AEDAT4_MAGIC!r}")
    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
    # the decoder raises RuntimeError on a bad file and, on some truncated ones, a pyo3 PanicException, which
    # derives from BaseException only
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise _corrupt(path, f"AEDAT 4 file that does not decode ({exc})") from None
    ids = sorted(k for k, v in streams.items() if v.get("type") == "events")
    if not ids:
        raise _corrupt(path, "AEDAT 4 file without an event stream")
    return decoder, ids[0], streams[ids[0]]


def read_aedat4(path):
    """``(t, x, y, p)`` of the first event stream of an AEDAT 4 file, and its ``(W, H)``."""
    decoder, sid, stream = _aedat4_decoder(path)
    chunks = []
    try:
        for packet in decoder:
            if packet["stream_id"] == sid and "events" in packet:
                chunks.append(packet["events"])
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # as in _aedat4_decoder
        raise _corrupt(path, f"AEDAT 4 file whose packets do not decode ({exc})") from None
    if chunks:
        ev = np.concatenate(chunks)
        t, x, y, p = ev["t"].astype(np.int64), ev["x"], ev["y"], ev["on"].astype(np.uint8)
    else:
        t, x, y, p = np.zeros(0, np.int64), np.zeros(0, np.uint16), np.zeros(0, np.uint16), np.zeros(0, np.uint8)
    return (t, x, y, p), (int(stream["width"]), int(stream["height"]))


def _read_head(path, n: int = 4096) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise DataError(f"{NAME}: cannot read the recording {path} ({exc})") from None


def recorded_sensor(path: Path) -> tuple[int, int] | None:
    """``(W, H)`` as the recording states it, or ``None`` where it does not: an ``.npy``, an ``.npz`` without
    ``sensor_size``, an AEDAT 3.1 file from a sensor not in :data:`AEDAT31_SENSORS`. An unreadable file raises
    :class:`CorruptRecording`."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return tuple(int(v) for v in z["sensor_size"][:2]) if "sensor_size" in z.files else None
        except _UNREADABLE as exc:
            raise _corrupt(path, f"not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if suffix == ".aedat":
        head = _read_head(path)
        if head.startswith(AEDAT2_MAGIC):
            return (128, 128)  # the AEDAT 2.0 address layout of a DVS128
        m = _SOURCE.search(head)
        return AEDAT31_SENSORS.get(m.group(1).decode()) if m else None
    if suffix == ".aedat4":
        stream = _aedat4_decoder(path)[2]
        return int(stream["width"]), int(stream["height"])
    return None


def sensor_option(value, what: str = f"{NAME}: option sensor_size") -> tuple[int, int]:
    """``sensor_size`` = (W, H) or (W, H, 2) → (W, H); ``what`` names it in the error."""
    ok = isinstance(value, (list, tuple)) and len(value) in (2, 3)
    if ok:
        try:
            w, h = (positive_int(NAME, "sensor_size", v, "pixels") for v in value[:2])
        except DataError:
            ok = False
        ok = ok and (len(value) == 2 or value[2] == 2)
    if not ok:
        raise DataError(
            f"{what} must be [W, H] (width, height in pixels, as tonic's sensor_size; a third "
            f"entry, the polarities, must be 2), got {value!r}"
        )
    return w, h


class EventFolder(EventFrames):
    """One split of an event-recording folder: ``(frames float32 [T, 2, H, W], label int)``.

    Options: ``sensor_size`` ((W, H); default: what the recordings record, see :func:`recorded_sensor`),
    ``split_by`` (``number`` or ``time``, :func:`~arlif.data.framing.frame_index`), ``size`` (resize side),
    ``augment`` (``none``, ``flip``, ``dvsgesture``, ``cifar10dvs``: :func:`~arlif.data.transforms.event_augment`),
    ``convention`` (of AEDAT 2.0 coordinates, :func:`~arlif.data.read_aedat2`; default ``raw``), ``cache_dir``,
    ``cache``, ``skip_corrupt`` (as for the DVS benchmark sets).
    """

    name = NAME
    checks = "the events"  # what building a split reads of each recording not yet cached (arlif data info)

    def __init__(
        self,
        root,
        train: bool = True,
        T: int | None = None,
        sensor_size=None,
        split_by: str = "number",
        size: int | None = None,
        cache_dir=None,
        cache: bool = True,
        augment: str = "none",
        convention: str = "raw",
        skip_corrupt: bool = False,
    ):
        split_by = choice(NAME, "split_by", split_by, SPLIT_BY)
        augment = choice(NAME, "augment", augment, EVENT_AUGMENTS)
        self.convention = choice(NAME, "convention", convention, CONVENTIONS)
        folder, classes, files = list_split(NAME, root, train, SUFFIXES, LAYOUT)
        self._check_formats(folder, classes, files)
        w, h = sensor_option(sensor_size) if sensor_size is not None else self._recorded(folder, files)
        self.cache_tag = "-".join(t for t in ("time" if split_by == "time" else "", self._convention_tag()) if t)
        super().__init__(
            root, train, T, size, cache_base(root, cache_dir), cache, augment != "none", skip_corrupt,
            sensor=(h, w), split_by=split_by,
        )  # fmt: skip
        self.classes = classes
        self.in_channels = 2
        split = folder.name
        self._set_samples(
            [EventSample(path, f"{split}/{path.relative_to(folder).with_suffix('')}", label) for path, label in files]
        )
        self._check_recordings()
        if self.augment:
            self.transform = event_augment(augment, self.input_size)

    def _convention_tag(self) -> str:
        return "" if self.convention == "raw" else self.convention

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # -- layout ---------------------------------------------------------------------------------------
    @staticmethod
    def _check_formats(folder: Path, classes: list[str], files) -> None:
        kinds: dict[int, dict[str, Path]] = {}
        for path, label in files:
            kinds.setdefault(label, {}).setdefault(path.suffix.lower(), path)
        for label, found in kinds.items():
            if len(found) > 1:
                examples = ", ".join(f"{p.name} ({s})" for s, p in found.items())
                raise DataError(
                    f"{NAME}: the class folder {folder / classes[label]} mixes recording formats: {examples}. "
                    f"Convert its recordings to one format (e.g. all .npz), so that every sample of a class is "
                    f"read the same way"
                )

    @staticmethod
    def _recorded(folder: Path, files) -> tuple[int, int]:
        seen: dict[tuple[int, int], Path] = {}
        for path, _ in files:
            try:
                size = recorded_sensor(path)
            except CorruptRecording:
                continue  # reported with the other corrupt recordings when they are checked
            if size is None:
                raise DataError(
                    f"{NAME}: the recording {path} does not record its sensor size; give the dataset option "
                    f"sensor_size=[W, H] (width, height, as tonic's sensor_size), e.g. --dataset-options "
                    f"'{{sensor_size: [128, 128]}}'"
                )
            seen.setdefault(size, path)
        if len(seen) > 1:
            (a, pa), (b, pb) = list(seen.items())[:2]
            raise DataError(
                f"{NAME}: recordings of different sensor sizes in {folder}: {pa} is {a[0]}×{a[1]} (W×H), {pb} is "
                f"{b[0]}×{b[1]}. Give the dataset option sensor_size=[W, H] that holds all of them (and size=N to "
                f"resize the frames)"
            )
        if not seen:
            raise DataError(f"{NAME}: no recording in {folder} records its sensor size; give sensor_size=[W, H]")
        (size,) = seen
        return size

    # -- EventFrames interface ------------------------------------------------------------------------
    def recording_key(self, source: Path) -> str:
        return self._by_source[source][0].key

    def check_recording(self, source: Path) -> None:
        """Its header; then, unless all its frames are cached, its events (read whole, checked and cached)."""
        suffix = source.suffix.lower()
        if suffix == ".aedat" and _read_head(source, len(AEDAT2_MAGIC)).startswith(AEDAT2_MAGIC):
            check_aedat2(source)
        elif suffix == ".aedat":
            check_aedat31(source)
        elif suffix == ".aedat4":
            _aedat4_decoder(source)
        if self.cache is not None and all(self.is_cached(s) for s in self._by_source[source]):
            return
        self._frame_source(source, only=None)

    def read_events(self, source: Path):
        suffix = source.suffix.lower()
        if suffix == ".npz":
            t, x, y, p = self._read_npz(source)
        elif suffix == ".npy":
            t, x, y, p = self._read_npy(source)
        elif suffix == ".aedat4":
            (t, x, y, p), _ = read_aedat4(source)
        elif _read_head(source, len(AEDAT2_MAGIC)).startswith(AEDAT2_MAGIC):
            t, x, y, p = read_aedat2(source, convention=self.convention)
        else:
            t, x, y, p = read_aedat31(source)
        return self._checked(source, t, x, y, p)

    @staticmethod
    def _read_npz(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                if not set(FIELDS) <= set(z.files):
                    raise _fields_error(path, z.files)
                return tuple(z[f] for f in FIELDS)
        except _UNREADABLE as exc:
            raise _corrupt(path, f"not a readable .npz file ({type(exc).__name__}: {exc})") from None

    @staticmethod
    def _read_npy(path):
        try:
            a = np.load(path, allow_pickle=False)
        except _UNREADABLE as exc:
            raise _corrupt(path, f"not a readable .npy file ({type(exc).__name__}: {exc})") from None
        names = a.dtype.names or ()
        if not set(FIELDS) <= set(names):
            raise _fields_error(path, names)
        return tuple(a[f] for f in FIELDS)

    def _checked(self, path, t, x, y, p):
        return check_events(
            f"{NAME}: {path}", t, x, y, p, self.sensor, self.split_by,
            "Give the right sensor_size=[W, H] (width first, as tonic's sensor_size)",
        )  # fmt: skip


def check_events(where: str, t, x, y, p, sensor: tuple[int, int], split_by: str, sensor_fix: str):
    """The events ``t, x, y, p`` with ``p`` as 0/1, or a DataError starting with ``where`` (the dataset and the
    recording) that says what to change; ``sensor`` is (H, W) and ``sensor_fix`` how to give another."""
    arrays = dict(zip(FIELDS, (np.asarray(t), np.asarray(x), np.asarray(y), np.asarray(p))))
    n = arrays["x"].shape[0] if arrays["x"].ndim == 1 else -1
    if any(a.ndim != 1 or a.shape[0] != n for a in arrays.values()):
        shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        raise DataError(f"{where}: t, x, y, p must be 1-D arrays of one length, got {shapes}")
    for k in ("x", "y") + (("t",) if split_by == "time" else ()):
        if not np.issubdtype(arrays[k].dtype, np.integer):
            what = "timestamps (split_by=time needs them)" if k == "t" else "pixel coordinates"
            raise DataError(f"{where}: {k} must hold integer {what}, got {arrays[k].dtype}")
    x, y = arrays["x"], arrays["y"]
    H, W = sensor
    if n and (x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H):
        swapped = x.min() >= 0 and y.min() >= 0 and x.max() < H and y.max() < W
        raise DataError(
            f"{where}: event coordinates outside the sensor: x in [{x.min()}, {x.max()}], y in "
            f"[{y.min()}, {y.max()}], but the sensor is W={W} × H={H} (x < W is the column, y < H the row). "
            f"{sensor_fix}" + (f"; these events fit [{H}, {W}]: width and height swapped?" if swapped else "")
        )
    polarity = arrays["p"]
    if n and not np.isin(polarity, (-1, 0, 1)).all():
        raise DataError(
            f"{where}: p must be a polarity, 0/1, False/True or -1/1; found values {np.unique(polarity)[:5].tolist()}"
        )
    return arrays["t"], x, y, (polarity > 0).astype(np.uint8)
