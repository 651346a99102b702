"""Training-step time of a whole spiking model with one neuron against another, measured in one process.

For each neuron (``--neurons``) the same model is built (same seed, same input) and one training step
(forward, TET loss, backward) is timed in turn: A, B, A, B, ... so that a load that drifts on a shared
machine hits each alike. Reported per neuron: the median step time, and per round the ratio of each neuron's
step to the first neuron's (median and range). This is the number behind "fused AR-LIF costs about what
fused LIF costs inside a network".

With ``--neuron-layers`` it also times, in the same kind of rotation, each neuron layer of the models alone
(the layer module of each network, forward + backward on a random input of the shape it gets in the step).
The networks differ only in these layers, so the difference of their summed times, over the first
neuron's step time, estimates the whole-step ratio minus one far more precisely than the step ratio
itself: a layer takes milliseconds, so the machine drifts less within a pair, and there are many rounds.

Usage::

    PYTHONPATH=src python benchmarks/model_step.py --model spiking_resnet18 --neurons lif_soft,arlif \\
        --T 8 --batch 8 --repeats 9 --threads 2 [--steady-heap] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from model_memory import SETTINGS, step  # the sibling script: each model's input, and one training step

from arlif import bench
from arlif.models import create_model
from arlif.neurons import BaseNeuron

SHAPES = {name: shape for name, (shape, _) in SETTINGS.items()}


def build(model_name: str, neuron: str, T: int, batch: int):
    torch.manual_seed(0)
    shape = SHAPES.get(model_name, (3, 32, 32))
    size = {} if model_name == "spiking_resnet18" else {"input_size": shape[1:]}
    model = create_model(model_name, 10, shape[0], neuron=neuron, **size)
    x = torch.randn(T, batch, *shape, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(2))
    return model, x, y


def neuron_layer_inputs(model, x, y) -> list[tuple[BaseNeuron, torch.Size]]:
    """Every neuron module of ``model`` with the shape of the input it gets in one training step, in call
    order (a module called twice appears twice)."""
    seen: list[tuple[BaseNeuron, torch.Size]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: seen.append((mod, inp[0].shape)))
             for m in model.modules() if isinstance(m, BaseNeuron)]  # fmt: skip
    try:
        step(model, x, y, amp=False)
    finally:
        for h in hooks:
            h.remove()
    return seen


def time_neuron_layers(setups: dict, rounds: int, warmup: int) -> tuple[int, dict[str, list[float]]]:
    """The number of neuron layers, and per round and neuron the summed forward + backward time of all its
    network's neuron layers, each layer alone on a fixed random input of its step shape (same inputs for
    every neuron), in turn."""
    layers = {n: neuron_layer_inputs(*setup) for n, setup in setups.items()}
    shapes = [tuple(shape) for _, shape in next(iter(layers.values()))]
    if any([tuple(s) for _, s in ls] != shapes for ls in layers.values()):
        raise SystemExit("--neuron-layers: the models' neuron layers differ in number or shape")
    g = torch.Generator().manual_seed(3)
    inputs = [torch.randn(shape, generator=g) + 0.5 for shape in shapes]
    grads = [torch.rand(shape, generator=g) for shape in shapes]
    totals: dict[str, list[float]] = {n: [] for n in layers}
    for r in range(warmup + rounds):
        for n, ls in layers.items():
            total = 0.0
            for (mod, _), x, gr in zip(ls, inputs, grads):
                xi = x.clone().requires_grad_()
                mod.reset()
                t0 = time.perf_counter()
                mod(xi).backward(gr)
                total += time.perf_counter() - t0
                mod.zero_grad(set_to_none=True)
                mod.reset()
            if r >= warmup:
                totals[n].append(total)
    return len(shapes), totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="spiking_resnet18", help=f"a registered model ({', '.join(SHAPES)} ...)")
    p.add_argument("--neurons", default="lif_soft,arlif",
                   help="comma list of registered neuron names; ratios are to the first")  # fmt: skip
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=9, help="timed rounds (one step per neuron each)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--steady-heap", action="store_true", help="keep freed memory in the process (glibc)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--neuron-layers", type=int, default=0, metavar="ROUNDS",
                   help="also time the neuron layers alone for this many rounds (see above)")  # fmt: skip
    args = p.parse_args()
    neurons = [n.strip() for n in args.neurons.split(",") if n.strip()]
    if not neurons:
        p.error("--neurons: give at least one neuron name")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steady_heap and not bench.steady_heap():
        p.error("--steady-heap needs glibc")
    setups = {n: build(args.model, n, args.T, args.batch) for n in neurons}
    times: dict[str, list[float]] = {n: [] for n in neurons}
    for r in range(args.warmup + args.repeats):
        for n, (model, x, y) in setups.items():
            t0 = time.perf_counter()
            step(model, x, y, amp=False)
            if r >= args.warmup:
                times[n].append(time.perf_counter() - t0)
    env = bench.environment()
    print(f"{args.model}, input [T={args.T}, {args.batch}, {','.join(map(str, SHAPES.get(args.model, ())))}] "
          f"float32, training step (forward + TET loss + backward)")  # fmt: skip
    for line in bench.header([], env):
        print(line)
    first = times[neurons[0]]
    rows = []
    print(f"{'neuron':12} {'median ms':>10} {'min ms':>8} {'ratio to ' + neurons[0]:>28}")
    for n in neurons:
        ratios = [a / b for a, b in zip(times[n], first)]
        row = dict(neuron=n, step_ms=1e3 * statistics.median(times[n]), min_ms=1e3 * min(times[n]),
                   ratio_median=statistics.median(ratios), ratio_range=[min(ratios), max(ratios)],
                   step_ms_all=[round(1e3 * t, 1) for t in times[n]])  # fmt: skip
        rows.append(row)
        lo, hi = row["ratio_range"]
        print(f"{n:12} {row['step_ms']:10.1f} {row['min_ms']:8.1f} "
              f"{row['ratio_median']:>12.3f} [{lo:.3f}, {hi:.3f}]")  # fmt: skip
    if args.neuron_layers:
        nlayers, totals = time_neuron_layers(setups, args.neuron_layers, warmup=2)
        base_step = statistics.median(first)
        print(
            f"the {nlayers} neuron layers alone, forward + backward summed per round "
            f"({args.neuron_layers} rounds); estimated step ratio = 1 + difference / {neurons[0]}'s step"
        )
        print(f"{'neuron':12} {'median ms':>10} {'difference ms':>14} {'estimated ratio':>16}")
        for n, row in zip(neurons, rows):
            diff, q1, q3 = bench.median_quartiles([a - b for a, b in zip(totals[n], totals[neurons[0]])])
            row.update(layers_ms=1e3 * statistics.median(totals[n]), layers_diff_ms=1e3 * diff,
                       layers_diff_quartiles_ms=[1e3 * q1, 1e3 * q3],
                       estimated_ratio=1 + diff / base_step,
                       layers_ms_all=[round(1e3 * t, 2) for t in totals[n]])  # fmt: skip
            print(f"{n:12} {row['layers_ms']:10.1f} {1e3 * diff:14.1f} {row['estimated_ratio']:16.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "environment": env, "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
