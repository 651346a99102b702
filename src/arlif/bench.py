"""Benchmark of the neuron backends (``arlif bench``, ``benchmarks/bench_neurons.py``).

For each neuron × backend: forward+backward wall time (median over repeats, after warm-up), its ratio to
the per-step reference (``"torch"``) measured in the same run, the bytes kept for backward per input
element (measured with :func:`torch.autograd.graph.saved_tensors_hooks`, each storage counted once), and,
for fused backends, the achieved memory bandwidth under a simple traffic model (below).

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
"""

from __future__ import annotations

import ctypes
import json
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


def default_neurons() -> list[str]:
    """The neurons benchmarked unless told otherwise: the registry's benchmark set."""
    return [e.name for e in bench_entries()]


def _neuron(name: str, device) -> BaseNeuron:
    """The registered neuron ``name`` with its benchmark options (AR-LIF's ``a = 0.3`` instead of 0, so
    that the threshold adjustment acts: its cost is the same either way, and a trained network has a != 0)."""
    entry = get_neuron(name)
    return entry.make(**(entry.bench or {}), surrogate="rectangle").to(device)


def _runner(neuron: str, backend: str, dtype: torch.dtype, device):
    """Forward of the neuron's step function (backend "torch") or fused op over ``[T, ...]``, from rest."""
    mod = _neuron(neuron, device)
    step, params, cfg = mod._step_fn(), mod._params(), mod._config()
    if backend == "torch":
        return lambda x: reference.run_steps(step, x, mod._initial_states(x[0]), params, False, **cfg)[0]
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
                            dtype=torch.float32, device="cpu") -> float:  # fmt: skip
    """Bytes the autograd graph keeps for backward per element of the [T, *shape] input (storages counted
    once; a view of the input counts as the input)."""
    run = _runner(neuron, backend, dtype, device)
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


def run_bench(neurons=None, backend_names=("torch", "cpu", "triton"), shape=(32, 64, 16, 16), T=8,
              dtype="float32", device="cpu", repeats=10, warmup=2, skip_unavailable=True,
              log=None, skipped=None) -> list[Result]:  # fmt: skip
    """Benchmark every neuron × backend. Backends that cannot run here are skipped (with a log line, and
    ``(neuron, backend, reason)`` appended to the list ``skipped`` if given) when ``skip_unavailable``, else
    raise :class:`arlif.ops.BackendUnavailableError`.

    The timed runs are interleaved round-robin over all neuron × backend pairs (one run of each, then the
    next round), so slow drifts of a shared machine hit every pair alike and the ratios stay comparable.
    """
    neurons = [get_neuron(n).name for n in neurons] if neurons else default_neurons()
    tdtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    dname = str(tdtype).replace("torch.", "")
    base = _make_input(shape, T, tdtype, device)
    grad = torch.rand_like(base)
    runners: dict[tuple[str, str], object] = {}
    for neuron in neurons:
        key = get_neuron(neuron).cls.neuron_kind
        for backend in backend_names:
            if backend != "torch":
                why = backends._why_unavailable(key, backend, torch.device(device), build=True)
                if why is not None:
                    if not skip_unavailable:
                        backends.resolve_backend(key, backend, torch.device(device))
                    if log:
                        log(f"skip {neuron}/{backend}: {why}")
                    if skipped is not None:
                        skipped.append((neuron, backend, why))
                    continue
            runners[(neuron, backend)] = _runner(neuron, backend, tdtype, device)
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
        bw = _traffic_bytes(neuron, base.numel(), base.element_size()) / med / 1e9 if backend != "torch" else None
        rows[(neuron, backend)] = dict(
            median_ms=med * 1e3,
            min_ms=min(ts) * 1e3,
            bandwidth_gbs=bw,
            saved_bytes_per_element=saved_bytes_per_element(neuron, backend, shape, T, tdtype, device),
            page_faults=None if None in nfs else statistics.median(nfs),
        )
        if log:
            log(f"{neuron:9s} {backend:7s} {med * 1e3:9.2f} ms")
    results = []
    for (neuron, backend), r in rows.items():
        ref = rows.get((neuron, "torch"), {}).get("median_ms")
        speedup = (ref / r["median_ms"]) if ref else None
        results.append(Result(neuron=neuron, backend=backend, shape=list(shape), T=T, dtype=dname,
                              device=str(device), speedup_vs_torch=speedup, **r))  # fmt: skip
    return results


def environment(device="cpu") -> dict:
    env = dict(torch=torch.__version__, python=platform.python_version(), machine=platform.machine(),
               processor=platform.processor(), threads=torch.get_num_threads(),
               heap="steady" if _STEADY else "system")  # fmt: skip
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def _faults(r: Result, none: str) -> str:
    return none if r.page_faults is None else f"{r.page_faults:.0f}"


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| neuron | backend | fwd+bwd median (ms) | speed-up vs torch | saved bytes/element "
        "| bandwidth (GB/s) | page faults/run |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        sp = f"{r.speedup_vs_torch:.2f}×" if r.speedup_vs_torch else "–"
        bw = f"{r.bandwidth_gbs:.1f}" if r.bandwidth_gbs is not None else "–"
        saved = f"{r.saved_bytes_per_element:.2f}"
        lines.append(f"| {r.neuron} | {r.backend} | {r.median_ms:.2f} | {sp} | {saved} | {bw} | {_faults(r, '–')} |")
    return "\n".join(lines)


def text_table(results: list[Result]) -> str:
    head = (
        f"{'neuron':9s} {'backend':7s} {'median ms':>10s} {'min ms':>9s} {'vs torch':>9s} "
        f"{'saved B/el':>10s} {'GB/s':>7s} {'faults':>7s}"
    )
    rows = [head, "-" * len(head)]
    for r in results:
        sp = f"{r.speedup_vs_torch:.2f}x" if r.speedup_vs_torch else "-"
        bw = f"{r.bandwidth_gbs:.1f}" if r.bandwidth_gbs is not None else "-"
        rows.append(f"{r.neuron:9s} {r.backend:7s} {r.median_ms:10.2f} {r.min_ms:9.2f} {sp:>9s} "
                    f"{r.saved_bytes_per_element:10.2f} {bw:>7s} {_faults(r, '-'):>7s}")  # fmt: skip
    return "\n".join(rows)


def to_json(results: list[Result], device="cpu", settings: dict | None = None) -> str:
    """``settings``: how the numbers were taken (repeats, warm-up, skipped pairs...), recorded beside them."""
    out = dict(environment=environment(device))
    if settings:
        out["settings"] = settings
    out["results"] = [asdict(r) for r in results]
    return json.dumps(out, indent=2)
