"""Datasets: on-disk formats, framing, transforms and the registry used by training and the CLI.

This package knows nothing about neurons or models.
"""

from pathlib import Path

from ..errors import DataError
from . import cifar, dvs, events, imagefolder, mnist_1d, tiny_imagenet
from .aedat import check_aedat2, check_aedat31, read_aedat2, read_aedat31
from .cache import FrameCache
from .cifar import CIFAR
from .digits import Digits
from .dvs import CIFAR10DVS, DVSGesture, EventFrames
from .events import EventFolder
from .framing import event_counts, events_to_frames, frame_index
from .imagefolder import ImageFolderSet
from .mnist_1d import MNIST1D
from .registry import DatasetInfo, build_datasets, build_split, dataset_names, get_dataset_info, register_dataset
from .tiny_imagenet import TinyImageNet
from .tonic_sets import TonicFrames, from_tonic

_DVS_OPTIONS = ("size", "cache_dir", "cache", "augment", "skip_corrupt")
_MNIST1D_OPTIONS = ("num_samples", "seed", "shuffle", "holdout", "augment")


def _digits(root, train, T=None, augment=True):
    return Digits(train=train)  # nothing to augment


def _mnist1d_cache(root):
    return Path(root) / "mnist1d" if root else None  # None: mnist_1d.default_cache_dir()


def _mnist1d(root, train, T=None, augment=True, **options):
    return MNIST1D(train=train, form="static", cache_dir=_mnist1d_cache(root), **options)  # nothing to augment


def _mnist1d_seq(root, train, T=None, augment=True, **options):
    if T != mnist_1d.SEQ_LENGTH:
        raise DataError(
            f"mnist1d_seq feeds one value of each 40-value signal per step, so T must be {mnist_1d.SEQ_LENGTH}, "
            f"got T={T}; use dataset mnist1d for a signal repeated over T steps"
        )
    return MNIST1D(train=train, form="seq", cache_dir=_mnist1d_cache(root), **options)


def _cifar10(root, train, T=None, augment=True):
    return CIFAR(root, name="cifar10", train=train, augment=augment)


def _cifar100(root, train, T=None, augment=True):
    return CIFAR(root, name="cifar100", train=train, augment=augment)


def _tinyimagenet(root, train, T=None, augment=True):
    return TinyImageNet(root, train=train, augment=augment)


def _imagefolder(root, train, T=None, **options):
    return ImageFolderSet(root, train=train, **options)


def _events(root, train, T=None, **options):
    return EventFolder(root, train=train, T=T, **options)


def _cifar10dvs(root, train, T=None, size=48, **options):
    return CIFAR10DVS(root, train=train, T=T, size=size, **options)


def _dvsgesture(root, train, T=None, size=None, **options):
    return DVSGesture(root, train=train, T=T, size=size, **options)


register_dataset(
    DatasetInfo(
        name="digits",
        num_classes=10,
        in_channels=1,
        input_size=(8, 8),
        temporal=False,
        build=_digits,
        layout="(none: scikit-learn ships it; load_digits(), 1437 train / 360 test, fixed stratified split)",
        needs_root=False,
        options=("augment",),
    )
)
register_dataset(
    DatasetInfo(
        name="mnist1d",
        num_classes=10,
        in_channels=1,
        input_size=(mnist_1d.SEQ_LENGTH,),
        temporal=False,
        build=_mnist1d,
        layout=mnist_1d.LAYOUT,
        needs_root=False,
        aliases=("mnist-1d",),
        options=_MNIST1D_OPTIONS,
        where=mnist_1d.WHERE,
        generated=True,
    )
)
register_dataset(
    DatasetInfo(
        name="mnist1d_seq",
        num_classes=10,
        in_channels=1,
        input_size=(),
        temporal=True,
        build=_mnist1d_seq,
        layout=mnist_1d.LAYOUT,
        needs_root=False,
        aliases=("mnist-1d-seq",),
        default_T=mnist_1d.SEQ_LENGTH,
        options=_MNIST1D_OPTIONS,
        where=mnist_1d.WHERE,
        generated=True,
    )
)
register_dataset(
    DatasetInfo(
        name="cifar10",
        num_classes=10,
        in_channels=3,
        input_size=(32, 32),
        temporal=False,
        build=_cifar10,
        layout=cifar.LAYOUT["cifar10"],
        aliases=("cifar-10",),
        options=("augment",),
        where=cifar.WHERE,
    )
)
register_dataset(
    DatasetInfo(
        name="cifar100",
        num_classes=100,
        in_channels=3,
        input_size=(32, 32),
        temporal=False,
        build=_cifar100,
        layout=cifar.LAYOUT["cifar100"],
        aliases=("cifar-100",),
        options=("augment",),
        where=cifar.WHERE,
    )
)
register_dataset(
    DatasetInfo(
        name="tinyimagenet",
        num_classes=200,
        in_channels=3,
        input_size=(64, 64),
        temporal=False,
        build=_tinyimagenet,
        layout=tiny_imagenet.LAYOUT,
        aliases=("tiny-imagenet", "tiny-imagenet-200", "tinyimagenet200"),
        options=("augment",),
        where=tiny_imagenet.WHERE,
    )
)
register_dataset(
    DatasetInfo(
        name="imagefolder",
        num_classes=0,  # from the data, as are the channels and size
        in_channels=3,
        input_size=(),
        temporal=False,
        build=_imagefolder,
        layout=imagefolder.LAYOUT,
        aliases=("image-folder", "image_folder"),
        options=("size", "mean", "std", "augment", "grayscale", "cache_dir"),
        from_data=True,
    )
)
register_dataset(
    DatasetInfo(
        name="events",
        num_classes=0,  # from the data, as is the sensor size
        in_channels=2,
        input_size=(),
        temporal=True,
        build=_events,
        layout=events.LAYOUT,
        aliases=("event-folder", "event_folder"),
        options=("sensor_size", "split_by", "size", "augment", "convention", "cache_dir", "cache", "skip_corrupt"),
        from_data=True,
    )
)
register_dataset(
    DatasetInfo(
        name="cifar10dvs",
        num_classes=10,
        in_channels=2,
        input_size=(48, 48),
        temporal=True,
        build=_cifar10dvs,
        layout=dvs.CIFAR10DVS_LAYOUT,
        aliases=("cifar10-dvs", "cifar10_dvs"),
        default_T=8,
        options=("split", "convention", *_DVS_OPTIONS),
        where=dvs.CIFAR10DVS_WHERE,
    )
)
register_dataset(
    DatasetInfo(
        name="dvsgesture",
        num_classes=11,
        in_channels=2,
        input_size=(128, 128),
        temporal=True,
        build=_dvsgesture,
        layout=dvs.GESTURE_LAYOUT,
        aliases=("dvs128gesture", "dvs128-gesture", "dvs-gesture", "gesture"),
        default_T=20,
        options=_DVS_OPTIONS,
        where=dvs.GESTURE_WHERE,
    )
)

__all__ = [
    "CIFAR",
    "CIFAR10DVS",
    "DVSGesture",
    "DatasetInfo",
    "Digits",
    "EventFolder",
    "EventFrames",
    "FrameCache",
    "ImageFolderSet",
    "MNIST1D",
    "TinyImageNet",
    "TonicFrames",
    "build_datasets",
    "build_split",
    "check_aedat2",
    "check_aedat31",
    "dataset_names",
    "event_counts",
    "events_to_frames",
    "frame_index",
    "from_tonic",
    "get_dataset_info",
    "read_aedat2",
    "read_aedat31",
    "register_dataset",
]
