"""CIFAR10-DVS and DVS128 Gesture: splits, frames, augmentation, cache and errors."""

import shutil
import warnings

import numpy as np
import pytest
import torch
from formats import CIFAR10DVS_CLASSES, polarity_packet, write_aedat2, write_cifar10dvs, write_gesture

import arlif.data.dvs as dvs
from arlif.data import CIFAR10DVS, DVSGesture, events_to_frames
from arlif.errors import CorruptDatasetError, CorruptRecording, DataError


def indices(ds):
    """``{(class, file number)}`` of a CIFAR10-DVS split."""
    return {(s.source.parent.name, int(s.source.stem.rsplit("_", 1)[1])) for s in ds.samples}


def every_class(numbers):
    return {(c, i) for c in CIFAR10DVS_CLASSES for i in numbers}


# --- CIFAR10-DVS splits and frames ----------------------------------------------------------------


def test_cifar10dvs_reference_split(cifar10dvs_tree):
    root, _ = cifar10dvs_tree
    train = CIFAR10DVS(root, train=True, T=4, cache=False)
    test = CIFAR10DVS(root, train=False, T=4, cache=False)
    assert indices(train) == every_class([100, 101])  # files 100..999 train
    assert indices(test) == every_class([0, 2, 10])  # files 0..99 test
    assert sorted(set(train.targets)) == list(range(10)) and len(test) == 30
    for ds in (train, test):
        assert all(s.label == CIFAR10DVS_CLASSES.index(s.source.parent.name) for s in ds.samples)


def test_cifar10dvs_first90_split_uses_file_name_order(cifar10dvs_tree):
    root, _ = cifar10dvs_tree
    train = CIFAR10DVS(root, train=True, T=4, split="first90", cache=False)
    test = CIFAR10DVS(root, train=False, T=4, split="first90", cache=False)
    # names sort as _0, _10, _100, _101, _2: the first 4 of 5 (90%, rounded down) train
    assert indices(train) == every_class([0, 10, 100, 101])
    assert indices(test) == every_class([2])


@pytest.mark.parametrize("T", [1, 3, 40])  # 40 > the 12..18 events of a file
def test_cifar10dvs_frames_equal_framed_events(cifar10dvs_tree, T):
    root, events = cifar10dvs_tree
    ds = CIFAR10DVS(root, train=False, T=T, cache=False, augment=False)
    for i in (0, len(ds) - 1):
        x, label = ds[i]
        s = ds.samples[i]
        t, ex, ey, ep = events[(s.source.parent.name, int(s.source.stem.rsplit("_", 1)[1]))]
        assert x.dtype == torch.float32 and x.shape == (T, 2, 128, 128)
        np.testing.assert_array_equal(x.numpy(), events_to_frames(t, ex, ey, ep, T, 128, 128))
        assert label == s.label


def test_cifar10dvs_resize_and_augment_shapes(cifar10dvs_tree, tmp_path):
    root, _ = cifar10dvs_tree
    ds = CIFAR10DVS(root, train=True, T=3, size=48, cache_dir=tmp_path)
    assert ds.input_size == (48, 48)
    torch.manual_seed(0)
    for i in range(4):
        x, _ = ds[i]
        assert x.shape == (3, 2, 48, 48) and x.dtype == torch.float32 and torch.isfinite(x).all()
    plain = CIFAR10DVS(root, train=True, T=3, size=48, cache_dir=tmp_path, augment=False)[0][0]
    full = CIFAR10DVS(root, train=True, T=3, cache_dir=tmp_path, augment=False)[0][0]
    # antialiased resize keeps the mass of events, scaled by the area ratio
    torch.testing.assert_close(plain.sum() * (128 / 48) ** 2, full.sum(), rtol=0.02, atol=0)


