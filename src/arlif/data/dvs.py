"""Event-camera datasets: CIFAR10-DVS (AEDAT 2.0) and DVS128 Gesture (AEDAT 3.1), and :class:`EventFrames`,
the machinery they share with the ``events`` dataset of your own recordings (:mod:`arlif.data.events`).

A sample is a float32 tensor ``[T, 2, H, W]`` of per-pixel event counts, integrated "split by number"
(:mod:`arlif.data.framing`) from the 128×128 sensor, then optionally resized to ``size × size``
(bilinear with antialiasing) and augmented. The integer frames at sensor resolution are cached on disk per
sample (:mod:`arlif.data.cache`), so events are parsed once; resizing and augmentation happen on the fly.

Corrupt recordings. A split checks every recording when it is built: its header (a few kilobytes read, see
:func:`~arlif.data.check_aedat2`), and whether its events failed to parse before (a marker beside the frame
cache, written when framing failed). Corrupt ones stop the build with a :class:`~arlif.errors.CorruptDatasetError`
listing them, or with ``skip_corrupt=True`` are left out and listed in ``skipped``. For AEDAT 2.0
(CIFAR10-DVS) the header check is complete; an AEDAT 3.1 file (DVS128 Gesture) cut short after its first
packet is found only when its events are read, which raises :class:`~arlif.errors.CorruptRecording` and
marks it, so that the next build (and ``arlif data prepare``, which reads everything) knows.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ..errors import CorruptDatasetError, CorruptRecording, DataError
from .aedat import check_aedat2, check_aedat31, read_aedat2, read_aedat31
from .cache import CorruptMarks, FrameCache, cache_folder, source_fingerprint
from .framing import event_counts
from .options import bool_option, positive_int
from .transforms import cifar10dvs_train_transform, gesture_train_transform

SENSOR = (128, 128)
CACHE_SUBDIR = "arlif-cache"
# a split with at least this many recordings shows a progress bar while their headers are checked
PROGRESS_FROM = 1000


@dataclass(frozen=True)
class EventSample:
    """One sample: the recording it comes from, its cache key, label and time window (µs, or ``None`` for
    the whole recording)."""

    source: Path
    key: str
    label: int
    window: tuple[int, int] | None = None


_WHAT = {"T": "frames per sample", "size": "pixels, the side of the resized frames"}


class EventFrames(Dataset):
    """Shared machinery: read a recording once, frame all its samples, cache them, serve tensors.

    Subclasses set their samples with :meth:`_set_samples`, then call :meth:`_check_recordings`, and
    implement :meth:`read_events`, :meth:`check_recording` and :meth:`recording_key`.
    """

    name = "events"
    cache_tag = ""
    cache_name: str | None = None  # the cache's folder under cache_dir, if not ``name``

    def __init__(
        self,
        root,
        train: bool,
        T: int,
        size,
        cache_dir,
        cache: bool,
        augment: bool,
        skip_corrupt: bool = False,
        sensor: tuple[int, int] = SENSOR,
        split_by: str = "number",
    ):
        self.T, self.train = positive_int(self.name, "T", T, _WHAT["T"]), train
        self.sensor, self.split_by = tuple(sensor), split_by  # (H, W); see framing.frame_index
        if size is not None:
            size = positive_int(self.name, "size", size, _WHAT["size"])
        self.size = None if size is None or (size, size) == self.sensor else size
        cache = bool_option(self.name, "cache", cache)
        self.skip_corrupt = bool_option(self.name, "skip_corrupt", skip_corrupt)
        self.skipped: list[tuple[Path, str, int]] = []  # (recording, problem, samples) left out
        self._set_samples([])
        # (a missing root is reported by the subclass's layout check, with the expected layout)
        base = Path(cache_dir) if cache_dir is not None else Path(root or ".") / CACHE_SUBDIR
        folder = cache_folder(base, self.cache_name or self.name, self.T, *self.sensor, tag=self.cache_tag)
        self.cache = FrameCache(folder, (self.T, 2, *self.sensor)) if cache else None
        # whether a recording is corrupt does not depend on T or the convention: one folder per dataset
        self.marks = CorruptMarks(base / self.name / "corrupt") if cache else None
        self.augment = bool_option(self.name, "augment", augment) and train
        self.transform = None

    # -- subclass interface -------------------------------------------------------------------------
    def read_events(self, source: Path):
        raise NotImplementedError

    def check_recording(self, source: Path) -> None:
        """Raise :class:`CorruptRecording` if the header of ``source`` does not parse (cheap: no events)."""
        raise NotImplementedError

    def recording_key(self, source: Path) -> str:
        """A name of ``source`` unique within the dataset, for its corrupt marker."""
        raise NotImplementedError

    # -- corrupt recordings -------------------------------------------------------------------------
    def corrupt_problem(self, source: Path) -> str | None:
        """What is wrong with ``source``, or ``None``: a marker of an earlier failed parse, else its header."""
        if self.marks is not None:
            problem = self.marks.get(self.recording_key(source), source)
            if problem is not None:
                return problem
        try:
            self.check_recording(source)
        except CorruptRecording as exc:
            return exc.problem
        return None

    def _check_recordings(self) -> None:
        """Check every recording of the split; raise :class:`CorruptDatasetError` listing the corrupt ones, or
        with ``skip_corrupt`` leave their samples out and list them in :attr:`skipped`."""
        from tqdm import tqdm

        sources = self.sources
        split = "train" if self.train else "test"
        bad = []
        bar = tqdm(
            sources,
            desc=f"{self.name} {split}: checking recordings",
            unit="file",
            leave=False,
            file=sys.stderr,
            disable=True if len(sources) < PROGRESS_FROM else None,  # None: only on a terminal
        )
        for source in bar:
            problem = self.corrupt_problem(source)
            if problem is not None:
                bad.append((source, problem))
        if not bad:
            return
        if not self.skip_corrupt:
            raise CorruptDatasetError(self.name, bad, len(sources))
        self.skipped = [(src, problem, len(self._by_source[src])) for src, problem in bad]
        dropped = {src for src, _ in bad}
        self._set_samples([s for s in self.samples if s.source not in dropped])

    # -- dataset ------------------------------------------------------------------------------------
    @property
    def targets(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.size, self.size) if self.size else self.sensor

    @property
    def sources(self) -> list[Path]:
        """The recordings behind this split, each listed once, in sample order."""
        return list(self._by_source)

    def _set_samples(self, samples: list[EventSample]) -> None:
        self.samples = samples
        # recording → its samples; with 10000 recordings a scan of all samples per recording would be slow
        self._by_source: dict[Path, list[EventSample]] = {}
        for s in samples:
            self._by_source.setdefault(s.source, []).append(s)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        counts = self.counts(i)
        frames = torch.from_numpy(counts.astype(np.float32))
        if self.size is not None:
            frames = TF.resize(frames, [self.size, self.size], antialias=True)
        if self.transform is not None:
            frames = self.transform(frames)
        return frames, self.samples[i].label

    def counts(self, i: int) -> np.ndarray:
        """Integer event counts ``[T, 2, H, W]`` at sensor size of sample ``i`` (from the cache when possible)."""
        sample = self.samples[i]
        if self.cache is not None:
            cached = self.cache.load(sample.key, self.fingerprint(sample))
            if cached is not None:
                return cached
        return self._frame_source(sample.source, only=None if self.cache is not None else sample)[sample.key]

    def fingerprint(self, sample: EventSample) -> str:
        """What the cached frames of ``sample`` must have been made from (see :func:`source_fingerprint`)."""
        try:
            return source_fingerprint(sample.source, sample.window)
        except OSError as exc:
            raise DataError(f"{self.name}: cannot read the recording {sample.source} ({exc})") from None

    def is_cached(self, sample: EventSample) -> bool:
        """Whether the cache holds ``sample``'s frames, made from the present version of its recording."""
        return self.cache is not None and self.cache.is_current(sample.key, self.fingerprint(sample))

    def prepare(self, source: Path) -> int:
        """Make sure every sample of ``source`` is cached; return how many had to be built."""
        if self.cache is None:
            raise DataError(f"{self.name}: the frame cache is switched off (cache=False), nothing to prepare")
        missing = {s.key for s in self._by_source[source] if self.cache.load(s.key, self.fingerprint(s)) is None}
        if missing:
            self._frame_source(source, only=None)
        return len(missing)

    def _frame_source(self, source: Path, only: EventSample | None) -> dict[str, np.ndarray]:
        """Parse ``source`` once and frame its samples (or just ``only``), caching them when enabled."""
        try:
            events = self.read_events(source)
        except CorruptRecording as exc:
            raise self._corrupt_now(source, exc.problem) from None
        return self._frame_events(source, events, [only] if only is not None else self._by_source[source])

    def _frame_events(self, source: Path, events, samples: list[EventSample]) -> dict[str, np.ndarray]:
        """Frame ``samples`` from ``events`` = (t, x, y, p) of their recording ``source``, caching them when
        enabled."""
        t, x, y, p = events
        out = {}
        for s in samples:
            if s.window is None:
                sel = slice(None)
            else:
                sel = (t >= s.window[0]) & (t < s.window[1])
            try:
                counts = event_counts(x[sel], y[sel], p[sel], self.T, *self.sensor, t=t[sel], split_by=self.split_by)
            except ValueError as exc:
                raise self._corrupt_now(source, f"corrupt events ({exc})") from None
            if self.cache is not None:
                self.cache.store(s.key, counts, self.fingerprint(s))
            out[s.key] = counts
        return out

    def _corrupt_now(self, source: Path, problem: str) -> CorruptRecording:
        """A recording that passed the header check and failed to parse: mark it, so that the next build of the
        dataset (with ``skip_corrupt``) knows, and say so."""
        where = ""
        if self.marks is not None and self.marks.put(self.recording_key(source), source, problem):
            where = f" (marker {self.marks.path(self.recording_key(source))})"
        if where:
            after = (
                f"It is now marked as corrupt{where}: datasets built from now on report it, and the dataset "
                f"option skip_corrupt=true leaves it out."
            )
        else:
            after = "The dataset option skip_corrupt=true leaves out only recordings known to be corrupt."
        return CorruptRecording(
            f"{source}: {problem}\n{self.name}: this recording's header is fine but its events do not parse. "
            f"{after} 'arlif data prepare' reads every recording ahead of training and lists all such files.",
            source,
            problem,
        )


