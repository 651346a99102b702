"""Training: config, TET loss, checkpoints, distributed plumbing and the loop (joins models and data)."""

from .checkpoint import atomic_save, load_checkpoint
from .config import TrainConfig, load_config
from .evaluate import evaluate
from .loop import TrainingDiverged, train
from .loss import tet_loss
from .setup import build_model, encode

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