def test_dvs_augmentation_is_identical_across_frames(tmp_path):
    """A recording whose T frames are identical must stay so after the random ops."""
    rng = np.random.default_rng(0)
    n, T = 300, 4
    x, y, p = rng.integers(30, 98, n), rng.integers(30, 98, n), rng.integers(0, 2, n)
    reps = (np.tile(x, T), np.tile(y, T), np.tile(p, T))
    write_cifar10dvs(tmp_path, indices=(100,), n_events=3)
    for cls in CIFAR10DVS_CLASSES:
        write_aedat2(tmp_path / cls / f"cifar10_{cls}_100.aedat", np.arange(n * T), *reps)
    for size in (None, 48):
        ds = CIFAR10DVS(tmp_path, train=True, T=T, size=size, cache=False)
        changed = 0
        for seed in range(12):
            torch.manual_seed(seed)
            frames, _ = ds[seed % len(ds)]
            for t in range(1, T):
                torch.testing.assert_close(frames[t], frames[0], rtol=0, atol=0)
            ref = CIFAR10DVS(tmp_path, train=True, T=T, size=size, cache=False, augment=False)
            changed += not torch.equal(frames, ref[seed % len(ds)][0])
        assert changed >= 6  # the augmentation really ran


# --- DVS128 Gesture -------------------------------------------------------------------------------


def test_gesture_samples_labels_and_frames(gesture_tree):
    root, info = gesture_tree
    T = 3
    for train, rows in ((True, info["train"]), (False, info["test"])):
        ds = DVSGesture(root, train=train, T=T, cache=False, augment=False)
        assert len(ds) == len(rows)
        assert ds.targets == [label for _, label, _ in rows]
        for i, (trial, label, (start, end)) in enumerate(rows):
            t, x, y, p = info["events"][trial]
            sel = (t >= start) & (t < end)
            frames, got = ds[i]
            assert got == label and frames.shape == (T, 2, 128, 128)
            want = events_to_frames(t[sel], x[sel], y[sel], p[sel], T, 128, 128)
            np.testing.assert_array_equal(frames.numpy(), want)
            assert frames.sum() == sel.sum()
    # the test trial straddles 2^31 µs: its windows see events from both sides of the overflow
    t = info["events"]["user03_natural"][0]
    assert (t < 2**31).any() and (t >= 2**31).any()


def test_gesture_root_may_hold_dvsgesture_folder_and_augment(tmp_path):
    write_gesture(tmp_path / "DvsGesture")
    ds = DVSGesture(tmp_path, train=True, T=2, size=64, cache_dir=tmp_path / "c")
    torch.manual_seed(0)
    x, _ = ds[0]
    assert x.shape == (2, 2, 64, 64) and ds.input_size == (64, 64)


def test_gesture_errors(tmp_path):
    with pytest.raises(DataError, match="(?s)not a folder.*trials_to_train.txt.*dvsgesture"):
        DVSGesture(tmp_path / "nowhere", T=2)
    with pytest.raises(DataError, match="no trials_to_train.txt"):
        DVSGesture(tmp_path, T=2)
    write_gesture(tmp_path)
    with pytest.raises(DataError, match="positive integer"):
        DVSGesture(tmp_path, T=0)
    csv = tmp_path / "user02_led_labels.csv"
    good = csv.read_text()
    csv.write_text(good + "12,1,2\n")
    with pytest.raises(DataError, match="class 12 is outside 1..11"):
        DVSGesture(tmp_path, T=2)
    csv.write_text(good + "3;1;2\n")
    with pytest.raises(DataError, match="user02_led_labels.csv, line 4: expected 'class,startTime_usec"):
        DVSGesture(tmp_path, T=2)
    csv.unlink()
    with pytest.raises(DataError, match="missing labels file .*user02_led_labels.csv"):
        DVSGesture(tmp_path, T=2)
    (tmp_path / "user03_natural.aedat").unlink()
    with pytest.raises(DataError, match="lists user03_natural.aedat, which is missing"):
        DVSGesture(tmp_path, train=False, T=2)
    (tmp_path / "trials_to_test.txt").unlink()
    with pytest.raises(DataError, match="missing .*trials_to_test.txt"):
        DVSGesture(tmp_path, train=False, T=2)


