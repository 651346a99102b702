"""Spiking models and their registry: ``create_model(name, num_classes, in_channels, neuron=..., **kw)``.

Models know neurons only through a factory (:func:`arlif.neurons.neuron_factory`), so any neuron and any
ablation plugs into any architecture. All take ``[T, B, C, *size]`` (images ``[T, B, C, H, W]``; 1-D signals
``[T, B, C, L]``; one value per step ``[T, B, C]``) and return logits ``[T, B, classes]``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .._imports import import_object, is_import_spec
from ..neurons import neuron_factory
from .layers import SeqToANN, SharedDropout
from .memory import TIERS as MEMORY_TIERS
from .memory import HeldBytes, check_tier, get_memory, set_memory
from .resnet import SpikingResNet18
from .signal import RecurrentSpikingLayer, SpikingCNN1d, SpikingRNN
from .small import SmallCNN
from .vgg import VGGSNN, SpikingVGG

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def deco(fn):
        _MODELS[name] = fn
        return fn

    return deco


def model_names() -> list[str]:
    return sorted(_MODELS)


@register_model("spiking_resnet18")
def spiking_resnet18(num_classes, in_channels, neuron, input_size=None, **kw):
    return SpikingResNet18(num_classes, in_channels, neuron, **kw)


@register_model("spiking_vgg11_bn")
def spiking_vgg11_bn(num_classes, in_channels, neuron, input_size=None, **kw):
    return SpikingVGG("vgg11", num_classes, in_channels, neuron, **kw)


@register_model("spiking_vgg13_bn")
def spiking_vgg13_bn(num_classes, in_channels, neuron, input_size=None, **kw):
    return SpikingVGG("vgg13", num_classes, in_channels, neuron, **kw)


@register_model("vggsnn")
def vggsnn(num_classes, in_channels, neuron, input_size=(48, 48), **kw):
    return VGGSNN(num_classes, in_channels, neuron, input_size=tuple(input_size), **kw)


@register_model("small_cnn")
def small_cnn(num_classes, in_channels, neuron, input_size=(8, 8), **kw):
    return SmallCNN(num_classes, in_channels, neuron, input_size=tuple(input_size), **kw)


@register_model("spiking_cnn1d")
def spiking_cnn1d(num_classes, in_channels, neuron, input_size=(40,), **kw):
    return SpikingCNN1d(num_classes, in_channels, neuron, input_size=tuple(input_size), **kw)


@register_model("spiking_rnn")
def spiking_rnn(num_classes, in_channels, neuron, input_size=(), **kw):
    return SpikingRNN(num_classes, in_channels, neuron, input_size=tuple(input_size), **kw)


def create_model(
    name: str,
    num_classes: int,
    in_channels: int,
    neuron: str | Callable[..., nn.Module] = "arlif",
    neuron_kwargs: dict | None = None,
    input_size: tuple[int, ...] | None = None,
    memory: str = "compact",
    **kw,
) -> nn.Module:
    """Build a model. ``name`` is a registered name or ``"package.module:function"``, a builder of your own,
    called as ``function(num_classes=..., in_channels=..., neuron=..., input_size=..., **kw)`` where
    ``neuron`` is a zero-argument callable that makes a new neuron layer. ``neuron`` here is a registered
    neuron name (``"arlif"``, ``"lif_hard"``, ...; ``arlif info`` lists them) or a callable returning a neuron
    module; ``neuron_kwargs`` go to it (e.g. ``{"decay": 0.2, "backend": "auto"}``); ``input_size`` ((H, W),
    (L,) or ()) sizes input-dependent heads; ``memory`` is the training-memory tier (``"compact"``, the
    default: spikes kept for backward as bits and BatchNorm outputs recomputed; ``"minimal"``: also the
    convolutions on spikes recomputed; ``"default"``: what PyTorch keeps; the same gradients in each; see
    :func:`set_memory`, which is applied to the built model, a builder of your own included); other keywords
    go to the architecture (``dropout``, ``width``/``width_mult``, ...)."""
    check_tier(memory)
    own = is_import_spec(name)
    if own:
        build = import_object(name, "model")
    elif name in _MODELS:
        build = _MODELS[name]
    else:
        raise ValueError(
            f"unknown model {name!r}; choose one of {model_names()}, or name a builder of your own as "
            "'package.module:function'"
        )
    factory = neuron_factory(neuron, **(neuron_kwargs or {}))
    if input_size is not None:
        input_size = tuple(input_size)
    try:
        if own:
            model = build(num_classes=num_classes, in_channels=in_channels, neuron=factory, input_size=input_size, **kw)
        else:
            if input_size is not None:
                kw["input_size"] = input_size
            model = build(num_classes, in_channels, factory, **kw)
    except TypeError as exc:
        raise ValueError(f"model {name!r} does not take these options {sorted(kw)}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ValueError(f"model {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return set_memory(model, memory)


__all__ = [
    "create_model",
    "model_names",
    "register_model",
    "set_memory",
    "get_memory",
    "HeldBytes",
    "MEMORY_TIERS",
    "SeqToANN",
    "SharedDropout",
    "SpikingResNet18",
    "SpikingVGG",
    "VGGSNN",
    "SmallCNN",
    "RecurrentSpikingLayer",
    "SpikingCNN1d",
    "SpikingRNN",
]
