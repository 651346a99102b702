"""Surrogate gradients for the spike non-linearity (docs/neurons.md#surrogate-gradients).

Every surrogate keeps the forward pass as the Heaviside step ``Θ(u) = 1 if u >= 0 else 0`` and replaces
``dS/du`` in the backward pass by a smooth (or box) function of ``u``:

=========  ==================================  =============
name       dS/du                               default width
=========  ==================================  =============
rectangle  1/α  if |u| <= α/2 else 0           α = 1
triangle   max(0, γ - |u|) / γ²                γ = 1
sigmoid    α·σ(αu)·(1 - σ(αu))                 α = 4
atan       (α/2) / (1 + (π·α·u/2)²)            α = 2
=========  ==================================  =============

A surrogate is a small ``nn.Module``: ``sg(u)`` returns spikes (same dtype as ``u``), and
``surrogate_derivative(u, sg.kind, sg.width)`` is dS/du as a plain tensor. The fused kernels read
``sg.kind`` and ``sg.width`` and evaluate the same formula themselves, so this file is the one definition.
For the same reason the set of formulas is closed: a subclass with a new ``kind`` or a ``derivative``
method of its own is refused when it is made.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "Surrogate",
    "Rectangle",
    "Triangle",
    "Sigmoid",
    "ATan",
    "SURROGATES",
    "get_surrogate",
    "surrogate_derivative",
    "heaviside",
]

# Integer ids shared with the fused kernels (they cannot call Python objects).
KIND_IDS = {"rectangle": 0, "triangle": 1, "sigmoid": 2, "atan": 3}


def heaviside(u: torch.Tensor) -> torch.Tensor:
    """Θ(u) = 1 where u >= 0, else 0, in the dtype of ``u``."""
    return (u >= 0).to(u.dtype)


def surrogate_derivative(u: torch.Tensor, kind: str, width: float) -> torch.Tensor:
    """dS/du of the named surrogate at ``u`` (any shape); ``width`` is α (or γ for the triangle)."""
    if kind == "rectangle":
        return (u.abs() <= width / 2).to(u.dtype) / width
    if kind == "triangle":
        return torch.clamp(width - u.abs(), min=0) / (width * width)
    if kind == "sigmoid":
        s = torch.sigmoid(width * u)
        return width * s * (1 - s)
    if kind == "atan":
        return (width / 2) / (1 + (math.pi * width / 2 * u) ** 2)
    raise ValueError(f"unknown surrogate kind {kind!r}; choose one of {sorted(KIND_IDS)}")


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, kind: str, width: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.kind = kind
        ctx.width = width
        return heaviside(u)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad_out * surrogate_derivative(u, ctx.kind, ctx.width), None, None


class Surrogate(nn.Module):
    """Base class: subclasses set ``kind`` and take their width in the constructor."""

    kind: str = ""

    def __init__(self, width: float):
        super().__init__()
        cls = type(self)
        # The fused kernels evaluate the four formulas natively by kind; a new kind or a derivative() of the
        # subclass would be ignored there (or fail deep inside), so say so here.
        if cls.kind not in KIND_IDS:
            raise ValueError(
                f"{cls.__name__}: surrogate kind {cls.kind!r} is not one of {sorted(KIND_IDS)}. arlif's "
                f"surrogates are these formulas, evaluated natively by every backend; pick one with "
                f"get_surrogate(name, width)"
            )
        if hasattr(cls, "derivative"):
            raise TypeError(
                f"{cls.__name__} defines derivative(), which would not change the gradient: every backend "
                f"evaluates the {cls.kind!r} formula itself. Use a built-in surrogate with another width"
            )
        width = float(width)
        if not math.isfinite(width) or width <= 0:
            raise ValueError(f"{type(self).__name__}: width must be a positive finite number, got {width}")
        self.width = width

    @property
    def kind_id(self) -> int:
        return KIND_IDS[self.kind]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return _SurrogateSpike.apply(u, self.kind, self.width)

    def extra_repr(self) -> str:
        return f"width={self.width}"

    def __eq__(self, other: object) -> bool:  # two surrogates are equal when their formula is
        return isinstance(other, Surrogate) and (self.kind, self.width) == (other.kind, other.width)

    __hash__ = nn.Module.__hash__


class Rectangle(Surrogate):
    """dS/du = 1/α on |u| <= α/2, else 0 (the default surrogate, α = 1)."""

    kind = "rectangle"

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha)


class Triangle(Surrogate):
    """dS/du = max(0, γ - |u|)/γ² (γ = 1)."""

    kind = "triangle"

    def __init__(self, gamma: float = 1.0):
        super().__init__(gamma)


class Sigmoid(Surrogate):
    """dS/du = α·σ(αu)·(1 - σ(αu)) (α = 4)."""

    kind = "sigmoid"

    def __init__(self, alpha: float = 4.0):
        super().__init__(alpha)


class ATan(Surrogate):
    """dS/du = (α/2)/(1 + (π·α·u/2)²) (α = 2)."""

    kind = "atan"

    def __init__(self, alpha: float = 2.0):
        super().__init__(alpha)


SURROGATES: dict[str, type[Surrogate]] = {
    "rectangle": Rectangle,
    "triangle": Triangle,
    "sigmoid": Sigmoid,
    "atan": ATan,
}


def get_surrogate(spec: str | Surrogate | None = None, width: float | None = None) -> Surrogate:
    """Return a surrogate module from a name (``"rectangle"``, ``"triangle"``, ``"sigmoid"``, ``"atan"``),
    an existing instance (returned as is) or ``None`` (the default rectangle). ``width`` overrides α/γ
    when a name is given."""
    if spec is None:
        spec = "rectangle"
    if isinstance(spec, Surrogate):
        if width is not None:
            raise ValueError("give the width in the surrogate's constructor, not beside an instance")
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in SURROGATES:
            raise ValueError(f"unknown surrogate {spec!r}; choose one of {sorted(SURROGATES)}")
        cls = SURROGATES[key]
        return cls() if width is None else cls(width)
    raise TypeError(
        f"surrogate must be a name ({sorted(SURROGATES)}) or an arlif.surrogate.Surrogate, "
        f"got {type(spec).__name__}"
    )
