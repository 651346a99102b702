"""Our event readers, framing and dataset splits against SpikingJelly 2.x's, on small files written here.

- ``read_aedat2`` (CIFAR10-DVS) against the reader of SpikingJelly's CIFAR10-DVS loader,
  ``read_aedat31`` (DVS128 Gesture) against ``datasets.utils.load_aedat_v3``,
  ``events_to_frames`` against ``integrate_events_by_fixed_frames_number(..., "number" / "time", ...)``;
- our ``CIFAR10DVS`` and ``DVSGesture`` datasets, frame by frame, against SpikingJelly's whole pipeline
  (its aedat → npz conversion, frame builder and dataset classes) on the same recordings.

The known differences are asserted here, each library's behaviour on its own, and explained in
docs/spikingjelly.md: AEDAT 2.0 timestamps (int32 for us, uint32 for SpikingJelly), AEDAT 3.1 packets with
spare capacity (we read ``number`` events, SpikingJelly ``capacity`` slots), the CIFAR10-DVS ``first90``
split (we round 0.9·n down, SpikingJelly up) and SpikingJelly's DVS128 Gesture targets (folder names in
string order, so they are a permutation of the gesture classes).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from formats import (
    AEDAT31_HEADER,
    CIFAR10DVS_CLASSES,
    aedat2_bytes,
    imu_packet,
    polarity_packet,
    random_events,
    special_packet,
    write_aedat31,
    write_cifar10dvs,
)
from sj_support import import_datasets, require_spikingjelly

from arlif.data import CIFAR10DVS, DVSGesture, events_to_frames, read_aedat2, read_aedat31

require_spikingjelly()
try:
    sjd = import_datasets()
except ImportError as exc:  # e.g. torchvision or tqdm missing: then SpikingJelly's dataset modules cannot load
    pytest.skip(f"SpikingJelly's dataset modules cannot be imported: {exc}", allow_module_level=True)


def _sj_aedat2(path):
    """SpikingJelly's CIFAR10-DVS reader (what its loader stores in events_np/)."""
    return sjd.cifar10_dvs._load_origin_data(path)


def _sj_aedat2_raw(path):
    """The same reader's fields before its coordinate convention (the masks its CIFAR10-DVS reader uses)."""
    with open(path, "rb") as fp:
        return sjd.cifar10_dvs._load_events(
            fp, x_mask=0xFE, x_shift=1, y_mask=0x7F00, y_shift=8, polarity_mask=1, polarity_shift=None
        )


def _assert_events_equal(ours, theirs: dict):
    for name, a in zip("txyp", ours):
        b = np.asarray(theirs[name])
        assert a.shape == b.shape, f"{name}: {a.shape} vs {b.shape}"
        assert np.array_equal(a.astype(np.int64), b.astype(np.int64)), f"{name} differs"


# --- AEDAT 2.0 (CIFAR10-DVS) -------------------------------------------------------------------------


def test_aedat2_reader_matches_spikingjelly(tmp_path):
    rng = np.random.default_rng(1)
    t, x_raw, y_raw, p_raw = random_events(rng, 500)
    # address bits 15..31 (unused on a DVS128) set at random: both readers must ignore them
    extra = (rng.integers(0, 2**17, 500).astype(np.uint64) << 15).astype(np.uint32)
    path = tmp_path / "rec.aedat"
    path.write_bytes(aedat2_bytes(t, x_raw, y_raw, p_raw, extra_bits=extra))
    ours = read_aedat2(path)
    _assert_events_equal(ours, _sj_aedat2(path))
    assert float(ours[3].mean()) not in (0.0, 1.0)


