"""Fused kernels (CPU C++ and Triton under TRITON_INTERPRET=1) against the per-step reference.

Every neuron × switch × surrogate: spikes, state sequences, final states and all gradients (x, the carried
state of a previous chunk, the parameters), in float64 (tight) and float32; T=1, odd shapes, several
blocks, non-contiguous input. Plus opcheck, torch.compile, autocast, memory saved for backward, and the
errors for unavailable backends.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import zlib

import pytest
import torch

import arlif
from arlif import ARLIF, CLIF, LIF, PLIF
from arlif.ops import BackendUnavailableError, backends, cpu_build
from arlif.ops.backends import available_backends

# the fused backends: the C++ kernels (tests marked cpu_kernels skip where no compiler can build them, see
# conftest.py) and Triton where its interpreter runs here
FUSED = [pytest.param("cpu", marks=pytest.mark.cpu_kernels)] + [
    b for b in ("triton",) if b in available_backends("arlif", "cpu")
]

VARIANTS = {
    "arlif": lambda **kw: ARLIF(init_a=0.4, init_c=-0.8, **kw),
    "arlif_init": lambda **kw: ARLIF(**kw),
    "arlif_pos_c": lambda **kw: ARLIF(init_a=-0.7, init_c=1.3, decay=0.3, v_threshold=0.8, **kw),
    "arlif_no_ta": lambda **kw: ARLIF(init_a=0.4, init_c=-0.8, threshold_adjust=False, **kw),
    "arlif_no_ar": lambda **kw: ARLIF(init_a=0.4, init_c=-0.8, adaptive_reset=False, **kw),
    "arlif_no_carry": lambda **kw: ARLIF(init_a=0.4, init_c=-0.8, carry_memory=False, decay=0.2, **kw),
    "arlif_off": lambda **kw: ARLIF(init_a=0.4, threshold_adjust=False, adaptive_reset=False, **kw),
    "lif_soft": lambda **kw: LIF(**kw),
    "lif_hard": lambda **kw: LIF(reset="hard", decay=0.7, **kw),
    "plif": lambda **kw: PLIF(init_w=0.3, **kw),
    "clif": lambda **kw: CLIF(tau=2.5, **kw),
}
SURROGATES = ["rectangle", "triangle", "sigmoid", "atan"]
TOL = {
    torch.float64: dict(rtol=1e-9, atol=1e-10),
    torch.float32: dict(rtol=2e-4, atol=2e-5),
}


def _run(mod, chunks, dtype):
    """Feed ``chunks`` (list of [T, ...]) without reset, so later chunks start from a carried state that
    requires grad. Returns outputs and gradients of a loss touching spikes, V/m sequences and final states."""
    mod.reset()
    xs = [c.clone().requires_grad_() for c in chunks]
    loss, outs = 0.0, []
    for i, x in enumerate(xs):
        s = mod(x)
        w = torch.linspace(0.5, 1.5, s.numel(), dtype=dtype, device=s.device).view_as(s)
        loss = loss + (s.to(dtype) * w).sum() + (mod.v_seq.to(dtype) * w.flip(0)).sum() * 0.3
        outs += [s, mod.v_seq, mod.v]
        if mod.m_seq is not None:
            loss = loss + (mod.m_seq.to(dtype) * w).sum() * 0.2
            outs += [mod.m_seq, mod.m]
        if i == len(xs) - 1:
            loss = loss + (mod.v.to(dtype) ** 2).sum()
            if isinstance(getattr(mod, "m", None), torch.Tensor):
                loss = loss + mod.m.to(dtype).sum()
    loss.backward()
    grads = [x.grad for x in xs] + [p.grad for p in mod.parameters() if p.requires_grad]
    return [o.detach() for o in outs], grads


def _pair(name, backend, dtype, surrogate="rectangle"):
    ref = VARIANTS[name](surrogate=surrogate, backend="torch", store_state=True).to(dtype)
    fused = VARIANTS[name](surrogate=surrogate, backend=backend, store_state=True).to(dtype)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def _inputs(shape, T, dtype, seed, chunks=1):
    g = torch.Generator().manual_seed(seed)
    make = lambda: torch.randn([T, *shape], generator=g, dtype=torch.float64) * 1.2 + 0.6  # noqa: E731
    return [make().to(dtype) for _ in range(chunks)]


def _assert_parity(ref, fused, chunks, dtype):
    out_r, grad_r = _run(ref, chunks, dtype)
    out_f, grad_f = _run(fused, chunks, dtype)
    assert len(out_r) == len(out_f) and len(grad_r) == len(grad_f)
    assert torch.equal(out_r[0], out_f[0]), "spikes differ"
    for i, (a, b) in enumerate(zip(out_r, out_f)):
        torch.testing.assert_close(b.to(a.dtype), a, **TOL[dtype], msg=lambda m, i=i: f"output {i}: {m}")
    for i, (a, b) in enumerate(zip(grad_r, grad_f)):
        if a is None:  # a parameter the reference graph does not use gets no gradient
            assert b is None or float(b.abs().max()) == 0.0
            continue
        assert b is not None, f"gradient {i} missing"
        torch.testing.assert_close(b, a, **TOL[dtype], msg=lambda m, i=i: f"gradient {i}: {m}")


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_parity_float64_every_variant_and_surrogate(name, surrogate, backend):
    ref, fused = _pair(name, backend, torch.float64, surrogate)
    # two chunks without reset: the second starts from a carried state that requires grad
    seed = zlib.crc32(f"{name}/{surrogate}".encode()) % 1000
    chunks = _inputs([3, 37], 5, torch.float64, seed=seed, chunks=2)
    _assert_parity(ref, fused, chunks, torch.float64)


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize(
    "T,shape", [(1, [7]), (3, [2, 3, 5]), (2, [1300]), (6, [4, 1, 9])], ids=["T1", "3d", "blocks", "T6"]
)
@pytest.mark.parametrize("name", ["arlif", "arlif_no_carry", "lif_hard", "plif", "clif"])
def test_parity_shapes(name, T, shape, backend):
    ref, fused = _pair(name, backend, torch.float64, "sigmoid")
    _assert_parity(ref, fused, _inputs(shape, T, torch.float64, seed=T), torch.float64)


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_parity_float32(name, surrogate, backend):
    ref, fused = _pair(name, backend, torch.float32, surrogate)
    _assert_parity(ref, fused, _inputs([2, 150], 4, torch.float32, seed=7, chunks=2), torch.float32)


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("name", ["arlif", "clif", "plif"])
def test_non_contiguous_input(name, backend):
    base = _inputs([6, 4, 5], 3, torch.float64, seed=3)[0]
    x = base.transpose(1, 3)  # [T, 5, 4, 6], not contiguous
    assert not x.is_contiguous()
    ref, fused = _pair(name, backend, torch.float64)
    _assert_parity(ref, fused, [x], torch.float64)


@pytest.mark.parametrize("backend", FUSED)
def test_without_store_state_and_only_final_state_used(backend):
    """No sequences kept; a loss on the final state alone (spike gradient absent) still matches."""
    x = _inputs([40], 4, torch.float64, seed=11)[0]
    grads = []
    for b in ("torch", backend):
        mod = ARLIF(init_a=0.3, init_c=0.5, backend=b).double()
        xx = x.clone().requires_grad_()
        mod(xx)
        (mod.v.sum() + 2 * mod.m.sum()).backward()
        grads.append((xx.grad, mod.a.grad, mod.c.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", FUSED)
def test_bf16_and_fp16_inputs_compute_in_float32(backend):
    """Half inputs: spikes/sequences in the input dtype, final state in float32, and the result equals the
    float32 reference run on the same (rounded) input."""
    for dtype in (torch.bfloat16, torch.float16):
        x = _inputs([2, 64], 4, torch.float32, seed=5)[0].to(dtype)
        fused = ARLIF(init_a=0.4, init_c=-0.8, backend=backend, store_state=True)
        ref = ARLIF(init_a=0.4, init_c=-0.8, backend="torch", store_state=True)
        xf, xr = x.clone().requires_grad_(), x.float().requires_grad_()
        sf, sr = fused(xf), ref(xr)
        assert sf.dtype == dtype and fused.v_seq.dtype == dtype and fused.v.dtype == torch.float32
        assert torch.equal(sf.float(), sr)
        sf.float().sum().backward()
        sr.sum().backward()
        assert xf.grad.dtype == dtype
        torch.testing.assert_close(xf.grad.float(), xr.grad, rtol=1e-2, atol=1e-2)
        torch.testing.assert_close(fused.a.grad, ref.a.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fused.c.grad, ref.c.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.cpu_kernels
@pytest.mark.parametrize("make", [lambda **k: ARLIF(init_a=0.5, init_c=-0.7, **k), LIF, PLIF, CLIF])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_give_the_same_spikes_in_every_mode_and_backend(make, dtype):
    """The reference backend and single-step mode keep their state in float32 too, as the fused ops do:
    a bf16 membrane potential drifts from the fused one within a few steps."""
    x = (_inputs([16, 64, 64], 4, torch.float32, seed=9)[0] * 1.5).to(dtype)
    runs = {}
    for backend in ("cpu", "torch"):
        mod = make(backend=backend, store_state=True)
        runs[backend] = mod(x)
        assert runs[backend].dtype == dtype and mod.v.dtype == torch.float32 and mod.v_seq.dtype == dtype
    single = make(step_mode="s")
    runs["single"] = torch.stack([single(x[t]) for t in range(x.shape[0])])
    assert single.v.dtype == torch.float32 and runs["single"].dtype == dtype
    for name, s in runs.items():
        assert torch.equal(s, runs["cpu"]), name


@pytest.mark.cpu_kernels
def test_autocast_bf16_on_cpu():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 32)
    fused, ref = ARLIF(init_a=0.4, backend="cpu"), ARLIF(init_a=0.4, backend="torch")
    x = torch.randn(4, 3, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = lin(x)
        s = fused(h)
    assert h.dtype == torch.bfloat16 and s.dtype == torch.bfloat16
    assert fused.v.dtype == torch.float32 and fused.m.dtype == torch.float32  # state stays fp32 under AMP
    s.float().sum().backward()
    assert lin.weight.grad is not None and fused.a.grad is not None and torch.isfinite(fused.a.grad)
    assert torch.equal(s.float(), ref(h.detach().float()))


@pytest.mark.cpu_kernels
def test_saved_bytes_per_element():
    """A fused neuron at rest keeps x only for backward: 4 bytes per element (float32; plus its scalar
    parameters, 8 bytes in all)."""
    from arlif.bench import saved_bytes_per_element

    kw = dict(shape=(4, 64), T=8, dtype=torch.float32, device="cpu")
    for neuron in ("arlif", "lif", "plif", "clif"):
        assert 4.0 <= saved_bytes_per_element(neuron, "cpu", **kw) <= 4.0 + 8 / (8 * 4 * 64), neuron
    assert saved_bytes_per_element("arlif", "torch", **kw) > 30


@pytest.mark.parametrize("backend", FUSED)
def test_initial_state_is_kept_for_backward_only_when_there_is_one(backend):
    """After reset() the modules pass no state tensor (x alone is saved: 4 B/element); a chunk that continues
    from a carried state keeps that state too (x + V + m: 4 + 8/T B/element)."""
    from arlif.bench import SavedBytes

    mod = ARLIF(init_a=0.4, init_c=-0.8, backend=backend)
    x = _inputs([4, 16], 8, torch.float32, seed=3)[0].requires_grad_()
    with SavedBytes() as fresh:
        mod(x)
    with SavedBytes() as carried:
        mod(x)
    params = 4 * 2  # a and c, float32 scalars
    assert fresh.bytes == 4 * x.numel() + params
    assert carried.bytes == 4 * x.numel() + 2 * 4 * x[0].numel() + params


@pytest.mark.cpu_kernels
@pytest.mark.parametrize("name", ["arlif", "arlif_pos_c", "arlif_no_carry", "arlif_no_ta"])
def test_cpu_kernel_results_do_not_depend_on_position(name):
    """The C++ kernels run full vectors with explicit SIMD code and the neurons of a block after its last full
    vector with scalar code: both must give the same bits, or results would depend on where a neuron sits (and
    the backward's recompute on the forward's layout). 127 neurons (the last 15 scalar) vs 128 (all vectors)."""
    x = _inputs([128], 48, torch.float32, seed=5)[0] * 1.5
    w = torch.linspace(0.5, 1.5, x.numel()).view_as(x)
    results = []
    for n in (127, 128):
        xi = x[:, :n].clone().requires_grad_()
        mod = VARIANTS[name](backend="cpu", store_state=True)
        s = mod(xi)
        (s * w[:, :n]).sum().add(mod.v.sum()).backward()
        seqs = [s, mod.v_seq] + ([mod.m_seq] if mod.m_seq is not None else [])
        results.append([t.detach()[:, :127] for t in seqs] + [xi.grad[:, :127]])
    for a, b in zip(*results):
        assert torch.equal(a, b)


def _fused_arlif_outputs(x, m0=None):
    """Spikes, V and m sequences, and the gradients of x (and m0) of the fused CPU AR-LIF op on x [T, N],
    from rest or from the memory m0, with a loss that touches all of them."""
    x = x.clone().requires_grad_()
    m0 = None if m0 is None else m0.clone().requires_grad_()
    a, c = torch.tensor(0.4, requires_grad=True), torch.tensor(-0.8, requires_grad=True)
    s, vT, mT, vs, ms = torch.ops.arlif.arlif_fwd(x, None, m0, a, c, 1.0, 0.5, True, True, True, 2, 1.0, True, "cpu")
    w = torch.linspace(0.5, 1.5, x.numel()).view_as(x)
    ((s * w).sum() + (vs * w.flip(0)).sum() * 0.3 + (ms * w).sum() * 0.2 + vT.sum() + mT.sum()).backward()
    return [t.detach() for t in (s, vs, ms, x.grad)] + ([m0.grad] if m0 is not None else [])


@pytest.mark.cpu_kernels
def test_cpu_kernel_results_do_not_depend_on_a_neighbours_far_input():
    """The input terms σ(x), tanh(x), σ(c·x) of 64 neurons at a time skip their clamps where every |x| is
    small, and take them where one is not: a neighbour's input of 35 or -inf must leave a neuron's bits alone."""
    x = _inputs([256], 6, torch.float32, seed=11)[0] * 2
    far = x.clone()
    far[:, 5], far[:, 200] = 35.0, float("-inf")
    keep = [i for i in range(256) if i not in (5, 200)]
    for a, b in zip(_fused_arlif_outputs(x), _fused_arlif_outputs(far)):
        assert torch.equal(a[:, keep], b[:, keep])


@pytest.mark.cpu_kernels
def test_cpu_kernel_results_do_not_depend_on_a_neighbours_large_memory():
    """σ(m_t) skips its clamp in a block of 128 neurons whose memory cannot grow past 80 in T steps and takes
    it where one initial memory is large: that must leave the other neurons' bits alone."""
    T = 6
    x = _inputs([300], T, torch.float32, seed=12)[0]
    m0 = torch.linspace(-2, 2, 300)
    big = m0.clone()
    big[3] = 80.0 - T + 1  # just past the bound: its block (neurons 0-127) takes the clamped path
    keep = [i for i in range(300) if i != 3]
    for a, b in zip(_fused_arlif_outputs(x, m0), _fused_arlif_outputs(x, big)):
        assert torch.equal(a[..., keep], b[..., keep])


