"""``arlif bench``: forward+backward time and backward memory of each neuron × backend."""

from __future__ import annotations

from pathlib import Path

# Spelled out here rather than read from arlif.bench, which imports torch: `arlif bench --help` must stay
# instant. tests/test_cli_bench.py checks that they match the benchmark's own list.
DTYPES = ("bfloat16", "float16", "float32", "float64")
BACKENDS = ("torch", "roofline", "compiled", "cpu", "triton")
DEFAULT_BACKENDS = ("torch", "roofline", "cpu", "triton")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _shape(text: str) -> tuple[int, ...]:
    import re

    fields = [t.strip() for t in re.split(r"[,x]", text)]
    if not all(f.isdigit() for f in fields):  # an empty or non-numeric field is a typo, not a shorter shape
        raise ValueError(f"--shape must be positive integers separated by commas, e.g. 32,64,16,16; got {text!r}")
    shape = tuple(int(f) for f in fields)
    if any(s <= 0 for s in shape):
        raise ValueError(f"--shape must be positive sizes, got {text!r}")
    return shape


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="time fwd+bwd and measure backward memory of each neuron × backend",
        description="For each neuron and backend (the per-step reference 'torch', that loop under "
        "torch.compile 'compiled', the fused 'cpu' / 'triton' kernels, and 'roofline': torch streaming ops "
        "moving the fused op's bytes): forward+backward median time after warm-up, speed-up over the "
        "reference and fraction of the roofline, both measured in the same interleaved run, bytes kept for "
        "backward per input element, achieved bandwidth of the fused kernels and the roofline, and the "
        "compile time of 'compiled'. Input is [T, *shape]. Backends that cannot run on the device are "
        "skipped with a note. The header names the CPU (model, instruction-set flags, cores, threads).",
    )
    p.add_argument("--neurons", default=None,
                   help="comma list of neuron names (default: the benchmark set, one of each kernel family; "
                   "`arlif info` lists every registered neuron)")  # fmt: skip
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                   help=f"comma list from {','.join(BACKENDS)} (default {','.join(DEFAULT_BACKENDS)}; "
                   "'compiled' is left out because torch.compile takes 10-40 s per neuron on a small CPU)")  # fmt: skip
    p.add_argument("--compiled", action="store_true", help="add 'compiled' to the backends")
    p.add_argument("--compile-backend", default="inductor", metavar="NAME",
                   help="torch.compile backend of 'compiled' (default inductor; aot_eager traces without "
                   "generating code)")  # fmt: skip
    p.add_argument("--shape", default="32,64,16,16", help="per-step shape B,C,H,W... (default 32,64,16,16)")
    p.add_argument("--T", type=int, default=8, help="time steps (default 8)")
    p.add_argument("--dtype", default="float32", choices=DTYPES)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per case (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--steady-heap", action="store_true",
                   help="keep freed memory in the process (glibc) so that runs do not page-fault fresh "
                   "buffers in; the 'faults' column shows how much that matters for each case")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results as JSON")
    p.add_argument("--markdown", type=Path, default=None, metavar="PATH", help="write a Markdown table")
    p.add_argument("--quiet", action="store_true", help="no per-case progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    import torch

    from arlif import bench
    from arlif.neurons import neuron_names

    neurons = bench.default_neurons() if args.neurons is None else _csv(args.neurons)
    unknown = [n for n in neurons if n.lower() not in neuron_names()]
    if unknown:
        raise ValueError(f"unknown neuron(s) {unknown}; choose from {neuron_names()}")
    names = _csv(args.backends)
    if args.compiled and "compiled" not in names:
        names.append("compiled")
    bad = [b for b in names if b not in BACKENDS]
    if bad:
        raise ValueError(f"unknown backend(s) {bad}; choose from {','.join(BACKENDS)}")
    if not neurons or not names:
        raise ValueError("--neurons and --backends must each name at least one")
    if args.T < 1 or args.repeats < 1 or args.warmup < 0:
        raise ValueError("--T and --repeats must be >= 1 and --warmup >= 0")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available here")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.steady_heap and not bench.steady_heap():
        raise ValueError("--steady-heap needs glibc (the C library of most Linux systems); it is not used here")
    shape = _shape(args.shape)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    skipped: list[tuple[str, str, str]] = []
    results = bench.run_bench(neurons, names, shape, args.T, args.dtype, str(device), args.repeats, args.warmup,
                              log=log, skipped=skipped, compile_backend=args.compile_backend)  # fmt: skip
    if args.quiet:  # progress is optional, the reason a pair is missing from the table is not
        for neuron, backend, why in skipped:
            print(f"skip {neuron}/{backend}: {why}", file=sys.stderr)
    if not results:
        raise ValueError("nothing could be benchmarked here (see the skip lines above); choose other --backends")
    env = bench.environment(str(device))
    print("\n".join(bench.header(results, env)))
    print(bench.text_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = dict(T=args.T, shape=list(shape), dtype=args.dtype, repeats=args.repeats, warmup=args.warmup,
                        skipped=[dict(neuron=n, backend=b, reason=w) for n, b, w in skipped])  # fmt: skip
        if "compiled" in names:
            settings["compile_backend"] = args.compile_backend
        args.json.write_text(bench.to_json(results, str(device), settings) + "\n")
        print(f"wrote {args.json}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(bench.markdown_table(results, env) + "\n")
        print(f"wrote {args.markdown}")
    return 0
