"""Training: config, TET loss, checkpoints, distributed plumbing and the loop (joins models and data).

Names are loaded on first use, so the CLI can read the config schema (``arlif train --help``) without
importing torch.
"""

from __future__ import annotations

import importlib
import importlib.util

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
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule (arlif.train.loss)
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
