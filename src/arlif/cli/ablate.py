"""``arlif ablate``: the offline ablation table (every neuron variant on digits, several seeds)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "ablate",
        help="ablation table: AR-LIF, its ablations and LIF/PLIF/CLIF on the offline digits benchmark",
        description="Train the digits demo with AR-LIF, AR-LIF without threshold adjustment, AR-LIF without "
        "adaptive reset, soft LIF, hard LIF, PLIF and CLIF over several seeds, then print a Markdown table "
        "of best and final test accuracy (mean ± std), firing rate, SOPs and energy per variant. Runs are kept "
        "in --out; rerunning reuses finished runs and resumes unfinished ones.",
        epilog="examples:\n  arlif ablate                                   3 seeds, the demo's 30 epochs\n"
        "  arlif ablate --seeds 1 --epochs 1              quick check\n"
        "  arlif ablate --markdown benchmarks/ABLATION.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the demo's)")
    p.add_argument("--variants", help="comma list of variants (default: all seven)")
    p.add_argument("--max-steps-per-epoch", type=int, help="cap on training steps per epoch (quick checks)")
    p.add_argument("--out", default="runs/ablation", help="folder for the runs (default runs/ablation)")
    p.add_argument("--markdown", help="write the table to this Markdown file (default <out>/ABLATION.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from arlif.errors import ArlifError
    from arlif.train.ablation import run_ablation
    from arlif.train.config import load_config

    if args.seeds < 1:
        raise ArlifError("--seeds must be >= 1")
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.max_steps_per_epoch is not None:
        overrides["max_steps_per_epoch"] = args.max_steps_per_epoch
    base = load_config(None, overrides)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    _, table = run_ablation(base, list(range(args.seeds)), args.out, variants)
    print()
    print(table)
    out = Path(args.markdown) if args.markdown else Path(args.out) / "ABLATION.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Ablation on the offline digits benchmark\n\n" + table)
    print(f"wrote {out}")
    return 0
