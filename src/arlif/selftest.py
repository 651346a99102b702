"""Self-test of the neuron kernels on this machine (``arlif selftest``).

Every backend that can run on the device is checked against the **float64 reference** (the per-step
``"torch"`` backend in float64, always on the CPU, so that the truth does not depend on the device under
test): each neuron variant × surrogate × input layout (random odd shapes, T = 1, a transposed view, a
strided slice spanning several kernel blocks) in float32, and a rotation of them in bfloat16 (and float16
on CUDA; see :func:`_cases`). Each case feeds two chunks without a reset, so the second continues from a
carried state, and compares

- the spikes, exactly;
- the state sequences (V, and m where the neuron has one, via ``return_state``) and the final states;
- the gradients of the input, of the state carried from the first chunk into the second, and of the
  learned parameters (``a``, ``c``, ``w``, set to values away from their initial ones);
- the output dtypes (spikes and sequences in the input dtype, the carried state in float32).

Then one training step of a small compiled model (``torch.compile(fullgraph=True)``) is compared with
the same step in eager mode.

Why a spike comparison can be exact: a spike is a step function of ``u = H - θ``. Where the reference's
``u`` lies within rounding of 0, a correct float32 kernel may fire where float64 does not, and that
neuron's trajectory (and every gradient it feeds) then parts from the reference. Instead of excusing
mismatches afterwards, the inputs are screened first: a neuron whose float64 trajectory, on the input as
rounded to the dtype under test, passes within :data:`MARGIN` of a point where the dynamics jump (the
threshold; the edge of the rectangle surrogate's window, where dS/du jumps; the sign switch of AR-LIF's
carried memory) gets a fresh input. Float32 arithmetic is off by about 1e-6 there, so every spike that
still differs is a real error. Half-precision inputs are compared with the reference run on the same
rounded values; their outputs are rounded to 8 (bf16) or 11 (fp16) bits on the way out, hence the wider
tolerance for tensors of those dtypes.
"""

from __future__ import annotations

import copy
import math
import os
import platform
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import ArlifError
from .neurons import BaseNeuron, get_neuron, neuron_entries, neuron_factory
from .ops import backends as _backends
from .surrogate import SURROGATES, Rectangle, Surrogate, get_surrogate

__all__ = ["variants", "SURROGATE_WIDTHS", "TOLERANCES", "MARGIN", "Row", "Report", "run_selftest", "format_report",
           "machine_info"]  # fmt: skip


def variants() -> dict[str, Callable[..., BaseNeuron]]:
    """name -> maker of every registered neuron (aliases once). Each is built with its registry entry's
    ``check`` options: parameters and constants (thresholds and leaks included) away from the defaults, so
    that a kernel that ignored one, or read another's, would show."""
    return {e.name: (lambda e=e, **kw: e.make(**{**e.check, **kw})) for e in neuron_entries()}


# Surrogate widths away from 1, where α and 1/α, α/2 and 1/(2α), α² and α would agree: a kernel that
# confused them would pass at the defaults.
SURROGATE_WIDTHS = {"rectangle": 0.8, "triangle": 1.3, "sigmoid": 3.0, "atan": 2.5}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# (rtol, atol) by the dtype of the tensor compared, the values of tests/test_fused.py: float32 results as in
# its float32 parity tests, bf16/fp16 results (rounded to 8/11 bits on output) as in its half-input tests.
# Final states and parameter gradients are float32 for every input dtype, so they get the float32 bound.
TOLERANCES = {torch.float32: (2e-4, 2e-5), torch.bfloat16: (1e-2, 1e-2), torch.float16: (1e-2, 1e-2)}
# compiled vs eager training step (float32): reductions may be reordered by the compiler
COMPILE_TOLERANCE = (1e-4, 1e-5)
# distance from a discontinuity below which a neuron's input is redrawn (float32 rounding is ~1e-6 here)
MARGIN = 1e-4
_LAYOUTS = ("random", "one-step", "transposed", "sliced")