def test_gesture_corrupt_recording_named_at_load(tmp_path):
    write_gesture(tmp_path)
    path = tmp_path / "user01_fluorescent.aedat"
    path.write_bytes(path.read_bytes()[:-5])  # the last packet cut short: the header check cannot see it
    ds = DVSGesture(tmp_path, train=True, T=2, cache_dir=tmp_path / "c")
    with pytest.raises(CorruptRecording, match="user01_fluorescent.aedat: truncated AEDAT 3.1") as err:
        ds[0]
    assert "now marked as corrupt" in str(err.value) and "'arlif data prepare'" in str(err.value)
    # ... so the next build knows it: it is reported, or with skip_corrupt left out
    with pytest.raises(CorruptDatasetError, match="(?s)1 of 2 recordings are corrupt.*user01_fluorescent.aedat"):
        DVSGesture(tmp_path, train=True, T=2, cache_dir=tmp_path / "c")
    ds = DVSGesture(tmp_path, train=True, T=2, cache_dir=tmp_path / "c", skip_corrupt=True)
    assert {s.source.name for s in ds.samples} == {"user02_led.aedat"} and len(ds) == 2
    assert [(src.name, n) for src, _, n in ds.skipped] == [("user01_fluorescent.aedat", 3)]
    assert ds[0][0].shape == (2, 2, 128, 128)
    # a recording replaced since (here: repaired) is checked afresh
    write_gesture(tmp_path)
    assert len(DVSGesture(tmp_path, train=True, T=2, cache_dir=tmp_path / "c")) == 5
    # without a cache nothing is remembered: the message says what skip_corrupt can do then
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CorruptRecording, match="leaves out only recordings known to be corrupt"):
        DVSGesture(tmp_path, train=True, T=2, cache=False)[0]


# --- CIFAR10-DVS errors ---------------------------------------------------------------------------


def test_cifar10dvs_errors(tmp_path):
    with pytest.raises(DataError, match="(?s)not a folder.*cifar10_<class>_<i>.aedat.*figshare"):
        CIFAR10DVS(tmp_path / "nowhere", T=2)
    with pytest.raises(DataError, match="data root None is not a folder"):
        CIFAR10DVS(None, T=2)
    with pytest.raises(DataError, match="missing class folder .*airplane"):
        CIFAR10DVS(tmp_path, T=2)
    write_cifar10dvs(tmp_path, indices=(0, 100), n_events=4)
    with pytest.raises(DataError, match="unknown split 'random'"):
        CIFAR10DVS(tmp_path, T=2, split="random")
    with pytest.raises(DataError, match="positive integer"):
        CIFAR10DVS(tmp_path, T=None)
    write_aedat2(tmp_path / "cat" / "cat_recording.aedat", [1], [1], [1], [1])
    with pytest.raises(DataError, match="cannot read the sample number of .*cat_recording.aedat"):
        CIFAR10DVS(tmp_path, T=2)
    # first90 needs no numbers: 1 of 2 files train per class, 2 of 3 for cat
    assert len(CIFAR10DVS(tmp_path, T=2, split="first90", cache=False)) == 11
    shutil.rmtree(tmp_path / "dog")
    (tmp_path / "dog").mkdir()
    with pytest.raises(DataError, match="no .aedat files in .*dog"):
        CIFAR10DVS(tmp_path, T=2, split="first90")


