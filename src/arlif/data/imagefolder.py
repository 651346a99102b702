"""Your own images: ``<root>/{train,test|val}/<class>/<image>`` (:mod:`arlif.data.folders`), read with
torchvision's ``ImageFolder``.

A sample is float32 ``[C, H, W]``: C = 3 (RGB; grayscale images get 3 equal channels) or 1 with
``grayscale=True``. Without ``size`` every image must have the same size, which is checked when the split is
built (each image's header is read); with ``size`` the shorter side is resized to ``size`` and the centre
cropped to ``size × size``. Pixels are scaled to [0, 1] and normalised per channel with ``mean`` / ``std``,
by default (``"auto"``) those of the training split, computed once and kept in a small JSON file
(:class:`ImageStats`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder
from torchvision.transforms.v2 import functional as TF

from .._files import chmod_like_new_file
from ..errors import DataError
from .folders import cache_base, list_split
from .options import bool_option, choice, positive_int
from .transforms import IMAGE_AUGMENTS, image_folder_transform, image_geometry

NAME = "imagefolder"
LAYOUT = (
    "<root>/train/<class>/<image>   training images, one folder per class (any depth below it)\n"
    "<root>/test/<class>/<image>    test images (or <root>/val/<class>/<image>), the same class names\n"
    "  images: .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp"
)
SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # ImageFolder's
STATS_FORMAT = 1
# a split with at least this many images shows a progress bar while their headers are read
PROGRESS_FROM = 2000


def open_image(path, mode: str) -> Image.Image:
    """The image at ``path`` in PIL ``mode`` ("RGB" or "L"), or a DataError naming the file."""
    try:
        with Image.open(path) as im:
            return im.convert(mode)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{NAME}: cannot decode the image {path} ({exc}); replace or remove it") from None


def _progress(items, desc: str, threshold: int):
    from tqdm import tqdm

    disable = True if len(items) < threshold else None  # None: only on a terminal
    return tqdm(items, desc=desc, unit="image", leave=False, file=sys.stderr, disable=disable)


def image_size(paths: list[Path], folder: Path) -> tuple[int, int]:
    """The common ``(H, W)`` of ``paths`` (reading each header only); a DataError if they differ."""
    first: dict[tuple[int, int], Path] = {}
    for path in _progress(paths, f"{NAME} {folder.name}: reading image sizes", PROGRESS_FROM):
        try:
            with Image.open(path) as im:
                w, h = im.size
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"{NAME}: cannot read the image {path} ({exc}); replace or remove it") from None
        first.setdefault((h, w), path)
        if len(first) > 1:
            (a, pa), (b, pb) = first.items()
            raise DataError(
                f"{NAME}: images of different sizes in {folder}: {pa} is {a[0]}×{a[1]} (H×W) but {pb} is "
                f"{b[0]}×{b[1]}. Give the dataset option size=N to resize every image to N×N (the shorter side "
                f"to N, then the centre cropped), e.g. --dataset-options '{{size: {min(a + b)}}}'"
            )
    (size,) = first
    return size


class ImageStats:
    """Per-channel mean and std of the training images (after resizing, scaled to [0, 1]), computed once.

    Kept in ``<base>/imagefolder/mean-std-<size>-<rgb|gray>.json`` (``base``: :func:`~arlif.data.folders.cache_base`)
    with a digest of the training files (their paths and sizes in bytes): images added, removed or replaced by
    files of another size make the values be computed again. A folder that cannot be written is a warning;
    the values are then computed again by the next process.
    """

    _memo: dict[tuple[str, str], tuple[list[float], list[float]]] = {}

    def __init__(self, base: Path, size: int | None, grayscale: bool):
        self.size, self.mode = size, "L" if grayscale else "RGB"
        name = f"mean-std-{size or 'native'}-{'gray' if grayscale else 'rgb'}.json"
        self.path = Path(base) / NAME / name

    @staticmethod
    def digest(paths: list[Path], folder: Path) -> str:
        h = hashlib.sha1()
        for path in paths:
            h.update(f"{path.relative_to(folder)}\0{os.stat(path).st_size}\n".encode())
        return h.hexdigest()

    def get(self, paths: list[Path], folder: Path) -> tuple[list[float], list[float]]:
        digest = self.digest(paths, folder)
        key = (str(self.path), digest)
        if key in self._memo:
            return self._memo[key]
        stats = self._load(digest)
        if stats is None:
            stats = self.compute(paths, folder)
            self._store(digest, *stats)
        self._memo[key] = stats
        return stats

    def compute(self, paths: list[Path], folder: Path) -> tuple[list[float], list[float]]:
        """Exact mean and (population) std over every pixel of every image, per channel, in float64."""
        total = sq = None
        count = 0
        geometry = image_geometry(self.size)
        for path in _progress(paths, f"{NAME}: mean and std of {folder}", 100):
            x = TF.pil_to_tensor(open_image(path, self.mode))
            for op in geometry:
                x = op(x)
            x = x.double().div_(255).flatten(1)
            s, q = x.sum(1), (x * x).sum(1)
            total, sq = (s, q) if total is None else (total + s, sq + q)
            count += x.shape[1]
        mean = total / count
        std = (sq / count - mean * mean).clamp_min(0).sqrt()
        return mean.tolist(), std.tolist()

    def _load(self, digest: str):
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") == STATS_FORMAT and data.get("files") == digest:
                return [float(v) for v in data["mean"]], [float(v) for v in data["std"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing, unreadable or foreign: computed again
        return None

    def _store(self, digest: str, mean: list[float], std: list[float]) -> None:
        data = {"format": STATS_FORMAT, "size": self.size, "mode": self.mode, "files": digest, "mean": mean, "std": std}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=1)
                chmod_like_new_file(tmp)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            warnings.warn(
                f"{NAME}: cannot keep the mean and std in {self.path} ({exc}); they are computed again next time "
                f"(choose a writable folder with the dataset option cache_dir)",
                stacklevel=3,
            )


def _channel_values(option: str, value, channels: int, positive: bool) -> list[float] | None:
    """A mean/std option given by the user: one number for every channel, or one per channel."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if ok and len(values) == 1:
        values = values * channels
    if not ok or len(values) != channels or (positive and min(values) <= 0):
        kind = "positive numbers" if positive else "numbers"
        raise DataError(
            f"{NAME}: option {option} must be 'auto', null, one number or {channels} {kind} (one per channel), "
            f"got {value!r}"
        )
    return [float(v) for v in values]


