"""Firing-rate monitor, SOP/energy counting, plots and the ablation command."""

import json

import pytest
import torch
from torch import nn

from arlif import ARLIF, CLIF, LIF, PLIF, reset_net, set_step_mode
from arlif.analysis import FiringRateMonitor, energy_report, neuron_update_ops
from arlif.cli import main as cli
from arlif.models import SeqToANN


def _lif_net():
    # threshold 1, decay 0.5, soft reset; two layers so that rates are per layer
    return nn.Sequential(LIF(), LIF(v_threshold=0.5))


def test_firing_rates_of_a_hand_built_input():
    # neuron 0 gets 1.0 every step: H = 1, 1.0, 1.0, 1.0 -> fires every step (soft reset to 0)
    # neuron 1 gets 0.6: H = 0.6, 0.9, 1.05 (spike, V=0.05), 0.625 -> one spike, at t=3
    # neuron 2, 3 get 0: silent
    x = torch.tensor([[1.0, 0.6, 0.0, 0.0]]).repeat(4, 1).unsqueeze(1)  # [T=4, B=1, 4]
    net = nn.Sequential(LIF())
    with FiringRateMonitor(net) as mon:
        out = net(x)
    assert out[:, 0, 1].tolist() == [0, 0, 1, 0]
    assert mon.layer_rates() == {"0": pytest.approx(5 / 16)}
    assert mon.step_rates()["0"] == pytest.approx([1 / 4, 1 / 4, 2 / 4, 1 / 4])
    assert mon.overall_rate() == pytest.approx(5 / 16)


def test_monitor_counts_single_step_mode_per_step_and_detaches():
    x = torch.tensor([[1.0, 0.6, 0.0, 0.0]]).repeat(4, 1).unsqueeze(1)
    net = _lif_net()
    set_step_mode(net, "s")
    with FiringRateMonitor(net) as mon:
        for _ in range(2):  # two samples: the step index restarts after reset
            for t in range(4):
                net(x[t])
            reset_net(net)
    assert mon.step_rates()["0"] == pytest.approx([1 / 4, 1 / 4, 2 / 4, 1 / 4])
    assert len(mon.step_rates()["1"]) == 4
    # hooks are gone after the block
    assert not net[0]._forward_hooks and not net[0]._forward_pre_hooks


def test_monitor_leaves_outputs_and_gradients_unchanged():
    torch.manual_seed(0)
    net = nn.Sequential(SeqToANN(nn.Linear(6, 8)), ARLIF(init_a=0.3), SeqToANN(nn.Linear(8, 3)), CLIF())
    x = torch.randn(5, 2, 6)
    ref = net(x)
    ref.sum().backward()
    g_ref = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    net.zero_grad()
    reset_net(net)
    with FiringRateMonitor(net) as mon:
        out = net(x)
        out.sum().backward()
    assert torch.equal(ref, out)
    for a, b in zip(g_ref, [p.grad for p in net.parameters() if p.grad is not None]):
        assert torch.equal(a, b)
    assert set(mon.layer_rates()) == {"1", "3"}


def test_sops_macs_and_energy_of_a_tiny_network_by_hand():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    fc = nn.Linear(2 * 4 * 4, 5, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)  # every output = sum of 3x3 input window
    net = nn.Sequential(SeqToANN(conv), LIF(v_threshold=0.5), SeqToANN(nn.Flatten(1)), SeqToANN(fc))
    T, B = 3, 2
    x = torch.zeros(T, B, 1, 4, 4)
    x[:, 0, 0, 1:3, 1:3] = 1.0  # sample 0: a 2x2 blob; sample 1: nothing
    report = energy_report(net, x, e_mac_pj=4.6, e_ac_pj=0.9)
    conv_macs = 2 * 4 * 4 * 9 * T  # out_ch * H * W * k*k * in_ch, per step, summed over T
    fc_macs = 32 * 5 * T
    first, second = report.layers
    assert (first.name, first.input, first.macs) == ("0.0", "real", conv_macs)
    assert second.input == "spikes" and second.macs == fc_macs
    # spikes of the LIF layer: every output position whose window overlaps the blob has value >= 1 >= 0.5
    # at t=1, so it fires; the monitor's rate must equal the fc layer's input rate
    spikes = net[1]  # recompute by hand
    reset_net(net)
    with torch.no_grad():
        s = spikes(SeqToANN(conv)(x))
    rate = float(s.mean())
    assert second.input_rate == pytest.approx(rate)
    assert second.sops == pytest.approx(rate * fc_macs)
    expected_energy = 4.6 * conv_macs + 0.9 * rate * fc_macs
    assert report.totals["energy_pj"] == pytest.approx(expected_energy)
    assert report.totals["macs"] == conv_macs and report.totals["dense_macs"] == conv_macs + fc_macs
    assert report.totals["sops"] == pytest.approx(rate * fc_macs)
    (neurons,) = report.neuron_layers
    assert neurons.neurons == 32 and neurons.firing_rate == pytest.approx(rate)
    assert neurons.update_ops == 6 * 32 * T
    assert "energy" in report.table() and json.dumps(report.to_dict())


