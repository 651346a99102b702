"""Training memory of a whole spiking model with the reference vs the fused neuron backend.

For one training step (forward + backward) of ``spiking_resnet18`` on random CIFAR-shaped data it reports:
the bytes the autograd graph keeps for backward (``saved_tensors_hooks``, each storage once), the peak
CUDA memory of the step (on a GPU), and the median step time. Usage::

    PYTHONPATH=src python benchmarks/model_memory.py --device cpu --batch 8 --T 8
    PYTHONPATH=src python benchmarks/model_memory.py --device cuda --batch 128 --T 8 --amp
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from arlif import reset_net, set_backend
from arlif.bench import SavedBytes
from arlif.models import create_model
from arlif.train import tet_loss


def _autocast(x, amp: bool):
    """The training loop's AMP: bf16 on CPU, fp16 on CUDA."""
    return torch.autocast(x.device.type, dtype=torch.bfloat16 if x.device.type == "cpu" else torch.float16,
                          enabled=amp)  # fmt: skip


def saved_bytes(model, x, y, amp: bool) -> int:
    """Bytes kept for backward by one forward, under the same autocast as the timed steps."""
    with SavedBytes() as meter, _autocast(x, amp):
        out = model(x)
        loss = tet_loss(out.float(), y)
    del out, loss
    reset_net(model)
    return meter.bytes


def step(model, x, y, amp: bool):
    with _autocast(x, amp):
        loss = tet_loss(model(x).float(), y)
    loss.backward()
    reset_net(model)
    model.zero_grad(set_to_none=True)


def measure(backend: str, args) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model(args.model, 10, 3, neuron=args.neuron, width=args.width).to(device)
    set_backend(model, backend)
    x = torch.randn(args.T, args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    res = {"backend": backend, "saved_bytes": saved_bytes(model, x, y, args.amp)}
    step(model, x, y, args.amp)  # warm-up (and kernel build / autotune)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step(model, x, y, args.amp)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    res["step_ms"] = 1e3 * statistics.median(times)
    if device.type == "cuda":
        res["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="spiking_resnet18")
    p.add_argument("--neuron", default="arlif")
    p.add_argument("--width", type=int, default=64, help="ResNet base width (64 = the paper's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    p.add_argument("--backends", default="torch,auto")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("auto", "torch", "cpu", "triton")]
    if bad or not backends:
        p.error(f"--backends: unknown {bad or 'empty list'}; choose from auto,torch,cpu,triton")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda requested but CUDA is not available here")
    rows = [measure(b, args) for b in backends]
    print(f"{args.model} + {args.neuron}, T={args.T}, batch {args.batch}, device {args.device}, amp {args.amp}")
    print(f"{'backend':8} {'saved for backward':>20} {'peak CUDA':>12} {'step ms':>9}")
    for r in rows:
        peak = f"{r['peak_cuda_bytes'] / 2**30:.2f} GiB" if "peak_cuda_bytes" in r else "-"
        print(f"{r['backend']:8} {r['saved_bytes'] / 2**30:17.3f} GiB {peak:>12} {r['step_ms']:9.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