class ImageFolderSet(ImageFolder):
    """One split of an image folder: ``(image float32 [C, H, W], label int)``.

    Options: ``size`` (resize side, see the module docstring), ``mean`` / ``std`` (``"auto"``: the training
    split's, see :class:`ImageStats`; a number or a list with one value per channel; ``None``: 0 / 1, that is
    pixels in [0, 1]), ``augment`` (training split only: ``none``, ``flip``, ``randaugment``,
    ``trivialaugment``, see :func:`~arlif.data.transforms.image_augment`), ``grayscale`` (one channel),
    ``cache_dir`` (where the mean/std file goes, default ``<root>/arlif-cache``).
    """

    def __init__(
        self,
        root,
        train: bool = True,
        size: int | None = None,
        mean="auto",
        std="auto",
        augment: str = "none",
        grayscale: bool = False,
        cache_dir=None,
    ):
        self.train = train
        self.cache_path = None  # the mean/std file, when they are computed
        self.size = None if size is None else positive_int(NAME, "size", size, "pixels, the side of the images")
        self.grayscale = bool_option(NAME, "grayscale", grayscale)
        augment = choice(NAME, "augment", augment, IMAGE_AUGMENTS)
        folder, classes, samples = list_split(NAME, root, train, SUFFIXES, LAYOUT)
        self._listed = classes, samples
        mode = "L" if self.grayscale else "RGB"
        super().__init__(str(folder), loader=functools.partial(open_image, mode=mode), allow_empty=True)
        self.in_channels = 1 if self.grayscale else 3
        paths = [Path(p) for p, _ in self.samples]
        self.input_size = (self.size, self.size) if self.size else image_size(paths, folder)
        mean, std = self._mean_std(root, mean, std, cache_dir)
        self.mean, self.std = mean, std
        self.transform = image_folder_transform(self.size, augment if train else "none", mean, std)

    def find_classes(self, directory):
        # ImageFolder's own listing would number a test split by its own folders; list_split numbers both
        # splits by the training split's classes (and has checked the folders)
        classes, _ = self._listed
        return classes, {c: i for i, c in enumerate(classes)}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _mean_std(self, root, mean, std, cache_dir) -> tuple[list[float], list[float]]:
        c = self.in_channels
        given = {}
        for option, value, neutral in (("mean", mean, 0.0), ("std", std, 1.0)):
            if isinstance(value, str) and value.lower() == "auto":
                continue
            given[option] = [neutral] * c if value is None else _channel_values(option, value, c, option == "std")
        if len(given) < 2:
            if self.train:
                folder, samples = Path(self.root), [Path(p) for p, _ in self.samples]
            else:  # the training split's values
                folder, _, listed = list_split(NAME, root, True, SUFFIXES, LAYOUT)
                samples = [p for p, _ in listed]
            stats = ImageStats(cache_base(root, cache_dir), self.size, self.grayscale)
            self.cache_path = stats.path
            auto = dict(zip(("mean", "std"), stats.get(samples, folder)))
            auto["std"] = [max(s, 1e-6) for s in auto["std"]]  # a constant channel: no division by zero
            given = {**auto, **given}
        return given["mean"], given["std"]

    def __repr__(self) -> str:
        return (
            f"ImageFolderSet({self.root}, {len(self)} images, {self.num_classes} classes, "
            f"[{self.in_channels}, {self.input_size[0]}, {self.input_size[1]}])"
        )
