"""Tiny-ImageNet-200 from its folder layout (``root`` may hold ``tiny-imagenet-200/`` or be it)::

    wnids.txt                               the 200 class ids, one per line
    train/<wnid>/images/*.JPEG              500 training images per class
    val/images/*.JPEG                       10000 validation images, used as the test set
    val/val_annotations.txt                 file <TAB> wnid <TAB> bbox (4 numbers)

Images are 64×64 JPEGs, a few of them grayscale; all are decoded as RGB. Labels follow the sorted wnid
order. The test folder of the archive has no labels and is not used.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import pil_to_tensor

from ..errors import DataError
from .transforms import tinyimagenet_transform

WHERE = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
LAYOUT = (
    "<root>/tiny-imagenet-200/wnids.txt\n"
    "<root>/tiny-imagenet-200/train/<wnid>/images/*.JPEG\n"
    "<root>/tiny-imagenet-200/val/images/*.JPEG\n"
    "<root>/tiny-imagenet-200/val/val_annotations.txt   (file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1)"
)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _missing(what: str) -> DataError:
    return DataError(f"tinyimagenet: {what}. Expected layout:\n{LAYOUT}\nGet it from {WHERE}")


def find_folder(root) -> Path:
    if root is None or not Path(root).is_dir():
        raise _missing(f"data root {root} is not a folder")
    for folder in (Path(root) / "tiny-imagenet-200", Path(root)):
        if (folder / "wnids.txt").exists():
            return folder
    raise _missing(f"no tiny-imagenet-200/wnids.txt under {root}")


def _images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_split(root, train: bool) -> tuple[list[Path], list[int], list[str]]:
    """Image paths, labels and the sorted wnids (class names) of one split."""
    folder = find_folder(root)
    wnids = sorted({w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip()})
    if not wnids:
        raise DataError(f"tinyimagenet: {folder / 'wnids.txt'} lists no classes")
    index = {w: i for i, w in enumerate(wnids)}
    paths: list[Path] = []
    labels: list[int] = []
    if train:
        for wnid in wnids:
            images = folder / "train" / wnid / "images"
            if not images.is_dir():
                raise _missing(f"missing training folder {images}")
            names = _images(images)
            paths += [images / n for n in names]
            labels += [index[wnid]] * len(names)
        return paths, labels, wnids
    ann = folder / "val" / "val_annotations.txt"
    images = folder / "val" / "images"
    if not ann.exists():
        raise _missing(f"missing {ann}")
    if not images.is_dir():
        raise _missing(f"missing folder {images}")
    present = set(_images(images))
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"{ann}, line {n}: expected 'file<TAB>wnid<TAB>bbox', found {line!r}")
        fname, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in index:
            raise DataError(f"{ann}, line {n}: class {wnid!r} is not in wnids.txt")
        if fname not in present:
            raise _missing(f"{ann}, line {n} names {fname}, which is not in {images}")
        paths.append(images / fname)
        labels.append(index[wnid])
    return paths, labels, wnids


class TinyImageNet(Dataset):
    """Tiny-ImageNet-200, one split (train, or val as test): ``(image float32 [3, 64, 64], label int)``.

    ``augment`` (training split only, default on) applies HFlip + TrivialAugmentWide before normalising.
    """

    def __init__(self, root, train: bool = True, augment: bool = True):
        self.train = train
        self.paths, self.targets, self.classes = read_split(root, train)
        self.transform = tinyimagenet_transform(train and augment)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        path = self.paths[i]
        try:
            with Image.open(path) as im:
                image = pil_to_tensor(im.convert("RGB"))  # grayscale images become 3 equal channels
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot decode image ({exc})") from None
        return self.transform(image), self.targets[i]