@pytest.mark.cpu_kernels
@pytest.mark.parametrize("name", ["arlif", "arlif_pos_c"])
def test_parity_float32_long_sequence(name):
    """T = 90: past the 80 steps over which the reset memory provably stays small, so σ(m_t) keeps its clamp."""
    ref, fused = _pair(name, "cpu", torch.float32, "sigmoid")
    _assert_parity(ref, fused, _inputs([2, 40], 90, torch.float32, seed=13), torch.float32)


# ---- torch.library integration ------------------------------------------------------------------------
def _op_samples(backend):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    m0 = torch.randn(2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    p = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
    ops = torch.ops.arlif
    arlif = lambda v, m, c, *cfg: (ops.arlif_fwd.default, (x, v, m, p(0.4), p(c), *cfg, backend))  # noqa: E731
    return [
        arlif(v0, m0, -0.8, 1.0, 0.5, True, True, True, 1, 1.0, True),
        arlif(v0, None, 0.3, 1.0, 0.2, True, True, False, 0, 1.0, False),
        arlif(v0, None, 0.3, 1.0, 0.5, False, False, True, 2, 4.0, True),
        arlif(None, None, -0.8, 1.0, 0.5, True, True, True, 0, 1.0, True),  # a neuron at rest: no states
        (ops.lif_fwd.default, (x, v0, 1.0, 0.5, True, 3, 2.0, True, backend)),
        (ops.lif_fwd.default, (x, None, 1.0, 0.5, False, 0, 1.0, False, backend)),
        (ops.plif_fwd.default, (x, v0, p(0.3), 1.0, 0, 1.0, False, backend)),
        (ops.plif_fwd.default, (x, None, p(0.3), 1.0, 0, 1.0, True, backend)),
        (ops.clif_fwd.default, (x, v0, m0, 1.0, 2.0, 1, 1.0, True, backend)),
        (ops.clif_fwd.default, (x, None, None, 1.0, 2.0, 1, 1.0, True, backend)),
    ]


@pytest.mark.parametrize("backend", FUSED)
def test_opcheck(backend):
    for op, args in _op_samples(backend):
        torch.library.opcheck(op, args)


class _TinyNet(torch.nn.Module):
    def __init__(self, neuron):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.n1 = neuron
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):  # x: [T, B, 8]
        self.n1.reset()
        return self.fc2(self.n1(self.fc1(x))).mean(0)


