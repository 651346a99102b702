"""The optimiser and the learning-rate schedule of a run, and restoring the schedule when it resumes."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig


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
