"""Training: config, TET loss, checkpoints, distributed plumbing and the loop (joins models and data)."""

from .checkpoint import atomic_save, load_checkpoint
from .config import TrainConfig, load_config
from .loop import TrainingDiverged, build_model, encode, evaluate, train
from .loss import tet_loss

__all__ = [
    "TrainConfig",
    "load_config",
    "train",
    "evaluate",
    "encode",
    "build_model",
    "tet_loss",
    "atomic_save",
    "load_checkpoint",
    "TrainingDiverged",
]