def test_aedat2_coordinate_convention_is_spikingjellys(tmp_path):
    """x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw: our default convention is what SpikingJelly's
    CIFAR10-DVS reader produces; our ``convention="raw"`` is its fields before the flips."""
    rng = np.random.default_rng(2)
    _, x_raw, y_raw, p_raw = random_events(rng, 300)
    t = np.arange(300, dtype=np.int64) * 3
    # the corners too, where a flip of the wrong axis shows at once
    x_raw[:4], y_raw[:4], p_raw[:4] = [0, 127, 0, 127], [0, 0, 127, 127], [0, 1, 0, 1]
    path = tmp_path / "rec.aedat"
    path.write_bytes(aedat2_bytes(t, x_raw, y_raw, p_raw))
    _, xr, yr, pr = read_aedat2(path, convention="raw")
    t_sj, x_sj, y_sj, p_sj = _sj_aedat2_raw(path)
    assert np.array_equal(xr, x_sj) and np.array_equal(yr, y_sj) and np.array_equal(pr, p_sj.astype(int))
    assert np.array_equal(xr, x_raw) and np.array_equal(yr, y_raw) and np.array_equal(pr, p_raw)
    sj = _sj_aedat2(path)
    _, x, y, p = read_aedat2(path)
    assert np.array_equal(sj["x"], 127 - y_raw) and np.array_equal(sj["y"], 127 - x_raw)
    assert np.array_equal(sj["p"], 1 - p_raw)
    _assert_events_equal((t, x, y, p), sj)


def test_aedat2_timestamps_int32_ours_uint32_spikingjellys(tmp_path):
    """Documented difference: the format stores a signed int32 timestamp and we read it so; SpikingJelly
    reads the same 4 bytes as uint32. Negative stamps (which jAER writes after a timestamp reset or wrap)
    come back negative from us and as values >= 2^31 from SpikingJelly: the same 32 bits."""
    t = np.array([-5, 0, 7, 2**31 - 1, -(2**31), -1], dtype=np.int64)
    path = tmp_path / "rec.aedat"
    path.write_bytes(aedat2_bytes(t, np.arange(6), np.arange(6), np.zeros(6, int)))
    ours_t = read_aedat2(path)[0]
    sj_t = _sj_aedat2(path)["t"]
    assert ours_t.tolist() == t.tolist()
    assert sj_t.dtype.kind == "u" and sj_t.dtype.itemsize == 4  # big-endian uint32, as in the file
    assert sj_t.tolist() == [2**32 - 5, 0, 7, 2**31 - 1, 2**31, 2**32 - 1]
    assert np.array_equal(sj_t.astype(np.uint32).view(np.int32), ours_t.astype(np.int32))


def test_aedat2_header_only_file(tmp_path):
    path = tmp_path / "empty.aedat"
    path.write_bytes(aedat2_bytes([], [], [], []))
    ours = read_aedat2(path)
    assert all(a.size == 0 for a in ours)
    _assert_events_equal(ours, _sj_aedat2(path))


# --- AEDAT 3.1 (DVS128 Gesture) ----------------------------------------------------------------------


def _gesture_packets(t, x, y, p):
    """Polarity packets split at the 2^31 µs boundary (each with its overflow count), with a special-event
    and a 36-byte IMU packet that readers must skip."""
    packets = [special_packet()]
    for k in (0, 1):
        sel = (t >> 31) == k
        if sel.any():
            packets += [polarity_packet(t[sel] & 0x7FFFFFFF, x[sel], y[sel], p[sel], overflow=k), imu_packet()]
    return packets


