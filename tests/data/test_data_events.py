"""The events dataset on generated recordings: formats, framing by number and by time, sensor size, cache,
augmentation, bad input, and one training run through the CLI."""

import json
import sys

import numpy as np
import pytest
import torch
from formats import write_event_folder, write_recording

from arlif.cli import main as cli
from arlif.data import EventFolder, build_datasets, build_split, events_to_frames, frame_index
from arlif.errors import CorruptDatasetError, DataError

try:
    import aedat  # noqa: F401  (the optional AEDAT 4 decoder)

    HAVE_AEDAT = True
except ImportError:
    HAVE_AEDAT = False


def one_class_root(tmp_path, events, suffix=".npz", sensor=(4, 1)):
    """train/a/r<suffix> holding ``events`` and test/a/r<suffix> the same."""
    for split in ("train", "test"):
        write_recording(tmp_path / split / "a" / f"r{suffix}", *events, sensor_size=sensor)
    return tmp_path


def test_split_by_number_and_by_time_on_a_hand_made_recording(tmp_path):
    # 5 events on a 4×1 sensor (W=4, H=1), T=2
    t, x, y, p = [0, 10, 20, 30, 100], [0, 1, 2, 3, 0], [0] * 5, [1, 0, 1, 1, 0]
    root = one_class_root(tmp_path, (t, x, y, p))
    # by number: di = 5 // 2 = 2, so frame 0 = events 0, 1; frame 1 = events 2, 3 and the remainder 4
    by_number = np.zeros((2, 2, 1, 4))
    by_number[0, 1, 0, 0] = by_number[0, 0, 0, 1] = 1  # (frame, channel = p, row, column)
    by_number[1, 1, 0, 2] = by_number[1, 1, 0, 3] = by_number[1, 0, 0, 0] = 1
    # by time: span 0..100, dt = 50: frame 0 = t < 50 (events 0-3), frame 1 = t >= 50 (event 4)
    by_time = np.zeros((2, 2, 1, 4))
    by_time[0, 1, 0, 0] = by_time[0, 0, 0, 1] = by_time[0, 1, 0, 2] = by_time[0, 1, 0, 3] = 1
    by_time[1, 0, 0, 0] = 1
    for split_by, expected in (("number", by_number), ("time", by_time)):
        train, _, info = build_datasets("events", root, 2, split_by=split_by, cache_dir=tmp_path / f"c-{split_by}")
        assert info.input_size == (1, 4) and train.sensor == (1, 4)
        np.testing.assert_array_equal(train[0][0].numpy(), expected)
        np.testing.assert_array_equal(events_to_frames(t, x, y, p, 2, 1, 4, split_by=split_by), expected)
    assert frame_index(5, 2, np.array(t), "time").tolist() == [0, 0, 0, 0, 1]
    # dt = (2 - 0) // 3 = 0: a span shorter than T, every event in the last frame (as split by number with N < T)
    assert frame_index(3, 3, np.array([0, 1, 2]), "time").tolist() == [2, 2, 2]
    # unsorted timestamps are framed by their values; the last frame takes everything from t0 + (T-1)·dt on
    assert frame_index(4, 3, np.array([90, 0, 31, 60]), "time").tolist() == [2, 0, 1, 2]


def test_npz_npy_aedat2_aedat31_and_aedat4_give_identical_frames(tmp_path):
    rng = np.random.default_rng(1)
    n = 50
    ev = np.sort(rng.integers(0, 5000, n)), rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    suffixes = [".npz", ".npy", ".aedat", ".aedat3"] + ([".aedat4"] if HAVE_AEDAT else [])
    for cls, suffix in enumerate(suffixes):  # one class per format: a class holds one format
        for split in ("train", "test"):
            write_recording(tmp_path / split / f"c{cls}" / f"r{suffix}", *ev)
    for split_by in ("number", "time"):
        train, _, info = build_datasets("events", tmp_path, 3, sensor_size=[128, 128], split_by=split_by)
        assert info.num_classes == len(suffixes) == len(train)
        expected = events_to_frames(*ev, 3, 128, 128, split_by=split_by)
        for i in range(len(train)):
            np.testing.assert_array_equal(train[i][0].numpy(), expected, err_msg=str(train.samples[i].source))


@pytest.mark.skipif(not HAVE_AEDAT, reason="the optional aedat package (arlif[aedat4]) is not installed")
def test_aedat4_records_its_sensor_size(tmp_path):
    data = write_event_folder(tmp_path, sensor=(34, 20), suffix=".aedat4")
    train, test, info = build_datasets("events", tmp_path, 2)  # no sensor_size: the file's stream says 34×20
    assert info.input_size == (20, 34)
    path, _, ev = data["test"][0]
    np.testing.assert_array_equal(test[0][0].numpy(), events_to_frames(*ev, 2, 20, 34))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptDatasetError, match=f"{path}: AEDAT 4 file that does not decode"):
        build_datasets("events", tmp_path, 2, sensor_size=[34, 20])


