"""CIFAR-10 and CIFAR-100 from the python pickle batches (read here; torchvision's loader insists on the
md5 sums of the original files).

Layouts (``root`` may be the folder that holds the batch folder, or the batch folder itself)::

    cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/train, test, meta

Each batch is a pickled dict with ``data`` (uint8 ``[N, 3072]``: the R, G and B planes, each 32×32 row-major)
and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100). The files are Python-2 pickles, so keys may be
``str`` or ``bytes``. The pickles are read with an unpickler that admits only plain containers and numpy
arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .transforms import cifar_transform

WHERE = "https://www.cs.toronto.edu/~kriz/cifar.html (the 'CIFAR-10/100 python version' archives)"

SPECS = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": "labels",
        "names": "label_names",
        "classes": 10,
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": "fine_labels",
        "names": "fine_label_names",
        "classes": 100,
    },
}

LAYOUT = {
    "cifar10": "<root>/cifar-10-batches-py/{data_batch_1..data_batch_5, test_batch, batches.meta}\n"
    "  (python pickle batches: dict with 'data' uint8 [N, 3072] and 'labels')",
    "cifar100": "<root>/cifar-100-python/{train, test, meta}\n"
    "  (python pickle batches: dict with 'data' uint8 [N, 3072] and 'fine_labels')",
}

# what a CIFAR pickle may reference: numpy's array reconstruction (old and new module paths) and the
# codecs helper that protocol-2 pickles use for byte strings
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a CIFAR batch)")


def load_pickle(path: Path) -> dict:
    """Unpickle one batch, with every ``bytes`` key turned into ``str``."""
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"missing CIFAR file {path}") from None
    except Exception as exc:  # pickle raises many types on garbage: UnpicklingError, EOFError, ValueError...
        raise DataError(f"{path}: corrupt or truncated CIFAR pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def find_folder(root, name: str) -> Path:
    """The batch folder under ``root`` (or ``root`` itself when it is the batch folder)."""
    spec = SPECS[name]
    if root is None or not Path(root).is_dir():
        raise DataError(
            f"{name}: data root {root} is not a folder. Expected layout:\n  {LAYOUT[name]}\n"
            f"Get it from {WHERE}"
        )
    root = Path(root)
    for folder in (root / spec["folder"], root):
        # files, not just names: a generic data root often holds unrelated train/ or test/ folders
        if (folder / spec["test"][0]).is_file() or (folder / spec["train"][0]).is_file():
            return folder
    raise DataError(
        f"{name}: no {spec['folder']}/ folder (or batch files) under {root}. Expected layout:\n  "
        f"{LAYOUT[name]}\nGet it from {WHERE}"
    )


def read_split(root, name: str, train: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 ``[N, 3, 32, 32]``, labels int64 ``[N]`` and the class names of one split."""
    spec = SPECS[name]
    folder = find_folder(root, name)
    images, labels = [], []
    for fname in spec["train" if train else "test"]:
        path = folder / fname
        if not path.exists():
            raise DataError(
                f"{name}: missing file {path}. Expected layout:\n  {LAYOUT[name]}\nGet it from {WHERE}"
            )
        batch = load_pickle(path)
        try:
            data = np.asarray(batch["data"])
            y = np.asarray(batch[spec["labels"]], dtype=np.int64)
        except KeyError as exc:
            raise DataError(f"{path}: CIFAR batch without the {exc} entry (keys: {sorted(batch)})") from None
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: labels are not integers ({exc})") from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or y.shape != (data.shape[0],):
            raise DataError(
                f"{path}: 'data' is {data.dtype} {list(data.shape)} with {y.shape[0]} labels; expected uint8 "
                f"[N, 3072] with N labels"
            )
        if y.size and (y.min() < 0 or y.max() >= spec["classes"]):
            raise DataError(f"{path}: labels outside 0..{spec['classes'] - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(y)
    names = [str(i) for i in range(spec["classes"])]
    meta_path = folder / spec["meta"]
    if meta_path.exists():  # only used for class names
        meta = load_pickle(meta_path)
        if spec["names"] in meta and len(meta[spec["names"]]) == spec["classes"]:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec["names"]]]
    return np.concatenate(images), np.concatenate(labels), names


class CIFAR(Dataset):
    """CIFAR-10 or CIFAR-100, one split: ``(image float32 [3, 32, 32], label int)``.

    ``augment`` (training split only, default on) applies the reference training transforms; otherwise
    images are only normalised with the dataset's mean and std (docs/recipes.md#normalisation).
    """

    def __init__(self, root, name: str = "cifar10", train: bool = True, augment: bool = True):
        name = str(name).lower().replace("-", "")
        if name not in SPECS:
            raise DataError(f"unknown CIFAR variant {name!r}; choose 'cifar10' or 'cifar100'")
        self.name, self.train = name, train
        images, labels, self.classes = read_split(root, name, train)
        self.images = torch.from_numpy(images)
        self.targets = labels.tolist()
        self.transform = cifar_transform(name, train and augment)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.targets[i]
