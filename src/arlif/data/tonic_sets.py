"""tonic datasets as arlif datasets: :func:`from_tonic` frames and caches the events of any dataset object with
tonic's interface, without importing tonic.

The interface (tonic's ``tonic.Dataset`` and every dataset of ``tonic.datasets``): an attribute
``sensor_size`` = (W, H, P), ``len(dataset)``, and items ``(events, target)`` where ``events`` is a structured
numpy array with the fields ``t, x, y, p`` and ``target`` an integer class. A tonic ``transform`` on the
dataset is applied by the dataset itself; its output is what gets framed and cached.

Framing and the frame cache are those of the ``events`` dataset (:class:`~arlif.data.dvs.EventFrames`). The
cache folder is ``<cache_dir>/<identity>/frames-T<T>-<H>x<W>[-time]-v1``, where the identity is the
dataset's class name, its length and a hash of three of its items (the first, middle and last, after its
transform), or the ``name`` you give. Each entry is one sample's counts at sensor size, with its label.
"""

from __future__ import annotations

import hashlib
import operator
import re
import sys
from pathlib import Path

import numpy as np

from .._files import cache_root
from ..errors import DataError
from .dvs import EventFrames, EventSample
from .events import FIELDS, check_events, sensor_option
from .framing import SPLIT_BY
from .options import bool_option, choice
from .transforms import EVENT_AUGMENTS, event_augment

NAME = "tonic"
_LABEL = "label:"  # an entry's fingerprint: the label of its sample
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_cache_dir() -> Path:
    """``$ARLIF_CACHE_DIR/tonic``, by default ``~/.cache/arlif/tonic``."""
    return cache_root() / NAME


