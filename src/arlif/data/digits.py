"""scikit-learn's handwritten digits (1797 real 8×8 images, 10 classes): the offline demo dataset.

The split is fixed: a stratified 80/20 train/test split with seed 0, so every run and every machine sees
the same 1437 training and 360 test images. Pixels (0..16) are scaled to [0, 1] and standardised with the
training-set mean and std. Samples are float32 ``[1, 8, 8]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    return train_test_split(
        images, bunch.target, test_size=TEST_FRACTION, stratify=bunch.target, random_state=SPLIT_SEED
    )


class Digits(Dataset):
    """Map-style dataset of one split: ``(image [1, 8, 8] float32, label int)``."""

    _cache: tuple | None = None

    def __init__(self, train: bool = True):
        if Digits._cache is None:
            Digits._cache = _split()
        x_train, x_test, y_train, y_test = Digits._cache
        mean, std = float(x_train.mean()), float(x_train.std())
        x, y = (x_train, y_train) if train else (x_test, y_test)
        self.images = torch.from_numpy((x - mean) / std).unsqueeze(1).contiguous()
        self.labels = torch.from_numpy(y.astype(np.int64))
        self.targets = self.labels.tolist()
        self.classes = [str(d) for d in range(10)]
        self.train = train

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])