def test_aedat31_reader_matches_load_aedat_v3(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    t = np.sort(rng.integers(2**31 - 5_000, 2**31 + 5_000, n)).astype(np.int64)
    x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    path = tmp_path / "trial.aedat"
    write_aedat31(path, _gesture_packets(t, x, y, p))
    ours = read_aedat31(path)
    assert np.array_equal(ours[0], t) and (t >= 2**31).any() and (t < 2**31).any()
    _assert_events_equal(ours, sjd.utils.load_aedat_v3(path))


def test_aedat31_spare_capacity_ours_number_spikingjellys_capacity(tmp_path):
    """Documented difference: a packet's ``number`` is how many events it holds and ``capacity`` how many
    slots its body has. We read ``number`` events; SpikingJelly reads every slot, so the unused ones come
    back as events at pixel (0, 0), polarity 0, time ``tsOverflow << 31`` (their bytes are zero here)."""
    rng = np.random.default_rng(4)
    n, spare = 20, 3
    t = np.sort(rng.integers(0, 10_000, n)).astype(np.int64)
    x, y, p = rng.integers(1, 128, n), rng.integers(1, 128, n), rng.integers(0, 2, n)
    path = tmp_path / "trial.aedat"
    write_aedat31(path, [polarity_packet(t, x, y, p, overflow=1, capacity=n + spare), imu_packet()])
    ours = read_aedat31(path)
    sj = sjd.utils.load_aedat_v3(path)
    assert len(ours[0]) == n and len(sj["t"]) == n + spare
    _assert_events_equal(ours, {k: v[:n] for k, v in sj.items()})
    assert ours[0].tolist() == (t + 2**31).tolist()
    for k, ghost in (("t", 2**31), ("x", 0), ("y", 0), ("p", 0)):
        assert sj[k][n:].tolist() == [ghost] * spare


def test_aedat31_header_only_file(tmp_path):
    path = tmp_path / "empty.aedat"
    path.write_bytes(AEDAT31_HEADER)
    ours = read_aedat31(path)
    assert all(a.size == 0 for a in ours)
    _assert_events_equal(ours, sjd.utils.load_aedat_v3(path))


# --- framing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 4, 7])
@pytest.mark.parametrize("n", [0, 3, 17, 64, 101])
def test_split_by_number_matches_spikingjelly(n, T):
    """Including N < T (every event in the last frame) and N mod T != 0 (the remainder goes to the last
    frame), on a non-square frame so that swapped x/y would show."""
    rng = np.random.default_rng(n * 10 + T)
    H, W = 5, 7
    t = np.sort(rng.integers(0, 1000, n)).astype(np.int64)
    x, y, p = rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n)
    ours = events_to_frames(t, x, y, p, T, H, W)
    theirs = sjd.utils.integrate_events_by_fixed_frames_number({"t": t, "x": x, "y": y, "p": p}, "number", T, H, W)
    assert ours.shape == theirs.shape == (T, 2, H, W)
    assert np.array_equal(ours, theirs)
    assert ours.sum() == n


