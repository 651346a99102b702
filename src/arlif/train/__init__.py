"""Training: config, TET loss, checkpoints, distributed plumbing and the loop (joins models and data).

Names are loaded on first use, so the CLI can read the config schema (``arlif train --help``) without
importing torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "TrainConfig": "config",
    "load_config": "config",
    "train": "loop",
    "TrainingDiverged": "loop",
    "evaluate": "evaluation",
    "encode": "setup",
    "build_model": "setup",
    "tet_loss": "loss",
    "atomic_save": "checkpoint",
    "load_checkpoint": "checkpoint",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
