"""Datasets: on-disk formats, framing, transforms and the registry used by training and the CLI.

This package knows nothing about neurons or models.
"""

from .digits import Digits
from .registry import DatasetInfo, build_datasets, dataset_names, get_dataset_info, register_dataset

register_dataset(
    DatasetInfo(
        name="digits",
        num_classes=10,
        in_channels=1,
        input_size=(8, 8),
        temporal=False,
        build=lambda root, train, T=None, **_: Digits(train=train),
        layout="(none: scikit-learn ships it; load_digits(), 1437 train / 360 test, fixed stratified split)",
        needs_root=False,
    )
)

__all__ = [
    "Digits",
    "DatasetInfo",
    "build_datasets",
    "dataset_names",
    "get_dataset_info",
    "register_dataset",
]
