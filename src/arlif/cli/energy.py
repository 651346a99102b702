"""``arlif energy``: MACs, SOPs, energy and neuron-update cost of a checkpoint, per layer."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "energy",
        help="per-layer MACs, SOPs, energy and neuron-update cost of a checkpoint",
        description="Run test samples through a trained model and count, per conv/linear layer, the dense "
        "MACs (torch.utils.flop_counter), the input firing rate and the synaptic operations (SOPs = rate x "
        "MACs); energy = E_MAC x MACs (real-valued inputs, e.g. the first layer) + E_AC x SOPs. Also lists "
        "every neuron layer's firing rate and elementwise update operations. All counts are per sample.",
        epilog="examples:\n  arlif energy runs/RUN/best.pt\n"
        "  arlif energy runs/RUN/best.pt --samples 1000 --e-mac 3.1 --e-ac 0.1 --json energy.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file or run folder")
    p.add_argument("--data-root", help="dataset folder (default: the checkpoint's)")
    p.add_argument("--samples", type=int, default=256, help="test samples to average over (default 256)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--e-mac", type=float, default=4.6, help="energy per MAC in pJ (default 4.6)")
    p.add_argument("--e-ac", type=float, default=0.9, help="energy per accumulate in pJ (default 0.9)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument(
        "--json", metavar="PATH", help="write the report as JSON (default: energy.json beside CKPT)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from dataclasses import replace
    from pathlib import Path

    from arlif.analysis import energy_report
    from arlif.errors import ArlifError
    from arlif.train.distributed import DistInfo
    from arlif.train.evaluation import load_model, test_inputs
    from arlif.train.runtime import resolve_device

    if args.samples < 1 or args.batch_size < 1:
        raise ArlifError("--samples and --batch-size must be >= 1")
    device = resolve_device(args.device, DistInfo())
    model, cfg, ckpt = load_model(args.checkpoint, device)
    if args.data_root:
        cfg = replace(cfg, data_root=args.data_root)
    inputs = test_inputs(cfg, args.samples, args.batch_size, device)
    report = energy_report(model, inputs, e_mac_pj=args.e_mac, e_ac_pj=args.e_ac)
    print(f"{cfg.model} + {cfg.neuron} on {cfg.dataset}, checkpoint {ckpt['path']}")
    print(report.table())
    out = Path(args.json) if args.json else Path(ckpt["path"]).with_name("energy.json")
    out.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print(f"wrote {out}")
    return 0