# ---- results ---------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table: a neuron variant × backend × dtype over all its cases (or the compile check).

    ``error`` and ``tolerance`` are taken at the element closest to failing (the largest error/tolerance
    ratio) over all cases; for a spike mismatch ``error`` is the number of differing spikes and
    ``tolerance`` 0."""

    check: str
    neuron: str
    backend: str
    dtype: str
    cases: int = 0
    worst: str = ""
    error: float = 0.0
    tolerance: float = 0.0
    ratio: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def note(self, where: str, what: str, error: float, tolerance: float, ratio: float) -> None:
        if ratio > self.ratio or not self.worst:
            self.worst, self.error, self.tolerance, self.ratio = f"{what}, {where}", error, tolerance, ratio
        if not ratio <= 1.0:  # also NaN
            self.fail(f"{where}: {what}: error {_num(error)} > tolerance {_num(tolerance)}")

    def fail(self, message: str) -> None:
        if len(self.failures) < 8:
            self.failures.append(message)
        elif len(self.failures) == 8:
            self.failures.append("... (more failures not listed)")

    def to_dict(self) -> dict:
        fin = lambda v: v if math.isfinite(v) else None  # noqa: E731 (strict JSON has no Infinity/NaN)
        return dict(check=self.check, neuron=self.neuron, backend=self.backend, dtype=self.dtype,
                    cases=self.cases, worst=self.worst, error=fin(self.error), tolerance=fin(self.tolerance),
                    ratio=fin(self.ratio), ok=self.ok, failures=list(self.failures))  # fmt: skip


@dataclass
class Report:
    device: str
    rows: list[Row]
    skipped: list[str]
    machine: dict
    settings: dict
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def to_dict(self) -> dict:
        return dict(ok=self.ok, device=self.device, seconds=round(self.seconds, 2), machine=self.machine,
                    settings=self.settings, skipped=self.skipped, rows=[r.to_dict() for r in self.rows])  # fmt: skip


def _num(v: float) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


# ---- machine ---------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device | str = "cpu") -> dict:
    """Versions and hardware the self-test ran on."""
    from . import __version__

    device = torch.device(device)
    info = dict(arlif=__version__, torch=torch.__version__, python=platform.python_version(),
                platform=platform.platform(), cpu=_cpu_model(), cpu_threads=torch.get_num_threads(),
                cuda=torch.version.cuda, triton=None, gpu=None)  # fmt: skip
    if _backends.triton_importable():
        try:
            import triton

            info["triton"] = triton.__version__
        except Exception as exc:  # importable but broken: say so rather than fail the report
            info["triton"] = f"import failed: {exc}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return info


# ---- inputs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Case:
    layout: str  # one of _LAYOUTS
    T: int  # steps per chunk (two chunks, the second continuing from the carried state)
    shape: tuple[int, ...]  # the per-step shape the neuron sees


def _generator(*key) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32("/".join(map(str, key)).encode()))


def _random_shape(g: torch.Generator) -> tuple[int, ...]:
    """1 to 3 odd sizes (odd sizes leave a partial vector / block at the end of every kernel)."""
    ndim = int(torch.randint(1, 4, (1,), generator=g))
    top = {1: 400, 2: 40, 3: 14}[ndim]
    return tuple(int(torch.randint(1, top, (1,), generator=g)) | 1 for _ in range(ndim))


def _cases(variant: str, surrogate: str, seed: int, quick: bool) -> list[tuple[_Case, bool]]:
    """The cases of one variant × surrogate, each with whether it also runs in the half-precision dtypes.

    float32 runs every surrogate × layout (``quick``: one layout per surrogate, rotating). The half dtypes
    run the same kernel code, with conversions on load and store: they take a rotation too (full: each
    layout once and each surrogate once per variant; quick: two cases per variant, T = 1 and the strided
    multi-block one). On a GPU each neuron × surrogate × dtype × state flags is a Triton kernel compiled on
    first use (~0.5 s each, cached in ~/.triton/cache), so this keeps a fresh machine's first run short."""
    g = _generator(seed, variant, surrogate)
    cases = [
        _Case("random", int(torch.randint(2, 9, (1,), generator=g)), _random_shape(g)),
        _Case("one-step", 1, _random_shape(g)),
        _Case("transposed", 3, (6, 4, 5)),  # a [T, 5, 4, 6] tensor seen through transpose(1, 3)
        # every other column of [T, 3, 866]: strided, and 1299 neurons span several blocks of every kernel
        _Case("sliced", 4, (3, 433)),
    ]
    v, s = list(variants()).index(variant), list(SURROGATES).index(surrogate)
    if not quick:
        return [(c, (v + s + i) % len(cases) == 0) for i, c in enumerate(cases)]
    # one layout per surrogate, rotating, so that over the variants every surrogate meets every layout
    i = (v + s) % len(cases)
    return [(cases[i], (v + s) % 2 == 1)]


