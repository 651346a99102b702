"""Benchmark of the neuron backends (``arlif bench``, ``benchmarks/bench_neurons.py``).

For each neuron × backend: forward+backward wall time (median over repeats, after warm-up), its ratio to
the per-step reference (``"torch"``) measured in the same run (the median of the per-round ratios, see
:func:`paired_ratio`; every timed run is kept in ``times_ms`` for other comparisons), the bytes kept for
backward per input element (measured with :func:`torch.autograd.graph.saved_tensors_hooks`, each storage
counted once), and, for fused backends, the achieved memory bandwidth under a simple traffic model (below).

On the CPU it also counts the minor page faults of each timed run (median): memory the C library has
handed back to the system and that must be mapped and zeroed again. With glibc that depends on the order
of allocations of everything in the rotation, not on the neuron, and can add milliseconds to one pair;
:func:`steady_heap` (``arlif bench --steady-heap``) keeps freed memory in the process instead.

The neurons come from the registry (:mod:`arlif.neurons.registry`); each is timed through its step function
(backend ``"torch"``) or its registered fused op, called directly, so that the module's per-call checks
are not part of the time.

Traffic model of one fused forward+backward (bytes, ``e`` = input element size, ``s`` = number of states):
forward reads x and writes spikes (``2e`` per element); backward reads x twice, reads the spike gradient,
writes the input gradient (``4e``) and writes+reads the per-step scratch state (``2·s·4``, float32).

Backend ``"roofline"`` (one row per neuron, since ``s`` differs) is what a streaming torch op needs to move
exactly those bytes, with the same output allocation, as an autograd function timed like the others:

- forward: ``torch.mul(x, 0.5)`` reads x and writes a fresh output (``2e``), as the fused forward reads x and
  writes fresh spikes;
- backward: ``torch.addcmul(g, x, x2)`` reads the incoming gradient, x and a second copy of x made once
  beforehand (a second read of x itself in the same op would come from the same cache lines, not from memory
  again) and writes a fresh gradient (``4e``); ``b.copy_(a)`` on two float32 ``[s, *x.shape]`` buffers made
  once beforehand reads one and writes the other (``2·s·4``): the scratch state, which the fused op keeps in
  buffers of its own rather than in fresh tensors.

Each op touches every element once with at most two flops per element, so its time is set by memory
bandwidth (and by the page faults of its two fresh outputs, which the fused op takes too). The
``of roofline`` column is the roofline row's time over the row's own, for the same neuron (per round, then the
median: :func:`paired_ratio`): 1.0 means
the row runs as fast as torch can stream the bytes of the fused op's traffic model. A fused kernel can pass
1.0: the model counts the scratch state and the second read of x as memory traffic, but the CPU kernels work
on blocks of neurons small enough for both to stay in cache, so their traffic to memory is nearer ``5e``.

Backend ``"compiled"`` is :func:`torch.compile` (``inductor`` unless told otherwise) of the loop that
backend ``"torch"`` runs: the neuron's step function over the T steps, forward and backward. Its first
forward+backward compiles both; that call's time is reported apart (``compile_s``; inductor's on-disk cache,
``TORCHINDUCTOR_CACHE_DIR``, makes it much shorter in a later process) and is not among the timed runs. It
is not in the default backends because compiling takes 10-40 s per neuron on a small CPU.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass

try:
    import resource
except ImportError:  # not on Windows: no page-fault counts there
    resource = None

import torch

from .neurons import BaseNeuron, get_neuron
from .neurons.registry import bench_entries
from .ops import backends, reference

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
          "float16": torch.float16}  # fmt: skip
# every backend the bench knows, and those it runs unless told otherwise (torch.compile is slow to start)
BACKENDS = ("torch", "roofline", "compiled", "cpu", "triton")
DEFAULT_BACKENDS = ("torch", "roofline", "cpu", "triton")
# the rows without a kernel of their own: they run everywhere the input's device does
_TORCH_ROWS = ("torch", "roofline", "compiled")
# CPU flags shown in the header: the instruction sets the kernels are built for (cpu_common.h); NEON is
# "asimd" on aarch64 and "neon" on 32-bit ARM
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "neon", "asimd", "sve")


@dataclass
class Result:
    neuron: str
    backend: str
    shape: list
    T: int
    dtype: str
    device: str
    median_ms: float
    min_ms: float
    speedup_vs_torch: float | None
    saved_bytes_per_element: float
    bandwidth_gbs: float | None
    page_faults: float | None = None  # minor page faults per timed run (median; CPU, where countable)
    roofline_fraction: float | None = None  # the neuron's roofline time / this row's, per round (paired_ratio)
    compile_s: float | None = None  # backend "compiled": seconds of the first, compiling forward+backward
    times_ms: list | None = None  # every timed run, in round order (run i of every row is in round i)


def median_quartiles(values: list[float]) -> tuple[float, float, float]:
    """Median, first and third quartile (inclusive method; one value is all three)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return med, q1, q3