def test_aedat4_without_the_package_names_the_extra(tmp_path, monkeypatch):
    write_event_folder(tmp_path, suffix=".aedat4", counts=(("train", 1), ("test", 1)))
    monkeypatch.setitem(sys.modules, "aedat", None)  # import aedat now raises ImportError
    with pytest.raises(DataError, match=r"is an AEDAT 4 recording; reading it needs the optional package aedat: "
                                        r"pip install 'arlif\[aedat4\]'"):  # fmt: skip
        build_datasets("events", tmp_path, 2, sensor_size=[20, 12])


def test_classes_labels_sensor_from_the_files_and_cache_reuse(tmp_path, monkeypatch):
    data = write_event_folder(tmp_path / "d", classes=("zig", "alpha", "mid"), sensor=(20, 12))
    train, test, info = build_datasets("events", tmp_path / "d", 3)  # the .npz files record sensor_size
    assert train.classes == ["alpha", "mid", "zig"] and (info.num_classes, info.in_channels) == (3, 2)
    assert info.input_size == (12, 20) and info.temporal
    assert train.targets == [0, 0, 1, 1, 2, 2] and test.targets == [0, 1, 2]
    for i, (_, cls, ev) in enumerate(sorted(data["test"], key=lambda r: r[1])):
        x, y = test[i]
        assert (x.shape, x.dtype, y) == ((3, 2, 12, 20), torch.float32, train.classes.index(cls))
        np.testing.assert_array_equal(x.numpy(), events_to_frames(*ev, 3, 12, 20))
    folder = tmp_path / "d" / "arlif-cache" / "events" / "frames-T3-12x20-v1"
    assert train.cache.folder == folder and len(list(folder.rglob("*.npz"))) == 9  # built when the splits were
    # built again: every frame comes from the cache, no recording is read
    monkeypatch.setattr(EventFolder, "read_events", lambda self, source: pytest.fail(f"read {source}"))
    again, _, _ = build_datasets("events", tmp_path / "d", 3)
    np.testing.assert_array_equal(again[0][0].numpy(), train[0][0].numpy())
    # with cache_dir, a sub-folder named after the data root; split by time has its own folder
    monkeypatch.undo()
    t2, _, _ = build_datasets("events", tmp_path / "d", 3, split_by="time", cache_dir=tmp_path / "c", size=8)
    assert t2.cache.folder.name == "frames-T3-12x20-time-v1" and t2.cache.folder.parent.parent.name.startswith("d-")
    assert t2[0][0].shape == (3, 2, 8, 8)


def test_sensor_size_option_and_polarity_conventions(tmp_path):
    ev = ([0, 1, 2, 3], [0, 1, 2, 3], [0, 0, 1, 1], [-1, 1, -1, 1])  # polarity -1/1: p > 0 is channel 1
    root = one_class_root(tmp_path, ev, suffix=".npy")
    with pytest.raises(DataError, match=r"r.npy does not record its sensor size; give the dataset option "
                                        r"sensor_size=\[W, H\]"):  # fmt: skip
        build_datasets("events", root, 1)
    train, _, info = build_datasets("events", root, 1, sensor_size=[4, 2, 2])  # tonic's (W, H, P)
    assert info.input_size == (2, 4)
    frames = train[0][0].numpy()
    assert frames[0, 0].tolist() == [[1, 0, 0, 0], [0, 0, 1, 0]]
    assert frames[0, 1].tolist() == [[0, 1, 0, 0], [0, 0, 0, 1]]
    for bad in ([4], [4, 0], [4, 2, 3], "4x2", [4.5, 2]):
        with pytest.raises(DataError, match="option sensor_size must be \\[W, H\\]"):
            build_datasets("events", root, 1, sensor_size=bad)
    bad_options = [("split_by", "count", "split_by must be one of number, time"),
                   ("augment", True, "augment must be one of none, flip, dvsgesture, cifar10dvs")]  # fmt: skip
    for option, value, match in bad_options:
        with pytest.raises(DataError, match=match):
            build_datasets("events", root, 1, sensor_size=[4, 2], **{option: value})


@pytest.mark.parametrize("augment", ["none", "flip", "dvsgesture", "cifar10dvs"])
def test_each_augment_runs_on_the_training_split_only(tmp_path, augment):
    write_event_folder(tmp_path, n=400, counts=(("train", 2), ("test", 1)))
    train, test, _ = build_datasets("events", tmp_path, 2, augment=augment, size=16)
    torch.manual_seed(0)
    draws = [train[0][0] for _ in range(8)]
    assert all(d.shape == (2, 2, 16, 16) for d in draws)
    assert (len({d.numpy().tobytes() for d in draws}) > 1) == (augment != "none")
    assert torch.equal(test[0][0], test[0][0])


