"""Training configuration: one flat dataclass, loaded from YAML, overridable key by key from the CLI.

Every key is documented here and in ``arlif train --help``; an unknown key is an error that lists the
valid ones. The fully resolved configuration is written to ``<out>/config.yaml`` of every run.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .._tiers import MEMORY_TIERS
from ..errors import ConfigError


@dataclass
class TrainConfig:
    """All settings of one training run (defaults: the offline digits demo)."""

    # what to train
    name: str = "digits_small_cnn"  # run name, used for the default output folder
    dataset: str = "digits"  # registered dataset (arlif data list lists them)
    data_root: str | None = None  # folder that holds the dataset (not needed for digits)
    dataset_options: dict = field(default_factory=dict)  # passed to the dataset builder
    model: str = "small_cnn"  # registered model, or package.module:function of your own
    model_kwargs: dict = field(default_factory=dict)  # passed to the architecture (dropout, width, ...)
    neuron: str = "arlif"  # a registered neuron name (`arlif info` lists them) or package.module:Class
    neuron_kwargs: dict = field(default_factory=dict)  # passed to the neuron (decay, surrogate, ...)
    backend: str = "auto"  # neuron backend: auto, torch, cpu, triton
    memory: str = "compact"  # training memory: default, compact (spikes as bits, BN recomputed), minimal (+ convs)
    T: int = 4  # time steps
    # optimisation
    epochs: int = 30  # training epochs
    batch_size: int = 64  # global batch; split evenly over DDP processes
    eval_batch_size: int | None = None  # default: batch_size
    optimizer: str = "sgd"  # sgd (momentum) or adamw
    lr: float = 0.1  # initial learning rate
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # weight decay (applies to the neuron scalars a, c, w too)
    scheduler: str = "cosine"  # cosine (annealed over all epochs, stepped per epoch) or constant
    grad_clip: float | None = None  # max gradient norm; none (or null) to disable
    # loss (docs/recipes.md#loss): (1 - mse_lambda)·mean_t CE(O_t, y) + mse_lambda·MSE(O, target)
    mse_lambda: float = 0.05  # λ_L, weight of the MSE term
    mse_target: str = "const"  # const (1.0) or onehot
    label_smoothing: float = 0.0  # label smoothing of the cross-entropy
    mixup_alpha: float = 0.0  # > 0 enables MixUp; with cutmix_alpha too, one of the two per batch
    cutmix_alpha: float = 0.0  # > 0 enables CutMix
    # runtime
    device: str = "auto"  # auto (cuda if available), cpu, cuda, cuda:N
    amp: bool | None = None  # mixed precision; default: on for CUDA, off for CPU
    seed: int = 2022
    deterministic: bool = False  # deterministic algorithms (bit-exact resume and reruns)
    workers: int = 0  # DataLoader worker processes
    sync_bn: bool = False  # SyncBatchNorm under DDP
    out: str | None = None  # run folder; default runs/<name>-<neuron>-<time>
    max_steps_per_epoch: int | None = None  # cap on training steps per epoch (quick checks)
    tensorboard: bool = True  # also log to <out>/tb
    reference_acc: dict | None = None  # reference accuracy {best: %, final: %}, reported beside the run's own

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)
CHOICES = {
    "optimizer": ("sgd", "adamw"),
    "scheduler": ("cosine", "constant"),
    "mse_target": ("const", "onehot"),
    "backend": ("auto", "torch", "cpu", "triton"),
    "memory": MEMORY_TIERS,
}
# keys a resumed run may change (everything else must match the checkpoint)
RESUMABLE_OVERRIDES = {
    "epochs",
    "memory",
    "device",
    "workers",
    "data_root",
    "max_steps_per_epoch",
    "tensorboard",
    "out",
    "reference_acc",
}

# The recipes shipped with the package, selectable by name: --config cifar100_resnet18_t8
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class YAMLLoader(yaml.SafeLoader):
    """PyYAML's safe loader, also reading ``1e-4`` (no dot) as a float, as YAML 1.2 does: PyYAML follows
    YAML 1.1 and gives the text '1e-4', which people write for learning rates and neuron constants alike."""


YAMLLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(f"^{_EXPONENT_FLOAT.pattern}$"),
                                 list("-+0123456789."))  # fmt: skip


def load_yaml(text: str):
    return yaml.load(text, Loader=YAMLLoader)


def _numbers_in(value):
    """Exponent text inside nested options (``neuron_kwargs: {decay: 5e-1}``) as the float it means: configs
    saved in run folders and checkpoints before :class:`YAMLLoader` hold such text."""
    if isinstance(value, dict):
        return {k: _numbers_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_in(v) for v in value]
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


def _allowed_types(hint) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arg in typing.get_args(hint) for t in _allowed_types(arg))
    if hint is type(None):
        return (type(None),)
    return (typing.get_origin(hint) or hint,)


def _coerce(key: str, value):
    allowed = _allowed_types(_HINTS[key])
    if type(None) in allowed and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
        return None  # YAML spells it null; "none" is what people type
    if isinstance(value, bool) and bool not in allowed:
        raise ConfigError(f"config key {key!r} expects {_type_name(allowed)}, got {value!r}")
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if float in allowed and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        value = float(value)  # PyYAML reads 1e-4 (no dot) as text; people write learning rates that way
    if dict in allowed and isinstance(value, dict):
        value = _numbers_in(value)
    if not isinstance(value, allowed):
        raise ConfigError(f"config key {key!r} expects {_type_name(allowed)}, got {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"config key {key!r} must be one of {list(CHOICES[key])}, got {value!r}")
    return value


def _type_name(allowed) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in allowed)


def check_keys(keys, where: str) -> None:
    unknown = sorted(set(keys) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {where}; valid keys: {sorted(FIELDS)}")


def from_dict(values: dict, where: str = "config") -> TrainConfig:
    """Build a validated config from a (partial) dict of values; missing keys keep their defaults."""
    check_keys(values, where)
    cfg = TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})
    validate(cfg)
    return cfg


def config_names() -> list[str]:
    """Names of the shipped recipes (``arlif train --list-configs``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config(spec: str | Path) -> Path:
    """The file ``spec`` names: an existing path, else a shipped recipe by name (with or without .yaml)."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"config {spec} is a folder; give a YAML file or a shipped recipe's name")
    names = config_names()
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    bare = "/" not in str(spec) and os.sep not in str(spec)  # ./NAME.yaml is a path, NAME a recipe
    if bare and stem in names:
        return CONFIG_DIR / f"{stem}.yaml"
    if stem in names:  # e.g. the old configs/NAME.yaml of a checkout: name the shipped recipe, don't guess
        raise ConfigError(f"config file {spec} not found; the shipped recipe of that name is --config {stem}")
    if not bare:
        raise ConfigError(f"config file {spec} not found (arlif train --list-configs lists the shipped recipes)")
    close = difflib.get_close_matches(stem, names, n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise ConfigError(
        f"config {str(spec)!r} is neither a file nor a shipped recipe{hint} "
        "(arlif train --list-configs lists the recipes)"
    )


def read_yaml_config(path: Path) -> dict:
    """The mapping of a config file, with clear errors for a file that is not one."""
    try:
        loaded = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read as text: {exc}") from exc
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    check_keys(loaded, str(path))
    return loaded


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Load a config (a YAML path or a shipped recipe's name; the defaults when ``path`` is None) and apply
    ``overrides``."""
    values: dict = {}
    if path is not None:
        path = resolve_config(path)
        values.update(read_yaml_config(path))
    if overrides:
        check_keys(overrides, "command-line overrides")
        values.update(overrides)
    return from_dict(values, str(path) if path else "config")


# The range of every numeric key, as (test, the allowed range in words). A key whose value may be null (off /
# default) is checked only when set. Floats must also be finite: NaN passes every comparison unnoticed.
RANGES = {
    "T": (lambda v: v >= 1, ">= 1"),
    "epochs": (lambda v: v >= 1, ">= 1"),
    "batch_size": (lambda v: v >= 1, ">= 1"),
    "eval_batch_size": (lambda v: v >= 1, ">= 1 (or null: the batch_size)"),
    "max_steps_per_epoch": (lambda v: v >= 1, ">= 1 (or null: no cap)"),
    "workers": (lambda v: v >= 0, ">= 0 (0 loads the data in the main process)"),
    # numpy gets seed % 2**32; within ±2**32 the per-epoch seeds derived from it stay inside torch's 64 bits.
    # Negative seeds trained before this check existed, so their runs must still resume.
    "seed": (lambda v: -(2**32) < v < 2**32, "in (-2**32, 2**32)"),
    "lr": (lambda v: v > 0, "> 0"),
    # momentum 1 or more never forgets a gradient, and the steps grow without bound
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    # a negative norm would flip the gradients' sign; null turns clipping off
    "grad_clip": (lambda v: v > 0, "> 0 (or null: no clipping)"),
    "mse_lambda": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "label_smoothing": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "mixup_alpha": (lambda v: v >= 0, ">= 0 (0 turns MixUp off)"),
    "cutmix_alpha": (lambda v: v >= 0, ">= 0 (0 turns CutMix off)"),
}


def validate(cfg: TrainConfig) -> None:
    """Refuse values outside a key's range (:data:`RANGES`), naming the key and the range."""
    for key, (ok, allowed) in RANGES.items():
        value = getattr(cfg, key)
        if value is None:
            continue
        if (isinstance(value, float) and not math.isfinite(value)) or not ok(value):
            raise ConfigError(f"config key {key!r} must be {allowed}, got {value}")
    ref = cfg.reference_acc
    if ref is not None and (
        set(ref) != {"best", "final"}
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ref.values())
    ):
        raise ConfigError(f"config key 'reference_acc' must be {{best: %, final: %}} (numbers), got {ref!r}")


def object_label(obj) -> str:
    """What a run's config records as ``model`` or ``dataset`` when :func:`arlif.fit` was given the object
    itself: ``<Sequential object>``, which no registered name or ``package.module:function`` matches."""
    return f"<{type(obj).__name__} object>"


def is_object_label(name: str) -> bool:
    return name.startswith("<") and name.endswith(" object>")


def parse_value(text: str):
    """Parse a command-line value as YAML would (``0.1`` -> float, ``null`` -> None, ``{a: 1}`` -> dict)."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def save_config(cfg: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def field_help() -> dict[str, str]:
    """Each key's help text: the comment beside it in :class:`TrainConfig` (one place documents a key)."""
    import inspect
    import re

    helps = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        m = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
        if m:
            helps[m.group(1)] = m.group(2).strip()
    return helps