def test_cifar10dvs_corrupt_recording_named_when_the_split_is_built(tmp_path):
    write_cifar10dvs(tmp_path, indices=(0, 100), n_events=4)
    bad = tmp_path / "airplane" / "cifar10_airplane_100.aedat"
    bad.write_bytes(bad.read_bytes()[:-3])
    with pytest.raises(CorruptDatasetError, match="(?s)1 of 10 recordings are corrupt.*cifar10_airplane_100.aedat: "
                       "truncated or corrupt AEDAT 2.0.*skip_corrupt=true") as err:  # fmt: skip
        CIFAR10DVS(tmp_path, T=2, cache_dir=tmp_path / "c")
    assert err.value.bad == [(bad, err.value.bad[0][1])] and err.value.checked == 10
    ds = CIFAR10DVS(tmp_path, T=2, cache_dir=tmp_path / "c", skip_corrupt=True)
    assert len(ds) == 9 and bad not in ds.sources and ds.skipped[0][0] == bad and ds.skipped[0][2] == 1
    assert ds[0][0].shape == (2, 2, 128, 128)
    # the test split is fine
    assert len(CIFAR10DVS(tmp_path, train=False, T=2, cache_dir=tmp_path / "c")) == 10
    with pytest.raises(DataError, match="option skip_corrupt must be true or false, got 'yes please'"):
        CIFAR10DVS(tmp_path, T=2, skip_corrupt="yes please")
    with pytest.raises(DataError, match="option cache must be true or false, got 0"):
        CIFAR10DVS(tmp_path, T=2, cache=0)


def test_corrupt_recordings_of_both_splits_in_one_error_limited_to_20(tmp_path):
    from arlif.data import build_datasets

    write_cifar10dvs(tmp_path, indices=(0, 1, 100, 101), n_events=4)
    bad = sorted(tmp_path.glob("*/*.aedat"))[:25]  # both splits: numbers 0/1 test, 100/101 train
    for path in bad:
        path.write_bytes(b"#!AER-DAT2.0\r\n" + b"\0" * 5)
    with pytest.raises(CorruptDatasetError) as err:
        build_datasets("cifar10dvs", tmp_path, 2)
    msg = str(err.value)
    assert "cifar10dvs: 25 of 40 recordings are corrupt" in msg and "  ... and 5 more" in msg
    assert sum(str(path) in msg for path in bad) == 20  # the first 20 named, one per line
    assert {p for p, _ in err.value.bad} == set(bad)
    train, test, _ = build_datasets("cifar10dvs", tmp_path, 2, skip_corrupt=True)
    assert len(train) + len(test) == 15 and len(train.skipped) + len(test.skipped) == 25


# --- frame cache ----------------------------------------------------------------------------------


@pytest.fixture
def parse_count(monkeypatch):
    calls = []
    real2, real31 = dvs.read_aedat2, dvs.read_aedat31
    monkeypatch.setattr(dvs, "read_aedat2", lambda path, **kw: (calls.append(path), real2(path, **kw))[1])
    monkeypatch.setattr(dvs, "read_aedat31", lambda path: (calls.append(path), real31(path))[1])
    return calls


def test_cache_miss_then_hit_across_instances_keyed_by_T(cifar10dvs_tree, tmp_path, parse_count):
    root, _ = cifar10dvs_tree
    ds = CIFAR10DVS(root, train=True, T=4, cache_dir=tmp_path, augment=False)
    first = ds[3][0]
    assert len(parse_count) == 1
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1 and "frames-T4-128x128" in str(files[0])
    assert torch.equal(ds[3][0], first) and len(parse_count) == 1  # hit: no parsing
    again = CIFAR10DVS(root, train=True, T=4, cache_dir=tmp_path, augment=False)  # a later epoch/process
    assert torch.equal(again[3][0], first) and len(parse_count) == 1
    other = CIFAR10DVS(root, train=True, T=5, cache_dir=tmp_path, augment=False)
    assert other[3][0].shape[0] == 5 and len(parse_count) == 2  # another T is another cache
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_default_location_is_under_root(tmp_path, parse_count):
    write_cifar10dvs(tmp_path, indices=(0, 100), n_events=4)
    CIFAR10DVS(tmp_path, T=2)[0]
    assert len(list((tmp_path / "arlif-cache" / "cifar10dvs").rglob("*.npz"))) == 1
    # the cache folder beside the class folders does not disturb the dataset
    assert len(CIFAR10DVS(tmp_path, T=2)) == 10


