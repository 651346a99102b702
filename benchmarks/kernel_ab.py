"""A/B timing of two builds of the fused CPU kernels in one process: the same fused forward + backward as the
``cpu`` rows of ``arlif bench``, run from build A and from build B in turn (A then B in one round, B then A in
the next), so that a shared machine's drift hits both alike. Each build is made by the library's own build
(``arlif.ops.cpu_build.build``) from a flags string (in place of ``ARLIF_CXXFLAGS``) and a kernel source folder
(default: the installed ``arlif/ops``; give a modified copy to time a change to the C++ code).

    # does an AVX2 build lose anything against -march=native here?
    PYTHONPATH=src python benchmarks/kernel_ab.py --b-flags=-march=x86-64-v3
    # a change to the kernels: copy src/arlif/ops, edit the copy, time it against the original
    cp -r src/arlif/ops /tmp/ops_b && $EDITOR /tmp/ops_b/arlif/cpu_kernels.cpp
    PYTHONPATH=src python benchmarks/kernel_ab.py --b-src /tmp/ops_b --neurons arlif,lif_soft --rounds 31

Per neuron it prints each build's median forward + backward and the paired ratio B/A (median and quartiles
of the per-round ratios, ``arlif.bench.paired_ratio``); with two or more neurons, also each build's paired
ratio of every neuron to the first. A and B alike (the default) time one library against itself: how far the
ratios stray from 1.00 there is the noise floor of this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from arlif import bench
from arlif.cli.bench import _csv, _shape  # the parsing and messages of `arlif bench`
from arlif.neurons.registry import get_neuron
from arlif.ops import cpu_build
from arlif.ops.backends import BackendUnavailableError

DEFAULT_NEURONS = "lif_soft,arlif"


def build_variant(name: str, flags: str | None, src: str | None) -> tuple[Path, object]:
    """Build (or find in the cache) and load one variant; a failed build exits with its compiler message."""
    where = f"from {src}" if src else "from the installed sources"
    print(f"build {name}: {where}" + (f", ARLIF_CXXFLAGS={flags!r}" if flags is not None else ""), flush=True)
    try:
        path = cpu_build.build(flags, Path(src) if src else None)
        return path, cpu_build.open_library(path)
    except BackendUnavailableError as exc:
        sys.exit(f"kernel_ab.py: build {name} failed: {exc}")


def time_variants(libs, neurons, shape, T, rounds, warmup):
    """Per-round seconds of fused fwd+bwd, ``times[variant][neuron]``, the variants interleaved."""
    base = bench._make_input(shape, T, torch.float32, "cpu")
    grad = torch.rand_like(base)
    runners = {n: bench._runner(n, "cpu", torch.float32, "cpu") for n in neurons}
    times = [{n: [] for n in neurons} for _ in libs]
    for r in range(warmup + rounds):
        for n, run in runners.items():
            for v in (0, 1) if r % 2 == 0 else (1, 0):
                with cpu_build.using(libs[v]):
                    dt, _ = bench._time_once(run, base, grad, "cpu")
                if r >= warmup:
                    times[v][n].append(dt * 1e3)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    ap.add_argument("--a-flags", default=None, help="ARLIF_CXXFLAGS of build A (default: the environment's)")
    ap.add_argument("--b-flags", default=None, help="ARLIF_CXXFLAGS of build B (default: the environment's)")
    ap.add_argument("--a-src", default=None, help="kernel source folder of build A, laid out as src/arlif/ops")
    ap.add_argument("--b-src", default=None, help="kernel source folder of build B, laid out as src/arlif/ops")
    ap.add_argument("--neurons", default=DEFAULT_NEURONS, help=f"comma list (default {DEFAULT_NEURONS})")
    ap.add_argument("--shape", default="32,64,16,16", help="per-step shape (default 32,64,16,16)")
    ap.add_argument("--T", type=int, default=8, help="time steps (default 8)")
    ap.add_argument("--rounds", type=int, default=21, help="timed rounds (default 21)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--system-heap", action="store_true",
                    help="leave glibc's heap as it is (default: the steady heap of arlif bench --steady-heap, so "
                         "that no run page-faults fresh buffers in)")  # fmt: skip
    ap.add_argument("--json", default=None, metavar="PATH", help="write the per-round times and ratios as JSON")
    args = ap.parse_args(argv)
    try:
        neurons = [get_neuron(n).name for n in _csv(args.neurons)]
        shape = _shape(args.shape)
    except (KeyError, ValueError) as exc:
        ap.error(str(exc))
    if args.rounds < 1 or args.warmup < 0 or args.T < 1 or not neurons:
        ap.error("--rounds and --T must be >= 1, --warmup >= 0, and --neurons must name at least one")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    for src in (args.a_src, args.b_src):
        if src and not (Path(src) / "cpu_common.h").is_file():
            ap.error(f"{src} is not a kernel source folder: it has no cpu_common.h (copy src/arlif/ops)")
    why = cpu_build.unavailable_reason()
    if why:
        sys.exit(f"kernel_ab.py: {why}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    steady = False if args.system_heap else bench.steady_heap()
    path_a, lib_a = build_variant("A", args.a_flags, args.a_src)
    path_b, lib_b = build_variant("B", args.b_flags, args.b_src)
    same = path_a == path_b
    env = bench.environment("cpu")
    print(bench.cpu_line(env["cpu"]))
    print(f"torch {env['torch']}, {env['threads']} CPU threads, {'steady' if steady else 'system'} heap; "
          f"input [T={args.T}, {','.join(map(str, shape))}] float32")  # fmt: skip
    print(f"A: {path_a}\nB: {path_b}" + ("  (the same library: B/A shows this machine's noise)" if same else ""))
    times = time_variants((lib_a, lib_b), neurons, shape, args.T, args.rounds, args.warmup)
    rows = []
    print(f"{'neuron':10s} {'A ms':>9s} {'B ms':>9s}   B/A paired (quartiles), {args.rounds} rounds")
    for n in neurons:
        a, b = times[0][n], times[1][n]
        med, q1, q3 = bench.paired_ratio(b, a)
        print(f"{n:10s} {statistics.median(a):9.3f} {statistics.median(b):9.3f}   {med:.3f} ({q1:.3f}-{q3:.3f})")
        rows.append(dict(neuron=n, a_ms=a, b_ms=b, b_over_a=[med, q1, q3]))
    to_first = {}
    for v, name in ((0, "A"), (1, "B")):
        first = neurons[0]
        for n in neurons[1:]:
            med, q1, q3 = bench.paired_ratio(times[v][n], times[v][first])
            to_first[f"{name}:{n}/{first}"] = [med, q1, q3]
            print(f"{name}: {n} / {first} = {med:.3f} ({q1:.3f}-{q3:.3f})")
    if args.json:
        out = dict(a=dict(library=str(path_a), flags=args.a_flags, src=args.a_src),
                   b=dict(library=str(path_b), flags=args.b_flags, src=args.b_src), same_library=same,
                   shape=list(shape), T=args.T, rounds=args.rounds, environment=env, results=rows,
                   ratio_to_first=to_first)  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
