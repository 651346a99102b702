"""from_tonic: datasets with tonic's interface (a class written here, and tonic itself where it is installed)
framed and cached by the events machinery; the cache's identity; bad items; training with arlif.fit; how
tonic's ToFrame frames the same events."""

import numpy as np
import pytest
import torch
from formats import TONIC_DTYPE, TonicLike, tonic_events
from torch import nn

import arlif
from arlif.data import EventFrames, event_counts, events_to_frames, from_tonic
from arlif.errors import DataError
from arlif.models import SeqToANN

try:
    import tonic
except ModuleNotFoundError:  # not installed; a broken install fails the tests
    tonic = None
needs_tonic = pytest.mark.skipif(tonic is None, reason="tonic is not installed (pip install tonic)")


def frames_of(ev, T, split_by="number", sensor=(12, 20)):
    return events_to_frames(ev["t"], ev["x"], ev["y"], ev["p"], T, *sensor, split_by=split_by)


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_items_are_the_frames_of_the_events_with_their_labels(tmp_path, split_by):
    ds = TonicLike(n=5)
    wrapped = from_tonic(ds, T=4, split_by=split_by, cache_dir=tmp_path)
    assert isinstance(wrapped, EventFrames) and len(wrapped) == 5
    assert wrapped.classes == ["left", "right"] and wrapped.num_classes == 2 and wrapped.in_channels == 2
    assert wrapped.targets == [0, 1, 0, 1, 0] and wrapped.input_size == (12, 20)
    for i in range(5):
        frames, label = wrapped[i]
        assert frames.dtype == torch.float32 and frames.shape == (4, 2, 12, 20) and label == i % 2
        np.testing.assert_array_equal(frames.numpy(), frames_of(ds.items[i][0], 4, split_by))
    resized = from_tonic(ds, T=4, split_by=split_by, size=8, cache_dir=tmp_path)
    assert resized[0][0].shape == (4, 2, 8, 8) and resized.input_size == (8, 8)


def test_a_second_build_reads_only_the_items_that_identify_the_dataset(tmp_path):
    ds = TonicLike(n=7)
    first = from_tonic(ds, T=3, cache_dir=tmp_path)
    assert ds.reads == 4 + 7  # the identity (item 0 twice, the middle, the last), then every item once
    ds.reads = 0
    again = from_tonic(ds, T=3, cache_dir=tmp_path)
    assert ds.reads == 4 and again.cache_folder == first.cache_folder and again.targets == first.targets
    for i in range(7):
        np.testing.assert_array_equal(again[i][0].numpy(), first[i][0].numpy())
    assert ds.reads == 4  # every sample came from the cache
    assert sorted(p.name for p in again.cache_folder.rglob("*.npz")) == sorted(f"{i}.npz" for i in range(7))


def test_the_cache_folder_names_the_dataset_T_and_the_split(tmp_path):
    def folder(ds, **kw):
        return from_tonic(ds, **{"T": 4, "cache_dir": tmp_path, **kw}).cache_folder

    ds = TonicLike(n=5)
    base = folder(ds)
    assert base.parent.parent == tmp_path and base.name == "frames-T4-12x20-v1"
    assert base.parent.name.startswith("TonicLike-5-")
    assert folder(ds, T=2).name == "frames-T2-12x20-v1"
    assert folder(ds, split_by="time").name == "frames-T4-12x20-time-v1"
    assert folder(ds, size=8) == base  # counts are cached at sensor size and resized when read
    assert folder(ds, name="my-set") == tmp_path / "my-set" / "frames-T4-12x20-v1"
    assert folder(TonicLike(n=6)).parent != base.parent  # another length
    changed = TonicLike(n=5)
    changed.items[2] = (changed.items[2][0][:-1], changed.items[2][1])  # the middle item, one event less
    assert folder(changed).parent != base.parent
    assert folder(TonicLike(n=5, transform=lambda ev: ev[::2])).parent != base.parent  # the transform's output counts
    assert folder(TonicLike(n=5, sensor=(24, 12))).name == "frames-T4-12x24-v1"


def test_a_random_transform_needs_the_cache_off(tmp_path):
    rng = np.random.default_rng(0)
    ds = TonicLike(n=3, transform=lambda ev: ev[rng.random(len(ev)) < 0.5])
    with pytest.raises(DataError, match=r"TonicLike\[0\] differs between two reads.*cache=False"):
        from_tonic(ds, T=2, cache_dir=tmp_path)
    wrapped = from_tonic(ds, T=2, cache=False, cache_dir=tmp_path)
    assert wrapped.cache_folder is None and not any(tmp_path.iterdir())
    assert not torch.equal(wrapped[0][0], wrapped[0][0])  # framed anew at every read


