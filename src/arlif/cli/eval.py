"""``arlif eval``: accuracy, firing rates and throughput of a trained checkpoint."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint: accuracy, firing rates, throughput",
        description="Evaluate a checkpoint written by 'arlif train' on its dataset's test split (or another "
        "dataset with --dataset/--data-root). Prints top-1/top-5 accuracy, the firing rate of every neuron "
        "layer and the throughput in samples per second.",
        epilog="examples:\n  arlif eval runs/digits_small_cnn-arlif-20260101-120000/best.pt\n"
        "  arlif eval runs/cifar10-run/last.pt --data-root /data/cifar --device cuda --json eval.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (best.pt / last.pt) or run folder")
    p.add_argument("--dataset", help="evaluate on this registered dataset instead of the checkpoint's")
    p.add_argument("--data-root", help="dataset folder (default: the one in the checkpoint's config)")
    p.add_argument("--T", type=int, help="time steps (default: the checkpoint's)")
    p.add_argument("--batch-size", type=int, help="evaluation batch size (default: the checkpoint's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--backend", help="neuron backend: auto, torch, cpu, triton (default: the checkpoint's)")
    p.add_argument(
        "--amp",
        choices=("true", "false"),
        help="evaluate under autocast (bf16 on CPU, fp16 on CUDA); default: as the run was trained, so the "
        "accuracy matches the one training reported",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from arlif.train.evaluation import evaluate_checkpoint

    res = evaluate_checkpoint(
        args.checkpoint,
        dataset=args.dataset,
        data_root=args.data_root,
        T=args.T,
        batch_size=args.batch_size,
        device=args.device,
        backend=args.backend,
        progress=True,
        amp=None if args.amp is None else args.amp == "true",
    )
    print(f"checkpoint: {res['checkpoint']} (epoch {res['epoch']})")
    print(
        f"{res['model']} + {res['neuron']} on {res['dataset']} test split, T={res['T']}, {res['n']} samples"
    )
    print(f"top-1 accuracy {res['acc']:.2f}%   top-5 {res['top5']:.2f}%   loss {res['loss']:.4f}")
    print(f"throughput {res['samples_per_s']:.1f} samples/s on {res['device']}")
    print(f"firing rate overall {res['firing_rate']:.4f}")
    width = max(len(n) for n in res["layer_rates"]) if res["layer_rates"] else 5
    for name, rate in res["layer_rates"].items():
        print(f"  {name:<{width}}  {rate:.4f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
        print(f"wrote {args.json}")
    return 0