def test_gesture_cache_parses_each_recording_once(gesture_tree, tmp_path, parse_count):
    root, info = gesture_tree
    ds = DVSGesture(root, train=True, T=2, cache_dir=tmp_path, augment=False)
    frames = [ds[i][0] for i in range(len(ds))]
    assert len(parse_count) == 2  # two training recordings, each parsed once for all its windows
    again = DVSGesture(root, train=True, T=2, cache_dir=tmp_path, augment=False)
    assert all(torch.equal(again[i][0], f) for i, f in enumerate(frames)) and len(parse_count) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flipped-bytes", "wrong-shape"])
def test_damaged_cache_file_is_detected_and_rebuilt(cifar10dvs_tree, tmp_path, parse_count, damage):
    root, _ = cifar10dvs_tree
    ds = CIFAR10DVS(root, train=False, T=3, cache_dir=tmp_path, augment=False)
    good = ds[0][0]
    (path,) = tmp_path.rglob("*.npz")
    if damage == "truncate":  # what a non-atomic writer killed mid-write would leave
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "garbage":
        path.write_bytes(b"\0" * 100)
    elif damage == "flipped-bytes":  # damage inside the compressed data, zip structure intact
        raw = bytearray(path.read_bytes())
        for k in range(60, 90):
            raw[k] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        with open(path, "wb") as f:
            np.savez_compressed(f, frames=np.zeros((2, 2, 128, 128), np.uint8))
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = ds[0][0]
    assert torch.equal(rebuilt, good) and len(parse_count) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(ds[0][0], good) and len(parse_count) == 2  # healthy again


def test_interrupted_write_leaves_no_cache_file(cifar10dvs_tree, tmp_path, monkeypatch, parse_count):
    root, _ = cifar10dvs_tree
    ds = CIFAR10DVS(root, train=False, T=3, cache_dir=tmp_path, augment=False)

    def killed(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", killed)
    with pytest.raises(KeyboardInterrupt):
        ds[0]
    assert not list(tmp_path.rglob("*.npz")) and not list(tmp_path.rglob("*.tmp"))
    monkeypatch.undo()
    # a stray temporary file from a hard kill is never taken for a cache entry
    folder = ds.cache.path(ds.samples[0].key).parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (ds.cache.path(ds.samples[0].key).name + ".x1y2.tmp")).write_bytes(b"PK junk")
    frames = ds[0][0]
    assert frames.shape == (3, 2, 128, 128) and ds.cache.path(ds.samples[0].key).exists()


def test_cache_off_parses_every_time(cifar10dvs_tree, tmp_path, parse_count):
    root, _ = cifar10dvs_tree
    ds = CIFAR10DVS(root, train=False, T=2, cache=False, cache_dir=tmp_path)
    ds[0], ds[0]
    assert len(parse_count) == 2 and not list(tmp_path.rglob("*.npz"))
    with pytest.raises(DataError, match="cache is switched off"):
        ds.prepare(ds.sources[0])


