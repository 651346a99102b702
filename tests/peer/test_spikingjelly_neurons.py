"""Our LIF, PLIF and CLIF against SpikingJelly 2.x's LIFNode, ParametricLIFNode and ComplementaryLIFNode.

Parameter mapping (docs/spikingjelly.md explains it):

- ``LIF(decay=λ, reset="soft")`` = ``LIFNode(tau=1/(1-λ), decay_input=False, v_reset=None, detach_reset=False)``;
  ``reset="hard"`` is the same with ``v_reset=0.0``. SpikingJelly charges ``H = V - V/τ + X`` (no input
  decay), ours ``H = λV + x``: the same number for ``λ = 1 - 1/τ`` (λ = 0.5 ↔ τ = 2).
- ``PLIF(init_w=w0)`` = ``ParametricLIFNode(init_tau=1 + exp(-w0), decay_input=False, v_reset=None)``. Both
  learn one scalar named ``w`` with ``1/τ = σ(w)``; SpikingJelly initialises it as ``-log(init_tau - 1)``,
  so ``init_tau=2`` ↔ ``w = 0``, our default.
- ``CLIF(tau=τ)`` = ``ComplementaryLIFNode(tau=τ)`` (SpikingJelly wants a float τ > 1).
- Surrogates: ``Sigmoid(α)`` = ``Sigmoid(alpha=α)``, ``ATan(α)`` = ``ATan(alpha=α)``; ``Rectangle(α)`` =
  ``Rect(alpha=1/α)`` and ``Triangle(γ)`` = ``PiecewiseQuadratic(alpha=1/γ)``, whose width parameter is the
  reciprocal of ours. The one difference is the rectangle's edge: ours includes ``|u| = α/2``, theirs
  excludes it (tested below; the inputs of the dynamics tests stay away from it).

Every dynamics test runs float64, in multi-step mode, two chunks without a reset (the second starts from the
carried state), and compares spikes exactly and V after reset (and m for CLIF) at every step, the final
state, and the gradients of one loss over all of them w.r.t. the inputs of both chunks and PLIF's ``w``.
"""

from __future__ import annotations

import math
import zlib

import pytest
import torch
from sj_support import require_spikingjelly
from torch import nn

from arlif import CLIF, LIF, PLIF
from arlif.ops.backends import available_backends
from arlif.surrogate import ATan, Rectangle, Sigmoid, Triangle

require_spikingjelly()
sjn = pytest.importorskip("spikingjelly.activation_based.neuron")
sjs = pytest.importorskip("spikingjelly.activation_based.surrogate")
sjf = pytest.importorskip("spikingjelly.activation_based.functional")
sjl = pytest.importorskip("spikingjelly.activation_based.layer")

TOL = dict(rtol=1e-10, atol=1e-12)
FUSED_HERE = available_backends("lif", "cpu")
BACKENDS = ["torch", pytest.param("cpu", marks=pytest.mark.cpu_kernels)]  # cpu: skipped without a compiler

# name -> (ours, theirs); widths other than the defaults, so a wrong mapping of the width would show
SURROGATES = {
    "rectangle": (lambda: Rectangle(0.8), lambda: sjs.Rect(alpha=1.25)),
    "triangle": (lambda: Triangle(0.8), lambda: sjs.PiecewiseQuadratic(alpha=1.25)),
    "sigmoid": (lambda: Sigmoid(3.0), lambda: sjs.Sigmoid(alpha=3.0)),
    "atan": (lambda: ATan(1.5), lambda: sjs.ATan(alpha=1.5)),
}
RECT_HALF_WIDTH = 0.4  # of Rectangle(0.8): the inputs must keep |u| away from it


def _sj_lif(tau, v_reset, v_threshold=1.0):
    return lambda sg: sjn.LIFNode(
        tau=tau, decay_input=False, v_threshold=v_threshold, v_reset=v_reset, surrogate_function=sg,
        detach_reset=False, step_mode="m", store_v_seq=True,
    )  # fmt: skip


def _sj_plif(init_tau):
    return lambda sg: sjn.ParametricLIFNode(
        init_tau=init_tau, decay_input=False, v_reset=None, surrogate_function=sg, detach_reset=False,
        step_mode="m", store_v_seq=True,
    )  # fmt: skip


def _sj_clif(tau, v_threshold=1.0):
    return lambda sg: sjn.ComplementaryLIFNode(
        tau=tau, v_threshold=v_threshold, surrogate_function=sg, step_mode="m", store_state_seqs=True
    )


