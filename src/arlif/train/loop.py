"""The training loop: one function, :func:`train`, driven by a :class:`TrainConfig`.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON line per epoch),
``summary.json``, ``last.pt`` (every epoch) and ``best.pt`` (best test accuracy), and ``tb/`` (TensorBoard).

Randomness is re-seeded at the start of every epoch from ``(seed, epoch, rank)``, and the data order comes from a
sampler seeded the same way; so a run resumed from ``last.pt`` draws exactly the numbers the uninterrupted
run would have drawn, and in deterministic mode on the CPU it reproduces it bit for bit.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..data import build_datasets
from ..errors import ArlifError, ConfigError, CorruptDatasetError
from ..neurons import check_backends, reset_net
from . import distributed as D
from .checkpoint import atomic_save, load_checkpoint
from .config import RESUMABLE_OVERRIDES, TrainConfig, from_dict, save_config
from .evaluation import evaluate
from .loss import tet_loss
from .setup import (
    EvalShard,
    amp_dtype,
    build_mixer,
    build_model,
    check_neuron,
    configure_determinism,
    data_shape,
    encode,
    make_optimizer,
    make_scheduler,
    neuron_parameters,
    resolve_device,
    restore_scheduler,
    seed_everything,
    unwrap,
)


class TrainingDiverged(ArlifError):
    """The loss became NaN or infinite."""


# ---- training -------------------------------------------------------------------------------------------
def _out_dir(cfg: TrainConfig) -> Path:
    if cfg.out:
        return Path(cfg.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.name}-{cfg.neuron}-{stamp}"


def _trim_metrics(path: Path, last_epoch: int) -> None:
    """Drop lines for epochs after the checkpoint (written by a run killed before its next checkpoint)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= last_epoch]
    path.write_text("".join(ln + "\n" for ln in keep))


def prepare_resume(resume: str | Path, overrides: dict | None) -> tuple[TrainConfig, dict]:
    """Config and checkpoint of a run to continue; only some keys may change (e.g. more ``epochs``)."""
    ckpt = load_checkpoint(resume)
    values = dict(ckpt["config"])
    for key, value in (overrides or {}).items():
        if key not in RESUMABLE_OVERRIDES and values.get(key) != value:
            raise ConfigError(
                f"cannot change {key!r} when resuming (it would not continue the same run); "
                f"keys that may change: {sorted(RESUMABLE_OVERRIDES)}"
            )
        values[key] = value
    # the run continues in the folder its checkpoint is in now (it may have been moved), unless told otherwise
    values["out"] = (overrides or {}).get("out") or str(Path(ckpt["path"]).parent)
    return from_dict(values, f"checkpoint {ckpt['path']}"), ckpt


def train(
    cfg: TrainConfig, resume: str | Path | None = None, overrides: dict | None = None, verbose: bool = True
) -> dict:
    """Train and evaluate every epoch; returns the summary (also written to ``summary.json``).

    With ``resume`` (a run folder or checkpoint), ``cfg`` is ignored and the run continues from the
    checkpoint's config, with ``overrides`` applied where allowed. ``verbose=False`` prints nothing but
    errors (no progress bar, no epoch lines).
    """
    from tqdm import tqdm

    ckpt = None
    if resume is not None:
        cfg, ckpt = prepare_resume(resume, overrides)
    dist = D.init_distributed(cfg.device)
    try:
        return _train(cfg, ckpt, dist, tqdm, verbose)
    finally:
        D.cleanup(dist)