# ---------------------------------------------------------------------------------------------------
# CIFAR10-DVS

CIFAR10DVS_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10DVS_WHERE = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (one zip per class)"
CIFAR10DVS_LAYOUT = (
    "<root>/<class>/cifar10_<class>_<i>.aedat   for the 10 classes airplane, automobile, bird, cat, deer,\n"
    "  dog, frog, horse, ship, truck and i = 0..999 (AEDAT 2.0 recordings of a 128×128 DVS)"
)
CIFAR10DVS_SPLITS = ("reference", "first90")
_INDEX = re.compile(r"_(\d+)\.aedat$")


def cifar10dvs_files(root, split: str, train: bool) -> list[tuple[Path, int]]:
    """``(path, label)`` of one split. ``split="reference"``: per class, files numbered 0-99 are the test
    set and 100-999 the training set (the reference runs' split). ``split="first90"``: per class, the first
    90% of the files in file-name (string) order train, the rest test."""
    if split not in CIFAR10DVS_SPLITS:
        raise DataError(f"cifar10dvs: unknown split {split!r}; choose one of {CIFAR10DVS_SPLITS}")
    if root is None or not Path(root).is_dir():
        raise DataError(
            f"cifar10dvs: data root {root} is not a folder. Expected layout:\n{CIFAR10DVS_LAYOUT}\n"
            f"Get it from {CIFAR10DVS_WHERE}"
        )
    out = []
    for label, cls in enumerate(CIFAR10DVS_CLASSES):
        folder = Path(root) / cls
        if not folder.is_dir():
            raise DataError(
                f"cifar10dvs: missing class folder {folder}. Expected layout:\n{CIFAR10DVS_LAYOUT}\n"
                f"Get it from {CIFAR10DVS_WHERE}"
            )
        names = sorted(p.name for p in folder.iterdir() if p.suffix == ".aedat")
        if not names:
            raise DataError(f"cifar10dvs: no .aedat files in {folder}. Expected layout:\n{CIFAR10DVS_LAYOUT}")
        if split == "reference":
            chosen = []
            for n in names:
                m = _INDEX.search(n)
                if m is None:
                    raise DataError(
                        f"cifar10dvs: cannot read the sample number of {folder / n}; the reference split "
                        f"needs names like cifar10_{cls}_<i>.aedat (or use split='first90')"
                    )
                if (int(m.group(1)) >= 100) == train:
                    chosen.append(n)
        else:
            cut = len(names) * 9 // 10
            chosen = names[:cut] if train else names[cut:]
        out += [(folder / n, label) for n in chosen]
    return out


