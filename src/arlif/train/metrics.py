"""What a run records: one metrics line per epoch (written to metrics.jsonl and TensorBoard, and printed),
with the neurons' learned scalars, and the summary of the whole run."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from ..neurons import BaseNeuron
from .config import TrainConfig

# the metrics of an epoch that TensorBoard plots, beside the neurons' scalars
TENSORBOARD_SCALARS = ("train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr")


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


def epoch_metrics(
    epoch: int, sums: torch.Tensor, ev: dict, best: tuple[float, int], lr: float, epoch_s: float, model: nn.Module
) -> dict:
    """The metrics line of an epoch: ``sums`` are the training sums ``[loss·n, correct, n]`` over all
    processes, ``ev`` what :func:`arlif.train.evaluation.evaluate` returned, ``best`` the best test accuracy
    so far and its epoch, ``lr`` the rate the epoch trained with, ``model`` the (unwrapped) model."""
    n = max(sums[2].item(), 1)
    return {
        "epoch": epoch,
        "train_loss": sums[0].item() / n,
        "train_acc": 100 * sums[1].item() / n,
        "test_loss": ev["loss"],
        "test_acc": ev["acc"],
        "test_top5": ev["top5"],
        "best_acc": best[0],
        "best_epoch": best[1],
        "lr": lr,
        "epoch_s": epoch_s,
        "neuron_params": neuron_parameters(model),
    }


def epoch_line(metrics: dict, epochs: int) -> str:
    """The line printed after each epoch."""
    m = metrics
    return (
        f"epoch {m['epoch']:3d}/{epochs}  train loss {m['train_loss']:.4f} acc {m['train_acc']:6.2f}%  "
        f"test acc {m['test_acc']:6.2f}% (top5 {m['test_top5']:6.2f}%)  best {m['best_acc']:6.2f}% "
        f"@{m['best_epoch']}  lr {m['lr']:.4g}  {m['epoch_s']:.1f}s"
    )


def open_tensorboard(folder: Path):
    """A TensorBoard writer logging to ``folder``, or ``None`` (with a note) when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("note: tensorboard is not installed; logging to metrics.jsonl only", file=sys.stderr)
        return None
    return SummaryWriter(str(folder))


def log_tensorboard(writer, metrics: dict) -> None:
    epoch = metrics["epoch"]
    for key in TENSORBOARD_SCALARS:
        writer.add_scalar(key, metrics[key], epoch)
    for layer, vals in metrics["neuron_params"].items():
        for p, v in vals.items():
            writer.add_scalar(f"neuron/{layer}/{p}", v, epoch)
    writer.flush()


def run_summary(
    cfg: TrainConfig, best: tuple[float, int], last: dict, wall_s: float, params: int, skipped: int
) -> dict:
    """``summary.json`` of a run: ``best`` the best test accuracy and its epoch, ``last`` the metrics line of
    the final epoch, ``params`` the model's parameter count, ``skipped`` the recordings left out."""
    return {
        "best_acc": best[0],
        "final_acc": last.get("test_acc"),
        "best_epoch": best[1],
        "final_top5": last.get("test_top5"),
        "epochs": cfg.epochs,
        "wall_s": wall_s,
        "neuron": cfg.neuron,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "T": cfg.T,
        "seed": cfg.seed,
        "params": params,
        "skipped_recordings": skipped,
        "out": cfg.out,
        "reference_acc": cfg.reference_acc,
    }
