"""Training memory of a whole spiking model, per neuron backend and memory tier.

For one training step (forward + backward) on random data it reports, per backend x tier (``memory=``, see
``arlif.models.set_memory``):

- the bytes the autograd graph keeps for backward (``saved_tensors_hooks``, each storage once), split by kind:
  spikes, BatchNorm inputs, neuron inputs, params (the model's weights and buffers), other (the first layer's
  input, pooled spikes, ...);
- on the CPU, the same seen from outside autograd: the growth of the process's resident memory over one
  forward, in a child process where glibc serves every block of 64 KiB or more by mmap (so freed memory
  goes back to the system and RSS follows what is alive); on a GPU, the peak CUDA memory of the step;
- the median step time, the tiers timed in turn (A, B, A, B, ...) so that a load that drifts hits each alike,
  and per round the ratio of each tier's time to the first tier's.

The tiers are ``default``, ``compact`` (spikes as bits, BatchNorm outputs recomputed) and ``minimal`` (also
the convolutions on spikes recomputed); ``--tiers`` picks some.

Usage::

    PYTHONPATH=src python benchmarks/model_memory.py --device cpu --batch 8 --T 8 --backends auto
    PYTHONPATH=src python benchmarks/model_memory.py --model spiking_vgg11_bn --batch 2 --backends auto
    PYTHONPATH=src python benchmarks/model_memory.py --device cuda --batch 128 --T 8 --amp
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from arlif import reset_net, set_backend
from arlif.models import create_model
from arlif.models.memory import KINDS, TIERS, HeldBytes
from arlif.train import tet_loss

# input (channels, H, W) and T of each model's setting in the issue and the reference recipes
SETTINGS = {
    "spiking_resnet18": ((3, 32, 32), 8),
    "spiking_vgg11_bn": ((2, 128, 128), 20),
    "vggsnn": ((2, 48, 48), 8),
}
MMAP_THRESHOLD = 64 << 10


def _autocast(x, amp: bool):
    """The training loop's AMP: bf16 on CPU, fp16 on CUDA."""
    return torch.autocast(x.device.type, dtype=torch.bfloat16 if x.device.type == "cpu" else torch.float16,
                          enabled=amp)  # fmt: skip


def build(args, backend: str, tier: str):
    device = torch.device(args.device)
    shape, T = SETTINGS.get(args.model, ((3, 32, 32), 8))
    T = args.T or T
    torch.manual_seed(0)
    kw = {"width": args.width} if args.model == "spiking_resnet18" else {}
    size = {} if args.model == "spiking_resnet18" else {"input_size": shape[1:]}
    model = create_model(args.model, 10, shape[0], neuron=args.neuron, memory=tier, **size, **kw).to(device)
    set_backend(model, backend)
    x = torch.randn(T, args.batch, *shape, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    return model, x, y


def held_bytes(model, x, y, amp: bool) -> dict:
    """Bytes kept for backward by one forward, by kind, under the same autocast as the timed steps."""
    with HeldBytes(model) as meter, _autocast(x, amp):
        out = model(x)
        loss = tet_loss(out.float(), y)
    del out, loss
    reset_net(model)
    return {"saved_bytes": meter.bytes, "by_kind": meter.by_kind}


def step(model, x, y, amp: bool):
    with _autocast(x, amp):
        loss = tet_loss(model(x).float(), y)
    loss.backward()
    reset_net(model)
    model.zero_grad(set_to_none=True)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_child(args) -> None:
    """In the child: the resident-memory growth over one forward (after a warm-up step), printed as JSON."""
    model, x, y = build(args, args.child_backend, args.child_tier)
    step(model, x, y, args.amp)
    gc.collect()
    before = _rss()
    with _autocast(x, args.amp):
        loss = tet_loss(model(x).float(), y)
    after = _rss()
    loss.backward()
    print(json.dumps({"rss_growth_bytes": after - before}))


def rss_growth(args, backend: str, tier: str) -> int | None:
    if torch.device(args.device).type != "cpu" or not os.path.exists("/proc/self/statm"):
        return None
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD))
    cmd = [sys.executable, __file__, *sys.argv[1:], "--child-backend", backend, "--child-tier", tier]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["rss_growth_bytes"]