class CIFAR10DVS(EventFrames):
    """CIFAR10-DVS, one split: ``(frames float32 [T, 2, S, S], label int)`` with ``S = size`` or 128.

    Options: ``split`` ("reference" or "first90", see :func:`cifar10dvs_files`), ``size`` (resize side,
    ``None`` keeps 128; the reference recipe uses 48), ``cache_dir`` (default ``<root>/arlif-cache``),
    ``cache`` (False parses events every time), ``augment`` (training split only: RandomCrop(size,
    padding 4), HFlip and one random op, identical for all T frames), ``convention`` of
    :func:`~arlif.data.read_aedat2`, ``skip_corrupt`` (leave out corrupt recordings, listed in ``skipped``,
    instead of refusing to build; see the module docstring).
    """

    name = "cifar10dvs"

    def __init__(
        self,
        root,
        train: bool = True,
        T: int | None = None,
        split: str = "reference",
        size: int | None = None,
        cache_dir=None,
        cache: bool = True,
        augment: bool = True,
        convention: str = "spikingjelly",
        skip_corrupt: bool = False,
    ):
        if convention not in ("spikingjelly", "raw"):
            raise DataError(f"cifar10dvs: unknown convention {convention!r}; choose 'spikingjelly' or 'raw'")
        self.convention = convention
        self.cache_tag = "" if convention == "spikingjelly" else convention
        super().__init__(root, train, T, size, cache_dir, cache, augment, skip_corrupt)
        self.split = split
        self.classes = list(CIFAR10DVS_CLASSES)
        files = cifar10dvs_files(root, split, train)
        self._set_samples([EventSample(p, self.recording_key(p), label) for p, label in files])
        self._check_recordings()
        if self.augment:
            self.transform = cifar10dvs_train_transform(self.input_size[0])

    def read_events(self, source: Path):
        return read_aedat2(source, convention=self.convention)

    def check_recording(self, source: Path) -> None:
        check_aedat2(source)

    def recording_key(self, source: Path) -> str:
        return f"{source.parent.name}/{source.stem}"


