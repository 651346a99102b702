"""The class-folder layout of the ``imagefolder`` and ``events`` datasets::

    <root>/train/<class>/<file>     the training split; one folder per class (sub-folders are searched too)
    <root>/test/<class>/<file>      the test split (or <root>/val/ when there is no test/)

Classes are the training split's folder names in sorted order, label i for the i-th, as torchvision's
``ImageFolder`` numbers them; the test split uses the same numbering. The files are listed by torchvision's
``make_dataset`` (sorted, by file-name ending).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torchvision.datasets.folder import find_classes, make_dataset

from ..errors import DataError

TEST_FOLDERS = ("test", "val")
CACHE_SUBDIR = "arlif-cache"


def split_folder(dataset: str, root, train: bool, layout: str) -> Path:
    """``<root>/train``, or ``<root>/test`` (else ``<root>/val``)."""
    if root is None or not Path(root).is_dir():
        raise DataError(f"{dataset}: data root {root} is not a folder. Expected layout:\n{layout}")
    names = ("train",) if train else TEST_FOLDERS
    for name in names:
        if (Path(root) / name).is_dir():
            return Path(root) / name
    raise DataError(f"{dataset}: no {' or '.join(f'{n}/' for n in names)} folder in {root}. Expected layout:\n{layout}")


def _class_folders(dataset: str, folder: Path, layout: str) -> list[str]:
    try:
        classes, _ = find_classes(folder)
    except FileNotFoundError:
        raise DataError(
            f"{dataset}: {folder} holds no class folders; put each class's files in a folder of its own, "
            f"{folder}/<class>/. Expected layout:\n{layout}"
        ) from None
    return classes


def class_names(dataset: str, root, layout: str) -> list[str]:
    """The classes: the sorted folder names of the training split."""
    return _class_folders(dataset, split_folder(dataset, root, True, layout), layout)


def list_split(dataset: str, root, train: bool, suffixes: tuple[str, ...], layout: str):
    """``(folder, classes, samples)`` of one split: ``samples`` are ``(path, label)`` in class, then file
    order. Raises a :class:`DataError` for a test class that the training split lacks, and for a class folder
    with no file ending in one of ``suffixes``."""
    classes = class_names(dataset, root, layout)
    folder = split_folder(dataset, root, train, layout)
    if not train:
        extra = sorted(set(_class_folders(dataset, folder, layout)) - set(classes))
        if extra:
            train_folder = split_folder(dataset, root, True, layout)
            raise DataError(
                f"{dataset}: class folder(s) {', '.join(str(folder / c) for c in extra)} have no training "
                f"counterpart in {train_folder}/; a model cannot learn a class it never sees. Add "
                f"{train_folder / extra[0]}/ with training samples, or remove the class from {folder.name}/"
            )
    samples = make_dataset(str(folder), {c: i for i, c in enumerate(classes)}, extensions=suffixes, allow_empty=True)
    present = {label for _, label in samples}
    empty = [folder / c for i, c in enumerate(classes) if i not in present and (folder / c).is_dir()]
    if empty:
        raise DataError(
            f"{dataset}: empty class folder(s) {', '.join(map(str, empty))}: no file ending in "
            f"{', '.join(suffixes)}. Put the class's samples in it, or remove the folder"
        )
    return folder, classes, [(Path(p), label) for p, label in samples]


def cache_base(root, cache_dir) -> Path:
    """Where a folder dataset keeps its caches: ``<root>/arlif-cache``, or with ``cache_dir`` a sub-folder of it
    named after the data root (its name and a hash of its absolute path), so that two datasets sharing one
    ``cache_dir`` never share entries."""
    if cache_dir is None:
        return Path(root) / CACHE_SUBDIR
    resolved = Path(root).resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    return Path(cache_dir) / f"{resolved.name}-{digest}"
