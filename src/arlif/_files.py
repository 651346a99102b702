"""Small file-system helpers shared by the caches (frame cache in ``data``, kernel cache in ``ops``)."""

from __future__ import annotations

import os


def chmod_like_new_file(path, mode: int = 0o666) -> None:
    """Give ``path`` the permissions a newly created file would get under the process umask (``mode`` masked
    by it). ``tempfile.mkstemp`` makes 0600 files whatever the umask; a cache shared by a group must stay
    readable after its temporary file is renamed into place."""
    mask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(mask)
    os.chmod(path, mode & ~mask)
