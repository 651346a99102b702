"""On-disk cache of DVS frames, so that events are parsed once and never again in later epochs.

One compressed ``.npz`` file per sample holds its integer event counts ``[T, 2, H, W]`` in the smallest
unsigned dtype that fits. The folder name carries everything that changes the frames (dataset, T, sensor
size, coordinate convention, cache format version), so frames for another T never collide.

Files are written to a temporary name in the same folder and renamed into place, so a reader sees either
a complete file or none. A run killed mid-write leaves only an ignored ``*.tmp`` file. A file that does not
load, or holds frames of the wrong shape, is treated as a miss: it is deleted and rebuilt with a warning.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

CACHE_FORMAT = 1


class CacheWriteError(DataError):
    """The cache folder cannot be written (a problem with the folder, not with the data)."""


def cache_folder(base, dataset: str, T: int, H: int, W: int, tag: str = "") -> Path:
    """``base/<dataset>/frames-T<T>-<H>x<W>[-<tag>]-v<format>``."""
    name = f"frames-T{int(T)}-{int(H)}x{int(W)}" + (f"-{tag}" if tag else "") + f"-v{CACHE_FORMAT}"
    return Path(base) / dataset / name


class FrameCache:
    """Load and store ``[T, 2, H, W]`` count frames under ``folder`` by a relative key (no suffix)."""

    def __init__(self, folder, shape: tuple[int, int, int, int]):
        self.folder = Path(folder)
        self.shape = tuple(int(s) for s in shape)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str) -> np.ndarray | None:
        """The cached counts, or ``None`` on a miss. A broken file is removed and reported as a miss."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = z["frames"]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        else:
            if frames.shape == self.shape:
                return frames
            problem = f"frames of shape {frames.shape}, expected {self.shape}"
        warnings.warn(f"frame cache {path} is {problem}; rebuilding it", stacklevel=2)
        path.unlink(missing_ok=True)
        return None

    def store(self, key: str, counts: np.ndarray) -> None:
        """Write ``counts`` atomically (temporary file in the same folder, then rename)."""
        if counts.shape != self.shape:
            raise ValueError(f"frames of shape {counts.shape} do not fit a cache of shape {self.shape}")
        path = self.path(key)
        top = int(counts.max()) if counts.size else 0
        dtype = next(d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if top <= np.iinfo(d).max)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise CacheWriteError(
                f"cannot write the frame cache in {path.parent}: {exc}. Choose a writable folder with "
                f"cache_dir=... (CLI: --cache-dir) or switch the cache off with cache=False"
            ) from None
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, frames=counts.astype(dtype, copy=False))
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):  # e.g. a full disk
                raise CacheWriteError(f"cannot write the frame cache file {path}: {exc}") from None
            raise