def measure(backend: str, tiers: list[str], args) -> list[dict]:
    rows = []
    models = {}
    for tier in tiers:
        model, x, y = build(args, backend, tier)
        models[tier] = model
        row = {"backend": backend, "tier": tier, **held_bytes(model, x, y, args.amp)}
        row["rss_growth_bytes"] = rss_growth(args, backend, tier)
        step(model, x, y, args.amp)  # warm-up (and kernel build / autotune)
        rows.append(row)
    device = torch.device(args.device)
    times = {t: [] for t in tiers}
    peaks = {}
    for _ in range(args.repeats):
        for tier in tiers:
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            step(models[tier], x, y, args.amp)
            if device.type == "cuda":
                torch.cuda.synchronize()
                peaks[tier] = torch.cuda.max_memory_allocated()
            times[tier].append(time.perf_counter() - t0)
    for row in rows:
        t = times[row["tier"]]
        row["step_ms"] = 1e3 * statistics.median(t)
        row["step_ms_all"] = [round(1e3 * v, 1) for v in t]
        ratios = [a / b for a, b in zip(t, times[tiers[0]])]
        row["ratio_median"] = statistics.median(ratios)
        row["ratio_range"] = [min(ratios), max(ratios)]
        if row["tier"] in peaks:
            row["peak_cuda_bytes"] = peaks[row["tier"]]
    return rows


def _gib(n) -> str:
    return "-" if n is None else f"{n / 2**30:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="spiking_resnet18", help=f"one of {sorted(SETTINGS)} (sets input and T)")
    p.add_argument("--neuron", default="arlif")
    p.add_argument("--width", type=int, default=64, help="ResNet base width (64 = the paper's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--T", type=int, default=None, help="time steps (default: the model's setting)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    p.add_argument("--backends", default="torch,auto")
    p.add_argument("--tiers", default=",".join(TIERS), help=f"memory tiers, from {list(TIERS)}")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child-backend", help=argparse.SUPPRESS)
    p.add_argument("--child-tier", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_tier:
        rss_child(args)
        return
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("auto", "torch", "cpu", "triton")]
    if bad or not backends:
        p.error(f"--backends: unknown {bad or 'empty list'}; choose from auto,torch,cpu,triton")
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    if not tiers or any(t not in TIERS for t in tiers):
        p.error(f"--tiers: choose from {','.join(TIERS)}")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda requested but CUDA is not available here")
    rows = [r for b in backends for r in measure(b, tiers, args)]
    shape, T = SETTINGS.get(args.model, ((3, 32, 32), 8))
    print(f"{args.model} + {args.neuron}, input {shape}, T={args.T or T}, batch {args.batch}, device {args.device}, "
          f"amp {args.amp}, torch threads {torch.get_num_threads()}; GiB")  # fmt: skip
    head = " ".join(f"{k:>12}" for k in KINDS)
    print(f"{'backend':8} {'tier':8} {'saved':>8} {head} {'RSS growth':>10} {'peak CUDA':>9} {'step ms':>8} "
          f"{'ratio':>18}")  # fmt: skip
    for r in rows:
        kinds = " ".join(f"{_gib(r['by_kind'][k]):>12}" for k in KINDS)
        lo, hi = r["ratio_range"]
        ratio = f"{r['ratio_median']:.3f} [{lo:.3f}, {hi:.3f}]"
        print(f"{r['backend']:8} {r['tier']:8} {_gib(r['saved_bytes']):>8} {kinds} {_gib(r['rss_growth_bytes']):>10} "
              f"{_gib(r.get('peak_cuda_bytes')):>9} {r['step_ms']:8.1f} {ratio:>18}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
