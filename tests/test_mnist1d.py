"""MNIST-1D: the generated datasets (offline, cached), the 1-D spiking models with every neuron, short runs."""

import random
import socket
import sys
import warnings

import numpy as np
import pytest
import torch

from arlif.data import build_datasets, get_dataset_info, mnist_1d
from arlif.errors import DataError
from arlif.models import create_model
from arlif.neurons import neuron_names, reset_net

SMALL = {"num_samples": 200}  # 160 train / 40 test signals: generated in a fraction of a second


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test gets its own default cache folder (never the user's ~/.cache). Not through ARLIF_CACHE_DIR:
    that would also move the CPU kernels' cache, and every test would compile them again."""
    folder = tmp_path / "home-cache" / "mnist1d"
    monkeypatch.setattr(mnist_1d, "default_cache_dir", lambda: folder)
    return folder


def test_default_cache_folder_follows_arlif_cache_dir(monkeypatch, tmp_path):
    monkeypatch.undo()  # the real default_cache_dir
    monkeypatch.setenv("ARLIF_CACHE_DIR", str(tmp_path))
    assert mnist_1d.default_cache_dir() == tmp_path / "mnist1d"
    monkeypatch.delenv("ARLIF_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist_1d.default_cache_dir() == tmp_path / "home" / ".cache" / "arlif" / "mnist1d"


def _reference(num_samples=5000, seed=42, shuffle=False):
    """The generator's own output for these arguments, called as its documentation shows."""
    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.seed, args.shuffle_seq = num_samples, seed, shuffle
    return mnist1d.data.make_dataset(args)


@pytest.mark.parametrize("shuffle", [False, True])
def test_arrays_equal_make_dataset_in_both_forms(shuffle):
    ref = _reference(200, seed=7, shuffle=shuffle)
    train, test, info = build_datasets("mnist1d", num_samples=200, seed=7, shuffle=shuffle)
    seq_train, seq_test, seq_info = build_datasets("mnist1d_seq", num_samples=200, seed=7, shuffle=shuffle)
    assert (len(train), len(test)) == (160, 40) and info.input_size == (40,) and not info.temporal
    assert seq_info.temporal and seq_info.default_T == 40 and seq_info.input_size == ()
    for static, seq, x, y in ((train, seq_train, ref["x"], ref["y"]), (test, seq_test, ref["x_test"], ref["y_test"])):
        sample, label = static[3]
        assert sample.shape == (1, 40) and sample.dtype == torch.float32 and isinstance(label, int)
        assert seq[3][0].shape == (40, 1) and seq[3][1] == label
        np.testing.assert_array_equal(static.signals[:, 0].numpy(), x.astype(np.float32))
        np.testing.assert_array_equal(seq.signals[:, :, 0].numpy(), x.astype(np.float32))
        np.testing.assert_array_equal(static.labels.numpy(), y)
    if shuffle:  # the control permutes positions: not the same signals as without it
        plain = build_datasets("mnist1d", num_samples=200, seed=7)[0]
        assert not torch.equal(plain.signals, train.signals)
        np.testing.assert_array_equal(plain.labels, train.labels)


def test_default_arguments_are_the_generators_and_give_4000_1000():
    import mnist1d.data

    args = mnist_1d.generator_args()
    assert args == mnist1d.data.get_dataset_args(as_dict=True)
    shapes = mnist_1d._expected_shapes(args)
    assert shapes["x"] == (4000, 40) and shapes["x_test"] == (1000, 40)


def test_no_network_is_attempted(monkeypatch, cache_home):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    train, test, _ = build_datasets("mnist1d_seq", **SMALL)  # nothing cached yet: generated here
    assert len(train) == 160 and list(cache_home.glob("*.npz"))


def test_cache_is_used_and_keyed_by_the_arguments(monkeypatch, cache_home, tmp_path):
    first = build_datasets("mnist1d", **SMALL)[0]
    files = sorted(cache_home.glob("*.npz"))
    assert len(files) == 1 and "n200-seed42" in files[0].name

    def no_generation(args):
        raise AssertionError("regenerated although cached")

    with monkeypatch.context() as m:
        m.setattr(mnist_1d, "generate", no_generation)
        again, test, _ = build_datasets("mnist1d_seq", **SMALL)  # the other form shares the cached arrays
        assert torch.equal(again.signals[:, :, 0], first.signals[:, 0])
    build_datasets("mnist1d", **SMALL, seed=1)
    build_datasets("mnist1d", **SMALL, shuffle=True)
    assert len(list(cache_home.glob("*.npz"))) == 3 and not list(cache_home.glob("*.tmp"))
    # with a data root the cache lives there instead
    train, _, _ = build_datasets("mnist1d", tmp_path / "root", **SMALL)
    assert train.cache_path.parent == tmp_path / "root" / "mnist1d" and train.cache_path.is_file()


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "other key"])
def test_corrupt_cache_entry_is_rebuilt(cache_home, damage):
    good = build_datasets("mnist1d", **SMALL)[0]
    path = good.cache_path
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "wrong shape":
            arrays["x"] = arrays["x"][:10]
        else:
            arrays["key"] = np.array("0123456789abcdef")
        np.savez(path, **arrays)
    with pytest.warns(UserWarning, match="rebuilding it"):
        rebuilt = build_datasets("mnist1d", **SMALL)[0]
    assert torch.equal(rebuilt.signals, good.signals)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt entry is good again
        build_datasets("mnist1d", **SMALL)