# ---------------------------------------------------------------------------------------------------
# DVS128 Gesture

GESTURE_CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll",
    "air_drums", "air_guitar", "other_gestures",
)  # fmt: skip
GESTURE_WHERE = "https://research.ibm.com/interactive/dvsgesture/ (DvsGesture.tar.gz)"
GESTURE_LAYOUT = (
    "<root>/ (or <root>/DvsGesture/) with\n"
    "  userNN_<lighting>.aedat          AEDAT 3.1 recordings\n"
    "  userNN_<lighting>_labels.csv     header, then class,startTime_usec,endTime_usec (class 1..11)\n"
    "  trials_to_train.txt, trials_to_test.txt   the .aedat file names of each split, one per line"
)


def _gesture_folder(root) -> Path:
    if root is None or not Path(root).is_dir():
        raise DataError(
            f"dvsgesture: data root {root} is not a folder. Expected layout:\n{GESTURE_LAYOUT}\n"
            f"Get it from {GESTURE_WHERE}"
        )
    for folder in (Path(root), Path(root) / "DvsGesture"):
        if (folder / "trials_to_train.txt").exists() or (folder / "trials_to_test.txt").exists():
            return folder
    raise DataError(
        f"dvsgesture: no trials_to_train.txt / trials_to_test.txt in {root}. Expected layout:\n"
        f"{GESTURE_LAYOUT}\nGet it from {GESTURE_WHERE}"
    )