# name -> (our module, given surrogate= and backend=; SpikingJelly's node, given its surrogate)
CASES = {
    "lif_soft": (lambda **kw: LIF(**kw), _sj_lif(2.0, None)),
    "lif_soft_decay0.2_vth0.8": (lambda **kw: LIF(decay=0.2, v_threshold=0.8, **kw), _sj_lif(1.25, None, 0.8)),
    "lif_hard": (lambda **kw: LIF(reset="hard", **kw), _sj_lif(2.0, 0.0)),
    "lif_hard_decay0.75": (lambda **kw: LIF(reset="hard", decay=0.75, **kw), _sj_lif(4.0, 0.0)),
    "plif": (lambda **kw: PLIF(**kw), _sj_plif(2.0)),
    "plif_w0.3": (lambda **kw: PLIF(init_w=0.3, **kw), _sj_plif(1.0 + math.exp(-0.3))),
    "clif": (lambda **kw: CLIF(**kw), _sj_clif(2.0)),
    "clif_tau2.5_vth1.2": (lambda **kw: CLIF(tau=2.5, v_threshold=1.2, **kw), _sj_clif(2.5, 1.2)),
}


def _pair(case, surrogate, backend, **kw):
    ours_make, theirs_make = CASES[case]
    ours_sg, theirs_sg = SURROGATES[surrogate]
    ours = ours_make(surrogate=ours_sg(), backend=backend, **kw).double()
    theirs = theirs_make(theirs_sg()).double()
    if isinstance(ours, PLIF):
        # SpikingJelly derives w from init_tau (-log(init_tau - 1)); equal up to the last bit of the exp/log
        # round trip, so copy it to compare the dynamics exactly and check the mapping itself separately
        torch.testing.assert_close(theirs.w.detach(), ours.w.detach(), rtol=0, atol=1e-15)
        with torch.no_grad():
            theirs.w.copy_(ours.w)
    return ours, theirs


def _leak(mod) -> torch.Tensor | float:
    """The factor of V_{t-1} in our charge H_t = leak·V_{t-1} + x_t."""
    if isinstance(mod, PLIF):
        return 1 - torch.sigmoid(mod.w.detach())
    if isinstance(mod, CLIF):
        return 1 - 1 / mod.tau
    return mod.decay


def _inputs(case, surrogate, T=6, shape=(3, 4), chunks=2):
    g = torch.Generator().manual_seed(zlib.crc32(f"{case}/{surrogate}".encode()))
    return [torch.randn([T, *shape], generator=g, dtype=torch.float64) * 1.2 + 0.6 for _ in range(chunks)]


def _run(mod, chunks, *, ours: bool):
    """Both libraries over ``chunks`` without a reset in between. Returns (outputs, gradients): per chunk
    the spikes, V and m sequences and the final state; the gradients of one loss over all of them."""
    mod.reset()
    xs = [c.clone().requires_grad_() for c in chunks]
    outs, loss = [], 0.0
    for i, x in enumerate(xs):
        if ours:
            s, seq = mod(x)
            v_seq, m_seq = seq
        else:
            s = mod(x)
            v_seq, m_seq = mod.state_seqs if isinstance(mod, sjn.ComplementaryLIFNode) else (mod.v_seq, None)
        m_final = mod.m if m_seq is not None else None
        w = torch.linspace(0.5, 1.5, s.numel(), dtype=s.dtype).view_as(s)
        loss = loss + (s * w).sum() + 0.3 * (v_seq * w.flip(0)).sum()
        outs += [s, v_seq, mod.v]
        if m_seq is not None:
            loss = loss + 0.2 * (m_seq * w).sum()
            outs += [m_seq, m_final]
        if i == len(xs) - 1:
            loss = loss + (mod.v**2).sum() + (m_final.sum() if m_final is not None else 0.0)
    loss.backward()
    grads = [x.grad for x in xs] + [p.grad for p in mod.parameters()]
    return [o.detach() for o in outs], grads


def _assert_clear_of_kinks(ours, chunks, v_seqs, surrogate):
    """No H_t - V_th sits on the threshold (where a rounding difference could flip a spike) or, for the
    rectangle, on the edge of its box (where the two libraries' definitions differ)."""
    x = torch.cat(chunks)
    v = torch.cat(v_seqs)
    v_prev = torch.cat([torch.zeros_like(v[:1]), v[:-1]])
    u = _leak(ours) * v_prev + x - ours.v_threshold
    assert float(u.abs().min()) > 1e-6, "an input sits on the threshold: pick another seed"
    if surrogate == "rectangle":
        assert float((u.abs() - RECT_HALF_WIDTH).abs().min()) > 1e-6, "an input sits on the box edge"