def _train(cfg: TrainConfig, ckpt: dict | None, dist: D.DistInfo, tqdm, verbose: bool = True) -> dict:
    t_start = time.time()
    main = dist.is_main
    say = print if (main and verbose) else (lambda *a, **k: None)
    device = resolve_device(cfg.device, dist)
    configure_determinism(cfg.deterministic, device)
    if cfg.batch_size % dist.world_size:
        raise ConfigError(f"batch_size {cfg.batch_size} must be divisible by the {dist.world_size} processes")
    seed_everything(cfg.seed)
    check_neuron(cfg)

    try:
        train_set, test_set, info = build_datasets(cfg.dataset, cfg.data_root, cfg.T, **cfg.dataset_options)
    except CorruptDatasetError as exc:  # before the run folder is made: name the exact flag that skips them
        raise exc.with_hint(_skip_corrupt_hint(cfg, resuming=ckpt is not None)) from None
    # (split, recording, problem, samples) of the recordings a DVS set left out with skip_corrupt
    splits = (("train", train_set), ("test", test_set))
    skipped = [(split, *entry) for split, ds in splits for entry in getattr(ds, "skipped", ())]
    if len(train_set) == 0 or len(test_set) == 0:
        raise ArlifError(f"dataset {cfg.dataset!r} has an empty split ({len(train_set)} train, {len(test_set)} test)")
    local_bs = cfg.batch_size // dist.world_size
    sampler = DistributedSampler(
        train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    loader_kw = dict(num_workers=cfg.workers, pin_memory=device.type == "cuda")
    # training workers are not persistent: a worker's RNG is seeded when it starts, and only workers started
    # each epoch (after the per-epoch seed below) draw the augmentations an uninterrupted run would draw
    train_loader = DataLoader(train_set, batch_size=local_bs, sampler=sampler, **loader_kw)
    test_loader = DataLoader(
        EvalShard(test_set, dist.rank, dist.world_size),
        batch_size=(cfg.eval_batch_size or cfg.batch_size),
        persistent_workers=cfg.workers > 0,  # evaluation draws no random numbers
        **loader_kw,
    )

    shape = data_shape(info, train_set[0][0])
    model = build_model(cfg, shape).to(device)
    check_backends(model, device)
    if dist.enabled and cfg.sync_bn:
        if device.type != "cuda":
            raise ConfigError("sync_bn needs CUDA (PyTorch's SyncBatchNorm is GPU-only); turn it off on CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    opt = make_optimizer(cfg, model)
    sched = make_scheduler(cfg, opt)
    amp = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    mixer = build_mixer(cfg, info.num_classes)

    out = _out_dir(cfg)
    cfg = replace(cfg, out=str(out))
    start_epoch, best_acc, best_epoch = 0, -1.0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        restore_scheduler(sched, opt, ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, best_acc, best_epoch = ckpt["epoch"], ckpt["best_acc"], ckpt["best_epoch"]
    elif main and (out / "last.pt").exists():
        raise ConfigError(
            f"run folder {out} already holds a checkpoint; continue it with --resume {out} or choose another --out"
        )
    if dist.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    metrics_path = out / "metrics.jsonl"
    writer = None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        _trim_metrics(metrics_path, start_epoch)
        _write_skipped(out / SKIPPED_FILE, skipped)
        if skipped:
            say(
                f"note: left out {len(skipped)} corrupt recording(s) ({sum(e[3] for e in skipped)} samples), as "
                f"skip_corrupt=true asks; listed in {out / SKIPPED_FILE}"
            )
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(out / "tb"))
            except ImportError:
                print("note: tensorboard is not installed; logging to metrics.jsonl only", file=sys.stderr)
        say(
            f"run folder: {out}\n{cfg.model} + {cfg.neuron} on {cfg.dataset} (T={cfg.T}), device {device}"
            + (f", {dist.world_size} processes" if dist.enabled else "")
        )

    steps = len(train_loader) if cfg.max_steps_per_epoch is None else min(len(train_loader), cfg.max_steps_per_epoch)
    last = None
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        # per epoch (exact resume) and per process (DDP ranks draw different augmentations and masks)
        seed_everything(cfg.seed * 100003 + epoch * 1009 + dist.rank)
        sampler.set_epoch(epoch)
        t0 = time.time()
        bar = tqdm(
            train_loader,
            total=steps,
            desc=f"epoch {epoch}/{cfg.epochs}",
            leave=False,
            disable=not (main and verbose) or None,
            dynamic_ncols=True,
        )
        sums = train_epoch(
            model,
            bar,
            steps,
            opt,
            scaler,
            cfg,
            info.temporal,
            device,
            amp,
            mixer,
            where=lambda step, e=epoch: _divergence_note(out, e, step),
        )
        bar.close()
        lr = opt.param_groups[0]["lr"]  # the rate this epoch trained with (sched.step() sets the next one)
        sched.step()
        D.all_reduce_sum(sums, dist)
        train_time = time.time() - t0
        ev = evaluate(model, test_loader, cfg.T, info.temporal, device, dist, amp)
        improved = ev["acc"] > best_acc
        if improved:
            best_acc, best_epoch = ev["acc"], epoch
        last = {
            "epoch": epoch,
            "train_loss": sums[0].item() / max(sums[2].item(), 1),
            "train_acc": 100 * sums[1].item() / max(sums[2].item(), 1),
            "test_loss": ev["loss"],
            "test_acc": ev["acc"],
            "test_top5": ev["top5"],
            "best_acc": best_acc,
            "best_epoch": best_epoch,
            "lr": lr,
            "epoch_s": train_time,
            "neuron_params": neuron_parameters(unwrap(model)),
        }
        if main:
            state = {
                "model": unwrap(model).state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "best_acc": best_acc,
                "best_epoch": best_epoch,
                "config": cfg.to_dict(),
                "data_shape": shape,
                "amp": amp is not None,  # resolved on the training device, so that eval can follow it
                "metrics": last,
                "arlif_version": _version(),
            }
            atomic_save(state, out / "last.pt")
            if improved:
                atomic_save(state, out / "best.pt")
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps(last) + "\n")
            if writer is not None:
                for key in ("train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr"):
                    writer.add_scalar(key, last[key], epoch)
                for layer, vals in last["neuron_params"].items():
                    for p, v in vals.items():
                        writer.add_scalar(f"neuron/{layer}/{p}", v, epoch)
                writer.flush()
            say(
                f"epoch {epoch:3d}/{cfg.epochs}  train loss {last['train_loss']:.4f} "
                f"acc {last['train_acc']:6.2f}%  "
                f"test acc {ev['acc']:6.2f}% (top5 {ev['top5']:6.2f}%)  best {best_acc:6.2f}% @{best_epoch}  "
                f"lr {last['lr']:.4g}  {train_time:.1f}s",
                flush=True,
            )
        D.barrier(dist)

    if last is None:  # resumed a finished run
        last = ckpt["metrics"] if ckpt else {}
    summary = {
        "best_acc": best_acc,
        "final_acc": last.get("test_acc"),
        "best_epoch": best_epoch,
        "final_top5": last.get("test_top5"),
        "epochs": cfg.epochs,
        "wall_s": time.time() - t_start,
        "neuron": cfg.neuron,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "T": cfg.T,
        "seed": cfg.seed,
        "params": sum(p.numel() for p in unwrap(model).parameters()),
        "skipped_recordings": len(skipped),
        "out": str(out),
        "reference_acc": cfg.reference_acc,
    }
    if main:
        if ckpt is not None and (out / "summary.json").exists():
            summary["wall_s"] += json.loads((out / "summary.json").read_text()).get("wall_s", 0.0)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if writer is not None:
            writer.close()
        say(
            f"done: best test accuracy {best_acc:.2f}% (epoch {best_epoch}), "
            f"final {summary['final_acc']:.2f}% "
            f"(epoch {cfg.epochs}); {summary['wall_s']:.1f}s; run folder {out}"
        )
        if cfg.reference_acc:
            ref = cfg.reference_acc
            say(f"reference AR-LIF run of this recipe: best {ref.get('best')}%, final {ref.get('final')}%")
    return summary


SKIPPED_FILE = "skipped_recordings.txt"


def _skip_corrupt_hint(cfg: TrainConfig, resuming: bool = False) -> str:
    import yaml

    options = yaml.safe_dump({**cfg.dataset_options, "skip_corrupt": True}, default_flow_style=True).strip()
    if resuming:  # a resumed run keeps its data (dataset_options cannot change), so skipping means a new run
        return (
            "Replace them (a download or copy cut short?) and resume again, or start a new run without them: "
            f"arlif train --config {cfg.out}/config.yaml --out NEW_FOLDER --dataset-options '{options}'. "
            "'arlif data prepare' parses every recording and lists all bad ones."
        )
    return (
        "Replace them (a download or copy cut short?), or train without them: add skip_corrupt: true to the "
        f"config's dataset_options, or on the command line --dataset-options '{options}' (this replaces the "
        "config's dataset_options, so it repeats them). The run folder was not created. "
        "'arlif data prepare' parses every recording and lists all bad ones."
    )


def _write_skipped(path: Path, skipped: list) -> None:
    """The recordings the datasets left out (``skip_corrupt``), one per line; no file when none were."""
    if not skipped:
        path.unlink(missing_ok=True)  # a resumed run whose recordings were repaired since
        return
    lines = ["# recordings left out by the dataset option skip_corrupt=true: split, recording, samples, problem"]
    lines += [f"{split}\t{src}\t{n}\t{problem}" for split, src, problem, n in skipped]
    path.write_text("\n".join(lines) + "\n")


def _divergence_note(out: Path, epoch: int, step: int) -> str:
    where = f"last good checkpoint: {out / 'last.pt'}" if (out / "last.pt").exists() else "no checkpoint yet"
    return f"at epoch {epoch}, step {step}; stopping ({where})"


def train_epoch(model, batches, steps, opt, scaler, cfg: TrainConfig, temporal, device, amp, mixer, where):
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


def _version() -> str:
    from .. import __version__

    return __version__
