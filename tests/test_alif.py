"""ALIF, the adaptive-threshold LIF: its dynamics against a loop written out here, its states, and the proof
that a neuron added in its own file works everywhere (train, energy, plots, bench, ablate, selftest)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from arlif.cli import main as cli
from arlif.models import create_model
from arlif.neurons import ALIF, LIF, neuron_factory
from arlif.neurons.alif import ALIFState
from arlif.ops.backends import BackendUnavailableError
from arlif.surrogate import get_surrogate


def _by_hand(x, decay, vth, rho, beta, surrogate):
    """The five update equations, one after the other, from V_0 = b_0 = 0."""
    v = torch.zeros_like(x[0])
    b = torch.zeros_like(x[0])
    s_seq, v_seq, b_seq, th_seq = [], [], [], []
    for t in range(x.shape[0]):
        h = decay * v + x[t]
        theta = vth + beta * b
        s = surrogate(h - theta)
        b = rho * b + (1 - rho) * s
        v = h - s * theta
        s_seq.append(s), v_seq.append(v), b_seq.append(b), th_seq.append(theta)
    return [torch.stack(q) for q in (s_seq, v_seq, b_seq, th_seq)]


@pytest.mark.parametrize("kind", ["rectangle", "triangle", "sigmoid", "atan"])
def test_alif_follows_its_equations_forward_and_backward(kind):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(12, 3, 7, generator=g, dtype=torch.float64) + 0.6).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    sg = get_surrogate(kind, 1.3)
    mod = ALIF(decay=0.7, v_threshold=0.9, rho=0.8, beta=1.3, surrogate=sg, return_state=True).double()
    s, state = mod(x)
    s2, v2, b2, _ = _by_hand(x2, 0.7, 0.9, 0.8, 1.3, sg)
    assert isinstance(state, ALIFState) and state._fields == ("v", "b")
    torch.testing.assert_close(s, s2, rtol=0, atol=0)
    torch.testing.assert_close(state.v, v2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state.b, b2, rtol=1e-12, atol=1e-12)
    assert 0 < s.mean() < 1  # the case fires and rests
    w = torch.rand_like(s)
    ((s * w).sum() + (state.v * w).sum() + (state.b * w.flip(0)).sum()).backward()
    ((s2 * w).sum() + (v2 * w).sum() + (b2 * w.flip(0)).sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-12)


def test_the_adaptation_is_in_the_graph():
    """Nothing is detached: with β > 0 the gradient of an early input also flows through b into later
    thresholds, so it differs from β = 0 (where ALIF is a soft-reset LIF) even on a loss of the last step."""
    x = torch.full((6, 1, 4), 0.8, dtype=torch.float64)
    grads = []
    for beta in (0.0, 1.5):
        xi = x.clone().requires_grad_()
        mod = ALIF(beta=beta, surrogate=get_surrogate("sigmoid", 2.0)).double()
        mod(xi)[-1].sum().backward()
        grads.append(xi.grad[0])
    assert not torch.allclose(grads[0], grads[1])


@settings(max_examples=30, deadline=None)
@given(decay=st.floats(0, 1), vth=st.floats(0.2, 2), rho=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_with_beta_zero_alif_is_a_soft_reset_lif_and_b_stays_in_unit_interval(decay, vth, rho, seed):
    x = torch.randn(10, 2, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.5
    s_a = ALIF(decay=decay, v_threshold=vth, rho=rho, beta=0.0, backend="torch").double()(x)
    s_l = LIF(decay=decay, v_threshold=vth, backend="torch").double()(x)
    torch.testing.assert_close(s_a, s_l, rtol=0, atol=0)
    _, state = ALIF(decay=decay, v_threshold=vth, rho=rho, beta=1.8, return_state=True).double()(x)
    assert state.b.min() >= 0 and state.b.max() <= 1  # a running average of spikes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_single_step_equals_multi_step_and_chunks_carry_the_state(dtype):
    x = (torch.randn(8, 3, 5, generator=torch.Generator().manual_seed(1)) + 0.5).to(dtype)
    multi = ALIF(store_state=True)
    s_m = multi(x)
    single = ALIF(step_mode="s", return_state=True)
    outs = [single(x[t]) for t in range(8)]
    torch.testing.assert_close(s_m, torch.stack([o[0] for o in outs]), rtol=0, atol=0)
    # the carried state in the compute dtype: float64 for float64 input, float32 otherwise
    assert s_m.dtype == dtype and multi.v.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    # sequences come back in the input dtype, the single-step state in the compute dtype
    torch.testing.assert_close(multi.b_seq, torch.stack([o[1].b for o in outs]).to(dtype), rtol=0, atol=0)
    chunked = ALIF()
    torch.testing.assert_close(torch.cat([chunked(x[:3]), chunked(x[3:])]), s_m, rtol=0, atol=0)
    chunked.reset()
    assert chunked.v == 0.0 and chunked.b == 0.0 and chunked.b_seq is None


def test_options_are_checked_and_auto_runs_the_reference_without_a_warning():
    for kw, msg in [({"rho": 1.5}, "rho must be in"), ({"beta": -1}, "beta must be"), ({"decay": 2}, "decay")]:
        with pytest.raises(ValueError, match=msg):
            ALIF(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto on a neuron without fused kernels is not a fallback to warn about
        ALIF()(torch.rand(3, 2, 4))
    with pytest.raises(BackendUnavailableError, match="no fused 'cpu' implementation"):
        ALIF(backend="cpu")(torch.rand(3, 2, 4))


def test_alif_in_models_by_name_and_its_threshold_for_the_dynamics_plot():
    model = create_model("spiking_rnn", num_classes=4, in_channels=1, neuron="alif", hidden=[8])
    assert any(isinstance(m, ALIF) for m in model.modules())
    mod = neuron_factory("alif", rho=0.5, beta=2.0)()
    x = torch.ones(4, 1, 1) * 1.2
    _, state = ALIF(rho=0.5, beta=2.0, return_state=True)(x)
    theta = mod.effective_threshold(x, state)
    s, _, _, th = _by_hand(x, 0.5, 1.0, 0.5, 2.0, get_surrogate("rectangle"))
    torch.testing.assert_close(theta, th)
    assert mod.update_ops() == {"arith": 11, "transcendental": 0}


def test_alif_works_in_train_energy_plots_bench_ablate_and_selftest(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--neuron", "alif", "--epochs", "1", "--max-steps-per-epoch", "3", "--out", str(run),
            "--tensorboard", "false"]  # fmt: skip
    assert cli(args) == 0
    assert json.loads((run / "summary.json").read_text())["final_acc"] >= 0
    assert cli(["energy", str(run / "best.pt"), "--samples", "16", "--json", str(tmp_path / "e.json")]) == 0
    layers = json.loads((tmp_path / "e.json").read_text())["neuron_layers"]
    assert layers and all(L["neuron"] == "ALIF" and L["ops_per_update"]["arith"] == 11 for L in layers)
    for kind in ("dynamics", "rates"):
        out = tmp_path / f"{kind}.png"
        assert cli(["plot", kind, str(run / "best.pt"), "--out", str(out), "--samples", "8"]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert cli(["plot", "params", str(run), "--out", str(tmp_path / "p.png")]) == 2  # ALIF learns no scalars
    assert "no learned scalars" in capsys.readouterr().err
    bench_json = tmp_path / "bench.json"
    assert cli(["bench", "--neurons", "alif", "--backends", "torch,cpu", "--shape", "4,8", "--T", "3",
                "--repeats", "1", "--warmup", "0", "--json", str(bench_json)]) == 0  # fmt: skip
    bench = json.loads(bench_json.read_text())
    assert [(r["neuron"], r["backend"]) for r in bench["results"]] == [("alif", "torch")]
    assert "no fused 'cpu' implementation" in bench["settings"]["skipped"][0]["reason"]
    md = tmp_path / "ablation.md"
    assert cli(["ablate", "--variants", "arlif,alif", "--seeds", "1", "--epochs", "1", "--max-steps-per-epoch", "2",
                "--out", str(tmp_path / "abl"), "--markdown", str(md)]) == 0  # fmt: skip
    text = md.read_text()
    assert "| ALIF (`alif`) | 1 |" in text and "AR-LIF − variant" in text
    assert cli(["selftest", "--neurons", "alif", "--quick"]) == 0
    assert "alif" in capsys.readouterr().out