def test_generation_leaves_global_random_state_alone():
    random.seed(5)
    np.random.seed(5)
    expect_py, expect_np = random.random(), np.random.rand()
    random.seed(5)
    np.random.seed(5)
    build_datasets("mnist1d", **SMALL)  # the generator reseeds both; they are restored
    assert (random.random(), np.random.rand()) == (expect_py, expect_np)


def test_holdout_splits_training_signals_and_options_are_checked():
    full, test, _ = build_datasets("mnist1d", **SMALL)
    train, val, _ = build_datasets("mnist1d", **SMALL, holdout=40)
    assert (len(train), len(val)) == (120, 40)
    assert torch.equal(train.signals, full.signals[:120]) and torch.equal(val.signals, full.signals[120:])
    assert not any(torch.equal(val.signals[0], s) for s in test.signals)
    with pytest.raises(DataError, match="holdout must be an integer from 0 to 159"):
        build_datasets("mnist1d", **SMALL, holdout=160)
    with pytest.raises(DataError, match="num_samples must be an integer >= 20"):
        build_datasets("mnist1d", num_samples=5)
    with pytest.raises(DataError, match="T must be 40"):
        build_datasets("mnist1d_seq", T=8, **SMALL)
    with pytest.raises(DataError, match="no option"):
        build_datasets("mnist1d", size=48)


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(DataError, match="pip install mnist1d"):
        build_datasets("mnist1d", **SMALL)


# ---- models ---------------------------------------------------------------------------------------------
MODELS = {
    "spiking_cnn1d": ("mnist1d", {"channels": [4, 8, 8]}, (4, 3, 1, 40)),
    "spiking_rnn": ("mnist1d_seq", {"hidden": [8, 6]}, (40, 3, 1)),
}


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("neuron", neuron_names())
def test_models_work_with_every_neuron(model_name, neuron):
    dataset, kw, shape = MODELS[model_name]
    info = get_dataset_info(dataset)
    torch.manual_seed(0)
    model = create_model(model_name, 10, 1, neuron, {"backend": "torch"}, info.input_size, **kw)
    x = torch.randn(shape)
    out = model(x)
    steps = 1 if model_name == "spiking_rnn" else shape[0]  # the RNN's default readout: mean over the steps
    assert out.shape == (steps, 3, 10) and torch.isfinite(out).all()
    out.square().mean().backward()
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0 and torch.isfinite(first.grad).all()
    reset_net(model)
    with torch.no_grad():  # after a reset the same input gives the same output
        torch.testing.assert_close(model(x), out.detach())


