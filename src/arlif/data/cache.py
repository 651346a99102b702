"""On-disk cache of DVS frames, so that events are parsed once and never again in later epochs.

One compressed ``.npz`` file per sample holds its integer event counts ``[T, 2, H, W]`` in the smallest
unsigned dtype that fits. The folder name carries everything that changes the frames (dataset, T, sensor
size, coordinate convention, cache format version), so frames for another T never collide.

Each file also records a fingerprint of where its frames came from (the recording's size in bytes and the
sample's time window): a file whose fingerprint differs from the source's present one is stale (a recording
replaced by another of a different size, a labels file edited) and is rebuilt, silently, like a miss. Files
written before fingerprints existed have none and are served as they are.

Files are written to a temporary name in the same folder and renamed into place, so a reader sees either
a complete file or none. A run killed mid-write leaves only an ignored ``*.tmp`` file. A file that does not
load, or holds frames of the wrong shape, is treated as a miss: it is deleted and rebuilt with a warning.
Files get the permissions the umask allows (not ``mkstemp``'s 0600), so a shared cache folder stays readable
by other users.

Beside the frames, :class:`CorruptMarks` remembers recordings whose events failed to parse, so that the next
build of a dataset reports (or with ``skip_corrupt`` leaves out) them without reading them again.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._files import chmod_like_new_file
from ..errors import DataError

CACHE_FORMAT = 1
# what np.load raises on a missing, truncated or garbled .npz
_UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


class CacheWriteError(DataError):
    """The cache folder cannot be written (a problem with the folder, not with the data)."""


def source_fingerprint(source, window=None) -> str:
    """What identifies the frames of one sample: ``"<bytes>:<window>"`` of its recording. Not the modification
    time: a copy of the dataset (``cp -r``) or a re-extracted archive would invalidate a whole cache, and a
    read-only shared cache would stop working."""
    size = os.stat(source).st_size
    return f"{size}:{'all' if window is None else f'{window[0]}-{window[1]}'}"


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

    def load(self, key: str, fingerprint: str | None = None) -> np.ndarray | None:
        """The cached counts, or ``None`` on a miss. With ``fingerprint`` (:func:`source_fingerprint`), a file
        made from another version of the source is a miss too. A broken file is removed and reported as a
        miss."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = z["frames"]
                current = fingerprint is None or _matches(z, fingerprint)
        except _UNREADABLE as exc:
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        else:
            if frames.shape == self.shape:
                return frames if current else None  # stale: the caller rebuilds it and store() replaces it
            problem = f"frames of shape {frames.shape}, expected {self.shape}"
        warnings.warn(f"frame cache {path} is {problem}; rebuilding it", stacklevel=2)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise CacheWriteError(
                f"the frame cache file {path} is {problem} and cannot be removed ({exc}). Delete it, or "
                f"choose a cache folder you can write with cache_dir=... (CLI: --cache-dir)"
            ) from None
        return None

    def is_current(self, key: str, fingerprint: str) -> bool:
        """Whether ``key`` is cached from this version of its source (reads only the fingerprint)."""
        try:
            with np.load(self.path(key), allow_pickle=False) as z:
                return _matches(z, fingerprint)
        except _UNREADABLE:
            return False

    def stored_source(self, key: str) -> str | None:
        """The fingerprint ``key`` was stored with, or ``None`` when it is not cached (or unreadable, or from
        before fingerprints)."""
        try:
            with np.load(self.path(key), allow_pickle=False) as z:
                return str(z["source"]) if "source" in z.files else None
        except _UNREADABLE:
            return None

    def store(self, key: str, counts: np.ndarray, fingerprint: str = "") -> None:
        """Write ``counts`` (and the ``fingerprint`` of their source) atomically: a temporary file in the same
        folder, then a rename."""
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
                np.savez_compressed(f, frames=counts.astype(dtype, copy=False), source=np.array(fingerprint))
            chmod_like_new_file(tmp)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):  # e.g. a full disk
                raise CacheWriteError(f"cannot write the frame cache file {path}: {exc}") from None
            raise


def _matches(z, fingerprint: str) -> bool:
    # an entry from before fingerprints (no "source") is taken as current: rebuilding every old cache, or
    # failing on a read-only one, would cost more than the rare stale entry it could catch
    return "source" not in z.files or str(z["source"]) == fingerprint


class CorruptMarks:
    """One small JSON file per recording found corrupt when its events were parsed: ``folder/<key>.json`` with
    the recording's size and modification time, and the problem. A marker applies only while the recording
    is unchanged; unlike the frame cache it uses the modification time too, since a wrong "changed" costs
    only a new check of the file."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    @staticmethod
    def _stamp(source) -> str:
        st = os.stat(source)
        return f"{st.st_size}:{st.st_mtime_ns}"

    def get(self, key: str, source) -> str | None:
        """The problem recorded for ``source``, or ``None`` (no marker, or the recording changed since)."""
        path = self.path(key)
        if not path.exists():  # the common case: one stat
            return None
        try:
            mark = json.loads(path.read_text())
            if mark.get("source") == self._stamp(source):
                return str(mark["problem"])
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # unreadable or foreign: as if absent (the recording's header is checked anyway)
        return None

    def put(self, key: str, source, problem: str) -> bool:
        """Record ``problem`` for ``source``; ``False`` if the marker cannot be written (it is only a help)."""
        path = self.path(key)
        try:
            data = json.dumps({"source": self._stamp(source), "problem": problem})
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(data)
                chmod_like_new_file(tmp)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            warnings.warn(f"cannot record the corrupt recording {source} in {path} ({exc})", stacklevel=2)
            return False
        return True
