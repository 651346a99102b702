"""Small file-system helpers shared by the caches (frame cache in ``data``, kernel cache in ``ops``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The root of every arlif cache (kernels, MNIST-1D, tonic frames): ``$ARLIF_CACHE_DIR``, by default
    ``~/.cache/arlif``."""
    return Path(os.environ.get("ARLIF_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "arlif"))


def chmod_like_new_file(path, mode: int = 0o666) -> None:
    """Give ``path`` the permissions a newly created file would get under the process umask (``mode`` masked
    by it). ``tempfile.mkstemp`` makes 0600 files whatever the umask; a cache shared by a group must stay
    readable after its temporary file is renamed into place."""
    mask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(mask)
    os.chmod(path, mode & ~mask)