def test_recurrent_layer_single_step_matches_multi_step():
    from arlif import set_step_mode

    torch.manual_seed(1)
    model = create_model("spiking_rnn", 10, 1, "arlif", {"backend": "torch"}, (), hidden=[6]).eval()
    x = torch.randn(40, 2, 1)
    with torch.no_grad():
        whole = model(x)
        reset_net(model)
        set_step_mode(model, "s")
        steps = torch.stack([model(x[t]) for t in range(40)])
    assert whole.shape == (1, 2, 10) and steps.shape == (40, 2, 10)
    torch.testing.assert_close(steps.mean(0, keepdim=True), whole)
    # the recurrence feeds spikes back: cutting it changes the output
    with torch.no_grad():
        reset_net(model)
        set_step_mode(model, "m")
        model.layers[0].recurrent.weight.zero_()
        assert not torch.equal(model(x), whole)


def test_cnn1d_rejects_images():
    with pytest.raises(ValueError, match="1-D signals"):
        create_model("spiking_cnn1d", 10, 1, "lif", input_size=(8, 8))


@pytest.mark.parametrize("dataset, model, T, kw", [
    ("mnist1d", "spiking_cnn1d", 4, {"channels": [8, 16, 16]}),
    ("mnist1d_seq", "spiking_rnn", 40, {"hidden": [16]}),
])  # fmt: skip
def test_short_training_runs(tmp_path, dataset, model, T, kw):
    from arlif.train import load_config, train

    cfg = load_config(None, {
        "dataset": dataset, "model": model, "T": T, "model_kwargs": kw, "dataset_options": SMALL,
        "epochs": 2, "max_steps_per_epoch": 3, "batch_size": 32, "tensorboard": False, "out": str(tmp_path / "run"),
    })  # fmt: skip
    summary = train(cfg, verbose=False)
    assert summary["epochs"] == 2 and 0 <= summary["final_acc"] <= 100
    assert (tmp_path / "run" / "last.pt").is_file()
    from arlif.train.evaluation import evaluate_checkpoint

    res = evaluate_checkpoint(tmp_path / "run" / "last.pt", device="cpu")
    assert res["n"] == 40 and abs(res["acc"] - summary["final_acc"]) < 1e-9 and 0 < res["firing_rate"] < 1


def test_dynamics_recording_of_a_neuron_inside_the_recurrence():
    from arlif.analysis.plots import record_layer

    torch.manual_seed(2)
    model = create_model("spiking_rnn", 10, 1, "arlif", {"backend": "torch"}, (), hidden=[6]).eval()
    x = torch.randn(40, 1, 1) * 3
    seen = {}
    handle = model.layers[0].register_forward_hook(lambda m, a, out: seen.update(s=out[:, 0].clone()))
    rec = record_layer(model, "layers.0.neuron", x)  # the neuron runs one step per call here
    handle.remove()
    assert set(rec) == {"x", "s", "v", "m", "theta"} and all(v.shape == (40, 6) for v in rec.values())
    torch.testing.assert_close(rec["s"], seen["s"])
    assert 0 < rec["s"].sum() < 240  # some, not all, neurons fired


def test_truncated_bptt_through_the_recurrent_model():
    from arlif import detach_net

    torch.manual_seed(3)
    model = create_model("spiking_rnn", 10, 1, "lif", {"backend": "torch"}, (), hidden=[6], readout="steps")
    x = torch.randn(40, 2, 1)
    for chunk in x.split(10):  # four chunks of one sequence; the state carries over, the graph does not
        model(chunk).sum().backward()
        detach_net(model)
    assert model.layers[0].spikes is not None and not model.layers[0].spikes.requires_grad
    reset_net(model)
    assert model.layers[0].spikes is None