def _assert_same(ours, theirs, chunks, surrogate):
    out_o, grad_o = _run(ours, chunks, ours=True)
    out_t, grad_t = _run(theirs, chunks, ours=False)
    per_chunk = len(out_o) // len(chunks)
    _assert_clear_of_kinks(ours, chunks, out_o[1::per_chunk], surrogate)
    assert len(out_o) == len(out_t) and len(grad_o) == len(grad_t)
    spikes = out_o[0::per_chunk]
    assert 0.1 < float(torch.cat(spikes).mean()) < 0.9, "inputs should make the neurons fire sometimes"
    for i, (a, b) in enumerate(zip(out_o, out_t)):
        if i % per_chunk == 0:
            assert torch.equal(a, b), f"spikes of chunk {i // per_chunk} differ"
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, i=i: f"output {i}: {m}")
    for i, (a, b) in enumerate(zip(grad_o, grad_t)):
        assert a is not None and b is not None, f"gradient {i} missing"
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, i=i: f"gradient {i}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_multi_step_matches_spikingjelly(case, surrogate, backend):
    ours, theirs = _pair(case, surrogate, backend, return_state=True)
    _assert_same(ours, theirs, _inputs(case, surrogate), surrogate)


@pytest.mark.skipif("triton" not in FUSED_HERE, reason="Triton is not importable here")
@pytest.mark.parametrize("case", ["lif_soft", "lif_hard", "plif_w0.3", "clif"])
def test_triton_backend_matches_spikingjelly(case):
    """One small case per neuron (on CPU tensors the Triton kernels run in Triton's slow interpreter)."""
    ours, theirs = _pair(case, "atan", "triton", return_state=True)
    _assert_same(ours, theirs, _inputs(case, "atan", T=3, shape=(5,)), "atan")


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_step_matches_spikingjelly(case):
    """Step by step (``step_mode="s"`` in both): spikes and V after every step, and the input gradients."""
    ours, theirs = _pair(case, "sigmoid", "torch", step_mode="s")
    theirs.step_mode = "s"
    x = _inputs(case, "sigmoid", chunks=1)[0]
    runs = []
    for mod in (ours, theirs):
        mod.reset()
        xx = x.clone().requires_grad_()
        spikes, vs = [], []
        for t in range(x.shape[0]):
            spikes.append(mod(xx[t]))
            vs.append(mod.v)
        s, v = torch.stack(spikes), torch.stack(vs)
        (s.sum() + 0.5 * (v * torch.linspace(-1, 1, v.numel(), dtype=v.dtype).view_as(v)).sum()).backward()
        runs.append((s.detach(), v.detach(), xx.grad, [p.grad for p in mod.parameters()]))
    (s_o, v_o, g_o, p_o), (s_t, v_t, g_t, p_t) = runs
    assert torch.equal(s_o, s_t)
    torch.testing.assert_close(v_o, v_t, **TOL)
    torch.testing.assert_close(g_o, g_t, **TOL)
    for a, b in zip(p_o, p_t, strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("tau", [2.0, 1.5, 4.0, 1.0 + math.exp(-0.3)])
def test_plif_w_is_spikingjellys_w(tau):
    """Same parameter, same name: SpikingJelly's init_tau=τ sets w = -log(τ - 1), i.e. σ(w) = 1/τ."""
    ours = PLIF(init_w=-math.log(tau - 1.0))
    theirs = sjn.ParametricLIFNode(init_tau=tau)
    assert ours.w.dtype == theirs.w.dtype and torch.equal(ours.w.detach(), theirs.w.detach())
    torch.testing.assert_close(1 / torch.sigmoid(theirs.w.double()), torch.tensor(tau, dtype=torch.float64))
    assert PLIF().w.item() == sjn.ParametricLIFNode().w.item() == 0.0  # the two defaults agree


# ours (default width, another width) -> theirs with the mapped width
SURROGATE_WIDTHS = [
    (Rectangle(), sjs.Rect(alpha=1.0)),
    (Rectangle(0.5), sjs.Rect(alpha=2.0)),
    (Triangle(), sjs.PiecewiseQuadratic(alpha=1.0)),
    (Triangle(2.0), sjs.PiecewiseQuadratic(alpha=0.5)),
    (Sigmoid(), sjs.Sigmoid(alpha=4.0)),
    (Sigmoid(1.5), sjs.Sigmoid(alpha=1.5)),
    (ATan(), sjs.ATan(alpha=2.0)),
    (ATan(3.0), sjs.ATan(alpha=3.0)),
]


def _spike_and_grad(fn, u):
    u = u.clone().requires_grad_()
    s = fn(u)
    s.sum().backward()
    return s.detach(), u.grad


@pytest.mark.parametrize("ours,theirs", SURROGATE_WIDTHS, ids=lambda s: repr(s))
def test_surrogates_match_off_the_rectangle_edge(ours, theirs):
    # a grid that avoids the box edges ±α/2 of both rectangles (±0.5, ±0.25)
    u = torch.linspace(-3.0, 3.0, 241, dtype=torch.float64) + 0.0123
    assert float(torch.minimum((u.abs() - 0.5).abs(), (u.abs() - 0.25).abs()).min()) > 1e-3
    s_o, g_o = _spike_and_grad(ours, u)
    s_t, g_t = _spike_and_grad(theirs, u)
    assert torch.equal(s_o, s_t)
    assert float(g_o.abs().max()) > 0
    torch.testing.assert_close(g_o, g_t, rtol=1e-12, atol=1e-14)


def test_rectangle_edge_is_inside_ours_outside_spikingjellys():
    """Documented difference: at |u| = α/2 exactly our rectangle (1/α for |u| <= α/2, see
    docs/neurons.md#surrogate-gradients) passes the gradient and SpikingJelly's Rect (alpha for |u| < 0.5/alpha)
    does not. Everywhere else they agree."""
    u = torch.tensor([-0.5, -0.4999, 0.0, 0.4999, 0.5, 0.5001], dtype=torch.float64)
    _, g_o = _spike_and_grad(Rectangle(1.0), u)
    _, g_t = _spike_and_grad(sjs.Rect(alpha=1.0), u)
    assert g_o.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    assert g_t.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_clif_tau_range():
    """Documented difference: SpikingJelly's CLIF asserts a float τ > 1; ours takes any τ > 0 (with τ = 1 the
    leak 1 - 1/τ is 0, so H = x: no memory of earlier steps)."""
    for bad in (1.0, 0.5, 2):
        with pytest.raises(AssertionError):
            sjn.ComplementaryLIFNode(tau=bad)
    x = torch.full((3, 1), 0.25, dtype=torch.float64)
    ours = CLIF(tau=1.0, backend="torch", store_state=True).double()
    assert torch.equal(ours(x), torch.zeros_like(x))
    torch.testing.assert_close(ours.v_seq, x)


def _net(neurons):
    torch.manual_seed(0)
    net = nn.Sequential(
        sjl.Linear(6, 8, step_mode="m"), neurons[0], sjl.Linear(8, 8, step_mode="m"), neurons[1],
        sjl.Linear(8, 4, step_mode="m"), neurons[2],
    ).double()  # fmt: skip
    with torch.no_grad():  # weights and biases large enough for every layer to fire
        for name, p in net.named_parameters():
            p.mul_(4.0) if name.endswith("weight") else p.fill_(0.8)
    return net


def test_spikingjelly_network_helpers_reach_our_neurons():
    """Our neurons inside a SpikingJelly network: its ``functional.set_step_mode``, ``reset_net`` and
    ``detach_net`` reach them (they call ``step_mode =``, ``reset()`` and ``detach()``), and the network
    computes what the same network of SpikingJelly's neurons computes, gradients of the weights included."""
    ours = _net([LIF(surrogate=ATan(), backend="torch"), PLIF(surrogate=ATan()), CLIF(surrogate=ATan())])
    theirs = _net([_sj_lif(2.0, None)(sjs.ATan()), _sj_plif(2.0)(sjs.ATan()), _sj_clif(2.0)(sjs.ATan())])
    x = torch.randn(5, 3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    runs = []
    for net in (ours, theirs):
        sjf.set_step_mode(net, "m")
        out = net(x)
        out2 = net(x)  # carried state: the second call differs from the first
        ((out + 2 * out2) * torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        runs.append((out.detach(), out2.detach(), [p.grad for p in net.parameters()]))
    (o1, o2, g_o), (t1, t2, g_t) = runs
    assert torch.equal(o1, t1) and torch.equal(o2, t2) and not torch.equal(o1, o2)
    assert float(o1.mean()) > 0.05
    assert len(g_o) == len(g_t)
    for a, b in zip(g_o, g_t):
        torch.testing.assert_close(a, b, **TOL)

    neurons = [m for m in ours if isinstance(m, (LIF, PLIF, CLIF))]
    assert all(isinstance(n.v, torch.Tensor) and n.v.grad_fn is not None for n in neurons)
    values = [n.v.clone() for n in neurons]
    sjf.detach_net(ours)
    for n, v in zip(neurons, values):
        assert n.v.grad_fn is None and torch.equal(n.v, v)
    sjf.reset_net(ours)
    assert all(n.v == 0.0 for n in neurons) and neurons[2].m == 0.0
    sjf.set_step_mode(ours, "s")
    assert all(n.step_mode == "s" for n in neurons)
    assert torch.equal(ours(x[0]), o1[0])  # after reset, step 0 in single-step mode is step 0 again