def test_sensor_size_overrides_the_datasets(tmp_path):
    ds = TonicLike(n=2, transform=lambda ev: ev[(ev["x"] < 10) & (ev["y"] < 6)])  # a crop to 10×6
    wrapped = from_tonic(ds, T=2, sensor_size=(10, 6), cache_dir=tmp_path)
    assert wrapped[0][0].shape == (2, 2, 6, 10)


def _replace(ds, i, events=None, target=None):
    ds.items[i] = (ds.items[i][0] if events is None else events, ds.items[i][1] if target is None else target)
    return ds


BAD = [
    ("framed", lambda ds: _replace(ds, 3, events=np.zeros((4, 2, 12, 20))),
     r"TonicLike\[3\]: the events must be a structured numpy array with fields t, x, y, p.*ndarray of shape "
     r"\(4, 2, 12, 20\).*ToFrame"),
    ("no y", lambda ds: _replace(ds, 3, events=np.zeros(5, dtype=[("x", "<i2"), ("t", "<i8"), ("p", "?")])),
     r"TonicLike\[3\].*got fields x, t, p.*without y"),
    ("outside the sensor", lambda ds: _replace(ds, 3, events=np.array([(25, 1, 0, True)], dtype=TONIC_DTYPE)),
     r"TonicLike\[3\]: event coordinates outside the sensor: x in \[25, 25\].*W=20 × H=12.*sensor_size=\(W, H, 2\)"),
    ("float coordinates", lambda ds: _replace(ds, 3, events=np.zeros(2, [("x", "f4"), ("y", "f4"), ("t", "i8"),
                                                                          ("p", "?")])),
     r"TonicLike\[3\]: x must hold integer pixel coordinates"),
    ("a named target", lambda ds: _replace(ds, 3, target="left"),
     r"TonicLike\[3\]: the target must be an integer class, got str 'left'.*target_transform"),
    ("a target beyond the classes", lambda ds: _replace(ds, 3, target=2), r"target 2 is not a class index \(0\.\.1\)"),
]  # fmt: skip


