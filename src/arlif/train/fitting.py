"""``arlif.fit``: train a model of your own on datasets of your own, from Python, with the loop of
``arlif train`` (:func:`arlif.train.loop.run_training`): the same loss, schedule, AMP, checkpoints, resume,
metrics, TensorBoard and DDP under torchrun."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ArlifError, ConfigError
from ..models import set_memory
from ..neurons import BaseNeuron, reset_net
from .checkpoint import prepare_resume
from .config import check_keys, from_dict, object_label
from .inputs import Datasets, check_not_empty, encode, skipped_recordings
from .loop import Source, run_training
from .model import build_model, check_neuron

# keys that name the data for arlif train to build; fit is given the datasets themselves
DATA_KEYS = ("dataset", "data_root", "dataset_options")
# keys that say how to build the model; they apply when fit is given a model's name, not a model object
MODEL_KEYS = ("neuron", "neuron_kwargs", "backend", "model_kwargs")


def fit(
    model: nn.Module | str,
    train_set,
    test_set,
    *,
    temporal: bool = False,
    num_classes: int | None = None,
    resume: str | Path | None = None,
    verbose: bool = True,
    **config,
) -> dict:
    """Train ``model`` on ``train_set``, test it on ``test_set`` after every epoch, and return the run's
    summary (as :func:`arlif.train.train` does; also written to ``summary.json`` in the run folder).

    Args:
        model: an ``nn.Module`` that maps inputs ``[T, B, ...]`` to per-step logits ``[T, B, classes]``; it
            is trained in place (it holds the last epoch's weights afterwards). Or the name of a registered
            model, or ``"package.module:function"``, built for the data as ``arlif train`` builds it (the
            keys ``neuron``, ``neuron_kwargs``, ``backend`` and ``model_kwargs`` then apply, and ``arlif
            eval``/``arlif energy`` can rebuild it from the checkpoint).
        train_set, test_set: map-style datasets of ``(sample, label)`` pairs with integer labels.
        temporal: ``False``: every sample is static (``[C, H, W]``, ``[C, L]``, ``[F]``) and is repeated at
            each of the ``T`` steps (direct encoding). ``True``: every sample is a sequence ``[T, ...]``
            (``T`` being the config's), which the loop makes time-first. It is not guessed from the shapes:
            a static ``[C, H, W]`` sample with ``C == T`` would look like a sequence.
        num_classes: by default ``len(train_set.classes)`` when the dataset has ``classes`` (torchvision's
            do), else the width of the model's output.
        resume: a run folder (or checkpoint) of an earlier ``fit`` to continue; give the model and the
            datasets again. Config keywords may then only be those a resumed run may change (``epochs``,
            ``out``, ...) or the values the run already has.
        verbose: ``False`` prints nothing but errors.
        **config: keys of :class:`arlif.train.TrainConfig` (``epochs``, ``lr``, ``optimizer``, ``T``,
            ``batch_size``, ``amp``, ``out``, ...); an unknown key is a :class:`ConfigError` naming it. The
            run folder is ``out``, by default ``runs/<name>-<neurons>-<time>`` (``name`` defaults to "fit").

    The run's config records a model object as ``<Sequential object>`` and the datasets as ``<TensorDataset
    object>`` (their class names), so ``arlif eval``, ``energy``, ``plot`` and ``train --resume`` refuse the
    run with a line saying to load the weights in Python (``load_checkpoint(RUN)["model"]``); a model given
    by name is rebuilt from the checkpoint, and ``arlif eval RUN --dataset NAME`` tests it.
    """
    check_keys(config, "arlif.fit's keywords (besides temporal, num_classes, resume and verbose)")
    by_name = isinstance(model, str)
    refused = DATA_KEYS if by_name else DATA_KEYS + MODEL_KEYS
    for key in refused:
        if key in config:
            why = "fit is given the datasets" if key in DATA_KEYS else "the model object has its neurons already"
            raise ConfigError(f"config key {key!r} does not apply to arlif.fit ({why})")
    if by_name:
        config = {**config, "model": model}
    ckpt = None
    if resume is not None:
        cfg, ckpt = prepare_resume(resume, config)
    else:
        labels = {"name": "fit", "dataset": object_label(train_set)}
        if not by_name:
            labels.update(model=object_label(model), neuron=_neuron_label(model))
        cfg = from_dict({**labels, **config}, "arlif.fit")
    if by_name:
        check_neuron(cfg)
    _check_samples(train_set, test_set, temporal, cfg.T, cfg.dataset)
    classes = _num_classes(num_classes, train_set, None if by_name else model, temporal, cfg.T)
    sets = Datasets(train_set, test_set, classes, bool(temporal), skipped_recordings(train_set, test_set))
    build = build_model if by_name else lambda cfg, shape: _with_memory(model, cfg)
    source = Source(lambda cfg, resuming: sets, build)
    return run_training(cfg, ckpt, source, verbose)


def _with_memory(model: nn.Module, cfg) -> nn.Module:
    """A model object with the config's ``memory`` tier: ``compact`` or ``minimal`` is applied to it;
    ``default`` leaves the object as it is (a model already set by :func:`arlif.models.set_memory` stays so)."""
    return set_memory(model, cfg.memory) if cfg.memory != "default" else model


def _neuron_label(model: nn.Module) -> str:
    """The neuron a run records for a model object: the names of its neuron layers' kinds, in model order."""
    kinds = dict.fromkeys(m.short_name() for m in model.modules() if isinstance(m, BaseNeuron))
    return "+".join(kinds) or "none"


def _check_samples(train_set, test_set, temporal: bool, T: int, name: str) -> None:
    """Both splits hold samples of one shape, as ``temporal`` says, checked before anything runs."""
    check_not_empty(name, train_set, test_set)
    shapes = []
    for split, ds in (("train_set", train_set), ("test_set", test_set)):
        item = ds[0]
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ArlifError(f"{split}[0] must be a (sample, label) pair, got {type(item).__name__}")
        shape = tuple(torch.as_tensor(item[0]).shape)
        if temporal and (len(shape) < 2 or shape[0] != T):
            raise ArlifError(
                f"temporal=True takes sequences [T={T}, C, ...] as samples, but {split}[0] has shape {shape}; "
                f"set T={shape[0] if shape else 1} or, for static samples repeated over T, temporal=False"
            )
        if not shape:
            raise ArlifError(f"{split}[0] is a scalar; samples must be tensors [C, ...] (or [T, C, ...])")
        shapes.append(shape)
    if shapes[0] != shapes[1]:
        raise ArlifError(f"train_set and test_set samples differ in shape: {shapes[0]} and {shapes[1]}")


def _num_classes(given: int | None, train_set, model: nn.Module | None, temporal: bool, T: int) -> int:
    """The number of classes: ``given``, else the dataset's ``classes``, else the model's output width. A
    model object is always run once on a sample, so that one of the wrong shape fails before the run does."""
    if given is None and hasattr(train_set, "classes"):
        given = len(train_set.classes)
    if model is None:
        if given is None:
            raise ConfigError("give num_classes= (train_set has no 'classes' to count)")
        return int(given)
    width = _output_width(model, train_set[0][0], T, temporal)
    if given is not None and width != given:
        raise ArlifError(f"the model puts out {width} logits per step, but there are {given} classes")
    return width


def _output_width(model: nn.Module, sample, T: int, temporal: bool) -> int:
    """The number of logits the model puts out, from one sample run in eval mode without gradients."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = encode(torch.as_tensor(sample).unsqueeze(0).to(device), T, temporal)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:
        raise ArlifError(
            f"the model failed on an input of shape {tuple(x.shape)} ([T, B, ...], from train_set[0]): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        reset_net(model)
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 3 or tuple(out.shape[:2]) != (T, 1):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ArlifError(
            f"the model must map inputs [T, B, ...] to per-step logits [T, B, classes]; for an input of shape "
            f"{tuple(x.shape)} it returned {got}"
        )
    return int(out.shape[-1])
