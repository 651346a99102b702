"""Writers of tiny dataset files in exactly the real on-disk formats (docs/datasets.md), for the data tests."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10DVS_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


# --- CIFAR ----------------------------------------------------------------------------------------


def _batch(rng, n: int, classes: int, label_key: str, bytes_keys: bool):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, classes, size=n).tolist()
    d = {"data": data, label_key: labels, "batch_label": "generated"}
    if bytes_keys:
        d = {k.encode(): v for k, v in d.items()}
    return d, data, np.asarray(labels)


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar(root: Path, name: str = "cifar10", n: int = 4, bytes_keys: bool = True, seed: int = 0):
    """Write CIFAR-10 (5 train batches + test) or CIFAR-100 (train + test) with ``n`` images per batch.

    Returns ``{"train": (data [N, 3072], labels [N]), "test": (...), "names": [...]}``.
    """
    rng = np.random.default_rng(seed)
    if name == "cifar10":
        folder, train, test, meta, key, names_key, classes = (
            "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta",
            "labels", "label_names", 10,
        )  # fmt: skip
    else:
        folder, train, test, meta, key, names_key, classes = (
            "cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names", 100,
        )  # fmt: skip
    out = Path(root) / folder
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    for split, files in (("train", train), ("test", test)):
        datas, labels = [], []
        for fname in files:
            d, data, y = _batch(rng, n, classes, key, bytes_keys)
            _dump(out / fname, d)
            datas.append(data)
            labels.append(y)
        result[split] = (np.concatenate(datas), np.concatenate(labels))
    names = [f"class{i}" for i in range(classes)]
    m = {names_key: [s.encode() for s in names] if bytes_keys else names}
    if bytes_keys:
        m = {k.encode(): v for k, v in m.items()}
    _dump(out / meta, m)
    result["names"] = names
    return result


# --- Tiny-ImageNet --------------------------------------------------------------------------------


def _jpeg(path: Path, rng, gray: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gray:
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), mode="L").save(path, "JPEG")
    else:
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), mode="RGB").save(path, "JPEG")


def write_tinyimagenet(root: Path, wnids=("n02", "n01", "n03"), per_class: int = 2, seed: int = 0) -> dict:
    """A ``tiny-imagenet-200`` tree: ``wnids`` (written unsorted), ``per_class`` training JPEGs per class
    (the first one of the first class is grayscale) and one grayscale plus ``len(wnids)`` RGB validation
    images. Returns ``{"val": [(file, wnid), ...], "gray_train": path, "gray_val": path}``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "tiny-imagenet-200"
    base.mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    gray_train = None
    for c, wnid in enumerate(wnids):
        for i in range(per_class):
            path = base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG"
            gray = c == 0 and i == 0
            _jpeg(path, rng, gray)
            gray_train = path if gray else gray_train
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    val = [(f"val_{i}.JPEG", wnid) for i, wnid in enumerate(wnids)] + [(f"val_{len(wnids)}.JPEG", wnids[0])]
    lines = []
    for i, (fname, wnid) in enumerate(val):
        _jpeg(base / "val" / "images" / fname, rng, gray=i == len(val) - 1)
        lines.append(f"{fname}\t{wnid}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return {"val": val, "gray_train": gray_train, "gray_val": base / "val" / "images" / val[-1][0]}


# --- AEDAT 2.0 (CIFAR10-DVS) ----------------------------------------------------------------------

AEDAT2_HEADER = (
    b"#!AER-DAT2.0\r\n"
    b"# This is a raw AE data file - do not edit\r\n"
    b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
    b"# Timestamps tick is 1 us\r\n"
    b"# created Thu Jan 01 00:00:00 CET 2015\r\n"
)


def aedat2_bytes(t, x_raw, y_raw, p_raw, header: bytes = AEDAT2_HEADER, extra_bits=None) -> bytes:
    """Header + big-endian (uint32 address, int32 timestamp) events; ``extra_bits`` are ORed into the
    address bits a reader must ignore (bit 15 and up)."""
    u32 = np.uint32
    a = (np.asarray(y_raw, u32) << 8) | (np.asarray(x_raw, u32) << 1) | np.asarray(p_raw, u32)
    if extra_bits is not None:
        a = a | np.asarray(extra_bits, np.uint32)
    ev = np.empty(len(a), dtype=[("a", ">u4"), ("t", ">i4")])
    ev["a"] = a
    ev["t"] = np.asarray(t, np.int64)
    return header + ev.tobytes()


def sj_to_raw(x, y, p):
    """Raw sensor fields that the SpikingJelly convention maps to ``(x, y, p)``."""
    return 127 - np.asarray(y), 127 - np.asarray(x), 1 - np.asarray(p)


def random_events(rng, n: int, t0: int = 0, size: int = 128):
    """``n`` events, increasing timestamps from ``t0``: (t int64, x, y, p) with x, y < ``size``."""
    t = t0 + np.cumsum(rng.integers(0, 50, n)).astype(np.int64)
    return t, rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n)


