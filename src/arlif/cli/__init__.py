"""The ``arlif`` command. Each sub-command lives in its own module of this package and exposes
``register(subparsers)``; this file only wires them together and turns user errors into clear messages."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from .. import __version__
from ..errors import ArlifError

# sub-command modules, in the order --help lists them
COMMANDS = ["train", "eval", "energy", "plot", "ablate", "data", "bench", "info", "selftest"]

EPILOG = """examples:
  arlif train                     offline demo: AR-LIF on scikit-learn digits, CPU, under a minute
  arlif train --config cifar10_resnet18_t4 --data-root /data/cifar
  arlif eval runs/RUN/best.pt      accuracy, firing rates and throughput of a checkpoint
  arlif energy runs/RUN/best.pt    per-layer MACs, SOPs, energy and neuron-update cost
  arlif plot dynamics runs/RUN/best.pt   V, m and threshold traces (also curves, params, rates, raster)
  arlif ablate --dataset mnist1d  AR-LIF vs its ablations and 4 baselines, 5 seeds, 95% intervals
  arlif info                      versions, devices and neuron backends available here
  arlif selftest --device cuda    are the kernels right here? every neuron vs the float64 reference
  arlif data info cifar10dvs --root ~/data/CIFAR10-DVS    check a dataset's files, count samples
  arlif bench --neurons arlif,lif --json bench.json --markdown bench.md
                                  fwd+bwd time and backward memory per neuron x backend
run 'arlif COMMAND --help' for the options of each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arlif",
        description="AR-LIF spiking neural networks: train, evaluate, benchmark and analyse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"arlif {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


# argparse reads a value such as -1e-4 as an option (it only knows plain negative numbers), so
# "--lr -1e-4" would fail with "expected one argument" instead of reaching the config's own check
_NEG_EXPONENT = re.compile(r"-(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _attach_negative_exponents(argv: list[str]) -> list[str]:
    out: list[str] = []
    for tok in argv:
        if out and _NEG_EXPONENT.fullmatch(tok) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _attach_negative_exponents(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        hint = ""
        if getattr(args, "command", None) == "train":
            from ..train.config import FIELDS

            hint = "; config keys are set as --KEY VALUE with KEY one of: " + ", ".join(
                "--" + k.replace("_", "-") for k in FIELDS
            )
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    if args.command is None:
        parser.print_help()
        return 0
    debug = args.debug or os.environ.get("ARLIF_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ArlifError, ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        if debug:
            raise
        print(f"arlif {args.command}: error: {exc}", file=sys.stderr)
        print("(run with --debug for the full traceback)", file=sys.stderr)
        return 2
