"""The training loop: :func:`run_training`, driven by a :class:`TrainConfig`, on the datasets and model of a
:class:`Source`. :func:`train` (``arlif train``) builds them from the config's names; :func:`arlif.fit`
(:mod:`.fitting`) is given them as Python objects.

Shaped like the torchvision reference scripts: :func:`run_training` sets the run up (:mod:`.runtime`,
:mod:`.inputs`, :mod:`.model`, :mod:`.optim`), then each epoch runs :func:`train_one_epoch` and
:func:`arlif.train.evaluation.evaluate` and records the result (:mod:`.metrics`, :mod:`.checkpoint`,
:mod:`.run_folder`, which describes the run folder's files).

Randomness is re-seeded at the start of every epoch from ``(seed, epoch, rank)``, and the data order comes from a
sampler seeded the same way; so a run resumed from ``last.pt`` draws exactly the numbers the uninterrupted
run would have drawn, and in deterministic mode on the CPU it reproduces it bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, TrainingDiverged
from ..neurons import check_backends, reset_net
from . import distributed as D
from . import metrics as M
from . import run_folder
from .checkpoint import check_same_data, prepare_resume, restore_training_state, training_state
from .config import TrainConfig
from .evaluation import evaluate
from .inputs import Datasets, RunData, build_mixer, check_mixer_input, config_datasets, encode, run_data
from .loss import tet_loss
from .model import build_model, check_neuron, refuse_object_model
from .optim import make_optimizer, make_scheduler
from .runtime import amp_dtype, configure_determinism, resolve_device, seed_everything

__all__ = ["train", "run_training", "Source", "train_one_epoch", "TrainingDiverged", "prepare_resume"]


def train(
    cfg: TrainConfig, resume: str | Path | None = None, overrides: dict | None = None, verbose: bool = True
) -> dict:
    """Train and evaluate every epoch; returns the summary (also written to ``summary.json``).

    With ``resume`` (a run folder or checkpoint), ``cfg`` is ignored and the run continues from the
    checkpoint's config, with ``overrides`` applied where allowed. ``verbose=False`` prints nothing but
    errors (no progress bar, no epoch lines).
    """
    ckpt = None
    if resume is not None:
        cfg, ckpt = prepare_resume(resume, overrides)
    return run_training(cfg, ckpt, CONFIG_SOURCE, verbose)


@dataclass(frozen=True)
class Source:
    """Where a run's datasets and model come from: the config's names (:func:`train`) or objects given in
    Python (:func:`arlif.fit`)."""

    # (config, resuming) -> the splits; its checks run before the data's loaders and the model are made
    datasets: Callable[[TrainConfig, bool], Datasets]
    # (config, data shape) -> the model; called after the config's seed is set, so its initial weights are too
    model: Callable[[TrainConfig, dict], nn.Module]


def _config_datasets(cfg: TrainConfig, resuming: bool) -> Datasets:
    # the model and neuron options are checked before the data are read: they fail cheaper
    refuse_object_model(cfg)
    check_neuron(cfg)
    return config_datasets(cfg, resuming)


CONFIG_SOURCE = Source(_config_datasets, build_model)


def run_training(cfg: TrainConfig, ckpt: dict | None, source: Source, verbose: bool = True) -> dict:
    """The training run of :func:`train` and :func:`arlif.fit`: ``cfg`` (or the config of ``ckpt``, a
    checkpoint to continue, as :func:`prepare_resume` returns it) on the datasets and model of ``source``."""
    dist = D.init_distributed(cfg.device)
    try:
        return _train(cfg, ckpt, dist, source, verbose)
    finally:
        D.cleanup(dist)


@dataclass
class _Run:
    """What one process of a training run holds from setup to summary."""

    cfg: TrainConfig  # with ``out`` resolved
    dist: D.DistInfo
    device: torch.device
    data: RunData
    model: nn.Module  # wrapped in DistributedDataParallel when distributed
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp: torch.dtype | None
    mixer: Callable | None
    out: Path
    verbose: bool
    best: tuple[float, int] = (-1.0, 0)  # best test accuracy and its epoch
    writer: object = None  # TensorBoard, main process only

    @property
    def say(self) -> Callable:
        return print if (self.dist.is_main and self.verbose) else _quiet


def _quiet(*args, **kwargs) -> None:
    pass


def _train(cfg: TrainConfig, ckpt: dict | None, dist: D.DistInfo, source: Source, verbose: bool) -> dict:
    """One process of :func:`run_training`: set up, run the epochs, sum up."""
    t_start = time.time()
    run, start_epoch = _set_up(cfg, ckpt, dist, source, verbose)
    if dist.is_main:
        _open_run_folder(run, start_epoch)
    last = None
    for epoch in range(start_epoch + 1, run.cfg.epochs + 1):
        last = _run_epoch(run, epoch)
        if dist.is_main:
            _record_epoch(run, last)
        D.barrier(dist)
    if last is None:  # resumed a finished run
        last = ckpt["metrics"] if ckpt else {}
    return _finish(run, last, time.time() - t_start, resumed=ckpt is not None)


def _set_up(cfg: TrainConfig, ckpt: dict | None, dist: D.DistInfo, source: Source, verbose: bool) -> tuple[_Run, int]:
    """Everything a run needs, checked in the order that fails cheapest first; nothing is written yet.
    Returns the run and the epoch it starts after (that of ``ckpt``, or 0)."""
    device = resolve_device(cfg.device, dist)
    configure_determinism(cfg.deterministic, device)
    if cfg.batch_size % dist.world_size:
        raise ConfigError(f"batch_size {cfg.batch_size} must be divisible by the {dist.world_size} processes")
    seed_everything(cfg.seed)
    data = run_data(cfg, source.datasets(cfg, ckpt is not None), dist, device)
    check_mixer_input(cfg, data.shape)
    if ckpt is not None:
        check_same_data(ckpt, data.shape)
    model = source.model(cfg, data.shape).to(device)
    check_backends(model, device)
    if dist.enabled and cfg.sync_bn:
        if device.type != "cuda":
            raise ConfigError("sync_bn needs CUDA (PyTorch's SyncBatchNorm is GPU-only); turn it off on CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    opt = make_optimizer(cfg, model)
    sched = make_scheduler(cfg, opt)
    amp = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    mixer = build_mixer(cfg, data.shape["num_classes"])

    out = run_folder.location(cfg)
    cfg = replace(cfg, out=str(out))
    start_epoch, best = 0, (-1.0, 0)
    if ckpt is not None:
        start_epoch, best = restore_training_state(ckpt, model, opt, sched, scaler)
    elif dist.is_main:
        run_folder.refuse_existing_run(out)
    if dist.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    run = _Run(cfg, dist, device, data, model, opt, sched, scaler, amp, mixer, out, verbose, best)
    return run, start_epoch


def _open_run_folder(run: _Run, start_epoch: int) -> None:
    """Main process: make (or take over) the run folder, open TensorBoard, say what runs where."""
    cfg, out, skipped = run.cfg, run.out, run.data.skipped
    run_folder.prepare(out, cfg, start_epoch, skipped)
    if skipped:
        run.say(
            f"note: left out {len(skipped)} corrupt recording(s) ({sum(e[3] for e in skipped)} samples), as "
            f"skip_corrupt=true asks; listed in {out / run_folder.SKIPPED_FILE}"
        )
    if cfg.tensorboard:
        run.writer = M.open_tensorboard(out / run_folder.TENSORBOARD_DIR)
    run.say(
        f"run folder: {out}\n{cfg.model} + {cfg.neuron} on {cfg.dataset} (T={cfg.T}), device {run.device}"
        + (f", {run.dist.world_size} processes" if run.dist.enabled else "")
    )


def _run_epoch(run: _Run, epoch: int) -> dict:
    """Train one epoch, step the schedule, evaluate; returns the epoch's metrics line."""
    from tqdm import tqdm

    cfg, data = run.cfg, run.data
    # per epoch (exact resume) and per process (DDP ranks draw different augmentations and masks)
    seed_everything(cfg.seed * 100003 + epoch * 1009 + run.dist.rank)
    data.sampler.set_epoch(epoch)
    steps = len(data.train_loader)
    if cfg.max_steps_per_epoch is not None:
        steps = min(steps, cfg.max_steps_per_epoch)
    t0 = time.time()
    bar = tqdm(
        data.train_loader,
        total=steps,
        desc=f"epoch {epoch}/{cfg.epochs}",
        leave=False,
        disable=not (run.dist.is_main and run.verbose) or None,
        dynamic_ncols=True,
    )
    sums = train_one_epoch(
        run.model,
        bar,
        steps,
        run.opt,
        run.scaler,
        cfg,
        data.shape["temporal"],
        run.device,
        run.amp,
        run.mixer,
        where=lambda step: run_folder.divergence_note(run.out, epoch, step),
    )
    bar.close()
    lr = run.opt.param_groups[0]["lr"]  # the rate this epoch trained with (sched.step() sets the next one)
    run.sched.step()
    D.all_reduce_sum(sums, run.dist)
    train_time = time.time() - t0
    ev = evaluate(run.model, data.test_loader, cfg.T, data.shape["temporal"], run.device, run.dist, run.amp)
    if ev["acc"] > run.best[0]:
        run.best = (ev["acc"], epoch)
    return M.epoch_metrics(epoch, sums, ev, run.best, lr, train_time, D.unwrap(run.model))