def paired_ratio(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """``num[i] / den[i]`` over the rounds of one interleaved run: median, first and third quartile. On a
    machine whose speed drifts (a shared VM moved ±25% within seconds here) the ratio of two rows taken in the
    same round is much steadier than the ratio of their medians, since both runs of a round see the same
    drift."""
    if len(num) != len(den) or not num:
        raise ValueError(f"paired_ratio needs two equally long, non-empty series (got {len(num)} and {len(den)})")
    return median_quartiles([a / b for a, b in zip(num, den)])


def default_neurons() -> list[str]:
    """The neurons benchmarked unless told otherwise: the registry's benchmark set."""
    return [e.name for e in bench_entries()]


def _neuron(name: str, device) -> BaseNeuron:
    """The registered neuron ``name`` with its benchmark options (AR-LIF's ``a = 0.3`` instead of 0, so
    that the threshold adjustment acts: its cost is the same either way, and a trained network has a != 0)."""
    entry = get_neuron(name)
    return entry.make(**(entry.bench or {}), surrogate="rectangle").to(device)


class _Stream(torch.autograd.Function):
    """The roofline's forward and backward (module docstring): the fused op's bytes in streaming torch ops."""

    @staticmethod
    def forward(ctx, x, x_again, scratch_in, scratch_out):
        ctx.save_for_backward(x)
        ctx.buffers = (x_again, scratch_in, scratch_out)
        return torch.mul(x, 0.5)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x_again, scratch_in, scratch_out = ctx.buffers
        scratch_out.copy_(scratch_in)
        return torch.addcmul(grad, x, x_again), None, None, None


def _roofline_runner(nstates: int):
    """The roofline of a neuron with ``nstates`` states. Its buffers (the second copy of x, the scratch) are
    made on the first call for an input shape, in the untimed warm-up, and kept."""
    kept: dict = {}

    def run(x):
        key = (x.shape, x.dtype, x.device)
        if kept.get("key") != key:
            kept.update(key=key, x_again=x.detach().clone(),
                        scratch=[torch.ones((nstates, *x.shape), dtype=torch.float32, device=x.device)
                                 for _ in range(2)])  # fmt: skip
        return _Stream.apply(x, kept["x_again"], *kept["scratch"])

    return run


def _runner(neuron: str, backend: str, dtype: torch.dtype, device, compile_backend: str = "inductor"):
    """Forward over ``[T, ...]`` from rest of: the neuron's step function (backend "torch"), that loop under
    torch.compile ("compiled"), the streaming ops of its traffic ("roofline") or its fused op."""
    mod = _neuron(neuron, device)
    step, params, cfg = mod._step_fn(), mod._params(), mod._config()
    if backend in ("torch", "compiled"):

        def loop(x):
            return reference.run_steps(step, x, mod._initial_states(x[0]), params, False, **cfg)[0]

        if backend == "torch":
            return loop
        return torch.compile(loop, backend=compile_backend, dynamic=False, fullgraph=True)
    if backend == "roofline":
        return _roofline_runner(len(mod.state_names))
    backends.resolve_backend(mod.neuron_kind, backend, torch.device(device))  # a clear error if unavailable
    fused = backends.get_fused(mod.neuron_kind, backend)
    # a neuron at rest, as the modules pass it after reset(): the fused ops take absent states as zeros
    rest = (None,) * len(mod.state_names)
    return lambda x: fused(x, rest, params, False, **cfg)[0]


def _make_input(shape, T, dtype, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn((T, *shape), generator=g) * 1.0 + 0.5
    return x.to(device=device, dtype=dtype)


class SavedBytes:
    """Context manager counting the bytes the autograd graph keeps for backward while it is open: each
    distinct storage once (a view of a saved tensor adds nothing). ``meter.bytes`` after the block."""

    def __init__(self):
        self._storages: dict[int, int] = {}
        self._hooks = None

    def _pack(self, t):
        st = t.untyped_storage()
        self._storages[st.data_ptr()] = st.nbytes()
        return t

    def __enter__(self) -> SavedBytes:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    @property
    def bytes(self) -> int:
        return sum(self._storages.values())


def saved_bytes_per_element(neuron: str, backend: str, shape=(4, 64), T: int = 8,
                            dtype=torch.float32, device="cpu", run=None) -> float:  # fmt: skip
    """Bytes the autograd graph keeps for backward per element of the [T, *shape] input (storages counted
    once; a view of the input counts as the input). ``run``: the runner to measure, if already made."""
    run = run or _runner(neuron, backend, dtype, device)
    x = _make_input(shape, T, dtype, device).requires_grad_()
    with SavedBytes() as meter:
        out = run(x)
    del out
    return meter.bytes / x.numel()


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _traffic_bytes(neuron: str, numel: int, elem: int) -> int:
    nstates = len(get_neuron(neuron).cls.state_names)
    return numel * (2 * elem + 4 * elem + 2 * nstates * 4)


def _minor_faults() -> int | None:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource is not None else None


def _time_once(run, base, grad, device) -> tuple[float, int | None]:
    """Seconds of one forward + backward from a fresh leaf copy of ``base``, and the minor page faults the
    process took meanwhile (None where they cannot be counted)."""
    x = base.clone().requires_grad_()
    _sync(device)
    f0 = _minor_faults()
    t0 = time.perf_counter()
    out = run(x)
    out.backward(grad)
    _sync(device)
    dt = time.perf_counter() - t0
    f1 = _minor_faults()
    return dt, (None if f0 is None else f1 - f0)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_STEADY = False  # whether steady_heap() is in effect (reported by environment())


def steady_heap() -> bool:
    """Make glibc keep freed memory in the process (no trimming; blocks up to 32 MiB from the heap, not
    fresh mappings), so repeated runs reuse warm pages instead of faulting in zeroed ones. Affects the whole
    process and every case alike. Returns False (and changes nothing) where the C library is not glibc.

    Done with ``mallopt`` through ctypes because the ``MALLOC_*_`` environment variables only act when set
    before the process starts."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (raises AttributeError on other C libraries)
    except (OSError, AttributeError):
        return False
    global _STEADY
    _STEADY = bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**30) and libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20))
    return _STEADY


def _skip(neuron, backend, why, log, skipped) -> None:
    if log:
        log(f"skip {neuron}/{backend}: {why}")
    if skipped is not None:
        skipped.append((neuron, backend, why))


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_bench(neurons=None, backend_names=DEFAULT_BACKENDS, shape=(32, 64, 16, 16), T=8,
              dtype="float32", device="cpu", repeats=10, warmup=2, skip_unavailable=True,
              log=None, skipped=None, compile_backend="inductor") -> list[Result]:  # fmt: skip
    """Benchmark every neuron × backend (:data:`BACKENDS`). Backends that cannot run here are skipped (with a
    log line, and ``(neuron, backend, reason)`` appended to the list ``skipped`` if given) when
    ``skip_unavailable``, else raise :class:`arlif.ops.BackendUnavailableError` (or, for ``"compiled"``, the
    compiler's error). ``compile_backend``: the :func:`torch.compile` backend of ``"compiled"``.

    The timed runs are interleaved round-robin over all neuron × backend pairs (one run of each, then the
    next round), so slow drifts of a shared machine hit every pair alike and the ratios stay comparable.
    """
    neurons = [get_neuron(n).name for n in neurons] if neurons else default_neurons()
    unknown = [b for b in backend_names if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}; choose from {','.join(BACKENDS)}")
    tdtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    dname = str(tdtype).replace("torch.", "")
    base = _make_input(shape, T, tdtype, device)
    grad = torch.rand_like(base)
    runners: dict[tuple[str, str], object] = {}
    compile_s: dict[tuple[str, str], float] = {}
    for neuron in neurons:
        key = get_neuron(neuron).cls.neuron_kind
        for backend in backend_names:
            if backend not in _TORCH_ROWS:
                why = backends._why_unavailable(key, backend, torch.device(device), build=True)
                if why is not None:
                    if not skip_unavailable:
                        backends.resolve_backend(key, backend, torch.device(device))
                    _skip(neuron, backend, why, log, skipped)
                    continue
            run = _runner(neuron, backend, tdtype, device, compile_backend)
            if backend == "compiled":
                try:  # the first call compiles forward and backward: timed apart, never among the timed runs
                    compile_s[(neuron, backend)] = _time_once(run, base, grad, device)[0]
                except Exception as exc:
                    if not skip_unavailable:
                        raise
                    _skip(neuron, backend, f"torch.compile({compile_backend}) failed: {_first_line(exc)}", log,
                          skipped)  # fmt: skip
                    continue
                if log:
                    log(f"{neuron:9s} {backend:8s} compiled in {compile_s[(neuron, backend)]:.1f} s")
            runners[(neuron, backend)] = run
    for run in runners.values():
        for _ in range(warmup):
            _time_once(run, base, grad, device)
    times: dict[tuple[str, str], list[float]] = {pair: [] for pair in runners}
    faults: dict[tuple[str, str], list[int | None]] = {pair: [] for pair in runners}
    for _ in range(repeats):
        for pair, run in runners.items():
            dt, nf = _time_once(run, base, grad, device)
            times[pair].append(dt)
            faults[pair].append(nf)
    rows: dict[tuple[str, str], dict] = {}
    for (neuron, backend), ts in times.items():
        med = statistics.median(ts)
        nfs = faults[(neuron, backend)]
        fused = backend not in ("torch", "compiled")  # rows that move the traffic model's bytes
        bw = _traffic_bytes(neuron, base.numel(), base.element_size()) / med / 1e9 if fused else None
        run = runners[(neuron, backend)]
        rows[(neuron, backend)] = dict(
            median_ms=med * 1e3,
            min_ms=min(ts) * 1e3,
            bandwidth_gbs=bw,
            saved_bytes_per_element=saved_bytes_per_element(neuron, backend, shape, T, tdtype, device, run),
            page_faults=None if None in nfs else statistics.median(nfs),
            compile_s=compile_s.get((neuron, backend)),
            times_ms=[t * 1e3 for t in ts],
        )
        if log:
            log(f"{neuron:9s} {backend:8s} {med * 1e3:9.2f} ms")
    results = []
    for (neuron, backend), r in rows.items():
        ref = times.get((neuron, "torch"))
        roof = times.get((neuron, "roofline"))
        results.append(Result(neuron=neuron, backend=backend, shape=list(shape), T=T, dtype=dname,
                              device=str(device), speedup_vs_torch=paired_ratio(ref, times[(neuron, backend)])[0]
                              if ref else None,
                              roofline_fraction=paired_ratio(roof, times[(neuron, backend)])[0] if roof else None,
                              **r))  # fmt: skip
    return results


def _parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """The text of /proc/cpuinfo as one dict per blank-line separated block (lower-case keys)."""
    blocks = []
    for chunk in text.split("\n\n"):
        fields = {}
        for line in chunk.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _cpuinfo_blocks() -> list[dict[str, str]]:
    """/proc/cpuinfo, one dict per logical CPU (and, on ARM, one for the trailing "Hardware" lines); empty
    where there is no such file."""
    try:
        with open("/proc/cpuinfo") as f:
            return _parse_cpuinfo(f.read())
    except OSError:
        return []


def cpu_info() -> dict:
    """The CPU the numbers were taken on: ``model``, ``flags`` (those of :data:`CPU_FLAGS` it has; None where
    unknown), ``cores`` (physical), ``logical`` (logical CPUs), ``usable`` (those this process may run on) and
    ``threads`` (torch's CPU threads). Read from /proc/cpuinfo on Linux, :mod:`platform` and :mod:`os`
    elsewhere."""
    blocks = _cpuinfo_blocks()
    procs = [b for b in blocks if "processor" in b]
    model = next((b[k] for b in blocks for k in ("model name", "hardware", "cpu model") if b.get(k)), None)
    model = model or platform.processor() or platform.machine()
    flags = None
    if procs:
        have = set((procs[0].get("flags") or procs[0].get("features") or "").split())
        flags = [f for f in CPU_FLAGS if f in have]
    cores = {(b.get("physical id"), b.get("core id")) for b in procs if "core id" in b}
    logical = len(procs) or os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        usable = os.cpu_count()
    return dict(model=model, flags=flags, cores=len(cores) or logical, logical=logical, usable=usable,
                threads=torch.get_num_threads())  # fmt: skip


def cpu_line(cpu: dict) -> str:
    """One line naming the CPU (:func:`cpu_info`), for the header of every output."""
    if cpu["flags"] is None:
        flags = "flags unknown"
    else:
        flags = "flags " + (" ".join(cpu["flags"]) or f"(none of {','.join(CPU_FLAGS)})")
    return (f"CPU {cpu['model']}; {flags}; {cpu['cores']} cores, {cpu['logical']} logical CPUs "
            f"({cpu['usable']} usable), {cpu['threads']} torch threads")  # fmt: skip


def environment(device="cpu") -> dict:
    env = dict(torch=torch.__version__, python=platform.python_version(), machine=platform.machine(),
               processor=platform.processor(), threads=torch.get_num_threads(),
               heap="steady" if _STEADY else "system", cpu=cpu_info(),
               arlif_cxxflags=os.environ.get("ARLIF_CXXFLAGS") or None)  # fmt: skip
    if torch.device(device).type == "cpu":
        from .ops import cpu_build

        env["kernel_target"] = cpu_build.build_target()
        try:
            env["streaming_threshold"] = cpu_build.streaming_threshold()
        except backends.BackendUnavailableError:  # no kernels to run: nothing to report
            env["streaming_threshold"] = None
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def header(results: list[Result], env: dict) -> list[str]:
    """The lines above a table: the input, the software and the CPU (and the GPU, where one ran)."""
    lines = []
    if results:
        r = results[0]
        lines.append(f"input [T={r.T}, {','.join(map(str, r.shape))}] {r.dtype} on {env.get('gpu', r.device)}")
    heap = ", steady heap" if env["heap"] == "steady" else ""
    flags = f", ARLIF_CXXFLAGS={env['arlif_cxxflags']!r}" if env.get("arlif_cxxflags") else ""
    lines.append(f"torch {env['torch']}, {env['threads']} CPU threads{heap}{flags}")
    lines.append(cpu_line(env["cpu"]))
    if env.get("kernel_target"):
        lines.append(f"CPU kernels built for {env['kernel_target']}{_streaming(env.get('streaming_threshold'))}")
    return lines


def _streaming(threshold: int | None) -> str:
    """The header's words for the CPU kernels' streaming-store threshold (cpu_build.streaming_threshold)."""
    if threshold is None:
        return ""
    if threshold >= 2**62:
        return "; outputs never streamed past the cache"
    return f"; outputs streamed past the cache in calls over {threshold / 2**20:.1f} MiB"


def _faults(r: Result, none: str) -> str:
    return none if r.page_faults is None else f"{r.page_faults:.0f}"


def _fmt(v: float | None, spec: str, none: str, suffix: str = "") -> str:
    return none if v is None else f"{v:{spec}}{suffix}"


def markdown_table(results: list[Result], env: dict | None = None) -> str:
    """The results as a Markdown table; with ``env`` (:func:`environment`), the :func:`header` lines above it."""
    lines = [f"{line}  " for line in header(results, env)] + [""] if env is not None else []
    lines += [
        "| neuron | backend | fwd+bwd median (ms) | speed-up vs torch | of roofline | saved bytes/element "
        "| bandwidth (GB/s) | page faults/run | compile (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        sp = _fmt(r.speedup_vs_torch, ".2f", "–", "×")
        roof = _fmt(None if r.roofline_fraction is None else 100 * r.roofline_fraction, ".0f", "–", "%")
        lines.append(f"| {r.neuron} | {r.backend} | {r.median_ms:.2f} | {sp} | {roof} | "
                     f"{r.saved_bytes_per_element:.2f} | {_fmt(r.bandwidth_gbs, '.1f', '–')} | {_faults(r, '–')} | "
                     f"{_fmt(r.compile_s, '.1f', '–')} |")  # fmt: skip
    return "\n".join(lines)


def text_table(results: list[Result]) -> str:
    head = (
        f"{'neuron':9s} {'backend':8s} {'median ms':>10s} {'min ms':>9s} {'vs torch':>9s} {'roofline':>8s} "
        f"{'saved B/el':>10s} {'GB/s':>7s} {'faults':>7s} {'compile s':>9s}"
    )
    rows = [head, "-" * len(head)]
    for r in results:
        sp = _fmt(r.speedup_vs_torch, ".2f", "-", "x")
        roof = _fmt(None if r.roofline_fraction is None else 100 * r.roofline_fraction, ".0f", "-", "%")
        rows.append(f"{r.neuron:9s} {r.backend:8s} {r.median_ms:10.2f} {r.min_ms:9.2f} {sp:>9s} {roof:>8s} "
                    f"{r.saved_bytes_per_element:10.2f} {_fmt(r.bandwidth_gbs, '.1f', '-'):>7s} "
                    f"{_faults(r, '-'):>7s} {_fmt(r.compile_s, '.1f', '-'):>9s}")  # fmt: skip
    return "\n".join(rows)


def to_json(results: list[Result], device="cpu", settings: dict | None = None) -> str:
    """``settings``: how the numbers were taken (repeats, warm-up, skipped pairs...), recorded beside them."""
    out = dict(environment=environment(device))
    if settings:
        out["settings"] = settings
    out["results"] = [asdict(r) for r in results]
    return json.dumps(out, indent=2)
