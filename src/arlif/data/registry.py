"""The dataset registry that training, evaluation and the CLI use.

Each entry says how to build the train and test sets and what the model needs to know about them. A
dataset yields ``(sample, label)``; a *static* sample is an image ``[C, H, W]`` that the trainer repeats
over T steps, a *temporal* sample is already ``[T, C, H, W]`` (DVS frames, one per step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch.utils.data import Dataset

from ..errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset before it is loaded.

    ``build(root, train, T, **options)`` returns the map-style dataset of one split. ``root`` may be
    ``None`` for datasets that ship with a package. ``layout`` describes the expected files for error
    messages and ``arlif data info``.
    """

    name: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]
    temporal: bool
    build: Callable[..., Dataset]
    layout: str = ""
    needs_root: bool = True
    aliases: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    for key in (info.name, *info.aliases):
        _REGISTRY[key.lower()] = info
    return info


def dataset_names() -> list[str]:
    return sorted({info.name for info in _REGISTRY.values()})


def get_dataset_info(name: str) -> DatasetInfo:
    key = str(name).lower()
    if key not in _REGISTRY:
        raise DataError(f"unknown dataset {name!r}; known datasets: {dataset_names()}")
    return _REGISTRY[key]


def build_datasets(
    name: str, root=None, T: int | None = None, **options
) -> tuple[Dataset, Dataset, DatasetInfo]:
    """Return ``(train_set, test_set, info)`` for a registered dataset."""
    info = get_dataset_info(name)
    if info.needs_root and not root:
        raise DataError(
            f"dataset {info.name!r} needs --data-root (the folder that holds it). "
            f"Expected layout:\n{info.layout}"
        )
    train = info.build(root, train=True, T=T, **options)
    test = info.build(root, train=False, T=T, **options)
    return train, test, info
