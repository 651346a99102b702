"""``arlif train``: train a spiking network from a YAML config (default: the offline digits demo)."""

from __future__ import annotations

import argparse
import dataclasses

EXAMPLES = """examples:
  arlif train                                          offline demo: AR-LIF small CNN on sklearn digits (CPU)
  arlif train --neuron lif_hard                        the same with hard-reset neurons
  arlif train --config cifar10_resnet18_t4 --data-root /data/cifar
  arlif train --config cifar10dvs_vggsnn_t8 --data-root /data/CIFAR10DVS --epochs 50
  arlif train --list-configs                          the shipped recipes and their reference accuracy
  arlif train --resume runs/digits_small_cnn-arlif-20260101-120000      continue a stopped run
  torchrun --nproc_per_node=4 -m arlif train --config cifar100_resnet18_t6 --data-root /data

every config key can be overridden with --KEY VALUE (VALUE is read as YAML: 0.1, true, null, {decay: 0.2}).
--neuron NAME takes any registered neuron: `arlif info` lists them with a description."""


def register(sub) -> None:
    from arlif.train.config import _HINTS, FIELDS, _allowed_types, field_help, parse_value

    p = sub.add_parser(
        "train",
        help="train a spiking network (default: offline digits demo)",
        description="Train and evaluate every epoch. Writes config.yaml, metrics.jsonl, summary.json, "
        "last.pt/best.pt checkpoints and TensorBoard logs to the run folder (--out). Reports both the best "
        "and the final-epoch test accuracy.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="NAME|YAML",
                   help="a shipped recipe by name (see --list-configs) or a YAML file; default: the digits demo")
    p.add_argument("--list-configs", action="store_true",
                   help="list the shipped recipes with their reference accuracy, then exit")  # fmt: skip
    p.add_argument("--resume", metavar="RUN", help="continue a run from its folder or a checkpoint file")
    keys = p.add_argument_group("config keys (override the config file)")
    helps = field_help()
    for key in FIELDS:
        flag = "--" + key.replace("_", "-")
        default = FIELDS[key].default if FIELDS[key].default_factory is dataclasses.MISSING else {}
        text = f"{helps.get(key, '')} (default: {default})".lstrip().replace("%", "%%")  # argparse formats help
        kw = dict(dest=key, default=argparse.SUPPRESS, help=text)
        if bool in _allowed_types(_HINTS[key]):
            keys.add_argument(flag, nargs="?", const=True, type=parse_value, metavar="BOOL", **kw)
        else:
            keys.add_argument(flag, type=parse_value, metavar=key.upper().replace("-", "_"), **kw)
    p.set_defaults(func=run)


def overrides_from(args) -> dict:
    from arlif.train.config import FIELDS

    return {k: getattr(args, k) for k in FIELDS if hasattr(args, k)}


def list_configs() -> str:
    """One line per shipped recipe: name, dataset, model, T, epochs and the reference run's accuracy."""
    from arlif.train.config import CONFIG_DIR, config_names, read_yaml_config

    rows = [("name", "dataset", "model", "neuron", "T", "epochs", "reference best / final %")]
    for name in config_names():
        c = read_yaml_config(CONFIG_DIR / f"{name}.yaml")
        ref = c.get("reference_acc")
        ref_text = f"{ref['best']} / {ref['final']}" if ref else "–"
        rows.append((name, c.get("dataset", "digits"), c.get("model", "small_cnn"), c.get("neuron", "arlif"),
                     str(c.get("T", 4)), str(c.get("epochs", 30)), ref_text))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + (
        "\n\nrun one with: arlif train --config NAME --data-root PATH. '–': no reference run of exactly this "
        "recipe (the faithful CIFAR10-DVS configs; their *_ref twins reproduce the published runs)."
    )


def run(args) -> int:
    if args.list_configs:  # needs no torch
        print(list_configs())
        return 0
    from arlif.train import load_config, train

    overrides = overrides_from(args)
    if args.resume:
        if args.config:
            print("note: --config is ignored with --resume (the run's own config is used)")
        train(None, resume=args.resume, overrides=overrides)
    else:
        train(load_config(args.config, overrides))
    return 0