class TonicFrames(EventFrames):
    """A tonic dataset, framed: ``(frames float32 [T, 2, H, W], label int)``. Made by :func:`from_tonic`, which
    documents the arguments and their defaults."""

    name = NAME

    def __init__(self, dataset, T, split_by, size, cache_dir, cache, augment, name, sensor_size):
        split_by = choice(NAME, "split_by", split_by, SPLIT_BY)
        augment = choice(NAME, "augment", augment, EVENT_AUGMENTS)
        cache = bool_option(NAME, "cache", cache)
        self.dataset = dataset
        self.dataset_name = type(dataset).__name__
        n = self._length(dataset)
        w, h = self._sensor(dataset, sensor_size)
        if name is not None and not (isinstance(name, str) and _SAFE_NAME.match(name)):
            raise DataError(f"{NAME}: name must be a folder name (letters, digits, '.', '_', '-'), got {name!r}")
        identity = self._identity(n, cache)
        self.cache_name = name or f"{self.dataset_name}-{n}-{identity}"
        self.cache_tag = "time" if split_by == "time" else ""
        base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        super().__init__(None, True, T, size, base, cache, augment != "none", sensor=(h, w), split_by=split_by)
        self.marks = None  # corrupt markers stamp files; the items here are not files
        self.train = bool(getattr(dataset, "train", True))
        if hasattr(dataset, "classes"):
            self.classes = list(dataset.classes)
        self.in_channels = 2
        self._build(n)
        if self.augment:
            self.transform = event_augment(augment, self.input_size)

    @property
    def num_classes(self) -> int:
        if hasattr(self, "classes"):
            return len(self.classes)
        return int(self.dataset.num_classes)  # AttributeError where neither is known, as for hasattr()

    @property
    def cache_folder(self) -> Path | None:
        """Where the frames are cached (``None`` with ``cache=False``)."""
        return None if self.cache is None else self.cache.folder

    # -- the dataset object -------------------------------------------------------------------------
    @staticmethod
    def _length(dataset) -> int:
        try:
            n = len(dataset)
        except TypeError:
            raise DataError(
                f"{NAME}: {type(dataset).__name__} has no len(); from_tonic takes a map-style dataset "
                f"(dataset[i] for i < len(dataset)), as tonic's datasets are"
            ) from None
        if n == 0:
            raise DataError(f"{NAME}: the dataset {type(dataset).__name__} is empty")
        return n

    def _sensor(self, dataset, given) -> tuple[int, int]:
        if given is not None:
            return sensor_option(given, f"{NAME}: sensor_size")
        if not hasattr(dataset, "sensor_size"):
            raise DataError(
                f"{NAME}: {self.dataset_name} has no attribute sensor_size (tonic's datasets have one, (W, H, P)); "
                f"give from_tonic(..., sensor_size=(W, H, 2))"
            )
        return sensor_option(
            tuple(dataset.sensor_size),
            f"{NAME}: {self.dataset_name}.sensor_size (give from_tonic(..., sensor_size=(W, H, 2)) to override it)",
        )

    def item(self, i: int):
        """``((t, x, y, p), label)`` of ``dataset[i]``, checked: fields, coordinates within the sensor, the
        label an integer."""
        where = f"{NAME}: {self.dataset_name}[{i}]"
        got = self.dataset[i]
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise DataError(f"{where} must be an (events, target) pair, got {type(got).__name__}")
        events, target = got
        names = getattr(getattr(events, "dtype", None), "names", None) or ()
        if not set(FIELDS) <= set(names):
            shape = getattr(events, "shape", None)
            what = f"fields {', '.join(names)}" if names else f"{type(events).__name__} of shape {shape}"
            raise DataError(
                f"{where}: the events must be a structured numpy array with fields t, x, y, p (tonic's "
                f"layout), got {what}. from_tonic frames the events itself: a transform that frames them "
                f"(tonic.transforms.ToFrame) does not belong on the dataset; events without y (audio, e.g. "
                f"SHD) have no 2-D frames"
            )
        try:
            label = operator.index(target)
        except TypeError:
            raise DataError(
                f"{where}: the target must be an integer class, got {type(target).__name__} {target!r}; give "
                f"the dataset a target_transform that maps it to the class index"
            ) from None
        classes = getattr(self, "classes", None)
        if label < 0 or (classes is not None and label >= len(classes)):
            raise DataError(f"{where}: target {label} is not a class index (0..{len(classes or ()) - 1})")
        fix = "Give from_tonic(..., sensor_size=(W, H, 2)) that holds them (a transform may change the sensor)"
        return check_events(where, *(events[f] for f in FIELDS), self.sensor, self.split_by, fix), label

    def _identity(self, n: int, cache: bool) -> str:
        """A hash of the first, middle and last items. With the cache on, the first is read twice: a random
        transform on the dataset would be frozen into the cache at its first draw, so it is refused."""
        hashes = {0: _item_hash(self.dataset[0])}
        if cache and _item_hash(self.dataset[0]) != hashes[0]:
            raise DataError(
                f"{NAME}: {self.dataset_name}[0] differs between two reads: the dataset's transform is random, "
                f"and the frame cache would keep one draw of it for good. Use cache=False (the events are "
                f"framed at every read), or take the random transform off the dataset and augment the frames "
                f"with augment='flip' (or 'dvsgesture', 'cifar10dvs')"
            )
        h = hashlib.sha1()
        for i in sorted({0, n // 2, n - 1}):
            h.update((hashes.get(i) or _item_hash(self.dataset[i])).encode())
        return h.hexdigest()[:10]

    # -- samples ------------------------------------------------------------------------------------
    def _build(self, n: int) -> None:
        """One sample per item; an item not yet cached is read, checked and (with the cache) framed now, so that
        a bad one stops the build and training finds every frame cached."""
        from tqdm import tqdm

        samples = []
        bar = tqdm(range(n), desc=f"{NAME} {self.dataset_name}: checking items", unit="item", leave=False,
                   file=sys.stderr, disable=True if n < 1000 else None)  # fmt: skip
        for i in bar:
            key = f"{i // 1000}/{i}"
            label = self._cached_label(key)
            if label is None:
                events, label = self.item(i)
                sample = EventSample(i, key, label)
                if self.cache is not None:
                    self._frame_events(i, events, [sample])
            else:
                sample = EventSample(i, key, label)
            samples.append(sample)
        self._set_samples(samples)

    def _cached_label(self, key: str) -> int | None:
        source = self.cache.stored_source(key) if self.cache is not None else None
        if source is None or not source.startswith(_LABEL):
            return None
        return int(source[len(_LABEL) :])

    # -- EventFrames interface ----------------------------------------------------------------------
    def read_events(self, source: int):
        return self.item(source)[0]

    def check_recording(self, source: int) -> None:
        self.item(source)

    def recording_key(self, source: int) -> str:
        return str(source)

    def fingerprint(self, sample: EventSample) -> str:
        return f"{_LABEL}{sample.label}"


def _item_hash(item) -> str:
    """A hash of one item: its events' fields (names, types, values) and its target."""
    h = hashlib.sha1()
    events, target = item if isinstance(item, (tuple, list)) and len(item) == 2 else (item, None)
    events = np.asarray(events)
    if events.dtype.names:
        for f in events.dtype.names:
            h.update(f"{f}:{events[f].dtype.str}".encode())
            h.update(np.ascontiguousarray(events[f]).tobytes())
    else:
        h.update(f"{events.dtype.str}{events.shape}".encode())
        h.update(np.ascontiguousarray(events).tobytes())
    h.update(repr(target).encode())
    return h.hexdigest()


def from_tonic(
    dataset,
    T: int,
    split_by: str = "number",
    size: int | None = None,
    cache_dir=None,
    cache: bool = True,
    augment: str = "none",
    name: str | None = None,
    sensor_size=None,
) -> TonicFrames:
    """Wrap a tonic dataset (or any object with its interface, see the module docstring) as a framed, cached
    arlif dataset of ``(frames float32 [T, 2, H, W], label int)``, for :func:`arlif.fit` (``temporal=True``)
    and any DataLoader.

    Args:
        dataset: one split of a tonic dataset, e.g. ``tonic.datasets.NMNIST(save_to, train=True)``.
        T: frames per sample.
        split_by: ``"number"`` (T frames of equal event counts, the last one taking the ``N mod T`` left
            over; tonic's ``ToFrame(n_event_bins=T)`` drops those) or ``"time"`` (equal time windows over
            the sample's span), see :func:`~arlif.data.frame_index`.
        size: resize side (bilinear, antialiased); ``None`` keeps the sensor's H×W.
        cache_dir: the cache's root, by default ``$ARLIF_CACHE_DIR/tonic`` (``~/.cache/arlif/tonic``).
        cache: ``False`` reads and frames the events at every access (needed for a random transform on the
            dataset, which is refused with the cache on).
        augment: ``none``, ``flip``, ``dvsgesture`` or ``cifar10dvs`` (:func:`~arlif.data.transforms.event_augment`),
            applied to the frames at every access; give it to the training split's wrapper only.
        name: the cache's folder under ``cache_dir`` instead of ``<class>-<len>-<hash>``; give one to keep
            two versions of a dataset apart when they agree in class, length and the three hashed items.
        sensor_size: (W, H) or (W, H, 2) instead of ``dataset.sensor_size`` (a transform that crops or
            downsamples changes the sensor).

    Building reads every item not yet cached, checks it (fields, coordinates, integer target) and caches its
    frames; a build finding everything cached reads only the first item (twice, with the cache on) and the
    middle and last ones, for the identity. The result has ``classes`` and ``num_classes`` when the dataset
    has ``classes``.
    """
    return TonicFrames(dataset, T, split_by, size, cache_dir, cache, augment, name, sensor_size)