@pytest.mark.parametrize("T", [1, 3, 8])
@pytest.mark.parametrize("n", [20, 64, 101])
def test_split_by_time_matches_spikingjelly(n, T):
    """Time-sorted events whose span is not a multiple of T (the last frame takes the rest), with no empty
    window (SpikingJelly fails on one: it indexes the first event of every window)."""
    rng = np.random.default_rng(n * 10 + T)
    H, W = 5, 7
    t = np.sort(np.concatenate([np.arange(0, 1000, 1000 // (2 * T)), rng.integers(0, 1003, n)])).astype(np.int64)
    x, y, p = rng.integers(0, W, t.size), rng.integers(0, H, t.size), rng.integers(0, 2, t.size)
    ours = events_to_frames(t, x, y, p, T, H, W, split_by="time")
    theirs = sjd.utils.integrate_events_by_fixed_frames_number({"t": t, "x": x, "y": y, "p": p}, "time", T, H, W)
    assert np.array_equal(ours, theirs) and ours.sum() == t.size


# --- CIFAR10-DVS: our dataset against SpikingJelly's pipeline ----------------------------------------

# 12 files per class: 0.9 · 12 = 10.8, which floor and ceil round differently; string order puts 10, 100,
# 101 and 11 before 2, so the split is not the numeric one
CIFAR_INDICES = (0, 1, 2, 3, 10, 11, 99, 100, 101, 555, 998, 999)
CIFAR_T = 4


@pytest.fixture(scope="module")
def cifar_pair(tmp_path_factory):
    """``(our root, SpikingJelly's root)``: the same recordings, SpikingJelly's tree built by its own code
    (aedat → events_np/ → frames_number_4_split_by_number/)."""
    ours = tmp_path_factory.mktemp("c10dvs_ours")
    write_cifar10dvs(ours, indices=CIFAR_INDICES, n_events=25)
    theirs = tmp_path_factory.mktemp("c10dvs_sj")
    (theirs / "events_np").mkdir()
    # what SpikingJelly runs on the extracted archives; ``ours`` has exactly their layout
    sjd.cifar10_dvs.CIFAR10DVS.create_raw_from_extracted(ours, theirs / "events_np")
    return ours, theirs


@pytest.fixture(scope="module")
def sj_cifar_all(cifar_pair):
    """SpikingJelly's CIFAR10DVS (all samples, no split) with frames split by number."""
    return sjd.cifar10_dvs.CIFAR10DVS(cifar_pair[1], data_type="frame", frames_number=CIFAR_T, split_by="number")


@pytest.fixture(scope="module")
def sj_cifar_tebn(cifar_pair, sj_cifar_all):
    """SpikingJelly's CIFAR10DVSTEBNSplit (files 0-99 test, 100-999 train). It links all 1000 names per
    class whether the file exists or not; only the existing ones are samples of our small tree."""
    out = {}
    for train in (True, False):
        ds = sjd.cifar10_dvs.CIFAR10DVSTEBNSplit(
            cifar_pair[1], train=train, data_type="frame", frames_number=CIFAR_T, split_by="number"
        )
        out[train] = [(Path(p).stem, label) for p, label in ds.samples if Path(p).exists()]
    return out


def _ours_cifar(root, train, split):
    return CIFAR10DVS(root, train=train, T=CIFAR_T, split=split, size=None, cache=False, augment=False)


def test_cifar10dvs_frames_and_labels_match_spikingjelly(cifar_pair, sj_cifar_all):
    theirs = {Path(p).stem: (i, label) for i, (p, label) in enumerate(sj_cifar_all.samples)}
    assert len(theirs) == 10 * len(CIFAR_INDICES)
    assert sj_cifar_all.classes == list(CIFAR10DVS_CLASSES)
    seen = 0
    for train in (True, False):
        ours = _ours_cifar(cifar_pair[0], train, "reference")
        for i, sample in enumerate(ours.samples):
            j, label = theirs[sample.source.stem]
            frames, sj_label = sj_cifar_all[j]
            assert sample.label == label == sj_label
            ours_frames, ours_label = ours[i]
            assert ours_label == label
            assert np.array_equal(ours_frames.numpy(), np.asarray(frames)), sample.source.stem
            seen += 1
    assert seen == len(theirs)


def test_cifar10dvs_reference_split_is_spikingjellys_tebn_split(cifar_pair, sj_cifar_tebn):
    for train in (True, False):
        ours = [(s.source.stem, s.label) for s in _ours_cifar(cifar_pair[0], train, "reference").samples]
        assert sorted(ours) == sorted(sj_cifar_tebn[train])
    assert len(sj_cifar_tebn[True]) == 10 * sum(i >= 100 for i in CIFAR_INDICES)


def test_cifar10dvs_first90_rounds_down_spikingjelly_rounds_up(cifar_pair, sj_cifar_all):
    """Documented difference: with n files in a class, our ``first90`` trains on floor(0.9·n) of them and
    SpikingJelly's ``split_to_train_test_set(0.9, ...)`` on ceil(0.9·n). Both take the first ones in
    file-name (string) order. The full dataset (n = 1000) gives 900 either way."""
    n = len(CIFAR_INDICES)
    assert n * 9 // 10 == 10 and math.ceil(0.9 * n) == 11
    sj_train, sj_test = sjd.utils.split_to_train_test_set(0.9, sj_cifar_all, 10)
    stems = [Path(p).stem for p, _ in sj_cifar_all.samples]
    sj = {True: [stems[i] for i in sj_train.indices], False: [stems[i] for i in sj_test.indices]}
    ours = {t: [s.source.stem for s in _ours_cifar(cifar_pair[0], t, "first90").samples] for t in (True, False)}
    assert (len(ours[True]), len(ours[False])) == (100, 20)
    assert (len(sj[True]), len(sj[False])) == (110, 10)
    for cls in CIFAR10DVS_CLASSES:
        names = sorted(f"cifar10_{cls}_{i}" for i in CIFAR_INDICES)  # string order
        assert names[4] == f"cifar10_{cls}_101" and names[5] == f"cifar10_{cls}_11"
        assert [s for s in ours[True] if f"_{cls}_" in s] == names[:10]
        assert [s for s in ours[False] if f"_{cls}_" in s] == names[10:]
        assert [s for s in sj[True] if f"_{cls}_" in s] == names[:11]
        assert [s for s in sj[False] if f"_{cls}_" in s] == names[11:]


# --- DVS128 Gesture: our dataset against SpikingJelly's pipeline --------------------------------------

GESTURE_T = 5


def _write_gesture_tree(folder: Path, seed: int = 5) -> None:
    """Two trials (train, test), each with one window of every class 1..11 and a second window of class 3
    (SpikingJelly numbers repeated classes per trial). Windows are half-open [start, end) and the windows
    of a trial touch, with events on the shared bounds; the test trial crosses the 2^31 µs overflow."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for trial, t0 in (("user01_led", 10_000), ("user02_natural", 2**31 - 3_000)):
        classes = [*range(1, 12), 3]
        rng.shuffle(classes)
        bounds = t0 + 500 * np.arange(len(classes) + 1)
        rows = [(c, int(bounds[k]), int(bounds[k + 1])) for k, c in enumerate(classes)]
        t = np.sort(np.concatenate([rng.integers(t0 - 200, bounds[-1] + 200, 400), bounds])).astype(np.int64)
        x, y, p = rng.integers(0, 128, t.size), rng.integers(0, 128, t.size), rng.integers(0, 2, t.size)
        write_aedat31(folder / f"{trial}.aedat", _gesture_packets(t, x, y, p))
        csv = "class,startTime_usec,endTime_usec\r\n" + "".join(f"{c},{s},{e}\r\n" for c, s, e in rows)
        (folder / f"{trial}_labels.csv").write_text(csv, newline="")
    (folder / "trials_to_train.txt").write_text("user01_led.aedat\n")
    (folder / "trials_to_test.txt").write_text("user02_natural.aedat\n")


@pytest.fixture(scope="module")
def gesture_pair(tmp_path_factory):
    """``(our root, SpikingJelly's train and test datasets)`` on the same recordings (T = 5 frames)."""
    ours = tmp_path_factory.mktemp("gesture_ours")
    _write_gesture_tree(ours / "DvsGesture")
    theirs = tmp_path_factory.mktemp("gesture_sj")
    (theirs / "events_np").mkdir()
    sjd.dvs128_gesture.DVS128Gesture.create_raw_from_extracted(ours, theirs / "events_np")
    sj = {
        train: sjd.dvs128_gesture.DVS128Gesture(
            theirs, train=train, data_type="frame", frames_number=GESTURE_T, split_by="number"
        )
        for train in (True, False)
    }
    return ours, sj


def test_dvsgesture_frames_match_spikingjelly(gesture_pair):
    """Sample by sample: the events of each labelled window, framed, are the same counts in both."""
    root, sj = gesture_pair
    for train in (True, False):
        ours = DVSGesture(root, train=train, T=GESTURE_T, size=None, cache=False, augment=False)
        theirs = {Path(p).relative_to(sj[train].root).as_posix(): i for i, (p, _) in enumerate(sj[train].samples)}
        assert len(ours) == len(theirs) == 12
        repeats: dict[tuple[str, int], int] = {}
        for i, sample in enumerate(ours.samples):
            # SpikingJelly's file for this window: <label>/<trial>_<k>.npz, k counting that label's windows
            k = repeats.setdefault((sample.source.stem, sample.label), 0)
            repeats[(sample.source.stem, sample.label)] += 1
            frames, _ = sj[train][theirs[f"{sample.label}/{sample.source.stem}_{k}.npz"]]
            ours_frames, label = ours[i]
            assert label == sample.label
            assert ours_frames.sum() > 0
            assert np.array_equal(ours_frames.numpy(), np.asarray(frames)), (train, sample.key)


def test_dvsgesture_spikingjelly_targets_are_folder_names_in_string_order(gesture_pair):
    """Documented difference: our label is the gesture class minus 1 (SPEC: classes 1..11 → 0..10).
    SpikingJelly stores window files in folders named by that same number, and its torchvision
    DatasetFolder numbers the folders in string order ("0", "1", "10", "2", ...): its target is a fixed
    permutation of ours (10 → 2, 2..9 → 3..10), the same in train and test, so accuracies agree."""
    root, sj = gesture_pair
    folder_order = sorted(str(c) for c in range(11))
    assert folder_order[:4] == ["0", "1", "10", "2"]
    for train in (True, False):
        assert sj[train].class_to_idx == {name: i for i, name in enumerate(folder_order)}
        ours = DVSGesture(root, train=train, T=GESTURE_T, size=None, cache=False, augment=False)
        ours_by_window = sorted((s.source.stem, s.label) for s in ours.samples)
        theirs_by_window = sorted(
            (Path(p).stem.rsplit("_", 1)[0], int(Path(p).parent.name)) for p, _ in sj[train].samples
        )
        assert ours_by_window == theirs_by_window  # the same windows with the same class ...
        for p, target in sj[train].samples:  # ... under SpikingJelly's renumbering
            assert target == folder_order.index(Path(p).parent.name)
    assert sj[True].class_to_idx["10"] == 2 and sj[True].class_to_idx["2"] == 3