@pytest.mark.cpu_kernels
@pytest.mark.parametrize("neuron", ["arlif", "clif"])
def test_torch_compile_fullgraph(neuron):
    torch.manual_seed(0)
    make = {"arlif": lambda: ARLIF(init_a=0.3, backend="cpu"), "clif": lambda: CLIF(backend="cpu")}[neuron]
    net = _TinyNet(make())
    ref = _TinyNet(make())
    ref.load_state_dict(net.state_dict())
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    x = torch.randn(4, 5, 8)
    out = compiled(x)
    out.sum().backward()
    out_ref = ref(x)
    out_ref.sum().backward()
    torch.testing.assert_close(out, out_ref)
    for (name, p), p_ref in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, msg=name)


@pytest.mark.cpu_kernels
def test_torch_compile_fullgraph_in_a_fresh_process():
    """Backend resolution (compiler and kernel-cache lookups) must not break the trace when nothing has
    loaded the kernels yet in the process."""
    code = (
        "import torch\n"
        "from arlif import ARLIF\n"
        "for backend in ('cpu', 'auto'):\n"
        "    net = torch.nn.Sequential(torch.nn.Linear(8, 8), ARLIF(backend=backend))\n"
        "    out = torch.compile(net, fullgraph=True, backend='eager')(torch.randn(4, 5, 8))\n"
        "    assert out.shape == (4, 5, 8)\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


@pytest.mark.cpu_kernels
def test_compiled_model_reports_an_unavailable_backend_as_such(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), ARLIF(backend="cpu"))
    compiled = torch.compile(net, backend="eager")
    assert compiled(torch.randn(2, 2, 3)).shape == (2, 2, 3)
    arlif.set_backend(net, "triton")  # Triton on CPU tensors without the interpreter
    with pytest.raises(BackendUnavailableError, match="backend 'triton' is unavailable"):
        compiled(torch.randn(2, 2, 3))


