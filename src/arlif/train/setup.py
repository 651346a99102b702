"""Building blocks of a training run: device, seeds, data shape, model, optimiser, schedule, mixing.

Shared by the training loop, evaluation of checkpoints and the analysis commands.
"""

from __future__ import annotations

import math
import os
import random
import warnings

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from ..errors import ArlifError, ConfigError
from ..models import create_model
from ..neurons import BaseNeuron
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


def encode(x: torch.Tensor, T: int, temporal: bool) -> torch.Tensor:
    """Batch from the loader -> model input ``[T, B, ...]``: static samples ``[B, C, ...]`` (images, 1-D
    signals) are repeated at every step (direct encoding), sequences ``[B, T, C, ...]`` are made time-first."""
    if temporal:
        if x.dim() < 3 or x.shape[1] != T:
            raise ArlifError(f"expected frames [B, T={T}, ...] from the dataset, got shape {tuple(x.shape)}")
        return x.transpose(0, 1).contiguous()
    return x.unsqueeze(0).expand(T, *x.shape)


def neuron_parameters(model: nn.Module) -> dict[str, dict[str, float]]:
    """Learned scalars of every neuron layer, as each neuron declares them
    (:meth:`arlif.neurons.BaseNeuron.learned_scalars`): ``{layer: {"a": .., "tanh_a": .., "c": ..}}``."""
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, BaseNeuron):
            vals = mod.learned_scalars()
            if vals:
                out[name] = vals
    return out


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def build_mixer(cfg: TrainConfig, num_classes: int):
    """Per-batch MixUp/CutMix (torchvision v2) returning soft labels, or ``None`` when both are off."""
    from torchvision.transforms import v2

    ops = []
    if cfg.mixup_alpha > 0:
        ops.append(v2.MixUp(alpha=cfg.mixup_alpha, num_classes=num_classes))
    if cfg.cutmix_alpha > 0:
        ops.append(v2.CutMix(alpha=cfg.cutmix_alpha, num_classes=num_classes))
    if not ops:
        return None
    return ops[0] if len(ops) == 1 else v2.RandomChoice(ops)


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based) as a fraction of ``cfg.lr``: cosine annealing to 0 over
    all ``cfg.epochs`` epochs, stepped once per epoch, or constant."""
    if cfg.scheduler == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, cfg.epochs) / cfg.epochs))
    return 1.0


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer):
    # LambdaLR on a closed form, not CosineAnnealingLR: the latter keeps T_max in its saved state, so a run
    # resumed with more --epochs would follow the old curve and climb back up after its old end
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: lr_factor(cfg, epoch))


def restore_scheduler(sched, opt: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved scheduler state (epoch count only) and set the optimizer's learning rates from this run's
    schedule, which may span more epochs than the one that saved it."""
    sched.last_epoch = int(state["last_epoch"])
    for group, base, fn in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas):
        group["lr"] = base * fn(sched.last_epoch)
    sched._last_lr = [group["lr"] for group in opt.param_groups]


class EvalShard(Subset):
    """Every ``world``-th sample from ``rank``: an evaluation shard without the padding DistributedSampler
    adds, so summed counts cover the test set exactly once."""

    def __init__(self, dataset, rank: int, world: int):
        super().__init__(dataset, range(rank, len(dataset), world))


def data_shape(info, sample: torch.Tensor) -> dict:
    """What the model must know about the data; channels and size are read off a real sample, since
    dataset options (e.g. resizing DVS frames to 48×48) change them. A static sample is ``[C, *size]``, a
    temporal one ``[T, C, *size]``; ``size`` is (H, W) for images, (L,) for 1-D signals, () for one value
    per step."""
    channel_dim = 1 if info.temporal else 0
    return {
        "num_classes": info.num_classes,
        "in_channels": int(sample.shape[channel_dim]),
        "input_size": [int(s) for s in sample.shape[channel_dim + 1 :]],
        "temporal": bool(info.temporal),
    }


def build_model(cfg: TrainConfig, shape: dict) -> nn.Module:
    """The config's model for data of ``shape`` (see :func:`data_shape`)."""
    neuron_kwargs = {"backend": cfg.backend, **cfg.neuron_kwargs}
    return create_model(
        cfg.model,
        num_classes=shape["num_classes"],
        in_channels=shape["in_channels"],
        neuron=cfg.neuron,
        neuron_kwargs=neuron_kwargs,
        input_size=tuple(shape["input_size"]),
        **cfg.model_kwargs,
    )


def check_neuron(cfg: TrainConfig) -> None:
    """Make one neuron layer of the config now: a bad ``neuron`` or ``neuron_kwargs`` (decay 2, tau 0, a typo)
    then stops the run with the key named before any data are read or the run folder is made."""
    from ..neurons.factory import NEURON_PRESETS, neuron_factory

    where = f"'neuron_kwargs' (neuron {cfg.neuron!r})" if cfg.neuron.lower() in NEURON_PRESETS else "'neuron'"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an option the neuron drops is warned about when the model is built
        try:
            neuron_factory(cfg.neuron, **{"backend": cfg.backend, **cfg.neuron_kwargs})()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config key {where}: {exc}") from None


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