def test_neuron_update_ops_follow_the_update_rules():
    assert neuron_update_ops(LIF()) == {"arith": 6, "transcendental": 0}
    assert neuron_update_ops(LIF(reset="hard")) == {"arith": 6, "transcendental": 0}
    assert neuron_update_ops(PLIF()) == {"arith": 6, "transcendental": 0}
    assert neuron_update_ops(CLIF()) == {"arith": 10, "transcendental": 2}
    assert neuron_update_ops(ARLIF()) == {"arith": 20, "transcendental": 4}
    assert neuron_update_ops(ARLIF(threshold_adjust=False)) == {"arith": 18, "transcendental": 3}
    assert neuron_update_ops(ARLIF(adaptive_reset=False)) == {"arith": 8, "transcendental": 1}
    assert neuron_update_ops(ARLIF(carry_memory=False)) == {"arith": 12, "transcendental": 3}
    # both switches off is a soft LIF, and costs the same
    assert neuron_update_ops(ARLIF(threshold_adjust=False, adaptive_reset=False)) == neuron_update_ops(LIF())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    args = ["train", "--epochs", "2", "--max-steps-per-epoch", "5", "--out", str(out), "--tensorboard", "false"]
    assert cli(args) == 0
    return out


@pytest.mark.parametrize("kind", ["curves", "params", "rates", "dynamics", "raster"])
def test_plot_commands_write_pngs(demo_run, tmp_path, kind):
    src = demo_run if kind in ("curves", "params") else demo_run / "best.pt"
    out = tmp_path / f"{kind}.png"
    assert cli(["plot", kind, str(src), "--out", str(out), "--samples", "20"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_dynamics_errors_are_clear(demo_run, capsys):
    assert cli(["plot", "dynamics", str(demo_run / "best.pt"), "--layer", "fc"]) == 2
    assert "not a neuron layer" in capsys.readouterr().err
    assert cli(["plot", "dynamics", str(demo_run / "best.pt"), "--neurons", "0,99999"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert cli(["plot", "curves", str(demo_run / "nowhere")]) == 2


@pytest.mark.parametrize("kind", ["curves", "params"])
def test_plot_of_a_run_given_a_file_asks_for_the_run_folder(demo_run, tmp_path, capsys, kind):
    assert cli(["plot", kind, str(demo_run / "best.pt")]) == 2
    err = capsys.readouterr().err
    assert "best.pt is a file, not a run folder" in err and f"pass the folder ({demo_run}) instead" in err
    assert "utf-8" not in err and "Traceback" not in err
    (tmp_path / "notes.txt").write_text("hello\n")
    assert cli(["plot", kind, str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt is a file, not a run folder" in capsys.readouterr().err
    assert cli(["plot", kind, str(tmp_path)]) == 2  # a folder that is not a run folder
    assert f"{tmp_path} is not a run folder written by 'arlif train'" in capsys.readouterr().err
    # a metrics.jsonl that is binary, or holds other JSON, is named too
    (tmp_path / "metrics.jsonl").write_bytes(b"\x80\x02 binary")
    assert cli(["plot", kind, str(tmp_path)]) == 2
    assert "metrics.jsonl could not be read as text" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n')
    assert cli(["plot", kind, str(tmp_path / "metrics.jsonl")]) == 2
    assert "line 1: not an epoch record of 'arlif train' (no train_loss" in capsys.readouterr().err


def test_energy_command_prints_table_and_writes_json(demo_run, tmp_path, capsys):
    out = tmp_path / "energy.json"
    assert cli(["energy", str(demo_run / "best.pt"), "--samples", "32", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SOPs" in printed and "features.2.0" in printed
    rep = json.loads(out.read_text())
    assert rep["samples"] == 32 and rep["layers"][0]["input"] == "real"
    assert all(layer["input"] == "spikes" for layer in rep["layers"][1:])
    assert rep["totals"]["energy_pj"] > 0


def test_ablate_fast_mode(tmp_path, capsys):
    md = tmp_path / "ABLATION.md"
    args = ["ablate", "--seeds", "1", "--epochs", "1", "--max-steps-per-epoch", "2", "--out", str(tmp_path / "abl"),
            "--markdown", str(md)]
    assert cli(args) == 0
    table = md.read_text()
    for label in ("AR-LIF (`arlif`)", "w/o threshold adjustment", "w/o adaptive reset", "LIF, soft reset",
                  "LIF, hard reset", "PLIF", "CLIF"):
        assert label in table
    rows = json.loads((tmp_path / "abl" / "ablation.json").read_text())["runs"]
    assert len(rows) == 7 and all(0 <= r["firing_rate"] <= 1 for r in rows)
    # a second call reuses the finished runs
    assert cli(args) == 0
    # ... but not under other settings: a table headed "2 epochs" must not show 1-epoch runs
    capsys.readouterr()
    assert cli([*args[:4], "2", *args[5:]]) == 2
    err = capsys.readouterr().err
    assert "other settings (epochs: 1 there, 2 asked)" in err and "Use another --out" in err
    assert cli(["ablate", "--variants", "izhikevich", "--out", str(tmp_path / "x")]) == 2
