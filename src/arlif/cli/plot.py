"""``arlif plot``: PNG plots of runs (curves, learned parameters) and checkpoints (rates, dynamics, raster)."""

from __future__ import annotations

import argparse

KINDS = {
    "curves": "training curves (loss, accuracy) from RUN/metrics.jsonl",
    "params": "each neuron layer's learned scalars (AR-LIF's tanh(a) and c, ...) across epochs, from RUN/metrics.jsonl",
    "rates": "firing rate per neuron layer of a checkpoint on test samples (bar chart)",
    "dynamics": "V, m and threshold θ of chosen neurons of one layer over T, spikes marked, for one sample",
    "raster": "spike raster (neurons × time) of one layer for one test sample",
}


def register(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="PNG plots: training curves, learned parameters, firing rates, dynamics, rasters",
        description="Write a PNG plot. 'curves' and 'params' read a run folder; 'rates', 'dynamics' and "
        "'raster' run a checkpoint on test samples.\n\n"
        + "\n".join(f"  {k:9} {v}" for k, v in KINDS.items()),
        epilog="examples:\n"
        "  arlif plot curves runs/RUN --out curves.png\n"
        "  arlif plot params runs/RUN\n"
        "  arlif plot rates runs/RUN/best.pt\n"
        "  arlif plot dynamics runs/RUN/best.pt --layer features.3 --neurons 4 --sample 7\n"
        "  arlif plot raster runs/RUN/best.pt --layer hidden_sn",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=list(KINDS), help="what to plot")
    p.add_argument(
        "source", metavar="RUN_OR_CKPT", help="run folder (curves, params) or checkpoint / run folder"
    )
    p.add_argument("--out", help="PNG path (default: <kind>.png in the run folder)")
    p.add_argument("--layer", help="neuron layer name for dynamics/raster (default: the first neuron layer)")
    p.add_argument(
        "--neurons", default="3", help="dynamics: how many neurons, or a comma list of indices (3)"
    )
    p.add_argument("--sample", type=int, default=0, help="dynamics/raster: index of the test sample (0)")
    p.add_argument("--samples", type=int, default=256, help="rates: test samples to average over (256)")
    p.add_argument("--data-root", help="dataset folder (default: the checkpoint's)")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace
    from pathlib import Path

    import torch

    from arlif.analysis import FiringRateMonitor, plots
    from arlif.errors import ArlifError
    from arlif.neurons import BaseNeuron, reset_net
    from arlif.train.evaluation import load_model, test_inputs

    src = Path(args.source)
    folder = src if src.is_dir() else src.parent
    out = Path(args.out) if args.out else folder / f"{args.kind}.png"
    if args.kind == "curves":
        path = plots.plot_curves(src, out)
    elif args.kind == "params":
        path = plots.plot_neuron_params(src, out)
    else:
        model, cfg, ckpt = load_model(src, "cpu")
        if args.data_root:
            cfg = replace(cfg, data_root=args.data_root)
        title = f"{cfg.model} + {cfg.neuron} on {cfg.dataset} (T={cfg.T})"
        if args.kind == "rates":
            with FiringRateMonitor(model) as mon, torch.no_grad():
                for x in test_inputs(cfg, args.samples, 64, "cpu"):
                    model(x)
                    reset_net(model)
            path = plots.plot_layer_rates(mon.layer_rates(), out, f"firing rate per layer: {title}")
        else:
            if args.sample < 0:
                raise ArlifError("--sample must be >= 0")
            x = test_inputs(cfg, args.sample + 1, args.sample + 1, "cpu")[0][:, args.sample :]
            if x.shape[1] == 0:
                raise ArlifError(f"--sample {args.sample} is beyond the test set")
            layers = [n for n, m in model.named_modules() if isinstance(m, BaseNeuron)]
            layer = args.layer or layers[0]
            rec = plots.record_layer(model, layer, x)
            if args.kind == "raster":
                path = plots.plot_raster(rec["s"], out, f"{layer}, sample {args.sample}: {title}")
            else:
                if "," in args.neurons or not args.neurons.isdigit():
                    try:
                        chosen = [int(i) for i in args.neurons.split(",") if i.strip()]
                    except ValueError as exc:
                        raise ArlifError(
                            f"--neurons takes a count or a comma list of indices, got {args.neurons!r}"
                        ) from exc
                    bad = [i for i in chosen if not 0 <= i < rec["v"].shape[1]]
                    if bad:
                        raise ArlifError(
                            f"neuron indices {bad} out of range: {layer} has {rec['v'].shape[1]} neurons"
                        )
                else:
                    chosen = plots.pick_neurons(rec["s"], max(1, int(args.neurons)))
                path = plots.plot_dynamics(rec, chosen, out, f"{layer}, sample {args.sample}: {title}")
    print(f"wrote {path}")
    return 0
