"""The config's model: checking its neuron early, and building it for the data's shape."""

from __future__ import annotations

import warnings

from torch import nn

from ..errors import ConfigError
from ..models import create_model
from .config import TrainConfig, is_object_label


def build_model(cfg: TrainConfig, shape: dict) -> nn.Module:
    """The config's model for data of ``shape`` (see :func:`arlif.train.inputs.data_shape`)."""
    refuse_object_model(cfg)
    neuron_kwargs = {"backend": cfg.backend, **cfg.neuron_kwargs}
    return create_model(
        cfg.model,
        num_classes=shape["num_classes"],
        in_channels=shape["in_channels"],
        neuron=cfg.neuron,
        neuron_kwargs=neuron_kwargs,
        input_size=tuple(shape["input_size"]),
        memory=cfg.memory,
        **cfg.model_kwargs,
    )


def refuse_object_model(cfg: TrainConfig) -> None:
    """A model given to :func:`arlif.fit` as an object is known to its config by its class name only."""
    if is_object_label(cfg.model):
        raise ConfigError(
            f"this run's model {cfg.model} was given to arlif.fit as a Python object, so it cannot be rebuilt "
            "from the config; build it in Python and load the weights "
            "(model.load_state_dict(arlif.train.load_checkpoint(RUN)['model'])), or continue the run with "
            "arlif.fit(model, train_set, test_set, resume=RUN)"
        )


def check_neuron(cfg: TrainConfig) -> None:
    """Make one neuron layer of the config now: a bad ``neuron`` or ``neuron_kwargs`` (decay 2, tau 0, a typo)
    then stops the run with the key named before any data are read or the run folder is made."""
    from ..neurons import neuron_factory, neuron_names

    where = f"'neuron_kwargs' (neuron {cfg.neuron!r})" if cfg.neuron.lower() in neuron_names() else "'neuron'"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an option the neuron drops is warned about when the model is built
        try:
            neuron_factory(cfg.neuron, **{"backend": cfg.backend, **cfg.neuron_kwargs})()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config key {where}: {exc}") from None
