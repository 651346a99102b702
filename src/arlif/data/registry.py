"""The dataset registry that training, evaluation and the CLI use.

Each entry says how to build the train and test sets and what the model needs to know about them. A
dataset yields ``(sample, label)``; a *static* sample is ``[C, *size]`` (an image ``[C, H, W]``, a 1-D
signal ``[C, L]``) that the trainer repeats over T steps, a *temporal* sample is already ``[T, C, *size]``
(DVS frames ``[T, C, H, W]``, or ``[T, C]`` for one value per step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from torch.utils.data import Dataset

from ..errors import CorruptDatasetError, DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset before it is loaded.

    ``build(root, train, T, **options)`` returns the map-style dataset of one split. ``root`` may be
    ``None`` for datasets that ship with a package. ``layout`` describes the expected files for error
    messages and ``arlif data info``. ``default_T`` is the number of frames a temporal dataset uses when
    no T is given (the reference recipe's T); ``options`` lists the keyword options ``build`` accepts and
    ``where`` says where to get the data. ``generated`` marks a dataset made by a program rather than read from
    files. ``from_data`` marks a dataset whose classes and sample size are only known from its files (your
    own image folder): ``num_classes`` and ``input_size`` are then placeholders until it is built.
    """

    name: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, ...]  # the sample's size after the channels: (H, W), (L,) or ()
    temporal: bool
    build: Callable[..., Dataset]
    layout: str = ""
    needs_root: bool = True
    aliases: tuple[str, ...] = field(default_factory=tuple)
    default_T: int | None = None
    options: tuple[str, ...] = field(default_factory=tuple)
    where: str = ""
    generated: bool = False  # made by a generator and cached whole on first use (``arlif data prepare`` does it)
    from_data: bool = False  # classes and sample size read from the files when built


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


def _checked(name: str, root, T: int | None, options: dict) -> tuple[DatasetInfo, int | None]:
    """The dataset's info and effective T, after checking the root, the options and T."""
    info = get_dataset_info(name)
    if info.needs_root and not root:
        where = f"\nGet it from {info.where}" if info.where else ""
        raise DataError(
            f"dataset {info.name!r} needs its data root, the folder that holds it (arlif train/eval: "
            f"--data-root; arlif data: --root). "
            f"Expected layout:\n{info.layout}{where}"
        )
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise DataError(
            f"dataset {info.name!r} has no option(s) {unknown}; "
            f"its options are {list(info.options) or 'none'}"
        )
    if T is None:
        T = info.default_T
    if info.temporal and (T is None or int(T) < 1):
        how = "; give it with --T (arlif train, eval and data)" if T is None else ""
        raise DataError(f"dataset {info.name!r} is temporal and needs T >= 1 (frames per sample), got {T}{how}")
    return info, T


def build_split(name: str, root=None, train: bool = False, T: int | None = None, **options):
    """Return ``(dataset, info)`` for one split only (e.g. the test split for evaluation), with the checks
    of :func:`build_datasets`."""
    info, T = _checked(name, root, T, options)
    dataset = info.build(root, train=train, T=T, **options)
    return dataset, _measured(info, dataset)


def build_datasets(
    name: str, root=None, T: int | None = None, **options
) -> tuple[Dataset, Dataset, DatasetInfo]:
    """Return ``(train_set, test_set, info)`` for a registered dataset.

    Unknown ``options`` raise :class:`DataError` listing the accepted ones; corrupt recordings in either
    split raise one :class:`CorruptDatasetError` that lists them all. A temporal dataset built
    without ``T`` uses ``info.default_T``. When an option changes the sample size (e.g. ``size=`` of the
    DVS sets), or the data decide it (``imagefolder``, ``events``), the returned ``info`` has the classes,
    channels and size of the samples actually produced; splits whose samples differ in size are an error.
    """
    info, T = _checked(name, root, T, options)
    splits, corrupt = [], []
    for train in (True, False):  # both splits, so that one error lists the corrupt recordings of both
        try:
            splits.append(info.build(root, train=train, T=T, **options))
        except CorruptDatasetError as exc:
            corrupt.append(exc)
    if corrupt:
        raise CorruptDatasetError.merge(corrupt)
    train, test = splits
    sizes = [getattr(ds, "input_size", None) for ds in splits]
    if None not in sizes and tuple(sizes[0]) != tuple(sizes[1]):
        shown = ["×".join(map(str, s)) for s in sizes]
        raise DataError(
            f"{info.name}: the training samples are {shown[0]} but the test samples {shown[1]}"
            f"{f' ({test.root})' if hasattr(test, 'root') else ''}; give the dataset option size=N to "
            f"resize both splits to N×N"
        )
    return train, test, _measured(info, train)


def _measured(info: DatasetInfo, dataset) -> DatasetInfo:
    """``info`` with the number of classes, channels and sample size of the built ``dataset``, where it
    tells them (an option such as ``size`` changes them; an image folder only knows them once read)."""
    changes = {}
    for key, attr in (("num_classes", "num_classes"), ("in_channels", "in_channels"), ("input_size", "input_size")):
        value = getattr(dataset, attr, None)
        if value is not None:
            value = tuple(value) if key == "input_size" else int(value)
            if value != getattr(info, key):
                changes[key] = value
    return replace(info, **changes) if changes else info