def _record_epoch(run: _Run, metrics: dict) -> None:
    """Main process: the epoch's checkpoints, metrics line, TensorBoard scalars and printed line."""
    epoch = metrics["epoch"]
    state = training_state(
        D.unwrap(run.model),
        run.opt,
        run.sched,
        run.scaler,
        run.cfg,
        epoch,
        run.best,
        run.data.shape,
        run.amp is not None,
        metrics,
    )
    run_folder.save_epoch(run.out, state, metrics, best=run.best[1] == epoch)
    if run.writer is not None:
        M.log_tensorboard(run.writer, metrics)
    run.say(M.epoch_line(metrics, run.cfg.epochs), flush=True)


def _finish(run: _Run, last: dict, wall_s: float, resumed: bool) -> dict:
    """The run's summary; the main process writes ``summary.json`` and says how the run ended."""
    cfg = run.cfg
    params = sum(p.numel() for p in D.unwrap(run.model).parameters())
    summary = M.run_summary(cfg, run.best, last, wall_s, params, len(run.data.skipped))
    if run.dist.is_main:
        run_folder.write_summary(run.out, summary, resumed)
        if run.writer is not None:
            run.writer.close()
        best_acc, best_epoch = run.best
        run.say(
            f"done: best test accuracy {best_acc:.2f}% (epoch {best_epoch}), final {summary['final_acc']:.2f}% "
            f"(epoch {cfg.epochs}); {summary['wall_s']:.1f}s; run folder {run.out}"
        )
        if cfg.reference_acc:
            ref = cfg.reference_acc
            run.say(f"reference AR-LIF run of this recipe: best {ref.get('best')}%, final {ref.get('final')}%")
    return summary


def train_one_epoch(model, batches, steps, opt, scaler, cfg: TrainConfig, temporal, device, amp, mixer, where):
    """One epoch of BPTT over at most ``steps`` batches. Returns the local sums ``[loss·n, correct, n]``
    (float64); ``where(step)`` describes the position for the divergence error."""
    model.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for step, (x, y) in enumerate(batches, 1):
        if step > steps:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        target = y
        if mixer is not None:
            x, target = mixer(x, y)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            outputs = model(encode(x, cfg.T, temporal))
            loss = tet_loss(outputs.float(), target, cfg.mse_lambda, cfg.mse_target, cfg.label_smoothing)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss.item()} {where(step)}. Try a lower --lr, --grad-clip, or --amp false."
            )
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        reset_net(model)
        with torch.no_grad():
            pred = outputs.detach().float().mean(0).argmax(1)
            n = torch.tensor(float(len(y)), dtype=torch.float64, device=device)
            sums += torch.stack([loss.detach().double() * len(y), (pred == y).sum().double(), n])
        if step % 10 == 0 and hasattr(batches, "set_postfix"):
            batches.set_postfix(loss=f"{sums[0].item() / sums[2].item():.4f}")
    return sums