def _draw(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64) * 1.2 + 0.6


class _RecordingSurrogate(Rectangle):
    """The Heaviside forward of every surrogate, keeping each step's ``u = H - θ`` (screening only)."""

    def __init__(self):
        super().__init__()
        self.us: list[torch.Tensor] = []

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        self.us.append(u.detach())
        return super().forward(u)


def _near_jumps(variant: str, surrogate: Surrogate, x: torch.Tensor) -> torch.Tensor:
    """Per neuron (mask over the per-step shape): whether its float64 trajectory over all of ``x`` comes
    within MARGIN of a discontinuity of the dynamics or of their derivative."""
    mod = variants()[variant](backend="torch", return_state=True).double()
    rec = _RecordingSurrogate()
    mod.surrogate = rec
    with torch.no_grad():
        _, states = mod(x)
    u = torch.stack(rec.us)
    near = u.abs() < MARGIN  # the threshold: the spike itself
    if surrogate.kind == "rectangle":  # dS/du jumps from 1/α to 0 at |u| = α/2
        near |= (u.abs() - surrogate.width / 2).abs() < MARGIN
    for name in mod.switching_states():  # e.g. AR-LIF's memory leaks by g or 1 - g by the sign of m
        near |= getattr(states, name).abs() < MARGIN
    return near.any(0)


def _screened_input(variant: str, surrogate: Surrogate, case: _Case, dtype: torch.dtype, seed: int):
    """Both chunks as one float64 tensor [2T, *shape] of values exactly representable in ``dtype``, with the
    neurons near a discontinuity redrawn (see the module docstring)."""
    g = _generator(seed, variant, surrogate.kind, case.layout, case.T, case.shape)
    x = _draw(g, 2 * case.T, *case.shape)
    for _ in range(100):
        x = x.to(dtype).double()
        near = _near_jumps(variant, surrogate, x)
        if not near.any():
            return x
        x[:, near] = _draw(g, 2 * case.T, int(near.sum()))
    raise RuntimeError(f"selftest: could not draw an input for {variant} away from its thresholds")


