"""Neuron invariants (hypothesis properties) and the error paths of the modules."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import arlif
from arlif import ARLIF, CLIF, LIF, PLIF, reset_net, set_backend, set_step_mode
from arlif.ops import BackendUnavailableError
from arlif.surrogate import ATan, Rectangle, Sigmoid, Triangle, get_surrogate

NEURONS = {
    "arlif": lambda **kw: ARLIF(init_a=0.3, init_c=-0.5, **kw),
    "arlif_no_carry": lambda **kw: ARLIF(init_a=0.3, carry_memory=False, **kw),
    "lif_soft": lambda **kw: LIF(**kw),
    "lif_hard": lambda **kw: LIF(reset="hard", **kw),
    "plif": lambda **kw: PLIF(init_w=0.2, **kw),
    "clif": lambda **kw: CLIF(**kw),
}

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3)

# the fused CPU kernels as a backend parameter (skipped without a C++ compiler, see conftest.py)
CPU_KERNELS = pytest.param("cpu", marks=pytest.mark.cpu_kernels)


def _grads(mod, x):
    return [x.grad.clone()] + [
        p.grad.clone() if p.grad is not None else torch.zeros(()) for p in mod.parameters()
    ]


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(NEURONS)),
    T=st.integers(1, 6),
    shape=shapes,
    seed=st.integers(0, 2**16),
    surrogate=st.sampled_from(["rectangle", "triangle", "sigmoid", "atan"]),
)
def test_single_step_equals_multi_step(name, T, shape, seed, surrogate):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn([T, *shape], generator=gen, dtype=torch.float64) * 1.5 + 0.5
    mod = NEURONS[name](surrogate=surrogate).double()

    weight = torch.linspace(0.5, 1.5, x.numel(), dtype=x.dtype).view_as(x)

    def loss(out):  # weighted spikes plus the final membrane potential: gradients through S and V
        return (out * weight).sum() + (mod.v * weight[-1]).sum()

    xm = x.clone().requires_grad_()
    out_m = mod(xm)
    loss(out_m).backward()
    grads_m = _grads(mod, xm)

    mod.zero_grad()
    mod.reset()
    set_step_mode(mod, "s")
    xs = x.clone().requires_grad_()
    out_s = torch.stack([mod(xs[t]) for t in range(T)])
    loss(out_s).backward()
    grads_s = _grads(mod, xs)

    assert torch.equal(out_m, out_s)
    for gm, gs in zip(grads_m, grads_s):
        torch.testing.assert_close(gm, gs, rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 6), shape=shapes, seed=st.integers(0, 2**16), decay=st.floats(0.05, 0.95))
def test_arlif_with_both_switches_off_is_soft_lif(T, shape, seed, decay):
    x = torch.randn([T, *shape], generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2
    ar = ARLIF(
        decay=decay, threshold_adjust=False, adaptive_reset=False, init_a=0.7, init_c=-2.0, store_state=True
    ).double()
    lif = LIF(decay=decay, reset="soft", store_state=True).double()
    xa, xl = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sl = ar(xa), lif(xl)
    assert torch.equal(sa, sl)
    torch.testing.assert_close(ar.v_seq, lif.v_seq, rtol=0, atol=0)
    (sa.sum() + ar.v_seq.sum()).backward()
    (sl.sum() + lif.v_seq.sum()).backward()
    torch.testing.assert_close(xa.grad, xl.grad, rtol=0, atol=0)
    assert ar.m_seq is None
    assert not ar.a.requires_grad and not ar.c.requires_grad


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 6), shape=shapes, seed=st.integers(0, 2**16))
def test_no_carry_memory_gives_c_no_gradient(T, shape, seed):
    x = torch.randn([T, *shape], generator=torch.Generator().manual_seed(seed)) * 2
    mod = ARLIF(carry_memory=False, init_a=0.5, store_state=True)
    out = mod(x)
    (out.sum() + mod.v_seq.sum() + mod.m_seq.sum()).backward()
    assert not mod.c.requires_grad
    assert mod.c.grad is None
    assert mod.a.grad is not None


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(NEURONS)),
    T=st.integers(1, 6),
    shape=shapes,
    seed=st.integers(0, 2**16),
    scale=st.floats(0.01, 10.0),
)
def test_spikes_are_binary_and_reset_zeroes_state(name, T, shape, seed, scale):
    x = torch.randn([T, *shape], generator=torch.Generator().manual_seed(seed)) * scale
    mod = NEURONS[name]()
    out = mod(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert bool(((out == 0) | (out == 1)).all())
    assert isinstance(mod.v, torch.Tensor)
    mod.reset()
    for state in mod.state_names:
        assert getattr(mod, state) == 0.0
    assert mod.v_seq is None and mod.m_seq is None
    # after reset the next forward starts from zero state: same result as a fresh module
    torch.testing.assert_close(mod(x), NEURONS[name]()(x))


def test_state_carries_over_between_multi_step_calls_until_reset():
    x = torch.randn(6, 3, 4)
    whole = ARLIF(init_a=0.2)(x)
    mod = ARLIF(init_a=0.2)
    halves = torch.cat([mod(x[:3]), mod(x[3:])])
    assert torch.equal(whole, halves)


def test_surrogates_forward_is_heaviside_and_derivatives_match_spec():
    u = torch.tensor(
        [-2.0, -0.6, -0.5, -0.1, 0.0, 0.1, 0.5, 0.6, 2.0], dtype=torch.float64, requires_grad=True
    )
    expected = {
        Rectangle(): (u.abs() <= 0.5).double(),
        Rectangle(2.0): (u.abs() <= 1.0).double() / 2,
        Triangle(): torch.clamp(1 - u.abs(), min=0),
        Sigmoid(): 4 * torch.sigmoid(4 * u) * (1 - torch.sigmoid(4 * u)),
        ATan(): 1.0 / (1 + (torch.pi * u) ** 2),
    }
    for sg, deriv in expected.items():
        if u.grad is not None:
            u.grad = None
        s = sg(u)
        assert torch.equal(s, (u >= 0).double())
        s.sum().backward()
        torch.testing.assert_close(u.grad, deriv.detach())


def test_surrogate_by_name_and_instance():
    assert get_surrogate("triangle") == Triangle()
    assert get_surrogate("ATan", width=3.0) == ATan(3.0)
    sg = Sigmoid(2.0)
    assert get_surrogate(sg) is sg
    assert ARLIF(surrogate=sg).surrogate is sg
    assert isinstance(ARLIF().surrogate, Rectangle)


def test_helpers_switch_and_reset_a_network():
    net = torch.nn.Sequential(ARLIF(), torch.nn.Sequential(LIF(), PLIF()), CLIF())
    set_step_mode(net, "s")
    assert all(m.step_mode == "s" for m in net if hasattr(m, "step_mode"))
    set_backend(net, "torch")
    assert {m.backend for m in net.modules() if isinstance(m, arlif.BaseNeuron)} == {"torch"}
    net(torch.randn(2, 3))
    reset_net(net)
    assert all(m.v == 0.0 for m in net.modules() if isinstance(m, arlif.BaseNeuron))


# ---- error paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_multi_step_needs_time_and_batch_axes(name):
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        NEURONS[name]()(torch.randn(5))


def test_single_step_needs_a_batch_axis():
    with pytest.raises(ValueError, match=r"\[B, \.\.\.\]"):
        ARLIF(step_mode="s")(torch.tensor(1.0))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8])
def test_non_floating_input_is_a_type_error(dtype):
    with pytest.raises(TypeError, match="floating-point"):
        ARLIF()(torch.ones(2, 3, dtype=dtype))


def _non_dense_inputs():
    x = torch.randn(3, 2, 4)
    with warnings.catch_warnings():  # torch warns that CSR is beta and quantized tensors deprecated
        warnings.simplefilter("ignore")
        csr = x.flatten(1).to_sparse_csr()
        quantized = torch.quantize_per_tensor(x, 0.1, 0, torch.qint8)
    return {
        "sparse_coo": (x.to_sparse(), r"a sparse tensor \(layout torch.sparse_coo\); convert it with x.to_dense\(\)"),
        "sparse_csr": (csr, r"a sparse tensor \(layout torch.sparse_csr\); convert it with x.to_dense\(\)"),
        "mkldnn": (x.to_mkldnn(), r"an MKLDNN tensor .*; convert it with x.to_dense\(\)"),
        "quantized": (quantized, r"a quantized tensor \(torch.qint8\); convert it with x.dequantize\(\)"),
    }


@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("step_mode", ["m", "s"])
@pytest.mark.parametrize("backend", ["auto", "torch", "cpu", "triton"])
def test_sparse_mkldnn_and_quantized_inputs_are_refused_before_dispatch(monkeypatch, name, step_mode, backend):
    import arlif.neurons.base as base

    def dispatched(*args, **kwargs):
        raise AssertionError("the input reached a backend")

    # the check must come before the backend is chosen (multi-step) or the state is made (single step)
    monkeypatch.setattr(base.backends, "resolve_backend", dispatched)
    monkeypatch.setattr(base.BaseNeuron, "_initial_states", dispatched)
    for x, words in _non_dense_inputs().values():
        with pytest.raises(TypeError, match=f"expects a dense tensor \\(layout torch.strided\\), got {words}"):
            NEURONS[name](step_mode=step_mode, backend=backend)(x)
    monkeypatch.undo()
    x = torch.randn(3, 2, 4).to_sparse()
    NEURONS[name](step_mode=step_mode, backend="torch")(x.to_dense())  # the fix the message names works


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match="torch.Tensor"):
        LIF()([[1.0, 2.0]])


def test_unknown_surrogate_backend_and_step_mode():
    with pytest.raises(ValueError, match="unknown surrogate 'box'"):
        ARLIF(surrogate="box")
    with pytest.raises(TypeError, match="surrogate must be"):
        ARLIF(surrogate=3)
    with pytest.raises(ValueError, match="width must be a positive"):
        Rectangle(0.0)
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        ARLIF(backend="cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        set_backend(torch.nn.Sequential(ARLIF()), "fast")
    with pytest.raises(ValueError, match="step_mode must be"):
        LIF(step_mode="multi")
    with pytest.raises(ValueError, match="reset must be 'soft' or 'hard'"):
        LIF(reset="zero")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda v: ARLIF(decay=v), r"ARLIF: decay must be in \[0, 1\]"),
        (lambda v: LIF(decay=v, reset="hard"), r"LIF: decay must be in \[0, 1\]"),
        (lambda v: ARLIF(v_threshold=v), r"ARLIF: v_threshold must be a finite number > 0"),
        (lambda v: PLIF(v_threshold=v), r"PLIF: v_threshold must be a finite number > 0"),
        (lambda v: CLIF(tau=v), r"CLIF: tau must be a finite number >= 1 \(the leak 1 - 1/tau in \[0, 1\)\)"),
    ],
)
@pytest.mark.parametrize("value", [-0.5, 0.0, 1.5, float("nan"), float("inf"), -float("inf")])
def test_out_of_range_neuron_constants_are_refused_when_made(make, words, value):
    allowed = {  # the values each option takes: the range ends are allowed on purpose
        "decay": (0.0,),
        "v_threshold": (1.5,),
        "tau": (1.5,),
    }[words.split(": ")[1].split()[0]]
    if value in allowed:
        make(value)
        return
    with pytest.raises(ValueError, match=f"{words}.*, got {value}$"):
        make(value)


def test_range_ends_that_are_allowed_and_numbers_given_as_text():
    # decay 0 (memoryless) and 1 (no leak), tau 1 (leak 0) are meant to be allowed, and run
    for mod in (ARLIF(decay=0.0), ARLIF(decay=1), LIF(decay=1.0), CLIF(tau=1.0), ARLIF(v_threshold=1e-3)):
        assert mod(torch.randn(3, 2, 4)).shape == (3, 2, 4)
    for bad in ("0.5", True, None, [0.5]):
        with pytest.raises(TypeError, match=r"ARLIF: decay must be a number \(in \[0, 1\]"):
            ARLIF(decay=bad)
    for make, name in ((lambda v: PLIF(init_w=v), "init_w"), (lambda v: ARLIF(init_a=v), "init_a"),
                       (lambda v: ARLIF(init_c=v), "init_c")):  # fmt: skip
        make(-30.0)  # any finite value is a valid start
        with pytest.raises(ValueError, match=f"{name} must be a finite number, got nan"):
            make(float("nan"))
    for width in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="width must be a positive finite number"):
            get_surrogate("triangle", width)


def test_presets_pass_bad_options_to_the_same_checks():
    from arlif.neurons.factory import NEURON_PRESETS, neuron_factory

    for name in NEURON_PRESETS:
        neuron_factory(name)()  # every preset itself is valid
    with pytest.raises(ValueError, match=r"ARLIF: decay must be in \[0, 1\]"):
        neuron_factory("arlif_dvs_ref", decay=1.2)()
    with pytest.raises(ValueError, match="CLIF: tau must be a finite number >= 1"):
        neuron_factory("clif", tau=-2)()
    with pytest.raises(ValueError, match="LIF: v_threshold must be a finite number > 0"):
        neuron_factory("lif_hard", v_threshold=0)()


def test_unavailable_backend_is_a_clear_error_not_a_fallback(monkeypatch):
    from arlif.ops import backends

    monkeypatch.setattr(backends, "_FUSED", {})
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    for name in ("cpu", "triton"):
        with pytest.raises(BackendUnavailableError, match=f"backend '{name}' is unavailable"):
            ARLIF(backend=name)(torch.randn(2, 3))


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_state_shape_change_without_reset_says_call_reset(step_mode):
    mod = ARLIF(step_mode=step_mode)
    shape = (4, 3) if step_mode == "s" else (2, 4, 3)
    mod(torch.randn(shape))
    with pytest.raises(ValueError, match=r"call reset\(\)"):
        mod(torch.randn(shape[:-1] + (5,)))
    mod.reset()
    mod(torch.randn(shape[:-1] + (5,)))


def test_custom_surrogates_are_refused_with_a_reason():
    from arlif.surrogate import Surrogate

    class Gauss(Surrogate):
        kind = "gauss"

    class Wide(Rectangle):
        def derivative(self, u):
            return torch.full_like(u, 123.0)

    with pytest.raises(ValueError, match="kind 'gauss' is not one of .*get_surrogate"):
        Gauss(1.0)
    with pytest.raises(TypeError, match="defines derivative"):
        Wide()


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_zero_time_steps_is_a_clear_error(backend):
    with pytest.raises(ValueError, match="T = 0 time steps"):
        ARLIF(backend=backend)(torch.randn(0, 2, 3))


@pytest.mark.parametrize("backend", ["torch", CPU_KERNELS])
def test_deepcopy_and_pickle_after_a_forward_keep_the_state_detached(backend):
    import copy
    import pickle

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), ARLIF(backend=backend, store_state=True))
    net(torch.randn(5, 2, 3)).sum().backward()  # state is now part of a graph
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert torch.equal(twin[1].v, net[1].v) and not twin[1].v.requires_grad
        assert torch.equal(twin[1].v_seq, net[1].v_seq)
        reset_net(twin)
        assert twin(torch.randn(5, 2, 3)).shape == (5, 2, 4)
    assert net[1].v.requires_grad  # the original is untouched
    compiled = ARLIF(backend=backend)
    compiled.compile(backend="eager")
    assert isinstance(pickle.loads(pickle.dumps(compiled)), ARLIF)  # nn.Module's own pickling rules still apply


@pytest.mark.parametrize("backend", ["torch", CPU_KERNELS])
def test_return_state_gives_the_sequences_with_gradients(backend):
    """return_state=True: forward returns (spikes, NeuronState(v, m)); the same sequences as store_state,
    the single-step states step by step, and a loss on them reaches x and the parameters."""
    from arlif import NeuronState

    torch.manual_seed(3)
    x = torch.randn(6, 4, 5, dtype=torch.float64) + 0.5
    probe = ARLIF(init_a=0.3, init_c=-0.5, backend="torch", store_state=True)
    spikes_ref = probe(x)
    mod = ARLIF(init_a=0.3, init_c=-0.5, backend=backend, return_state=True)
    xx = x.clone().requires_grad_()
    spikes, st = mod(xx)
    assert isinstance(st, NeuronState) and torch.equal(spikes, spikes_ref)
    torch.testing.assert_close(st.v, probe.v_seq)
    torch.testing.assert_close(st.m, probe.m_seq)
    (st.v.sum() + st.m.pow(2).sum()).backward()
    ref = ARLIF(init_a=0.3, init_c=-0.5, backend="torch", store_state=True)
    xr = x.clone().requires_grad_()
    ref(xr)
    (ref.v_seq.sum() + ref.m_seq.pow(2).sum()).backward()
    torch.testing.assert_close(xx.grad, xr.grad)
    torch.testing.assert_close(mod.a.grad, ref.a.grad)
    torch.testing.assert_close(mod.c.grad, ref.c.grad)
    single = ARLIF(init_a=0.3, init_c=-0.5, step_mode="s", return_state=True)
    for t in range(x.shape[0]):
        s_t, st_t = single(x[t])
        assert torch.equal(s_t, spikes[t])
        torch.testing.assert_close(st_t.v, st.v[t].detach())
        torch.testing.assert_close(st_t.m, st.m[t].detach())
    _, lif_state = LIF(backend=backend, return_state=True)(x)
    assert lif_state.m is None and lif_state.v.shape == x.shape


@pytest.mark.parametrize("backend", ["torch", CPU_KERNELS])
def test_detach_cuts_the_graph_between_chunks_and_keeps_the_state(backend):
    """Truncated BPTT: after detach_net, the second chunk's gradient is the one of a neuron that starts
    from the same state values with no history."""
    from arlif import detach_net

    torch.manual_seed(1)
    x1, x2 = torch.randn(4, 3, 5) + 0.5, torch.randn(4, 3, 5) + 0.5
    net = torch.nn.Sequential(ARLIF(init_a=0.2, init_c=-0.4, backend=backend))
    net(x1)
    v, m = net[0].v.clone(), net[0].m.clone()
    detach_net(net)
    assert not net[0].v.requires_grad and torch.equal(net[0].v, v) and torch.equal(net[0].m, m)
    xx = x2.clone().requires_grad_()
    net(xx).sum().backward()
    fresh = ARLIF(init_a=0.2, init_c=-0.4, backend=backend)
    fresh.v, fresh.m = v.detach(), m.detach()
    xf = x2.clone().requires_grad_()
    fresh(xf).sum().backward()
    torch.testing.assert_close(xx.grad, xf.grad)
    torch.testing.assert_close(net[0].a.grad, fresh.a.grad)
    torch.testing.assert_close(net[0].c.grad, fresh.c.grad)
    net[0].reset()
    net[0].detach()  # at rest: nothing to detach, no error


def test_firing_rate_monitor_reads_neurons_that_return_their_state():
    from arlif.analysis import FiringRateMonitor

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sn = ARLIF(return_state=True)

        def forward(self, x):
            spikes, state = self.sn(x)
            return spikes + 0 * state.v

    net = Net()
    x = torch.rand(4, 3, 16) * 3
    with FiringRateMonitor(net) as mon:
        out = net(x)
    assert mon.overall_rate() == pytest.approx(out.mean().item())
