"""Evaluate a saved checkpoint: accuracy, per-layer firing rates and throughput."""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..analysis.monitor import FiringRateMonitor
from ..data import build_split
from ..errors import ArlifError, ConfigError
from ..neurons import reset_net
from . import distributed as D
from .checkpoint import HOW_TO_GET, load_checkpoint
from .config import from_dict
from .distributed import DistInfo
from .inputs import encode, refuse_object_dataset
from .model import build_model
from .runtime import amp_dtype as autocast_dtype
from .runtime import resolve_device


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    T: int,
    temporal: bool,
    device: torch.device,
    dist: D.DistInfo | None = None,
    amp_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> dict:
    """Top-1/top-5 accuracy (%) and mean cross-entropy of the time-averaged logits, over all processes."""
    from tqdm import tqdm

    dist = dist or D.DistInfo()
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # correct1, correct5, loss_sum, n
    for x, y in tqdm(loader, desc="eval", leave=False, disable=not progress or None):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(encode(x, T, temporal))
        reset_net(model)
        logits = out.float().mean(0)
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hit = top == y.unsqueeze(1)
        sums += torch.stack(
            [
                hit[:, 0].sum().double(),
                hit.any(1).sum().double(),
                nn.functional.cross_entropy(logits, y, reduction="sum").double(),
                torch.tensor(float(len(y)), dtype=torch.float64, device=device),
            ]
        )
    D.all_reduce_sum(sums, dist)
    c1, c5, loss, n = sums.tolist()
    n = max(n, 1.0)
    return {"acc": 100 * c1 / n, "top5": 100 * c5 / n, "loss": loss / n, "n": int(n)}


def load_model(checkpoint, device: str | torch.device = "cpu", backend: str | None = None):
    """Rebuild the model of a checkpoint and load its weights. Returns ``(model, config, checkpoint)``."""
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    try:
        cfg = from_dict(ckpt["config"], f"checkpoint {ckpt['path']}")
    except ConfigError as exc:
        raise ConfigError(f"checkpoint {ckpt['path']} holds an invalid config: {exc}") from None
    if not isinstance(ckpt.get("data_shape"), dict):  # rebuilding the model needs the data's shape
        raise ArlifError(f"{ckpt['path']} is not an arlif checkpoint (no data_shape entry); {HOW_TO_GET}")
    if backend:
        cfg = replace(cfg, backend=backend)
    model = build_model(cfg, ckpt["data_shape"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), cfg, ckpt


def test_split(cfg):
    """The test split of the config's dataset (only that split is built). Returns ``(dataset, info)``."""
    refuse_object_dataset(
        cfg,
        "name a registered dataset to test on (arlif eval --dataset NAME), or evaluate in Python: "
        "arlif.train.evaluate(model, loader, T, temporal, device)",
    )
    return build_split(cfg.dataset, cfg.data_root, train=False, T=cfg.T, **cfg.dataset_options)


def test_inputs(cfg, samples: int, batch_size: int, device) -> list[torch.Tensor]:
    """Up to ``samples`` test inputs, encoded as model inputs ``[T, B, ...]``, in batches."""
    test_set, info = test_split(cfg)
    loader = DataLoader(test_set, batch_size=batch_size, shuffle=False)
    batches, seen = [], 0
    for x, _ in loader:
        x = x[: samples - seen]
        batches.append(encode(x.to(device), cfg.T, info.temporal))
        seen += len(x)
        if seen >= samples:
            break
    return batches


def evaluate_checkpoint(
    checkpoint,
    dataset: str | None = None,
    data_root: str | None = None,
    T: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    backend: str | None = None,
    progress: bool = False,
    amp: bool | None = None,
) -> dict:
    """``amp``: evaluate under autocast (bf16 on CPU, fp16 on CUDA). ``None``: AMP on or off as the run was
    trained (recorded in the checkpoint), so that the accuracy is the one training reported; training
    evaluates under its own AMP setting."""
    dev = resolve_device(device, DistInfo())
    model, cfg, ckpt = load_model(checkpoint, dev, backend)
    cfg = replace(
        cfg,
        dataset=dataset or cfg.dataset,
        data_root=data_root or cfg.data_root,
        T=T or cfg.T,
        eval_batch_size=batch_size or cfg.eval_batch_size or cfg.batch_size,
        # checkpoints from before "amp" was recorded: the config's setting, resolved on this device
        amp=ckpt.get("amp", cfg.amp) if amp is None else amp,
    )
    test_set, info = test_split(cfg)
    loader = DataLoader(test_set, batch_size=cfg.eval_batch_size, num_workers=cfg.workers)
    with FiringRateMonitor(model) as mon:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = evaluate(model, loader, cfg.T, info.temporal, dev, amp_dtype=autocast_dtype(cfg, dev), progress=progress)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
    return {
        "checkpoint": ckpt["path"],
        "epoch": ckpt.get("epoch"),
        "model": cfg.model,
        "neuron": cfg.neuron,
        "dataset": cfg.dataset,
        "T": cfg.T,
        "device": str(dev),
        **res,
        "samples_per_s": res["n"] / elapsed if elapsed > 0 else float("nan"),
        "firing_rate": mon.overall_rate(),
        "layer_rates": mon.layer_rates(),
        "step_rates": mon.step_rates(),
    }
