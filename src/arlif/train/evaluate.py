"""Evaluate a saved checkpoint: accuracy, per-layer firing rates and throughput."""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch.utils.data import DataLoader

from ..analysis.monitor import FiringRateMonitor
from ..data import get_dataset_info
from ..errors import DataError
from .checkpoint import load_checkpoint
from .config import from_dict
from .distributed import DistInfo
from .loop import build_model, encode, evaluate, resolve_device


def load_model(checkpoint, device: str | torch.device = "cpu", backend: str | None = None):
    """Rebuild the model of a checkpoint and load its weights. Returns ``(model, config, checkpoint)``."""
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    cfg = from_dict(ckpt["config"], f"checkpoint {ckpt['path']}")
    if backend:
        cfg = replace(cfg, backend=backend)
    model = build_model(cfg, ckpt["data_shape"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), cfg, ckpt


def test_split(cfg):
    """The test split of the config's dataset (only that split is built). Returns ``(dataset, info)``."""
    info = get_dataset_info(cfg.dataset)
    if info.needs_root and not cfg.data_root:
        raise DataError(f"dataset {info.name!r} needs --data-root. Expected layout:\n{info.layout}")
    return info.build(cfg.data_root, train=False, T=cfg.T, **cfg.dataset_options), info


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
) -> dict:
    dev = resolve_device(device, DistInfo())
    model, cfg, ckpt = load_model(checkpoint, dev, backend)
    cfg = replace(
        cfg,
        dataset=dataset or cfg.dataset,
        data_root=data_root or cfg.data_root,
        T=T or cfg.T,
        eval_batch_size=batch_size or cfg.eval_batch_size or cfg.batch_size,
    )
    test_set, info = test_split(cfg)
    loader = DataLoader(test_set, batch_size=cfg.eval_batch_size, num_workers=cfg.workers)
    with FiringRateMonitor(model) as mon:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = evaluate(model, loader, cfg.T, info.temporal, dev, progress=progress)
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
