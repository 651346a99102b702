"""Checkpoints written atomically: a crash during a write never destroys the previous checkpoint."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..errors import ArlifError


def atomic_save(obj, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, flushed, then renamed over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint written by the trainer; a run folder means its ``last.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise ArlifError(f"checkpoint {path} not found (give a run folder or its last.pt / best.pt)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a truncated or foreign file: name it rather than show the pickle error
        raise ArlifError(f"checkpoint {path} could not be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ArlifError(f"{path} is not an arlif checkpoint (no model/config entries)")
    ckpt["path"] = str(path)
    return ckpt
