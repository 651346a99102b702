"""The data side of a run: its datasets and loaders, the data's shape, batches as model inputs, MixUp/CutMix.

Shared by the training loop, evaluation of checkpoints and the analysis commands.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from ..data import build_datasets
from ..errors import ArlifError, ConfigError, CorruptDatasetError
from . import distributed as D
from .config import TrainConfig, is_object_label


def encode(x: torch.Tensor, T: int, temporal: bool) -> torch.Tensor:
    """Batch from the loader -> model input ``[T, B, ...]``: static samples ``[B, C, ...]`` (images, 1-D
    signals) are repeated at every step (direct encoding), sequences ``[B, T, C, ...]`` are made time-first."""
    if temporal:
        if x.dim() < 3 or x.shape[1] != T:
            raise ArlifError(f"expected frames [B, T={T}, ...] from the dataset, got shape {tuple(x.shape)}")
        return x.transpose(0, 1).contiguous()
    return x.unsqueeze(0).expand(T, *x.shape)


def data_shape(num_classes: int, temporal: bool, sample) -> dict:
    """What the model must know about the data; channels and size are read off a real sample, since
    dataset options (e.g. resizing DVS frames to 48×48) change them. A static sample is ``[C, *size]``, a
    temporal one ``[T, C, *size]``; ``size`` is (H, W) for images, (L,) for 1-D signals, () for one value
    per step."""
    channel_dim = 1 if temporal else 0
    return {
        "num_classes": int(num_classes),
        "in_channels": int(sample.shape[channel_dim]),
        "input_size": [int(s) for s in sample.shape[channel_dim + 1 :]],
        "temporal": bool(temporal),
    }


class EvalShard(Subset):
    """Every ``world``-th sample from ``rank``: an evaluation shard without the padding DistributedSampler
    adds, so summed counts cover the test set exactly once."""

    def __init__(self, dataset, rank: int, world: int):
        super().__init__(dataset, range(rank, len(dataset), world))


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


def check_mixer_input(cfg: TrainConfig, shape: dict) -> None:
    """torchvision's MixUp and CutMix take batches of images ``[B, C, H, W]`` only."""
    if (cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0) and (shape["temporal"] or len(shape["input_size"]) != 2):
        what = "sequences" if shape["temporal"] else f"samples of size {shape['input_size']} after the channels"
        raise ConfigError(
            f"mixup_alpha and cutmix_alpha need static images [C, H, W] as samples, but the data are {what}; "
            "set both to 0"
        )


@dataclass
class Datasets:
    """The two splits a run trains and tests on, what the loop must know of them, and the recordings the
    datasets left out, as ``(split, recording, problem, samples)``."""

    train: Dataset
    test: Dataset
    num_classes: int
    temporal: bool  # samples are sequences [T, ...] (else static samples, repeated over T)
    skipped: list


def skipped_recordings(train_set, test_set) -> list:
    """The recordings each split left out (arlif's datasets with ``skip_corrupt=true`` list them)."""
    splits = (("train", train_set), ("test", test_set))
    return [(split, *entry) for split, ds in splits for entry in getattr(ds, "skipped", ())]


def check_not_empty(name: str, train_set, test_set) -> None:
    if len(train_set) == 0 or len(test_set) == 0:
        raise ArlifError(f"dataset {name!r} has an empty split ({len(train_set)} train, {len(test_set)} test)")


def refuse_object_dataset(cfg: TrainConfig, instead: str) -> None:
    """Datasets given to :func:`arlif.fit` as objects are known to the run's config by their class name only."""
    if is_object_label(cfg.dataset):
        raise ConfigError(
            f"this run's dataset {cfg.dataset} was given to arlif.fit as a Python object, so it cannot be "
            f"rebuilt from the config; {instead}"
        )


def config_datasets(cfg: TrainConfig, resuming: bool = False) -> Datasets:
    """The config's registered dataset, both splits."""
    refuse_object_dataset(cfg, "continue the run with arlif.fit(model, train_set, test_set, resume=RUN)")
    try:
        train_set, test_set, info = build_datasets(cfg.dataset, cfg.data_root, cfg.T, **cfg.dataset_options)
    except CorruptDatasetError as exc:  # before the run folder is made: name the exact flag that skips them
        raise exc.with_hint(skip_corrupt_hint(cfg, resuming=resuming)) from None
    check_not_empty(cfg.dataset, train_set, test_set)
    return Datasets(train_set, test_set, info.num_classes, info.temporal, skipped_recordings(train_set, test_set))


@dataclass
class RunData:
    """What a training run reads: the loaders, the sampler to re-seed each epoch, the data's shape
    (:func:`data_shape`) and the recordings left out, as ``(split, recording, problem, samples)``."""

    train_loader: DataLoader
    sampler: DistributedSampler
    test_loader: DataLoader
    shape: dict
    skipped: list


def run_data(cfg: TrainConfig, sets: Datasets, dist: D.DistInfo, device: torch.device) -> RunData:
    """The loaders of ``sets``; this process reads its shard of both splits."""
    train_set, test_set = sets.train, sets.test
    sampler = DistributedSampler(
        train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    loader_kw = dict(num_workers=cfg.workers, pin_memory=device.type == "cuda")
    # training workers are not persistent: a worker's RNG is seeded when it starts, and only workers started
    # each epoch (after the per-epoch seed of the loop) draw the augmentations an uninterrupted run would draw
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size // dist.world_size, sampler=sampler, **loader_kw)
    test_loader = DataLoader(
        EvalShard(test_set, dist.rank, dist.world_size),
        batch_size=(cfg.eval_batch_size or cfg.batch_size),
        persistent_workers=cfg.workers > 0,  # evaluation draws no random numbers
        **loader_kw,
    )
    shape = data_shape(sets.num_classes, sets.temporal, train_set[0][0])
    return RunData(train_loader, sampler, test_loader, shape, sets.skipped)


def skip_corrupt_hint(cfg: TrainConfig, resuming: bool = False) -> str:
    """How to go on when the datasets hold corrupt recordings: the exact option (or, resuming, the new run)
    that leaves them out."""
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
