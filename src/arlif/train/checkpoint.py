"""Checkpoints: what a training checkpoint holds, written atomically (a crash during a write never destroys
the previous checkpoint), loaded with clear errors, and restored to continue a run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..errors import ArlifError, ConfigError
from .config import RESUMABLE_OVERRIDES, TrainConfig, from_dict
from .optim import restore_scheduler


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


# How to get a checkpoint, for the errors below.
HOW_TO_GET = "checkpoints are the last.pt / best.pt that 'arlif train' writes in its run folder (or pass the folder)"
# torch.save writes a zip archive; files from torch < 1.6 (legacy format) start with a pickle protocol byte
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"
# entries the trainer writes that loading a model needs
REQUIRED = ("model", "config")


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint written by the trainer; a run folder means its ``last.pt``. Anything else (a missing
    file, a folder without ``last.pt``, a text file, a truncated file, a torch file of another program) raises
    :class:`ArlifError` naming the file, the problem and what to pass instead."""
    path = Path(path)
    if path.is_dir():
        if not (path / "last.pt").is_file():
            raise ArlifError(
                f"{path} is a folder without last.pt, so not a run folder of 'arlif train' (or its first epoch "
                f"has not finished yet); {HOW_TO_GET}"
            )
        path = path / "last.pt"
    if not path.exists():
        raise ArlifError(f"checkpoint {path} not found; {HOW_TO_GET}")
    if not path.is_file():
        raise ArlifError(f"checkpoint {path} is not a regular file; {HOW_TO_GET}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ArlifError(f"checkpoint {path} could not be read ({exc})") from None
    # Check the format first: torch.load on a text file fails deep in the unpickler ("Memo value not found")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTO)):
        what = "an empty file" if not head else f"it starts with {head!r}"
        raise ArlifError(f"{path} is not an arlif checkpoint (not a file written by torch.save: {what}); {HOW_TO_GET}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a truncated or damaged file: name it rather than show the unpickler's error
        raise ArlifError(
            f"checkpoint {path} could not be read: the torch.save file is damaged or truncated (an interrupted "
            f"copy?) or not an arlif checkpoint ({type(exc).__name__}: {exc}); {HOW_TO_GET}"
        ) from exc
    if not isinstance(ckpt, dict):
        raise ArlifError(
            f"{path} is not an arlif checkpoint (torch.save file of a {type(ckpt).__name__}, not the trainer's "
            f"dict); {HOW_TO_GET}"
        )
    missing = [k for k in REQUIRED if not isinstance(ckpt.get(k), dict)]
    if missing:
        keys = ", ".join(map(repr, list(ckpt)[:8])) or "none"
        raise ArlifError(
            f"{path} is not an arlif checkpoint (no {'/'.join(missing)} entries; its keys: {keys}); {HOW_TO_GET}"
        )
    ckpt["path"] = str(path)
    return ckpt


def training_state(
    model, opt, sched, scaler, cfg: TrainConfig, epoch: int, best: tuple[float, int], shape: dict, amp: bool, metrics
) -> dict:
    """The checkpoint of epoch ``epoch``: everything to continue the run (weights, optimiser, schedule, grad
    scaler, best test accuracy and its epoch, config) and to rebuild its model (``data_shape``). ``model`` is
    the unwrapped model; ``amp``: whether the run trains under autocast, resolved on its device, so that
    evaluation can follow it; ``metrics`` the epoch's metrics line."""
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "best_acc": best[0],
        "best_epoch": best[1],
        "config": cfg.to_dict(),
        "data_shape": shape,
        "amp": amp,
        "metrics": metrics,
        "arlif_version": _version(),
    }


def restore_training_state(ckpt: dict, model, opt, sched, scaler) -> tuple[int, tuple[float, int]]:
    """Load a checkpoint of :func:`training_state` into a run's objects; returns its epoch and its best test
    accuracy and that epoch."""
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    restore_scheduler(sched, opt, ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    return ckpt["epoch"], (ckpt["best_acc"], ckpt["best_epoch"])


def check_same_data(ckpt: dict, shape: dict) -> None:
    """A resumed run must go on with data like those it trained on: the classes, channels, sample size and
    encoding of its checkpoint's ``data_shape``."""
    saved = ckpt.get("data_shape")
    if not isinstance(saved, dict):
        return
    differ = sorted(k for k in saved.keys() & shape.keys() if saved[k] != shape[k])
    if differ:
        details = ", ".join(f"{k} {saved[k]} in the checkpoint, {shape[k]} now" for k in differ)
        raise ConfigError(f"cannot resume {ckpt['path']} on these data ({details}); give the run's datasets")


def prepare_resume(resume: str | Path, overrides: dict | None) -> tuple[TrainConfig, dict]:
    """Config and checkpoint of a run to continue; only some keys may change (e.g. more ``epochs``)."""
    ckpt = load_checkpoint(resume)
    values = dict(ckpt["config"])
    for key, value in (overrides or {}).items():
        if key not in RESUMABLE_OVERRIDES and values.get(key) != value:
            raise ConfigError(
                f"cannot change {key!r} when resuming (it would not continue the same run); "
                f"keys that may change: {sorted(RESUMABLE_OVERRIDES)}"
            )
        values[key] = value
    # the run continues in the folder its checkpoint is in now (it may have been moved), unless told otherwise
    values["out"] = (overrides or {}).get("out") or str(Path(ckpt["path"]).parent)
    return from_dict(values, f"checkpoint {ckpt['path']}"), ckpt


def _version() -> str:
    from .. import __version__

    return __version__