@pytest.mark.cpu_kernels
@pytest.mark.slow
def test_torch_compile_inductor():
    torch.manual_seed(0)
    net = _TinyNet(ARLIF(init_a=0.3, backend="cpu"))
    out = torch.compile(net, fullgraph=True)(torch.randn(4, 5, 8))
    out.sum().backward()
    assert net.n1.a.grad is not None


# ---- errors ---------------------------------------------------------------------------------------------
def test_triton_on_cpu_without_interpreter_is_an_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(BackendUnavailableError, match="backend 'triton' is unavailable"):
        ARLIF(backend="triton")(torch.randn(2, 3))
    assert "triton" not in available_backends("arlif", "cpu")


def test_cpu_backend_on_other_devices_is_an_error():
    with pytest.raises(BackendUnavailableError, match="runs on CPU tensors"):
        LIF(backend="cpu")(torch.randn(2, 3, device="meta"))


def test_cpu_backend_without_compiler_is_an_error(monkeypatch):
    monkeypatch.setattr(cpu_build, "_lib", None)
    monkeypatch.setattr(cpu_build, "compiler", lambda: None)
    monkeypatch.setattr(backends, "_WARNED", set())
    with pytest.raises(BackendUnavailableError, match="no C\\+\\+ compiler"):
        PLIF(backend="cpu")(torch.randn(2, 3))
    # auto falls back to the reference because that is its documented choice, and says so (once)
    with pytest.warns(RuntimeWarning, match="per-step reference: no C\\+\\+ compiler"):
        assert backends.resolve_backend("plif", "auto", torch.device("cpu")) == "torch"


