"""Training: config, TET loss, checkpoints, distributed plumbing and the loop (joins models and data), run
from the config (:func:`train`, ``arlif train``) or on a model and datasets given in Python (:func:`fit`).

Names are loaded on first use, so the CLI can read the config schema (``arlif train --help``) without
importing torch.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY = {
    "TrainConfig": "config",
    "load_config": "config",
    "train": "loop",
    "fit": "fitting",
    "TrainingDiverged": ".errors",  # defined in arlif.errors: ".errors" is that module, relative to arlif.train
    "evaluate": "evaluation",
    "encode": "inputs",
    "build_model": "model",
    "tet_loss": "loss",
    "atomic_save": "checkpoint",
    "load_checkpoint": "checkpoint",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