def test_bad_recordings_name_the_file_and_the_fix(tmp_path):
    root = tmp_path / "d"
    data = write_event_folder(root, sensor=(20, 12))
    path = data["train"][0][0]  # the first recording read
    # a recording without p
    np.savez(path, t=np.arange(3), x=np.arange(3), y=np.arange(3), sensor_size=np.array([20, 12]))
    with pytest.raises(DataError, match=f"the recording {path} lacks the field\\(s\\) p \\(it has: t, x, y, "
                                        f"sensor_size\\)"):  # fmt: skip
        build_datasets("events", root, 2)
    # coordinates outside sensor_size, from width and height given the wrong way round
    np.savez(path, t=np.arange(3), x=[0, 19, 5], y=[0, 11, 3], p=[0, 1, 1])
    with pytest.raises(DataError) as exc:
        build_datasets("events", root, 2, sensor_size=[12, 20])
    msg = str(exc.value)
    assert f"{path}: event coordinates outside the sensor: x in [0, 19], y in [0, 11]" in msg
    assert "the sensor is W=12 × H=20" in msg and "width and height swapped?" in msg
    np.savez(path, t=np.arange(3), x=[0, 1, 2], y=[0, 1, 1], p=[0, 2, 1])
    with pytest.raises(DataError, match=f"{path}: p must be a polarity"):
        build_datasets("events", root, 2, sensor_size=[20, 12])
    np.savez(path, t=np.arange(3) * 0.5, x=[0, 1, 2], y=[0, 1, 1], p=[0, 1, 1])
    with pytest.raises(DataError, match=f"{path}: t must hold integer timestamps"):
        build_datasets("events", root, 2, sensor_size=[20, 12], split_by="time")
    assert len(build_datasets("events", root, 2, sensor_size=[20, 12])[0]) == 4  # float t is fine by number
    # two formats in one class folder
    write_recording(path.with_name("extra.npy"), [0], [0], [0], [1])
    mixed = f"the class folder {path.parent} mixes recording formats: extra.npy \\(.npy\\), r0.npz \\(.npz\\). Convert"
    with pytest.raises(DataError, match=mixed):
        build_datasets("events", root, 2, sensor_size=[20, 12])
    path.with_name("extra.npy").unlink()
    # an empty class folder, a test class that train lacks
    (root / "train" / "void").mkdir()
    with pytest.raises(DataError, match=f"empty class folder\\(s\\) {root / 'train' / 'void'}"):
        build_datasets("events", root, 2)
    (root / "train" / "void").rmdir()
    (root / "test" / "new").mkdir()
    write_recording(root / "test" / "new" / "r.npz", [0], [0], [0], [1], sensor_size=(20, 12))
    with pytest.raises(DataError, match=f"{root / 'test' / 'new'} have no training counterpart"):
        build_split("events", root, train=False, T=2)


def test_corrupt_recordings_are_listed_or_skipped(tmp_path):
    data = write_event_folder(tmp_path, sensor=(20, 12))
    bad = [data["train"][0][0], data["test"][1][0]]
    bad[0].write_bytes(b"not a zip")
    bad[1].write_bytes(bad[1].read_bytes()[:50])
    with pytest.raises(CorruptDatasetError) as exc:
        build_datasets("events", tmp_path, 2)
    msg = str(exc.value)
    assert msg.startswith("events: 2 of 6 recordings are corrupt") and "skip_corrupt=true" in msg
    assert f"{bad[0]}: not a readable .npz file" in msg and f"{bad[1]}: not a readable .npz file" in msg
    train, test, _ = build_datasets("events", tmp_path, 2, skip_corrupt=True)
    assert (len(train), len(test)) == (3, 1) and [s for s, *_ in train.skipped] == [bad[0]]


def test_train_and_eval_through_the_cli(tmp_path, capsys):
    data = write_event_folder(tmp_path / "data", sensor=(34, 20), n=200)
    out = tmp_path / "run"
    args = ["train", "--dataset", "events", "--data-root", str(tmp_path / "data"), "--model", "small_cnn",
            "--T", "4", "--epochs", "1", "--batch-size", "2", "--tensorboard", "false"]  # fmt: skip
    options = json.dumps({"split_by": "time", "augment": "dvsgesture", "size": 16})
    assert cli([*args, "--out", str(out), "--dataset-options", options]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "events" and summary["T"] == 4
    ckpt = torch.load(out / "last.pt", weights_only=False)
    assert ckpt["data_shape"] == {"num_classes": 2, "in_channels": 2, "input_size": [16, 16], "temporal": True}
    assert cli(["eval", str(out / "last.pt"), "--json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["acc"] == pytest.approx(summary["final_acc"])
    # a recording with coordinates outside the sensor stops the run before its folder is made
    path = data["test"][0][0]
    np.savez(path, t=[0, 1], x=[0, 40], y=[0, 1], p=[0, 1], sensor_size=np.array([34, 20]))
    capsys.readouterr()
    assert cli([*args, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"arlif train: error: events: {path}: event coordinates outside the sensor")
    assert not (tmp_path / "bad").exists()