@pytest.mark.parametrize("spoil, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_item_stops_the_build_naming_it(tmp_path, spoil, message):
    with pytest.raises(DataError, match=message):
        from_tonic(spoil(TonicLike(n=5)), T=2, cache_dir=tmp_path)


def test_bad_datasets_and_options(tmp_path):
    no_sensor = TonicLike(n=2)
    del no_sensor.sensor_size
    with pytest.raises(DataError, match="TonicLike has no attribute sensor_size.*sensor_size=\\(W, H, 2\\)"):
        from_tonic(no_sensor, T=2, cache_dir=tmp_path)
    with pytest.raises(DataError, match="is empty"):
        from_tonic(TonicLike(n=0), T=2, cache_dir=tmp_path)
    one_polarity = TonicLike(n=2)
    one_polarity.sensor_size = (20, 12, 1)
    with pytest.raises(DataError, match=r"TonicLike.sensor_size .*must be \[W, H\].*polarities, must be 2"):
        from_tonic(one_polarity, T=2, cache_dir=tmp_path)
    with pytest.raises(DataError, match="name must be a folder name"):
        from_tonic(TonicLike(n=2), T=2, name="../elsewhere", cache_dir=tmp_path)
    with pytest.raises(DataError, match="option T must be a positive integer"):
        from_tonic(TonicLike(n=2), T=0, cache_dir=tmp_path)
    with pytest.raises(DataError, match="option split_by must be one of number, time"):
        from_tonic(TonicLike(n=2), T=2, split_by="count", cache_dir=tmp_path)


def test_without_classes_the_wrapper_has_none(tmp_path):
    ds = TonicLike(n=2)
    del ds.classes
    wrapped = from_tonic(ds, T=2, cache_dir=tmp_path)
    assert not hasattr(wrapped, "classes") and not hasattr(wrapped, "num_classes") and wrapped.targets == [0, 1]


def test_the_default_cache_is_under_arlif_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ARLIF_CACHE_DIR", str(tmp_path))
    wrapped = from_tonic(TonicLike(n=2), T=2)
    assert wrapped.cache_folder.parent.parent == tmp_path / "tonic"


def test_augment_applies_to_the_frames_of_the_wrapped_split(tmp_path):
    ds = TonicLike(n=4)
    torch.manual_seed(0)
    wrapped = from_tonic(ds, T=2, augment="flip", cache_dir=tmp_path)
    plain = frames_of(ds.items[0][0], 2)
    seen = {torch.equal(wrapped[0][0], torch.from_numpy(plain)) for _ in range(20)}
    assert seen == {True, False}  # a horizontal flip half of the time
    assert from_tonic(ds, T=2, cache_dir=tmp_path).transform is None


def test_fit_trains_on_wrapped_splits(tmp_path):
    train = from_tonic(TonicLike(n=8), T=3, size=8, cache_dir=tmp_path)
    test = from_tonic(TonicLike(n=4, seed=1), T=3, size=8, cache_dir=tmp_path)
    torch.manual_seed(0)
    model = nn.Sequential(SeqToANN(nn.Flatten(), nn.Linear(2 * 8 * 8, 16)), arlif.LIF(), SeqToANN(nn.Linear(16, 2)))
    summary = arlif.fit(model, train, test, temporal=True, T=3, epochs=1, batch_size=4, out=str(tmp_path / "run"),
                        tensorboard=False, verbose=False)  # fmt: skip
    assert summary["epochs"] == 1 and 0 <= summary["final_acc"] <= 100


# --- tonic itself ----------------------------------------------------------------------------------


def _tonic_dataset(transform=None, n=4, seed=0):
    """A tonic.Dataset subclass (tonic's base class of its datasets) holding generated recordings."""

    class Recordings(tonic.Dataset):
        sensor_size = (20, 12, 2)
        classes = ["a", "b"]

        def __init__(self, save_to, transform=None):
            super().__init__(save_to, transform=transform)
            rng = np.random.default_rng(seed)
            self.data = [tonic_events(rng, 50 + 7 * i) for i in range(n)]
            self.targets = [i % 2 for i in range(n)]

        def __getitem__(self, i):
            events = self.data[i].copy()
            return (events if self.transform is None else self.transform(events)), self.targets[i]

        def __len__(self):
            return len(self.data)

    return Recordings


@needs_tonic
def test_a_tonic_dataset_with_a_tonic_transform(tmp_path):
    denoise = tonic.transforms.Denoise(filter_time=2_000)
    Recordings = _tonic_dataset()
    ds = Recordings(str(tmp_path / "data"), transform=denoise)
    wrapped = from_tonic(ds, T=4, cache_dir=tmp_path / "cache")
    assert wrapped.classes == ["a", "b"] and wrapped.targets == [0, 1, 0, 1]
    kept = 0
    for i in range(len(ds)):
        events = denoise(Recordings(str(tmp_path / "data")).data[i].copy())
        assert 0 < len(events) < len(ds.data[i])  # the transform dropped some events, not all
        kept += len(events)
        np.testing.assert_array_equal(wrapped[i][0].numpy(), frames_of(events, 4))
    assert wrapped[0][0].sum() > 0 and sum(float(wrapped[i][0].sum()) for i in range(len(ds))) == kept
    plain = from_tonic(Recordings(str(tmp_path / "data")), T=4, cache_dir=tmp_path / "cache")
    assert plain.cache_folder != wrapped.cache_folder  # the identity hashes the transformed events


@needs_tonic
@pytest.mark.parametrize("n, T", [(103, 4), (50, 7), (64, 8), (3, 5)])  # (3, 5): N < T, tonic frames nothing
def test_tonic_to_frame_drops_the_remainder_that_split_by_number_adds_to_the_last_frame(n, T):
    ev = tonic_events(np.random.default_rng(n), n)
    theirs = tonic.transforms.ToFrame(sensor_size=(20, 12, 2), n_event_bins=T)(ev.copy()).astype(np.int64)
    ours = event_counts(ev["x"], ev["y"], ev["p"], T, 12, 20)
    assert theirs.shape == ours.shape == (T, 2, 12, 20)
    np.testing.assert_array_equal(theirs[:-1], ours[:-1])  # frames 0..T-2 agree
    rest = ev[T * (n // T) :]  # the last n mod T events
    np.testing.assert_array_equal(ours[-1] - theirs[-1], event_counts(rest["x"], rest["y"], rest["p"], 1, 12, 20)[0])
    assert ours.sum() == n and theirs.sum() == n - n % T


@needs_tonic
def test_tonic_to_frame_by_time_bins_drops_the_events_from_t0_plus_T_windows_on():
    T = 4
    ev = tonic_events(np.random.default_rng(1), 103)
    theirs = tonic.transforms.ToFrame(sensor_size=(20, 12, 2), n_time_bins=T)(ev.copy()).astype(np.int64)
    ours = event_counts(ev["x"], ev["y"], ev["p"], T, 12, 20, t=ev["t"], split_by="time")
    t0, dt = ev["t"].min(), (ev["t"].max() - ev["t"].min()) // T
    late = ev[ev["t"] >= t0 + T * dt]  # here the last event, at t_max
    assert len(late) >= 1
    np.testing.assert_array_equal(theirs[:-1], ours[:-1])
    np.testing.assert_array_equal(ours[-1] - theirs[-1], event_counts(late["x"], late["y"], late["p"], 1, 12, 20)[0])