def read_gesture_labels(path: Path) -> list[tuple[int, int, int]]:
    """``(label 0..10, start µs, end µs)`` rows of a ``*_labels.csv`` file (its first line is a header)."""
    if not path.exists():
        raise DataError(f"dvsgesture: missing labels file {path}. Expected layout:\n{GESTURE_LAYOUT}")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if n == 1 or not line.strip():
            continue
        try:
            cls, start, end = (int(v) for v in line.split(","))
        except ValueError:
            raise DataError(
                f"{path}, line {n}: expected 'class,startTime_usec,endTime_usec', found {line!r}"
            ) from None
        if not 1 <= cls <= len(GESTURE_CLASSES):
            raise DataError(f"{path}, line {n}: class {cls} is outside 1..{len(GESTURE_CLASSES)}")
        rows.append((cls - 1, start, end))
    return rows


def gesture_samples(root, train: bool) -> list[EventSample]:
    """One sample per labels row of every trial listed in ``trials_to_train.txt`` / ``trials_to_test.txt``;
    a sample holds the events with ``start <= t < end``."""
    folder = _gesture_folder(root)
    listing = folder / ("trials_to_train.txt" if train else "trials_to_test.txt")
    if not listing.exists():
        raise DataError(f"dvsgesture: missing {listing}. Expected layout:\n{GESTURE_LAYOUT}")
    samples = []
    for name in listing.read_text().split():
        source = folder / name
        if not source.exists():
            raise DataError(f"dvsgesture: {listing} lists {name}, which is missing from {folder}")
        labels = folder / f"{source.stem}_labels.csv"
        for row, (label, start, end) in enumerate(read_gesture_labels(labels)):
            samples.append(EventSample(source, f"{source.stem}/{row:03d}", label, (start, end)))
    return samples


class DVSGesture(EventFrames):
    """DVS128 Gesture, one split: ``(frames float32 [T, 2, S, S], label int)`` with ``S = size`` or 128.

    Options as :class:`CIFAR10DVS` (no ``split``: the dataset ships its own); training augmentation is one
    random op per sample (no flip, which would swap left- and right-hand gestures).
    """

    name = "dvsgesture"

    def __init__(
        self,
        root,
        train: bool = True,
        T: int | None = None,
        size: int | None = None,
        cache_dir=None,
        cache: bool = True,
        augment: bool = True,
        skip_corrupt: bool = False,
    ):
        super().__init__(root, train, T, size, cache_dir, cache, augment, skip_corrupt)
        self.classes = list(GESTURE_CLASSES)
        self._set_samples(gesture_samples(root, train))
        self._check_recordings()
        if self.augment:
            self.transform = gesture_train_transform()

    def read_events(self, source: Path):
        return read_aedat31(source)

    def check_recording(self, source: Path) -> None:
        check_aedat31(source)

    def recording_key(self, source: Path) -> str:
        return source.stem
