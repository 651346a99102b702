"""Where and how a run computes: the device, the seeds, deterministic algorithms and mixed precision.

Shared by the training loop, evaluation of checkpoints and the analysis commands.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ..errors import ConfigError
from . import distributed as D
from .config import TrainConfig


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str, dist: D.DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
        if dist.enabled:
            return torch.device("cuda", dist.local_rank)
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from exc


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic algorithms (bit-exact reruns and resumes), or the fastest cuDNN choices."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: float16 (with a grad scaler) on CUDA, bfloat16 on CPU, ``None`` when AMP is off
    (default: on for CUDA only)."""
    use_amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
    if not use_amp:
        return None
    return torch.float16 if device.type == "cuda" else torch.bfloat16
