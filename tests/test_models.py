"""Every registered model: shapes, neuron plumbing, step modes, shared dropout."""

import pytest
import torch

from arlif import ARLIF, LIF, BaseNeuron, reset_net, set_step_mode
from arlif.models import SharedDropout, create_model, model_names

SMALL = {  # size: the sample's size after the channels (input_size)
    "spiking_resnet18": dict(in_channels=3, size=(32, 32), kw=dict(width=4)),
    "spiking_vgg11_bn": dict(in_channels=2, size=(32, 32), kw=dict(width_mult=1 / 16, dropout=0.4)),
    "spiking_vgg13_bn": dict(in_channels=3, size=(32, 32), kw=dict(width_mult=1 / 16)),
    "vggsnn": dict(in_channels=2, size=(48, 48), kw=dict(width_mult=1 / 16)),
    "small_cnn": dict(in_channels=1, size=(8, 8), kw=dict(channels=(4, 8), hidden=16)),
    "spiking_cnn1d": dict(in_channels=1, size=(40,), kw=dict(channels=(4, 8, 8), dropout=0.2)),
    "spiking_rnn": dict(in_channels=1, size=(), kw=dict(hidden=(8, 8), readout="steps")),
}


def test_every_registered_model_is_covered():
    assert sorted(SMALL) == model_names()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_shape_and_backward(name):
    spec = SMALL[name]
    model = create_model(name, 7, spec["in_channels"], input_size=spec["size"], **spec["kw"])
    x = torch.randn(2, 3, spec["in_channels"], *spec["size"])
    out = model(x)
    assert out.shape == (2, 3, 7)
    out.mean().backward()
    neurons = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    assert neurons and all(isinstance(m, ARLIF) for m in neurons)
    assert any(m.a.grad is not None for m in neurons)


def test_resnet18_has_17_neuron_layers_and_preactivation_head():
    model = create_model("spiking_resnet18", 10, 3, width=4)
    assert sum(isinstance(m, BaseNeuron) for m in model.modules()) == 17


@pytest.mark.parametrize("neuron", ["lif_hard", "plif", "clif", "arlif_no_adaptive_reset", "arlif_dvs_ref"])
def test_neuron_factory_plugs_into_models(neuron):
    model = create_model("small_cnn", 10, 1, neuron=neuron, channels=(4, 8), hidden=16)
    layers = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    assert len(layers) == 3
    if neuron == "lif_hard":
        assert all(isinstance(m, LIF) and m.reset_mode == "hard" for m in layers)
    if neuron == "arlif_dvs_ref":
        assert all(not m.carry_memory and m.decay == 0.2 and m.surrogate.kind == "triangle" for m in layers)
    model(torch.randn(2, 2, 1, 8, 8)).sum().backward()


def test_callable_neuron_and_kwargs():
    model = create_model(
        "small_cnn",
        10,
        1,
        neuron=lambda **kw: LIF(decay=0.25, **kw),
        neuron_kwargs={"v_threshold": 0.5},
        channels=(4, 8),
        hidden=16,
    )
    layers = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    assert all(m.decay == 0.25 and m.v_threshold == 0.5 for m in layers)


def test_unknown_model_neuron_and_option_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        create_model("resnet50", 10, 3)
    with pytest.raises(ValueError, match="unknown neuron 'izhikevich'"):
        create_model("small_cnn", 10, 1, neuron="izhikevich")
    with pytest.raises(ValueError, match="does not take these options"):
        create_model("small_cnn", 10, 1, depth=3)
    with pytest.raises(ValueError, match="divisible by 16"):
        create_model("vggsnn", 10, 2, input_size=(40, 40))
    with pytest.warns(UserWarning, match="does not take"):
        create_model("small_cnn", 10, 1, neuron="plif", neuron_kwargs={"decay": 0.3})


def test_model_single_step_equals_multi_step():
    torch.manual_seed(0)
    model = create_model("small_cnn", 10, 1, channels=(4, 8), hidden=16).eval()
    x = torch.randn(4, 3, 1, 8, 8)
    out_m = model(x)
    reset_net(model)
    set_step_mode(model, "s")
    out_s = torch.stack([model(x[t]) for t in range(4)])
    torch.testing.assert_close(out_m, out_s, rtol=1e-5, atol=1e-5)


def test_shared_dropout_uses_one_mask_over_time():
    torch.manual_seed(0)
    drop = SharedDropout(0.5)
    y = drop(torch.ones(5, 3, 40))
    assert torch.equal(y[0], y[4]) and set(y.unique().tolist()) == {0.0, 2.0}
    drop.step_mode = "s"
    first = drop(torch.ones(3, 40))
    assert torch.equal(first, drop(torch.ones(3, 40)))
    drop.reset()
    assert drop.mask is None
    drop.eval()
    assert torch.equal(drop(torch.ones(3, 40)), torch.ones(3, 40))


_USER_MODELS = '''
from torch import nn

from arlif.models import SeqToANN


class Net(nn.Module):
    def __init__(self, num_classes, in_channels, neuron, input_size, hidden):
        super().__init__()
        h, w = input_size
        self.fc1 = SeqToANN(nn.Flatten(1), nn.Linear(in_channels * h * w, hidden))
        self.sn = neuron()
        self.fc2 = SeqToANN(nn.Linear(hidden, num_classes))

    def forward(self, x):  # [T, B, C, H, W] -> [T, B, classes]
        return self.fc2(self.sn(self.fc1(x)))


def build(num_classes, in_channels, neuron, input_size, hidden=16):
    return Net(num_classes, in_channels, neuron, input_size, hidden)


def not_a_model(**kw):
    return 3
'''


def test_a_model_of_your_own_by_module_path_trains_and_evaluates_from_the_cli(tmp_path, monkeypatch, capsys):
    import json

    from arlif.cli import main as cli

    (tmp_path / "my_models.py").write_text(_USER_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = create_model("my_models:build", num_classes=4, in_channels=1, input_size=(8, 8), neuron="lif_hard",
                         hidden=5)  # fmt: skip
    assert model.fc1[1].out_features == 5 and model(torch.rand(2, 3, 1, 8, 8)).shape == (2, 3, 4)
    run = tmp_path / "run"
    args = ["train", "--model", "my_models:build", "--model-kwargs", "{hidden: 12}", "--epochs", "1",
            "--max-steps-per-epoch", "3", "--out", str(run), "--tensorboard", "false"]  # fmt: skip
    assert cli(args) == 0
    assert cli(["eval", str(run / "best.pt")]) == 0
    assert "top-1 accuracy" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["final_acc"] >= 0
    for spec, msg in [("my_models:nothing", "has no class or function 'nothing'"),
                      ("not_there_mod:build", "cannot import 'not_there_mod'"),
                      ("my_models:not_a_model", "returned int, not a torch.nn.Module")]:  # fmt: skip
        capsys.readouterr()
        assert cli(["train", "--model", spec, "--epochs", "1", "--out", str(tmp_path / "bad")]) == 2
        assert msg in capsys.readouterr().err, spec
        assert not (tmp_path / "bad").exists()  # refused before the run folder is made