def write_aedat2(path: Path, t, x, y, p) -> None:
    """Write events given in the SpikingJelly convention (what :func:`read_aedat2` should return)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(aedat2_bytes(t, *sj_to_raw(x, y, p)))


def write_cifar10dvs(root: Path, indices=(0, 2, 10, 100, 101), n_events: int = 12, seed: int = 0) -> dict:
    """``<class>/cifar10_<class>_<i>.aedat`` for every class and every ``i`` in ``indices``.
    Returns ``{(class, i): (t, x, y, p)}``."""
    rng = np.random.default_rng(seed)
    events = {}
    for cls in CIFAR10DVS_CLASSES:
        for i in indices:
            ev = random_events(rng, n_events + i % 7)
            write_aedat2(Path(root) / cls / f"cifar10_{cls}_{i}.aedat", *ev)
            events[(cls, i)] = ev
    return events


# --- AEDAT 3.1 (DVS128 Gesture) -------------------------------------------------------------------

AEDAT31_HEADER = (
    b"#!AER-DAT3.1\r\n"
    b"#Format: RAW\r\n"
    b"#Source 1: DVS128\r\n"
    b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n"
    b"#!END-HEADER\r\n"
)


def packet(type_: int, body: bytes, size: int, number: int, capacity: int | None = None, overflow: int = 0,
           ts_offset: int = 4) -> bytes:  # fmt: skip
    capacity = number if capacity is None else capacity
    body = body + b"\0" * (size * capacity - len(body))
    return struct.pack("<hhiiiiii", type_, 1, size, ts_offset, overflow, capacity, number, number) + body


def polarity_packet(ts, x, y, p, overflow: int = 0, capacity: int | None = None) -> bytes:
    """A type-1 packet; ``ts`` are the low 31 bits (the full time is ``ts | overflow << 31``)."""
    u32 = np.uint32
    # bit 0 is the validity mark, set on every event as cAER writes them
    data = (np.asarray(x, u32) << 17) | (np.asarray(y, u32) << 2) | (np.asarray(p, u32) << 1) | 1
    ev = np.empty(len(data), dtype=[("d", "<u4"), ("t", "<i4")])
    ev["d"] = data
    ev["t"] = np.asarray(ts, np.int64)
    return packet(1, ev.tobytes(), 8, len(data), capacity, overflow)


def special_packet(n: int = 3) -> bytes:
    """A non-polarity packet (type 0, special events) that readers must skip."""
    return packet(0, (np.arange(n, dtype="<u4") * 0x1F).tobytes() + b"\0" * (4 * n), 8, n)


def imu_packet(n: int = 2) -> bytes:
    """A non-polarity packet with 36-byte events (type 5, IMU 6-axis)."""
    return packet(5, bytes(range(36)) * n, 36, n)


def write_aedat31(path: Path, packets: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(AEDAT31_HEADER + b"".join(packets))


def write_gesture(root: Path, seed: int = 0) -> dict:
    """Three trials (two train, one test) with 2-3 labelled windows each, events inside and outside the
    windows, a special-event packet and a timestamp overflow in one trial.

    Returns ``{"train": [(trial, label 0..10, (start, end)), ...], "test": [...],
    "events": {trial: (t, x, y, p)}}``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    trials = {
        "user01_fluorescent": [(1, 1_000, 2_000), (11, 2_500, 4_000), (5, 4_000, 4_600)],
        "user02_led": [(3, 100, 900), (8, 1_000, 1_500)],
        "user03_natural": [(2, 2_147_483_000, 2_147_485_000), (4, 2_147_485_000, 2_147_486_000)],
    }
    events = {}
    for trial, rows in trials.items():
        lo, hi = rows[0][1] - 300, rows[-1][2] + 300
        n = 60
        t = np.sort(rng.integers(lo, hi, n)).astype(np.int64)
        x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
        # split the stream into packets at the 2^31 µs boundary, each packet carrying its overflow count
        packets = [special_packet()]
        for k in (0, 1):
            sel = (t >> 31) == k
            if sel.any():
                packets.append(polarity_packet(t[sel] & 0x7FFFFFFF, x[sel], y[sel], p[sel], overflow=k))
                packets.append(imu_packet())
        write_aedat31(root / f"{trial}.aedat", packets)
        csv = "class,startTime_usec,endTime_usec\r\n" + "".join(f"{c},{s},{e}\r\n" for c, s, e in rows)
        (root / f"{trial}_labels.csv").write_text(csv, newline="")
        events[trial] = (t, x, y, p)
    (root / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_led.aedat\n")
    (root / "trials_to_test.txt").write_text("user03_natural.aedat\n\n")
    out = {"events": events}
    for split, names in (("train", ["user01_fluorescent", "user02_led"]), ("test", ["user03_natural"])):
        out[split] = [(tr, c - 1, (s, e)) for tr in names for c, s, e in trials[tr]]
    return out


# --- your own images and event recordings --------------------------------------------------------


def write_image_folder(root: Path, classes=("cat", "ant", "bee"), counts=(("train", 3), ("test", 2)),
                       size=(16, 16), seed: int = 0) -> dict:  # fmt: skip
    """``<root>/<split>/<class>/<i>.png`` RGB images of ``size`` (H, W), random pixels. Returns
    ``{split: [(path, class), ...]}`` in file order."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in counts:
        out[split] = []
        for cls in classes:
            folder = Path(root) / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                path = folder / f"{i}.png"
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8), mode="RGB").save(path)
                out[split].append((path, cls))
    return out


def write_recording(path: Path, t, x, y, p, sensor_size=None) -> Path:
    """One event recording in the format its suffix names: ``.npz`` (arrays t, x, y, p and, if given,
    ``sensor_size``), ``.npy`` (a structured array, tonic's dtype), ``.aedat`` (AEDAT 2.0, raw fields),
    ``.aedat3`` (written as ``.aedat``, AEDAT 3.1 from a DVS128) or ``.aedat4``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.asarray(t, np.int64)
    if path.suffix == ".npz":
        extra = {} if sensor_size is None else {"sensor_size": np.asarray(sensor_size)}
        np.savez(path, t=t, x=np.asarray(x, np.int16), y=np.asarray(y, np.int16), p=np.asarray(p, np.uint8), **extra)
    elif path.suffix == ".npy":
        ev = np.zeros(len(t), dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
        ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, np.asarray(p) > 0
        np.save(path, ev)
    elif path.suffix == ".aedat":
        path.write_bytes(aedat2_bytes(t, x, y, p))
    elif path.suffix == ".aedat3":
        path = path.with_suffix(".aedat")
        write_aedat31(path, [polarity_packet(t, x, y, p)])
    elif path.suffix == ".aedat4":
        path.write_bytes(aedat4_bytes(t, x, y, p, sensor_size or (128, 128)))
    else:
        raise ValueError(path.suffix)
    return path


def _flatbuffer_table(identifier: bytes, payload: bytes, n_fields: int, field: int) -> bytes:
    """A flatbuffer whose root table has one offset field (number ``field`` of ``n_fields``) pointing just
    past the table, followed by ``payload`` (the vector or string it points to).

    Layout: root uoffset (4) | identifier (4) | vtable | padding | table: soffset (4), uoffset (4) | payload.
    The payload starts at a position that is 4 mod 8, so a vector of 8-aligned structs after its 4-byte length
    is aligned."""
    vtable = struct.pack("<HH", 4 + 2 * n_fields, 8) + b"".join(
        struct.pack("<H", 4 if i == field else 0) for i in range(n_fields)
    )
    vt_pos = 8
    table_pos = vt_pos + len(vtable)
    table_pos += (-table_pos) % 4
    payload_pos = table_pos + 8
    pad = (4 - payload_pos) % 8
    payload_pos += pad
    out = struct.pack("<I", table_pos) + identifier + vtable + b"\0" * (table_pos - vt_pos - len(vtable))
    out += struct.pack("<iI", table_pos - vt_pos, payload_pos - (table_pos + 4)) + b"\0" * pad
    return out + payload


def aedat4_bytes(t, x, y, p, sensor_size=(128, 128)) -> bytes:
    """An uncompressed AEDAT 4 file with one event stream (id 0) of ``sensor_size`` (W, H) and one packet.

    File: magic, uint32 length + IOHeader flatbuffer (its description: the XML naming the stream), then
    packets of uint32 stream id, uint32 length, size-prefixed EventPacket flatbuffer (identifier EVTS, a
    vector of 16-byte structs: int64 t, int16 x, int16 y, bool on, padding)."""
    w, h = sensor_size
    xml = (
        '<dv version="2.0"><node name="outInfo" path="/outInfo/"><node name="0" path="/outInfo/0/">'
        '<attr key="typeIdentifier" type="string">EVTS</attr><node name="info" path="/outInfo/0/info/">'
        f'<attr key="sizeX" type="int">{w}</attr><attr key="sizeY" type="int">{h}</attr>'
        "</node></node></node></dv>"
    ).encode()
    string = struct.pack("<I", len(xml)) + xml + b"\0"
    header = _flatbuffer_table(b"IOHE", string, 3, 2)  # compression and data position left at their defaults
    ev = np.zeros(len(t), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
    ev["t"], ev["x"], ev["y"], ev["on"] = t, x, y, np.asarray(p) > 0
    body = _flatbuffer_table(b"EVTS", struct.pack("<I", len(ev)) + ev.tobytes(), 1, 0)
    packet = struct.pack("<I", len(body)) + body  # size prefix
    return b"#!AER-DAT4.0\r\n" + struct.pack("<I", len(header)) + header + struct.pack("<II", 0, len(packet)) + packet


def write_event_folder(root: Path, classes=("left", "right"), counts=(("train", 2), ("test", 1)), sensor=(20, 12),
                       n: int = 40, suffix: str = ".npz", seed: int = 0) -> dict:  # fmt: skip
    """``<root>/<split>/<class>/r<i><suffix>`` recordings of ``n`` random events on a ``sensor`` (W, H),
    time-sorted; ``.npz`` files record ``sensor_size``. Returns ``{split: [(path, class, (t, x, y, p))]}``."""
    rng = np.random.default_rng(seed)
    w, h = sensor
    out = {}
    for split, k in counts:
        out[split] = []
        for cls in classes:
            for i in range(k):
                ev = (np.sort(rng.integers(0, 10_000, n)), rng.integers(0, w, n), rng.integers(0, h, n),
                      rng.integers(0, 2, n))  # fmt: skip
                path = write_recording(Path(root) / split / cls / f"r{i}{suffix}", *ev, sensor_size=sensor)
                out[split].append((path, cls, ev))
    return out


# --- tonic's interface and N-MNIST ------------------------------------------------------------------

TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])  # tonic's dtype for DVS events


def tonic_events(rng, n: int, sensor=(20, 12)) -> np.ndarray:
    """``n`` random events on a ``sensor`` (W, H) as tonic gives them: a structured array, time-sorted."""
    ev = np.zeros(n, dtype=TONIC_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 10_000, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, sensor[0], n), rng.integers(0, sensor[1], n), rng.integers(0, 2, n)
    return ev


class TonicLike:
    """A dataset with tonic's interface, as tonic's own datasets have it: ``sensor_size`` (W, H, P), ``classes``,
    ``len()`` and items ``(events, target)``, ``transform`` applied to the events. Item ``i`` has ``n_events + i``
    events and class ``i % len(classes)``; ``reads`` counts the items read."""

    def __init__(self, n=6, classes=("left", "right"), sensor=(20, 12), n_events=40, transform=None, seed=0):
        rng = np.random.default_rng(seed)
        self.sensor_size = (*sensor, 2)
        self.classes = list(classes)
        self.transform = transform
        self.items = [(tonic_events(rng, n_events + i, sensor), i % len(classes)) for i in range(n)]
        self.reads = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        events, target = self.items[i]
        return (events if self.transform is None else self.transform(events.copy())), target


def write_nmnist_bin(path: Path, t, x, y, p) -> Path:
    """One N-MNIST recording: 5 bytes per event, x, y, then polarity (bit 23) and a 23-bit timestamp, big-endian,
    as tonic's ``read_mnist_file`` reads them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t, p = np.asarray(t, np.uint32), np.asarray(p, np.uint32)
    word = (p << 23) | (t & 0x7FFFFF)
    raw = np.stack([np.asarray(x), np.asarray(y), word >> 16, (word >> 8) & 0xFF, word & 0xFF], axis=1)
    path.write_bytes(raw.astype(np.uint8).tobytes())
    return path


def write_nmnist(save_to: Path, per_class=(("Train", 2), ("Test", 1)), digits=(0, 1), n: int = 400, seed: int = 0):
    """``<save_to>/NMNIST/{Train,Test}/<digit>/<i>.bin``, as tonic's NMNIST unpacks them (its download check, for
    10,000 files, is the caller's to skip). The ``n`` events of a recording fall in an 8×8 patch of the 34×34
    sensor that depends on the digit, within 0.3 s, dense enough for tonic's Denoise to keep most of them.
    Returns ``{folder: [(path, digit, (t, x, y, p))]}``."""
    rng = np.random.default_rng(seed)
    out = {}
    for folder, k in per_class:
        out[folder] = []
        for d in digits:
            corner = 2 + 3 * d
            for i in range(k):
                ev = (np.sort(rng.integers(0, 300_000, n)), corner + rng.integers(0, 8, n),
                      corner + rng.integers(0, 8, n), rng.integers(0, 2, n))  # fmt: skip
                path = write_nmnist_bin(Path(save_to) / "NMNIST" / folder / str(d) / f"{i:05d}.bin", *ev)
                out[folder].append((path, d, ev))
    return out
