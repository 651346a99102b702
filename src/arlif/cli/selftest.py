"""``arlif selftest``: are the neuron kernels right on this machine? (see :mod:`arlif.selftest`)"""

from __future__ import annotations

from pathlib import Path


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def register(sub) -> None:
    p = sub.add_parser(
        "selftest",
        help="check the fused kernels here against the float64 reference (run this first on a new machine/GPU)",
        description="Check every neuron backend that runs on the device against the float64 per-step "
        "reference: each neuron variant x surrogate x input layout (random odd shapes, T=1, non-contiguous "
        "views) in float32 and a rotation of them in bfloat16 (and float16 on CUDA), two chunks with a carried "
        "state. Spikes must match exactly; "
        "state sequences, final states and the gradients of the input, the carried state and the "
        "parameters within the test suite's tolerances. Then one torch.compile(fullgraph=True) training "
        "step of a small model against eager. Prints a table and exits 1 if anything fails.",
    )
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    p.add_argument("--quick", action="store_true",
                   help="one input layout per neuron x surrogate instead of four, and the compiled step with "
                   "torch's aot_eager backend instead of inductor (a few seconds on a CPU)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write every row and the machine as JSON")
    p.add_argument("--neurons", default=None,
                   help="comma list of neuron names (default: every registered one; `arlif info` lists them)")
    p.add_argument("--backends", default=None,
                   help="comma list from torch,cpu,triton (default: every one that runs on the device; triton "
                   "on the CPU only under TRITON_INTERPRET=1, the slow interpreter)")  # fmt: skip
    p.add_argument(
        "--dtypes",
        default=None,
        help="comma list from float32,bfloat16,float16 (default float32,bfloat16, plus float16 on cuda)",
    )
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile training step")
    p.add_argument("--seed", type=int, default=0, help="seed of the random shapes and inputs (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from arlif.selftest import format_report, run_selftest

    report = run_selftest(args.device, quick=args.quick, neurons=_csv(args.neurons), backends=_csv(args.backends),
                          dtypes=_csv(args.dtypes), compile_check=not args.no_compile, seed=args.seed,
                          progress=True)  # fmt: skip
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    return 0 if report.ok else 1