def test_failed_kernel_build_is_reported_before_the_first_forward(monkeypatch, tmp_path):
    # a compiler that exists but cannot build (a broken toolchain): 'cpu' names the failure at once, 'auto'
    # warns and runs the reference instead of raising from inside its first forward
    broken = tmp_path / "broken-c++"
    broken.write_text("#!/bin/sh\necho 'fatal error: no toolchain here' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("ARLIF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_build, "_lib", None)
    monkeypatch.setattr(cpu_build, "_error", None)
    monkeypatch.setattr(cpu_build, "compiler", lambda: str(broken))
    monkeypatch.setattr(backends, "_WARNED", set())
    with pytest.raises(BackendUnavailableError, match="building the fused CPU kernels failed(.|\\n)*no toolchain here"):
        backends.resolve_backend("lif", "cpu", torch.device("cpu"))
    x = torch.randn(3, 2, 4)
    with pytest.warns(RuntimeWarning, match="per-step reference: building the fused CPU kernels failed"):
        out = LIF(backend="auto")(x)
    torch.testing.assert_close(out, LIF(backend="torch")(x))
    assert "cpu" not in available_backends("lif", "cpu")


@pytest.mark.cpu_kernels
def test_auto_prefers_the_fused_cpu_kernels():
    assert backends.resolve_backend("arlif", "auto", torch.device("cpu")) == "cpu"


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("switches", [(True, False), (False, True)], ids=["no_carry", "no_adaptive_reset"])
def test_unused_initial_memory_gets_no_gradient(backend, switches):
    """The op called directly with an m0 that requires grad, under switches that never read m_{t-1}: the
    backward works, m0 gets no gradient, and the outputs and the other gradients are the reference's."""
    adaptive_reset, carry_memory = switches
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(3, 2, 5, generator=g, dtype=torch.float64) + 0.6).requires_grad_()
    v0 = (torch.randn(2, 5, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    m0 = torch.randn(2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    a, c = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.3, 0.7))
    spikes, vT, *_ = torch.ops.arlif.arlif_fwd(
        x, v0, m0, a, c, 1.0, 0.5, True, adaptive_reset, carry_memory, 0, 1.0, False, backend
    )
    (spikes.sum() + vT.sum()).backward()
    assert m0.grad is None

    # the reference: the same neuron (rectangle surrogate of width 1, kind 0 above) from the same state
    ref = ARLIF(adaptive_reset=adaptive_reset, carry_memory=carry_memory, backend="torch").double()
    with torch.no_grad():  # after the cast: 0.3 made in float32 is not 0.3 in float64
        ref.a.copy_(a), ref.c.copy_(c)
    xr, v0r, m0r = (t.detach().clone().requires_grad_() for t in (x, v0, m0))
    ref.v, ref.m = v0r, m0r
    spikes_r = ref(xr)
    (spikes_r.sum() + ref.v.sum()).backward()
    assert m0r.grad is None
    assert torch.equal(spikes, spikes_r)
    torch.testing.assert_close(vT, ref.v.detach(), **TOL[torch.float64])
    for got, want in ((x.grad, xr.grad), (v0.grad, v0r.grad), (a.grad, ref.a.grad)):
        torch.testing.assert_close(got, want, **TOL[torch.float64])
    # c scales m_{t-1}, which these switches never read: no gradient in the reference, none or 0 from the op
    assert ref.c.grad is None and (c.grad is None or float(c.grad.abs().max()) == 0.0)


@pytest.mark.cpu_kernels
def test_c_gradient_for_inputs_far_outside_the_sigmoid_clamp():
    """float32 kernels clamp c·x to ±20 inside σ(c·x); dL/dc multiplies σ'(c·x) by x, so σ'(c·x) must
    still be right out there, or the error grows with |x| (it was 0.6% here)."""
    torch.manual_seed(0)
    x = torch.randn(8, 4, 256, dtype=torch.float64) * 40
    w = torch.linspace(0.5, 1.5, x.numel(), dtype=torch.float64).view_as(x)
    grads = {}
    for backend, dtype in (("torch", torch.float64), ("cpu", torch.float32)):
        mod = ARLIF(init_a=0.3, init_c=-2.4, backend=backend, store_state=True).to(dtype)
        mod(x.to(dtype))
        (mod.m_seq.to(torch.float64) * w).sum().backward()
        grads[backend] = mod.c.grad.double()
    torch.testing.assert_close(grads["cpu"], grads["torch"], rtol=1e-4, atol=0)


@pytest.mark.cpu_kernels
@pytest.mark.parametrize(
    "T,shape,dtype",
    [
        pytest.param(3, [64, 64], torch.float32, id="small"),
        # more than 32768 per-block partials (a layer of >4.2M neurons)
        pytest.param(2, [4_300_000], torch.float64, marks=pytest.mark.slow, id="over_32768_blocks"),
    ],
)
def test_parameter_gradients_do_not_depend_on_the_thread_count(T, shape, dtype):
    """The parameter gradients sum per-block partials: that sum must not be split by threads."""
    x = _inputs(shape, T, dtype, seed=2)[0]
    grads = []
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            mod = ARLIF(init_a=0.4, init_c=-0.8, backend="cpu").to(dtype)
            (mod(x).sum() + mod.m.sum()).backward()
            grads.append((mod.a.grad.clone(), mod.c.grad.clone()))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


@pytest.mark.parametrize("backend", FUSED)
def test_infinite_input_on_the_first_step_leaves_the_c_gradient_finite(backend):
    """From rest, m_{t-1} = 0 at t = 0: the c-term vanishes there, also for x = ±inf (0·inf is NaN)."""
    for x0 in (float("inf"), float("-inf")):
        x = torch.tensor([x0, 0.7, -0.4, 1.3], dtype=torch.float64).view(4, 1, 1)
        grads = []
        for b in ("torch", backend):
            mod = ARLIF(init_a=0.2, init_c=-0.8, backend=b, store_state=True).double()
            mod(x)
            mod.m_seq[1:].sum().backward()
            grads.append(mod.c.grad)
        assert torch.isfinite(grads[1]), (x0, grads)
        torch.testing.assert_close(grads[1], grads[0])


def test_triton_warps_knob_is_checked(monkeypatch):
    pytest.importorskip("triton")
    from arlif.ops import triton_common

    monkeypatch.setenv("ARLIF_TRITON_NUM_WARPS", "8")
    assert triton_common._num_warps() == 8
    for bad in ("3", "eight", ""):
        monkeypatch.setenv("ARLIF_TRITON_NUM_WARPS", bad)
        with pytest.raises(ValueError, match="ARLIF_TRITON_NUM_WARPS must be 1, 2, 4, 8 or 16"):
            triton_common._num_warps()


# ---- streaming (non-temporal) stores of the CPU kernels' outputs ------------------------------------------
@pytest.mark.cpu_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_streaming_stores_change_no_value(name, dtype):
    """Outputs written around the cache (threshold 0: every call) must be the same bits as through it: rows
    that start inside a cache line (301 neurons), a last block shorter than the others, two threads, and the
    state sequences and their gradients (store_state)."""
    mod = VARIANTS[name](surrogate="sigmoid", backend="cpu", store_state=True).to(dtype)
    chunks = _inputs([301], 5, dtype, seed=21, chunks=2)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cpu_build.set_streaming_threshold(cpu_build.NEVER)
        plain = _run(copy.deepcopy(mod), chunks, dtype)
        cpu_build.set_streaming_threshold(0)
        streamed = _run(copy.deepcopy(mod), chunks, dtype)
    finally:
        cpu_build.set_streaming_threshold(None)
        torch.set_num_threads(old)
    for a, b in zip(plain[0] + plain[1], streamed[0] + streamed[1]):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)