def test_cache_is_rebuilt_when_the_recording_or_its_window_changes(tmp_path, parse_count):
    """A replaced recording or an edited labels file must not be served from frames of the old one."""
    root = tmp_path / "g"
    write_gesture(root)
    ds = DVSGesture(root, train=True, T=2, cache_dir=tmp_path / "c", augment=False)
    first = ds[0][0]
    assert ds.is_cached(ds.samples[0]) and len(parse_count) == 1
    # same name, new recording (another seed, 5 more events): the cached frames are stale
    write_gesture(tmp_path / "other", seed=1)
    extra = polarity_packet([1_100, 1_200, 1_300, 1_400, 1_500], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [0, 1, 0, 1, 0])
    (root / "user01_fluorescent.aedat").write_bytes(
        (tmp_path / "other" / "user01_fluorescent.aedat").read_bytes() + extra
    )
    again = DVSGesture(root, train=True, T=2, cache_dir=tmp_path / "c", augment=False)
    assert not again.is_cached(again.samples[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stale file is an expected miss, not a damaged one
        fresh = again[0][0]
    uncached = DVSGesture(root, train=True, T=2, cache=False, augment=False)[0][0]
    t = write_gesture(tmp_path / "other2", seed=1)["events"]["user01_fluorescent"][0]
    assert torch.equal(fresh, uncached) and fresh.sum() == ((t >= 1_000) & (t < 2_000)).sum() + 5
    assert not torch.equal(fresh, first) and again.is_cached(again.samples[0])
    t = np.concatenate([t, [1_100] * 5])
    # an edited labels window (same recording) is a different sample
    (root / "user01_fluorescent_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,0,9000000\n")
    wide = DVSGesture(root, train=True, T=2, cache_dir=tmp_path / "c", augment=False)
    assert wide[0][0].sum() == len(t)


def test_cache_entries_from_before_fingerprints_and_from_copied_datasets_are_kept(tmp_path, parse_count):
    """Entries written before fingerprints existed, or for a copy of the dataset with new timestamps (cp -r),
    are served as they are: nothing rebuilt, and a read-only cache keeps working."""
    import os

    root = tmp_path / "g"
    write_gesture(root)
    ds = DVSGesture(root, train=True, T=2, cache_dir=tmp_path / "c", augment=False)
    frames = ds[0][0]
    path = ds.cache.path(ds.samples[0].key)
    with np.load(path) as z:
        counts = z["frames"]
    with open(path, "wb") as f:  # the old format: frames only
        np.savez_compressed(f, frames=counts)
    os.utime(root / "user01_fluorescent.aedat", (1, 1))
    again = DVSGesture(root, train=True, T=2, cache_dir=tmp_path / "c", augment=False)
    assert again.is_cached(again.samples[0]) and torch.equal(again[0][0], frames) and len(parse_count) == 1


def test_cache_files_follow_the_umask(cifar10dvs_tree, tmp_path):
    """mkstemp makes 0600 files; a cache folder shared by a group must stay readable."""
    import os

    root, _ = cifar10dvs_tree
    old = os.umask(0o022)
    try:
        ds = CIFAR10DVS(root, train=False, T=2, cache_dir=tmp_path, augment=False)
        ds[0]
    finally:
        os.umask(old)
    (path,) = tmp_path.rglob("*.npz")
    assert path.stat().st_mode & 0o777 == 0o644


def test_damaged_cache_file_that_cannot_be_removed_names_the_fix(cifar10dvs_tree, tmp_path, monkeypatch):
    from pathlib import Path

    from arlif.data.cache import CacheWriteError

    root, _ = cifar10dvs_tree
    ds = CIFAR10DVS(root, train=False, T=2, cache_dir=tmp_path, augment=False)
    ds[0]
    (path,) = tmp_path.rglob("*.npz")
    path.write_bytes(b"\0" * 100)

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.warns(UserWarning, match="rebuilding"):
        with pytest.raises(CacheWriteError, match="(?s)Delete it.*cache_dir"):
            ds[0]


@pytest.mark.parametrize("option, value", [("size", "abc"), ("size", 0), ("size", 2.5), ("T", "x"), ("T", -1)])
def test_bad_option_values_name_the_option(cifar10dvs_tree, option, value):
    root, _ = cifar10dvs_tree
    kwargs = {"T": 2, option: value}
    with pytest.raises(DataError, match=f"option {option} must be a positive integer"):
        CIFAR10DVS(root, train=False, cache=False, **kwargs)