def _layout(x: torch.Tensor, layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(leaf that gets the gradient, the view the neuron is fed) holding the logical input ``x``."""
    if layout == "transposed":
        leaf = x.transpose(1, -1).contiguous().requires_grad_()
        return leaf, leaf.transpose(1, -1)
    if layout == "sliced":
        # the skipped columns hold a value that would show if a kernel read them
        leaf = torch.full((*x.shape[:-1], 2 * x.shape[-1]), 7.0, dtype=x.dtype, device=x.device)
        leaf[..., ::2] = x
        leaf.requires_grad_()
        return leaf, leaf[..., ::2]
    leaf = x.clone().requires_grad_()
    return leaf, leaf


def _weights(t: torch.Tensor, k: int) -> torch.Tensor:
    """Loss weights in [0.5, 1.5], multiples of 1/8: exact in bf16/fp16, so the gradient that reaches a
    half-precision output is the same number as in the float64 reference."""
    i = torch.arange(t.numel(), device=t.device, dtype=torch.float64)
    return ((i * k) % 9 + 4).div(8).view(t.shape)


# ---- one case ---------------------------------------------------------------------------------------------
_SEQ_WEIGHTS = (7, 2, 3, 11)  # weight patterns of the state sequences in the loss, by field


def _run(mod: BaseNeuron, chunks: Sequence[torch.Tensor], layout: str):
    """Feed ``chunks`` without a reset and backpropagate a float64 loss on spikes, state sequences and the
    final state. Returns (outputs, gradients), each a dict name -> tensor (gradient None where none)."""
    mod.reset()
    outs: dict[str, torch.Tensor] = {}
    grads: dict[str, torch.Tensor | None] = {}
    leaves, carried = [], []
    loss = torch.zeros((), dtype=torch.float64, device=chunks[0].device)
    for i, x in enumerate(chunks, 1):
        leaf, view = _layout(x, layout)
        leaves.append(leaf)
        spikes, state = mod(view)
        outs[f"spikes (chunk {i})"] = spikes
        loss = loss + (spikes.double() * _weights(spikes, 5)).sum()
        for k, (name, seq) in enumerate(zip(state._fields, state)):
            if seq is not None:  # a field the neuron does not carry is None
                outs[f"{name}_seq (chunk {i})"] = seq
                loss = loss + 0.25 * 0.5**k * (seq.double() * _weights(seq, _SEQ_WEIGHTS[k % 4])).sum()
        for name in mod.state_names:
            st = getattr(mod, name)
            if isinstance(st, torch.Tensor):
                outs[f"{name} final (chunk {i})"] = st
                if i < len(chunks) and st.requires_grad:
                    # a node of its own, so that its gradient is exactly what the next chunk's backward sends
                    # to its initial state (the final state itself also gets the gradient of its own chunk's
                    # sequences, through the reference's stack but not through the fused op)
                    st = st.clone()
                    st.retain_grad()
                    setattr(mod, name, st)
                    carried.append((f"grad {name}0 (chunk {i + 1})", st))
    # the final states: the potential squared, the others as they are
    loss = loss + 0.5 * (mod.v.double() ** 2).sum()
    for name in mod.state_names[1:]:
        if isinstance(getattr(mod, name), torch.Tensor):
            loss = loss + 0.5 * getattr(mod, name).double().sum()
    loss.backward()
    for i, leaf in enumerate(leaves, 1):
        grads[f"grad x (chunk {i})"] = leaf.grad
    for name, st in carried:
        grads[name] = st.grad
    for name, p in mod.named_parameters():
        if p.requires_grad:
            grads[f"grad {name}"] = p.grad
    return {k: v.detach() for k, v in outs.items()}, grads


def _compare(row: Row, where: str, name: str, got: torch.Tensor | None, ref: torch.Tensor | None) -> None:
    if ref is None:
        if got is not None and float(got.detach().abs().max()) != 0.0:
            row.note(where, f"{name}: nonzero where the reference has no gradient", float("inf"), 0.0, math.inf)
        return
    if got is None:
        row.note(where, f"{name} missing", float("inf"), 0.0, math.inf)
        return
    if tuple(got.shape) != tuple(ref.shape):
        row.note(where, f"{name} has shape {tuple(got.shape)}, expected {tuple(ref.shape)}", math.inf, 0.0, math.inf)
        return
    g, r = got.detach().cpu().double(), ref.detach().cpu().double()
    if name.startswith("spikes"):
        n = int((g != r).sum())
        row.note(where, f"{name}: {n} of {r.numel()} differ" if n else name, float(n), 0.0, math.inf if n else 0.0)
        return
    # a result in an unexpected dtype is reported by _check_dtypes; compare its values as float32 meanwhile
    rtol, atol = TOLERANCES.get(got.dtype, TOLERANCES[torch.float32])
    bound = atol + rtol * r.abs()
    ratio = ((g - r).abs() / bound).nan_to_num(nan=math.inf)  # a NaN in the result counts as infinitely off
    diff, bound, ratio = ((g - r).abs().reshape(-1), bound.reshape(-1), ratio.reshape(-1))
    k = int(ratio.argmax())
    err = float(diff[k])
    row.note(where, name, err if math.isfinite(err) else math.inf, float(bound[k]), float(ratio[k]))


def _check_dtypes(row: Row, where: str, outs: dict, grads: dict, dtype: torch.dtype) -> None:
    """The backends' contract: spikes, sequences and the input gradient in the input dtype; the carried
    state in float32."""
    for name, t in list(outs.items()) + [(k, v) for k, v in grads.items() if k.startswith("grad x")]:
        want = torch.float32 if " final " in name else dtype
        if t is not None and t.dtype != want:
            row.fail(f"{where}: {name} is {str(t.dtype).replace('torch.', '')}, expected "
                     f"{str(want).replace('torch.', '')}")  # fmt: skip


def _check_case(rows: dict, variant: str, surrogate: str, case: _Case, backends: list[str],
                dtypes: list[torch.dtype], device: torch.device, seed: int) -> None:  # fmt: skip
    sg = get_surrogate(surrogate, SURROGATE_WIDTHS[surrogate])
    where = f"{surrogate}({sg.width:g}), {case.layout} T={case.T} {'x'.join(map(str, case.shape))}"
    make = variants()[variant]
    for dtype in dtypes:
        dname = str(dtype).replace("torch.", "")
        x = _screened_input(variant, sg, case, dtype, seed)
        chunks = list(x.split(case.T))
        # the truth: the per-step reference in float64, on the CPU, with the parameters of the modules below
        base = make(surrogate=sg, backend="torch", return_state=True)
        ref = copy.deepcopy(base).double()
        out_r, grad_r = _run(ref, chunks, case.layout)
        for backend in backends:
            row = rows[(variant, backend, dname)]
            row.cases += 1
            try:
                mod = copy.deepcopy(base).to(device)
                mod.backend = backend
                out_f, grad_f = _run(mod, [c.to(device, dtype) for c in chunks], case.layout)
            except Exception as exc:  # a kernel that raises (or does not build) is a failure, not a crash
                row.note(where, f"raised {type(exc).__name__}: {_short(exc)}", math.inf, 0.0, math.inf)
                continue
            _check_dtypes(row, where, out_f, grad_f, dtype)
            # in a fixed order (a set's order changes between runs), so that the report does not
            for name in dict.fromkeys([*out_r, *out_f]):
                _compare(row, where, name, out_f.get(name), out_r.get(name))
            for name in dict.fromkeys([*grad_r, *grad_f]):
                _compare(row, where, name, grad_f.get(name), grad_r.get(name))


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


# ---- torch.compile ---------------------------------------------------------------------------------------
class _TinyNet(nn.Module):
    def __init__(self, backend: str):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.spike = neuron_factory("arlif", init_a=0.3, init_c=-0.8, backend=backend)()
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):  # [T, B, 8] -> [B, 3]
        self.spike.reset()
        return self.fc2(self.spike(self.fc1(x))).mean(0)


def _compile_check(device: torch.device, backend: str, compiler: str) -> Row:
    """One SGD step of a Linear, AR-LIF, Linear model compiled with ``fullgraph=True`` against eager.

    The first layer's input, weights and bias are small multiples of 1/16 and 1/8, so its output is exact
    in float32 in any summation order: both runs feed the neuron the same bits and fire the same spikes,
    and what remains is the compiler's rounding in the rest of the step."""
    row = Row("compile", "arlif (compiled step)", backend, "float32", cases=1)
    where = f"torch.compile(fullgraph=True, backend={compiler!r})"
    g = torch.Generator().manual_seed(0)
    q = lambda lo, hi, shape, d: (torch.randint(lo, hi, shape, generator=g) / d).to(device)  # noqa: E731
    net = _TinyNet(backend)
    with torch.no_grad():
        net.fc1.weight.copy_(q(-8, 9, (16, 8), 16))
        net.fc1.bias.copy_(q(-4, 9, (16,), 16))
    net = net.to(device)
    x, y = q(-16, 17, (4, 6, 8), 8), torch.randint(0, 3, (6,), generator=g).to(device)
    results = []
    try:
        from torch import _dynamo

        _dynamo.reset()  # a fresh trace, whatever this process compiled before
        for compiled in (False, True):
            model = copy.deepcopy(net)
            run = torch.compile(model, fullgraph=True, backend=compiler) if compiled else model
            opt = torch.optim.SGD(model.parameters(), lr=0.5)
            loss = nn.functional.cross_entropy(run(x), y)
            loss.backward()
            grads = {f"grad {n}": p.grad.detach().clone() for n, p in model.named_parameters()}
            opt.step()
            after = {f"{n} after the step": p.detach().clone() for n, p in model.named_parameters()}
            results.append({"loss": loss.detach(), **grads, **after})
    except Exception as exc:
        row.note(where, f"raised {type(exc).__name__}: {_short(exc)}", math.inf, 0.0, math.inf)
        return row
    rtol, atol = COMPILE_TOLERANCE
    eager, comp = results
    for name, r in eager.items():
        g, r = comp[name].cpu().double(), r.cpu().double()
        bound = atol + rtol * r.abs()
        ratio = ((g - r).abs() / bound).nan_to_num(nan=math.inf).reshape(-1)
        k = int(ratio.argmax())
        row.note(where, name, float((g - r).abs().reshape(-1)[k]), float(bound.reshape(-1)[k]), float(ratio[k]))
    return row


# ---- driver ----------------------------------------------------------------------------------------------
def _device(device: torch.device | str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ArlifError(f"unknown device {device!r} ({exc}); use cpu or cuda") from None
    if dev.type not in ("cpu", "cuda"):
        raise ArlifError(f"the self-test runs on cpu or cuda, not {dev.type!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            if torch.version.cuda is None:
                why = f"torch {torch.__version__} is built without CUDA; install a CUDA build of PyTorch"
            else:
                why = (f"torch {torch.__version__} is built for CUDA {torch.version.cuda}, but sees no GPU; check "
                       "the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES")  # fmt: skip
            raise ArlifError(f"--device cuda: CUDA is not available here ({why}). 'arlif selftest' checks the CPU "
                             "kernels")  # fmt: skip
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ArlifError(f"--device {device}: there are {torch.cuda.device_count()} CUDA device(s)")
    return dev


def _pick(what: str, given: Sequence[str] | None, known: Sequence[str]) -> list[str] | None:
    if given is None:
        return None
    items = [g.strip() for g in given if g.strip()]
    bad = [g for g in items if g not in known]
    if bad or not items:
        raise ArlifError(f"unknown {what} {bad or given!r}; choose from {','.join(known)}")
    return items


def run_selftest(
    device: torch.device | str = "cpu",
    *,
    quick: bool = False,
    neurons: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    compile_check: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> Report:
    """Check every backend that can run on ``device`` against the float64 reference (module docstring).

    ``quick``: one input layout per neuron × surrogate instead of all four, and the compiled step with
    torch's ``aot_eager`` backend (traces the model and its backward the same way, without generating
    code: inductor's first compile takes ~20 s on a small CPU) instead of the default ``inductor``.
    ``neurons``, ``backends``, ``dtypes``: restrict the check (registered neuron names, ``torch``/``cpu``/
    ``triton``, ``float32``/``bfloat16``/``float16``); by default every backend available here, and float32
    and bfloat16 (plus float16 on CUDA), the half dtypes on a rotation of the cases (:func:`_cases`) unless
    they are asked for without float32. Triton runs on CPU tensors only under ``TRITON_INTERPRET=1`` (its
    interpreter: slow, but it is what was asked for). A backend that is not available is listed in
    ``report.skipped``, or raises :class:`ArlifError` when it was asked for by name.
    """
    t0 = time.perf_counter()
    dev = _device(device)
    makers = variants()
    names = _pick("neuron(s)", neurons, list(makers)) or list(makers)
    dnames = _pick("dtype(s)", dtypes, list(DTYPES)) or (
        ["float32", "bfloat16", "float16"] if dev.type == "cuda" else ["float32", "bfloat16"]
    )
    asked = _pick("backend(s)", backends, ["torch", "cpu", "triton"])
    skipped: list[str] = []
    chosen: dict[str, list[str]] = {}  # variant -> backends to check
    for v in names:
        kind = get_neuron(v).cls.neuron_kind
        here = _backends.available_backends(kind, dev)
        fused = _backends.fused_backends(kind)
        if asked is None:
            chosen[v] = here
            for b in fused:  # a neuron with only its reference has nothing to skip
                if b not in here and not (b == "cpu" and dev.type == "cuda"):
                    note = f"{b} on {dev.type}: {_backends._why_unavailable(kind, b, dev)}"
                    if note not in skipped:
                        skipped.append(note)
        else:
            chosen[v] = []
            for b in asked:
                if b != "torch" and b not in fused:  # this neuron has no such kernels: nothing to check
                    note = f"{b} for {v}: it has no fused {b} implementation"
                    if note not in skipped:
                        skipped.append(note)
                elif b not in here:
                    raise ArlifError(f"backend {b!r} cannot run {kind} on {dev}: "
                                     f"{_backends._why_unavailable(kind, b, dev)}; available here: {here}")  # fmt: skip
                else:
                    chosen[v].append(b)
    names = [v for v in names if chosen[v]]
    if not names:
        raise ArlifError(f"none of the neurons asked for has a {'/'.join(asked or [])} backend to check")
    tdtypes = [DTYPES[d] for d in dnames]
    rows: dict[tuple[str, str, str], Row] = {}
    for v in names:
        for b in chosen[v]:
            for d in dnames:
                rows[(v, b, d)] = Row("parity", v, b, d)
    # the half dtypes take the rotation of _cases beside float32; asked for alone, they run every case
    half = [d for d in tdtypes if d != torch.float32]
    full = [d for d in tdtypes if d == torch.float32] or half
    work = [(v, s, c, full + [d for d in half if d not in full] * in_half)
            for v in names for s in SURROGATES for c, in_half in _cases(v, s, seed, quick)]  # fmt: skip
    from tqdm import tqdm

    # a bar on a terminal; in a log (CI, a GPU job under `timeout`), one line per neuron as it finishes
    tty = progress and sys.stderr.isatty()
    bar = tqdm(total=len(work) + int(compile_check), desc="selftest", unit="case", file=sys.stderr,
               disable=not tty, leave=False)  # fmt: skip
    say = (lambda msg: print(f"selftest: {msg}", file=sys.stderr, flush=True)) if progress and not tty else None
    try:
        t_v = time.perf_counter()
        for k, (v, s, case, case_dtypes) in enumerate(work):
            bar.set_postfix_str(v, refresh=False)
            _check_case(rows, v, s, case, chosen[v], case_dtypes, dev, seed)
            bar.update()
            if say and (k + 1 == len(work) or work[k + 1][0] != v):
                bad = sum(not r.ok for r in rows.values() if r.neuron == v)
                say(f"{v}: {'FAIL' if bad else 'ok'} ({time.perf_counter() - t_v:.1f} s)")
                t_v = time.perf_counter()
        out = list(rows.values())
        if compile_check:
            # the model's AR-LIF layer runs the device's fused backend (of those asked for), as backend="auto" would
            here = _backends.available_backends("arlif", dev)
            fused = [b for b in (asked or here) if b != "torch" and b in here] or ["torch"]
            compiler = "aot_eager" if quick else "inductor"
            if dev.type == "cuda" and not _backends.triton_importable():
                # inductor generates Triton code for CUDA; its absence is already listed under "not checked"
                compiler = "aot_eager"
            bar.set_postfix_str(f"torch.compile ({compiler})")
            t_c = time.perf_counter()
            out.append(_compile_check(dev, fused[0], compiler))
            bar.update()
            if say:
                say(f"compiled training step: {'ok' if out[-1].ok else 'FAIL'} ({time.perf_counter() - t_c:.1f} s)")
    finally:
        bar.close()
    settings = dict(quick=quick, seed=seed, neurons=names, dtypes=dnames, compile_check=compile_check,
                    backends={v: chosen[v] for v in names}, margin=MARGIN,
                    tolerances={str(k).replace("torch.", ""): v for k, v in TOLERANCES.items()},
                    compile_tolerance=COMPILE_TOLERANCE,
                    triton_interpret=os.environ.get("TRITON_INTERPRET") == "1")  # fmt: skip
    return Report(str(dev), out, skipped, machine_info(dev), settings, time.perf_counter() - t0)


# ---- output ----------------------------------------------------------------------------------------------
def format_report(report: Report) -> str:
    m = report.machine
    hw = m.get("gpu") or m.get("cpu")
    lines = [f"arlif {m['arlif']} selftest on {report.device} ({hw}); torch {m['torch']}, triton {m['triton']}",
             "error: |result - float64 reference| where it is closest to its tolerance (atol + rtol*|reference|);"
             " spikes must match exactly"]  # fmt: skip
    head = ("neuron", "backend", "dtype", "cases", "worst (where)", "error", "tolerance", "result")
    table = [head] + [
        (r.neuron, r.backend, r.dtype, str(r.cases), r.worst, _num(r.error), _num(r.tolerance),
         "OK" if r.ok else "FAIL")
        for r in report.rows
    ]  # fmt: skip
    # the 'worst' column is long: cap it so that a row stays on one line of a wide terminal
    table = [t[:4] + ((t[4][:67] + "...") if len(t[4]) > 70 else t[4],) + t[5:] for t in table]
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    right = {3, 5, 6}
    for k, t in enumerate(table):
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(t, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    for note in report.skipped:
        lines.append(f"not checked: {note}")
    if report.ok:
        lines.append(f"all {len(report.rows)} checks passed in {report.seconds:.1f} s")
    else:
        lines.append(f"FAILED {len(report.failed)} of {len(report.rows)} checks:")
        for r in report.failed:
            lines.append(f"  {r.neuron} / {r.backend} / {r.dtype}:")
            lines += [f"    {f}" for f in r.failures]
    return "\n".join(lines)
