"""``arlif ablate``: every neuron variant on one benchmark over several seeds, with confidence intervals."""

from __future__ import annotations

import argparse

# --dataset NAME picks the shipped recipe of that benchmark
BENCHMARKS = {
    "digits": "digits_small_cnn",
    "mnist1d": "mnist1d_cnn",
    "mnist1d_seq": "mnist1d_seq_srnn_short",
}

EXAMPLES = """examples:
  arlif ablate                                   the digits demo, 5 seeds
  arlif ablate --dataset mnist1d                 the mnist1d_cnn recipe, 5 seeds
  arlif ablate --config mnist1d_cnn -o shuffle=true --out runs/ablation/mnist1d-shuffled
  arlif ablate --config mnist1d_seq_srnn --seeds 5 --markdown mnist1d_seq.md
  arlif ablate --seeds 2 --epochs 1              quick check
  arlif ablate --config mnist1d_seq_srnn --jobs 2   two one-thread runs at a time (2 cores)
  arlif ablate --config my_recipe.yaml --data-root /data/cifar --variants arlif,lif_soft

Rerunning the same command reuses finished runs and resumes unfinished ones; a run folder made with other
settings is an error (use another --out)."""


def register(sub) -> None:
    p = sub.add_parser(
        "ablate",
        help="ablation: AR-LIF, its ablations and the baseline neurons on one benchmark over several seeds",
        description="Train one recipe with each neuron variant (by default the registry's ablation set: "
        "AR-LIF, its two ablations and four baselines; `arlif info` lists every registered neuron, and "
        "--variants takes any of them), each over the same seeds, then report per variant "
        "the final and best test accuracy, firing rate, SOPs and energy per sample (mean ± std and the 95% "
        "Student-t interval) and a paired comparison of AR-LIF with every variant (mean difference over the "
        "shared seeds, its 95% interval, and whether it excludes 0). Writes a Markdown table, a PNG of the "
        "accuracies with error bars and ablation.json. Runs are kept in --out.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--config", metavar="NAME|YAML",
                      help="the recipe to ablate: a shipped config by name or a YAML file (default: the digits demo)")
    what.add_argument("--dataset", choices=sorted(BENCHMARKS),
                      help="shorthand for the shipped recipe of a benchmark: "
                      + ", ".join(f"{d} -> {c}" for d, c in BENCHMARKS.items()))  # fmt: skip
    p.add_argument("--seeds", type=int, default=5, help="number of seeds, 0..N-1, the same for every variant "
                   "(default 5)")  # fmt: skip
    p.add_argument("--epochs", type=int, help="epochs per run (default: the recipe's)")
    p.add_argument("--variants", help="comma list of neuron names (default: the seven of the ablation set; "
                   "`arlif info` lists every registered neuron)")  # fmt: skip
    p.add_argument("-o", "--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset option on top of the recipe's, e.g. -o shuffle=true (YAML value); repeatable")
    p.add_argument("--data-root", help="folder that holds the dataset (not needed for digits and MNIST-1D)")
    p.add_argument("--device", help="device for training (default: the recipe's, auto)")
    p.add_argument("--max-steps-per-epoch", type=int, help="cap on training steps per epoch (quick checks)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs at once in worker processes, each with 1/N of the CPU threads (default 1). "
                   "Small models often train faster per core with one thread: on 2 cores, --jobs 2 can nearly "
                   "halve the wall time")  # fmt: skip
    p.add_argument("--out", help="folder for the runs (default runs/ablation/<recipe name>[-<options>])")
    p.add_argument("--markdown", help="write the report to this Markdown file (default <out>/ABLATION.md)")
    p.add_argument("--png", help="write the accuracy plot here (default <out>/ablation.png)")
    p.set_defaults(func=run)


def _default_out(name: str, options: dict) -> str:
    tag = "".join(f"-{k}={v}" for k, v in sorted(options.items()))
    return f"runs/ablation/{name}{tag}"


def run(args) -> int:
    import json
    from pathlib import Path

    from arlif.cli.data import _options
    from arlif.errors import ArlifError
    from arlif.train.ablation import run_ablation, setup_text, total_wall_s
    from arlif.train.config import load_config

    if args.seeds < 1:
        raise ArlifError("--seeds must be >= 1")
    if args.jobs < 1:
        raise ArlifError(f"--jobs must be >= 1, got {args.jobs}")
    spec = BENCHMARKS[args.dataset] if args.dataset else args.config
    extra = _options(args.dataset_option)
    recipe = load_config(spec)
    overrides = {"dataset_options": {**recipe.dataset_options, **extra}}
    for key in ("epochs", "max_steps_per_epoch", "data_root", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    base = load_config(spec, overrides)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    out = Path(args.out or _default_out(base.name, extra))
    png = Path(args.png) if args.png else out / "ablation.png"
    seeds = list(range(args.seeds))
    print(f"ablation of {setup_text(base, seeds)}; runs in {out}")
    rows, table = run_ablation(base, seeds, out, variants, png=png, jobs=args.jobs)
    title = f"# Ablation: {base.model} on {base.dataset}"
    if base.dataset_options:
        title += " (" + ", ".join(f"{k}={v}" for k, v in sorted(base.dataset_options.items())) + ")"
    print()
    print(table)
    md = Path(args.markdown) if args.markdown else out / "ABLATION.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(f"{title}\n\n{table}")
    elapsed = json.loads((out / "ablation.json").read_text())["elapsed_s"]
    print(f"training time of the {len(rows)} runs together: {total_wall_s(rows) / 60:.1f} min; this command took "
          f"{elapsed / 60:.1f} min ({args.jobs} at a time, reused runs included)")
    print(f"wrote {md}, {png} and {out / 'ablation.json'}")
    return 0