@pytest.mark.cpu_kernels
def test_streaming_threshold_default_and_override():
    cpu_build.set_streaming_threshold(12345)
    assert cpu_build.streaming_threshold() == 12345
    cpu_build.set_streaming_threshold(None)
    assert cpu_build.streaming_threshold() == cpu_build.default_streaming_threshold()
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="size in bytes"):
            cpu_build.set_streaming_threshold(bad)


def test_last_level_cache_is_the_largest_data_cache_in_sysfs(tmp_path):
    for i, (kind, size) in enumerate(
        [("Data", "48K"), ("Instruction", "64M"), ("Unified", "1024K"), ("Unified", "32M")]
    ):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "type").write_text(kind + "\n")
        (tmp_path / f"index{i}" / "size").write_text(size + "\n")
    assert cpu_build.last_level_cache_bytes(tmp_path) == 32 * 2**20
    assert cpu_build.last_level_cache_bytes(tmp_path / "absent") is None


def test_streaming_stores_environment_variable(monkeypatch):
    cases = {"always": 0, "never": 2**63 - 1, "25165824": 25165824, " Auto ": cpu_build.default_streaming_threshold()}
    for value, want in cases.items():
        monkeypatch.setenv(cpu_build.STREAMING_ENV, value)
        assert cpu_build._env_streaming_threshold() == want
    monkeypatch.setenv(cpu_build.STREAMING_ENV, "sometimes")
    with pytest.raises(BackendUnavailableError, match="ARLIF_STREAMING_STORES='sometimes'.*auto, always, never"):
        cpu_build._env_streaming_threshold()
