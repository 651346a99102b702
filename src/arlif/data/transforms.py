"""Training and test transforms of the reference recipes (docs/recipes.md#augmentation), built from
torchvision.transforms.v2.

Static images enter as uint8 ``[3, H, W]`` tensors and leave as normalised float32 ``[3, H, W]``.
DVS samples enter and leave as float32 ``[T, 2, H, W]`` event counts. torchvision v2 transforms draw their
random parameters once per call and treat leading dimensions as a batch, so one call applies the same
crop / flip / affine / cutout to all T frames of a sample.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2302, 0.2265, 0.2262)),
}

# Strength of the "one random op per sample" DVS augmentation (our choice; the reference recipe names only the ops).
DVS_SHEAR_DEG = 30.0  # shear along x, uniform in ±30°
DVS_TRANSLATE = 0.15  # shift up to 15% of the width / height
DVS_ROTATE_DEG = 30.0  # rotation uniform in ±30°
DVS_CUTOUT_FRACTION = 1 / 3  # side of the zeroed square, as a fraction of the frame side


def _to_float(name: str) -> list:
    mean, std = MEAN_STD[name]
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


def cifar_transform(name: str, train: bool) -> v2.Compose:
    """CIFAR-10/100. Train: HFlip, RandAugment, normalise, RandomErasing(0.1). Test: normalise."""
    if not train:
        return v2.Compose(_to_float(name))
    return v2.Compose([*image_augment("randaugment"), *_to_float(name), v2.RandomErasing(p=0.1)])


IMAGE_AUGMENTS = ("none", "flip", "randaugment", "trivialaugment")


def image_augment(name: str) -> list:
    """The training ops of an ``augment`` choice, on uint8 images: ``flip`` is HFlip; ``randaugment`` and
    ``trivialaugment`` add RandAugment / TrivialAugmentWide after it, as the CIFAR and Tiny-ImageNet
    recipes do."""
    flip = v2.RandomHorizontalFlip
    return {
        "none": [],
        "flip": [flip()],
        "randaugment": [flip(), v2.RandAugment()],
        "trivialaugment": [flip(), v2.TrivialAugmentWide()],
    }[name]


def image_geometry(size: int | None) -> list:
    """uint8 ``[C, H, W]`` images to ``size × size``: the shorter side resized to ``size`` (bilinear,
    antialiased), then the centre cropped; nothing without ``size``."""
    if size is None:
        return []
    return [v2.Resize(size, antialias=True), v2.CenterCrop(size)]


def image_folder_transform(size: int | None, augment: str, mean, std) -> v2.Compose:
    """The ``imagefolder`` dataset, from PIL images: resize and crop, the ``augment`` ops of
    :func:`image_augment` (training only: pass ``"none"`` otherwise), scale to [0, 1], normalise with
    ``mean`` / ``std`` (per channel)."""
    ops = [v2.PILToTensor(), *image_geometry(size), *image_augment(augment)]
    return v2.Compose([*ops, v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


def tinyimagenet_transform(train: bool) -> v2.Compose:
    """Tiny-ImageNet. Train: HFlip, TrivialAugmentWide, normalise. Test: normalise."""
    if not train:
        return v2.Compose(_to_float("tinyimagenet"))
    return v2.Compose([*image_augment("trivialaugment"), *_to_float("tinyimagenet")])


class Cutout(torch.nn.Module):
    """Zero one square of side ``fraction × min(H, W)`` at a uniformly random centre (clipped at the
    border), the same square in every leading slice (all T frames and both polarities)."""

    def __init__(self, fraction: float = DVS_CUTOUT_FRACTION):
        super().__init__()
        self.fraction = fraction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        side = max(1, round(self.fraction * min(H, W)))
        cy = int(torch.randint(H, ()))
        cx = int(torch.randint(W, ()))
        y0, y1 = max(0, cy - side // 2), min(H, cy - side // 2 + side)
        x0, x1 = max(0, cx - side // 2), min(W, cx - side // 2 + side)
        x = x.clone()
        x[..., y0:y1, x0:x1] = 0
        return x


def dvs_random_op() -> v2.RandomChoice:
    """One of identity, shear, translate, rotate or cutout, chosen uniformly per sample."""
    return v2.RandomChoice(
        [
            v2.Identity(),
            v2.RandomAffine(degrees=0, shear=(-DVS_SHEAR_DEG, DVS_SHEAR_DEG)),
            v2.RandomAffine(degrees=0, translate=(DVS_TRANSLATE, DVS_TRANSLATE)),
            v2.RandomRotation(DVS_ROTATE_DEG),
            Cutout(),
        ]
    )


def cifar10dvs_train_transform(size) -> v2.Compose:
    """CIFAR10-DVS training: RandomCrop(size, padding 4), HFlip, one random op (frames already resized).
    ``size``: the frames' side, or their ``(H, W)``."""
    return v2.Compose([v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip(), dvs_random_op()])


def gesture_train_transform() -> v2.Compose:
    """DVS128 Gesture training: one random op only (a flip would turn left-hand gestures into right-hand)."""
    return v2.Compose([dvs_random_op()])


EVENT_AUGMENTS = ("none", "flip", "dvsgesture", "cifar10dvs")


def event_augment(name: str, size: tuple[int, int]) -> v2.Compose | None:
    """The training augmentation of the ``events`` dataset on frames of ``size`` (H, W): ``flip`` (HFlip), or
    the DVS128 Gesture or CIFAR10-DVS recipe's; ``None`` for ``none``."""
    if name == "none":
        return None
    if name == "flip":
        return v2.Compose([v2.RandomHorizontalFlip()])
    return gesture_train_transform() if name == "dvsgesture" else cifar10dvs_train_transform(tuple(size))
