"""Trainer: loss, mixing, configs, checkpoints, resume, NaN stop, the demo, DDP."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from arlif.cli import main as cli
from arlif.errors import ArlifError, ConfigError
from arlif.train import TrainConfig, TrainingDiverged, load_checkpoint, load_config, tet_loss, train
from arlif.train import loop as loop_module
from arlif.train.checkpoint import atomic_save
from arlif.train.config import FIELDS
from arlif.train.inputs import build_mixer

FAST = dict(
    epochs=2,
    max_steps_per_epoch=4,
    batch_size=32,
    tensorboard=False,
    model_kwargs={"channels": [4, 8], "hidden": 16},
)


def _cfg(tmp_path, **kw):
    return load_config(None, {**FAST, "out": str(tmp_path / "run"), **kw})


# ---- loss -----------------------------------------------------------------------------------------
def test_tet_loss_matches_hand_computation():
    torch.manual_seed(0)
    out = torch.randn(3, 4, 5)
    y = torch.tensor([0, 3, 1, 4])
    ce = sum(F.cross_entropy(out[t], y) for t in range(3)) / 3
    mse_const = ((out - 1.0) ** 2).mean()
    onehot = F.one_hot(y, 5).float()
    mse_onehot = ((out - onehot) ** 2).mean()
    torch.testing.assert_close(tet_loss(out, y, 0.05, "const"), 0.95 * ce + 0.05 * mse_const)
    torch.testing.assert_close(tet_loss(out, y, 0.2, "onehot"), 0.8 * ce + 0.2 * mse_onehot)
    torch.testing.assert_close(tet_loss(out, y, 0.0), ce)
    # soft labels equal to the one-hot labels give the same loss as the indices
    torch.testing.assert_close(tet_loss(out, onehot, 0.2, "onehot"), tet_loss(out, y, 0.2, "onehot"))
    with pytest.raises(ValueError, match=r"\[T, B, K\]"):
        tet_loss(out[0], y)


def test_mixup_cutmix_give_soft_labels_that_train():
    cfg = TrainConfig(mixup_alpha=0.2, cutmix_alpha=1.0)
    mixer = build_mixer(cfg, 10)
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8)
    xm, ym = mixer(x, y)
    assert xm.shape == x.shape and ym.shape == (8, 10)
    torch.testing.assert_close(ym.sum(1), torch.ones(8))
    assert build_mixer(TrainConfig(), 10) is None
    out = torch.randn(2, 8, 10, requires_grad=True)
    tet_loss(out, ym, 0.05).backward()
    assert torch.isfinite(out.grad).all()


def test_soft_label_training_learns(tmp_path):
    # one full epoch (45 steps) on digits: chance is 10%; seeds 1-4 and the default one reach 80-85%
    summary = train(_cfg(tmp_path, epochs=1, max_steps_per_epoch=None, mixup_alpha=0.2, cutmix_alpha=1.0))
    assert summary["final_acc"] > 50


# ---- config ---------------------------------------------------------------------------------------
def test_unknown_and_badly_typed_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['learning_rate'\].*valid keys"):
        load_config(None, {"learning_rate": 0.1})
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nbatchsize: 4\n")
    with pytest.raises(ConfigError, match="batchsize"):
        load_config(bad)
    with pytest.raises(ConfigError, match="expects int"):
        load_config(None, {"T": "four"})
    with pytest.raises(ConfigError, match="must be one of"):
        load_config(None, {"optimizer": "lamb"})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    assert load_config(None, {"lr": 1}).lr == 1.0


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("workers", -1, ">= 0"),
        ("eval_batch_size", 0, ">= 1 (or null: the batch_size)"),
        ("max_steps_per_epoch", 0, ">= 1"),
        ("T", 0, ">= 1"),
        ("epochs", -3, ">= 1"),
        ("batch_size", 0, ">= 1"),
        ("momentum", -0.1, "in [0, 1)"),
        ("momentum", 1.0, "in [0, 1)"),
        ("weight_decay", -1e-4, ">= 0"),
        ("weight_decay", "-1e-4", ">= 0"),  # as the command line passes it
        ("lr", 0.0, "> 0"),
        ("lr", float("nan"), "> 0"),
        ("lr", float("inf"), "> 0"),
        ("grad_clip", -1.0, "> 0 (or null: no clipping)"),
        ("seed", -(2**32), "in (-2**32, 2**32)"),
        ("seed", 2**32, "in (-2**32, 2**32)"),
        ("mse_lambda", float("nan"), "in [0, 1]"),
        ("label_smoothing", 1.0, "in [0, 1)"),
        ("mixup_alpha", -0.5, ">= 0"),
        ("cutmix_alpha", float("inf"), ">= 0"),
    ],
)
def test_out_of_range_config_values_name_the_key_and_the_range(key, value, allowed):
    with pytest.raises(ConfigError, match=re.escape(f"config key {key!r} must be {allowed}")):
        load_config(None, {key: value})


def test_config_ranges_keep_their_valid_ends_and_exponent_floats():
    cfg = load_config(None, {"workers": 0, "momentum": 0.0, "weight_decay": 0, "seed": 0, "mse_lambda": 1})
    assert (cfg.workers, cfg.momentum, cfg.weight_decay, cfg.mse_lambda) == (0, 0.0, 0.0, 1.0)
    assert load_config(None, {"seed": -1}).seed == -1  # runs with negative seeds trained before the check
    assert load_config(None, {"eval_batch_size": None, "grad_clip": None}).grad_clip is None
    # PyYAML reads 1e-4 (no dot) as text; a float key takes it as the number it is
    assert load_config(None, {"lr": "1e-4", "weight_decay": "5E-05"}).lr == 1e-4
    with pytest.raises(ConfigError, match="expects float, got '1e'"):
        load_config(None, {"lr": "1e"})


def test_cli_out_of_range_value_is_one_line_before_the_run_folder(tmp_path, capsys):
    assert cli(["train", "--workers", "-1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arlif train: error: config key 'workers' must be >= 0") and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cli_unknown_flag_lists_keys(capsys):
    with pytest.raises(SystemExit):
        cli(["train", "--learning-rate", "0.1"])
    err = capsys.readouterr().err
    assert "--learning-rate" in err and "--lr" in err


def test_cli_bad_value_is_one_clear_line(capsys):
    assert cli(["train", "--epochs", "zero"]) == 2
    err = capsys.readouterr().err
    assert "expects int" in err and "Traceback" not in err


def test_unavailable_backend_fails_before_the_run_folder_is_made(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    out = tmp_path / "r"
    assert cli(["train", "--backend", "triton", "--device", "cpu", "--out", str(out)]) == 2
    assert "backend 'triton' is unavailable" in capsys.readouterr().err
    assert not out.exists()


def test_missing_dataset_root_is_a_clear_error(tmp_path, capsys):
    assert cli(["train", "--dataset", "cifar10", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "data" in err and "Traceback" not in err


# ---- checkpoints and resume -------------------------------------------------------------------------
def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"model": {"w": torch.ones(3)}, "config": {}, "epoch": 1}, path)

    def broken_save(obj, fh, *a, **k):
        fh.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"model": {"w": torch.zeros(3)}, "config": {}, "epoch": 2}, path)
    monkeypatch.undo()
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 1 and torch.equal(ckpt["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_corrupt_checkpoint_is_named(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ArlifError, match="last.pt is not an arlif checkpoint .*starts with b'not '"):
        load_checkpoint(bad)
    # a real checkpoint cut short (an interrupted copy)
    atomic_save({"model": {"w": torch.ones(1000)}, "config": {}}, bad)
    bad.write_bytes(bad.read_bytes()[:3000])
    with pytest.raises(ArlifError, match="could not be read: the torch.save file is damaged or truncated"):
        load_checkpoint(bad)


def _foreign_files(tmp_path):
    """Files that are not arlif checkpoints, with the words the error must contain."""
    (tmp_path / "notes.txt").write_text("hello\n")
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "other.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    return {
        "notes.txt": "notes.txt is not an arlif checkpoint (not a file written by torch.save: it starts with b'hell')",
        "other.pt": "other.pt is not an arlif checkpoint (no model/config entries; its keys: 'state_dict')",
        "tensor.pt": "tensor.pt is not an arlif checkpoint (torch.save file of a Tensor",
        "empty.pt": "empty.pt is not an arlif checkpoint (not a file written by torch.save: an empty file)",
        "folder": "folder is a folder without last.pt",
        "missing.pt": "missing.pt not found",
    }


@pytest.mark.parametrize(
    "argv", [["eval"], ["energy"], ["plot", "rates"], ["plot", "dynamics"], ["plot", "raster"]], ids=" ".join
)
def test_commands_given_something_else_than_a_checkpoint_say_so(tmp_path, capsys, argv):
    for name, words in _foreign_files(tmp_path).items():
        assert cli([*argv, str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert words in err and "Memo value" not in err and "Traceback" not in err
        assert "the last.pt / best.pt that 'arlif train' writes" in err  # and how to get one
    torch.save({"model": {}, "config": {"lr": -1}, "data_shape": {}}, tmp_path / "badcfg.pt")
    assert cli([*argv, str(tmp_path / "badcfg.pt")]) == 2
    assert "badcfg.pt holds an invalid config: config key 'lr' must be > 0" in capsys.readouterr().err


def _metrics(run):
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    for ln in lines:
        ln.pop("epoch_s")
    return lines


def test_resume_after_kill_is_bit_exact(tmp_path, monkeypatch):
    straight = train(_cfg(tmp_path / "a", deterministic=True, mixup_alpha=0.2))
    calls = {"n": 0}
    real_eval = loop_module.evaluate

    def dying_eval(*a, **k):  # the process dies in epoch 2, after its training steps
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_eval(*a, **k)

    monkeypatch.setattr(loop_module, "evaluate", dying_eval)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path / "b", deterministic=True, mixup_alpha=0.2))
    monkeypatch.setattr(loop_module, "evaluate", real_eval)
    run_b = tmp_path / "b" / "run"
    assert load_checkpoint(run_b)["epoch"] == 1
    resumed = train(None, resume=run_b)

    run_a = tmp_path / "a" / "run"
    assert _metrics(run_a) == _metrics(run_b)
    wa, wb = load_checkpoint(run_a)["model"], load_checkpoint(run_b)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert straight["final_acc"] == resumed["final_acc"] and straight["best_acc"] == resumed["best_acc"]


def test_resume_refuses_to_change_the_run(tmp_path):
    train(_cfg(tmp_path, epochs=1))
    with pytest.raises(ConfigError, match="cannot change 'lr'"):
        train(None, resume=tmp_path / "run", overrides={"lr": 0.5})
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        train(_cfg(tmp_path, epochs=1))
    more = train(None, resume=tmp_path / "run", overrides={"epochs": 2})
    assert more["epochs"] == 2
    assert [m["epoch"] for m in _metrics(tmp_path / "run")] == [1, 2]


def test_resume_with_more_epochs_follows_the_longer_cosine(tmp_path):
    """Epochs 3-4 of a 2-epoch run resumed with --epochs 4 train on the 4-epoch curve (not the old one,
    which would be back at its start), and each logged lr is the one its epoch trained with."""
    import math

    train(_cfg(tmp_path, epochs=2, lr=0.1))
    train(None, resume=tmp_path / "run", overrides={"epochs": 4})
    lrs = [m["lr"] for m in _metrics(tmp_path / "run")]
    want = [0.05 * (1 + math.cos(math.pi * e / n)) for e, n in ((0, 2), (1, 2), (2, 4), (3, 4))]
    assert lrs == pytest.approx(want, abs=1e-12)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)  # the end of the curve


def test_resume_is_bit_exact_with_data_workers(tmp_path, monkeypatch):
    """Random augmentation drawn in a worker process: a resumed run must draw what the straight run drew."""
    from arlif.data.digits import Digits

    plain = Digits.__getitem__

    def noisy(self, i):
        x, y = plain(self, i)
        return x + 0.1 * torch.rand_like(x), y  # drawn from the worker's torch RNG

    monkeypatch.setattr(Digits, "__getitem__", noisy)
    kw = dict(deterministic=True, workers=1, epochs=3, max_steps_per_epoch=2)
    train(_cfg(tmp_path / "a", **kw))
    train(_cfg(tmp_path / "b", **{**kw, "epochs": 1}))
    train(None, resume=tmp_path / "b" / "run", overrides={"epochs": 3})
    wa, wb = load_checkpoint(tmp_path / "a" / "run")["model"], load_checkpoint(tmp_path / "b" / "run")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_eval_uses_the_runs_amp_setting(tmp_path, capsys, monkeypatch):
    """Training evaluates under its autocast; so must 'arlif eval', or the accuracies differ."""
    from arlif.train import evaluation

    used = []  # the autocast dtype of each evaluation (comparing losses cannot tell: an untrained model's
    real = evaluation.evaluate  # bf16 and fp32 losses can agree to 1e-7)

    def spy(*args, **kw):
        used.append(kw.get("amp_dtype"))
        return real(*args, **kw)

    monkeypatch.setattr(evaluation, "evaluate", spy)
    summary = train(_cfg(tmp_path, epochs=1, amp=True, max_steps_per_epoch=6))
    capsys.readouterr()
    used.clear()
    assert cli(["eval", str(tmp_path / "run"), "--json", str(tmp_path / "e.json")]) == 0
    got = json.loads((tmp_path / "e.json").read_text())
    trained = _metrics(tmp_path / "run")[-1]
    assert got["acc"] == summary["final_acc"] and got["loss"] == pytest.approx(trained["test_loss"], rel=1e-6)
    assert cli(["eval", str(tmp_path / "run"), "--amp", "false", "--json", str(tmp_path / "f.json")]) == 0
    fp32 = json.loads((tmp_path / "f.json").read_text())
    assert used == [torch.bfloat16, None]  # the run's bf16 autocast, then --amp false
    # eval follows what the checkpoint records (AMP resolved on the training device), not the config
    # resolved on the eval device: a CPU run's amp=None means off on CPU but would mean fp16 on a GPU
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["amp"] is True
    ckpt["amp"], ckpt["config"]["amp"] = False, None
    atomic_save(ckpt, tmp_path / "run" / "last.pt")
    assert cli(["eval", str(tmp_path / "run" / "last.pt"), "--json", str(tmp_path / "g.json")]) == 0
    assert json.loads((tmp_path / "g.json").read_text())["loss"] == fp32["loss"] and used[-1] is None


def test_none_disables_an_optional_key_and_neuron_option_typos_are_errors(tmp_path, capsys):
    assert load_config(None, {"grad_clip": "none"}).grad_clip is None
    assert load_config(None, {"grad_clip": "None"}).grad_clip is None
    with pytest.raises(ConfigError, match="expects"):
        load_config(None, {"epochs": "none"})  # not optional
    assert cli(["train", "--neuron-kwargs", "{decy: 0.2}", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "['decy'] are not options of any neuron" in err and "'decay'" in err
    assert not (tmp_path / "r" / "last.pt").exists()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--neuron-kwargs", "{decay: 2}"], "'neuron_kwargs' (neuron 'arlif'): ARLIF: decay must be in [0, 1]"),
        (["--neuron", "clif", "--neuron-kwargs", "{tau: 0}"], "CLIF: tau must be a finite number >= 1"),
        (["--neuron", "lif_hard", "--neuron-kwargs", "{v_threshold: -1}"], "LIF: v_threshold must be a finite"),
        (["--neuron", "plif", "--neuron-kwargs", "{init_w: .nan}"], "PLIF: init_w must be a finite number"),
        (["--neuron", "izhikevich"], "config key 'neuron': unknown neuron 'izhikevich'"),
    ],
)
def test_bad_neuron_options_stop_train_before_the_data_and_the_run_folder(tmp_path, capsys, argv, words):
    # the dataset root does not exist either: the neuron is checked first, so its error is the one shown
    out = tmp_path / "r"
    assert cli(["train", *argv, "--dataset", "cifar10", "--data-root", str(tmp_path / "none"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arlif train: error: config key ")
    assert words in err and "Traceback" not in err and not out.exists()


def test_nan_loss_stops_with_epoch_and_step(tmp_path, monkeypatch):
    real = loop_module.tet_loss
    calls = {"n": 0}

    def nan_later(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(loop_module, "tet_loss", nan_later)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2.*last good checkpoint"):
        train(_cfg(tmp_path))
    assert load_checkpoint(tmp_path / "run")["epoch"] == 1


# ---- run folder and the demo ------------------------------------------------------------------------
def test_demo_cli_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["train", "--epochs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best test accuracy" in printed and str(out) in printed
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    assert any((out / "tb").iterdir())
    summary = json.loads((out / "summary.json").read_text())
    for key in ("best_acc", "final_acc", "best_epoch", "epochs", "wall_s", "neuron", "model", "dataset", "T"):
        assert key in summary
    assert summary["final_acc"] > 50  # one epoch on digits already learns
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert set(resolved) == set(FIELDS) and resolved["out"] == str(out)
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert set(metrics["neuron_params"]["features.1"]) == {"a", "tanh_a", "c"}
    assert cli(["eval", str(out / "best.pt"), "--json", str(tmp_path / "e.json")]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["acc"] == pytest.approx(summary["best_acc"]) and 0 < ev["firing_rate"] < 1


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_single_process(tmp_path):
    # same global batch and data order; BN statistics are per process on CPU (SyncBatchNorm is GPU-only),
    # so the two runs agree closely but not bit for bit
    common = [
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--deterministic",
        "true",
        "--tensorboard",
        "false",
        "--model-kwargs",
        "{channels: [8, 16], hidden: 32}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    assert cli(["train", *common, "--out", str(single)]) == 0
    ddp = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "arlif",
        "train",
        *common,
        "--out",
        str(ddp),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: best test accuracy") == 1  # rank 0 alone reports
    s1 = json.loads((single / "summary.json").read_text())
    s2 = json.loads((ddp / "summary.json").read_text())
    assert s2["final_acc"] > 85 and abs(s1["final_acc"] - s2["final_acc"]) <= 3.0
    assert (ddp / "last.pt").is_file() and not list(ddp.glob("*.tmp"))


def test_configs_parse_and_build():
    """Every shipped YAML config parses, resolves and builds its model (at reduced width)."""
    from dataclasses import replace

    from arlif.data import get_dataset_info
    from arlif.train.model import build_model

    configs = sorted((Path(__file__).parents[1] / "src" / "arlif" / "configs").glob("*.yaml"))
    assert len(configs) == 22
    for path in configs:
        cfg = load_config(path)
        info = get_dataset_info(cfg.dataset)
        size = cfg.dataset_options.get("size")
        shape = {
            "num_classes": info.num_classes,
            "in_channels": info.in_channels,
            "input_size": [size, size] if size else list(info.input_size),
        }
        small = {
            "spiking_resnet18": {"width": 4},
            "small_cnn": {},
            "spiking_cnn1d": {"channels": [4, 4, 4]},
            "spiking_rnn": {"hidden": [4]},
        }.get(cfg.model, {"width_mult": 1 / 32})
        model = build_model(replace(cfg, model_kwargs={**cfg.model_kwargs, **small}), shape)
        out = model(torch.randn(1, 2, info.in_channels, *shape["input_size"]))
        assert out.shape == (1, 2, info.num_classes), path.name


def test_eval_split_has_the_same_checks_as_training(tmp_path, capsys):
    from arlif.data import build_split
    from arlif.errors import DataError

    with pytest.raises(DataError, match="no option"):
        build_split("digits", None, train=False, colour=True)
    out = tmp_path / "run"
    args = ["train", "--epochs", "1", "--max-steps-per-epoch", "2", "--out", str(out), "--tensorboard", "false"]
    assert cli(args) == 0
    assert cli(["eval", str(out / "last.pt"), "--dataset", "cifar10"]) == 2
    assert "needs its data root" in capsys.readouterr().err


def test_resume_continues_in_a_moved_run_folder(tmp_path):
    train(_cfg(tmp_path, epochs=1))
    moved = tmp_path / "moved"
    (tmp_path / "run").rename(moved)
    summary = train(None, resume=moved)
    assert summary["out"] == str(moved) and (moved / "summary.json").is_file()
    assert not (tmp_path / "run").exists()


def test_configs_resolve_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    from arlif.train.config import CONFIG_DIR, config_names

    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    assert len(config_names()) == 22 and "cifar100_resnet18_t8" in config_names()
    for spec in ("cifar100_resnet18_t8", "cifar100_resnet18_t8.yaml"):
        cfg = load_config(spec)
        assert (cfg.dataset, cfg.T, cfg.lr) == ("cifar100", 8, 0.05)
        assert cfg.reference_acc == {"best": 80.99, "final": 80.63}
    # a path still works, and wins over a recipe of the same name
    (tmp_path / "cifar100_resnet18_t8.yaml").write_text("dataset: digits\nepochs: 2\n")
    assert load_config("cifar100_resnet18_t8.yaml").dataset == "digits"
    assert load_config(CONFIG_DIR / "cifar10_resnet18_t4.yaml").T == 4
    with pytest.raises(ConfigError, match="close matches: cifar100_resnet18_t8"):
        load_config("cifar100_resnet18_t9")
    with pytest.raises(ConfigError, match="shipped recipe of that name is --config cifar10_resnet18_t6"):
        load_config("configs/cifar10_resnet18_t6.yaml")
    assert cli(["train", "--config", "cifar100_resnet18_t9"]) == 2
    assert "close matches" in capsys.readouterr().err
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot be read as text"):
        load_config(tmp_path / "bin.yaml")


def test_list_configs_shows_every_recipe_with_its_reference(capsys):
    from arlif.train.config import config_names

    assert cli(["train", "--list-configs"]) == 0
    out = capsys.readouterr().out
    for name in config_names():
        assert name in out
    row = next(ln for ln in out.splitlines() if ln.startswith("dvsgesture_vgg11bn_t20"))
    assert "98.61 / 97.57" in row and "spiking_vgg11_bn" in row
    row = next(ln for ln in out.splitlines() if ln.startswith("cifar10dvs_vggsnn_t8 "))
    assert row.rstrip().endswith("–")  # the faithful variant has no reference run of its own


def test_reference_acc_is_checked_and_reported(tmp_path, capsys):
    with pytest.raises(ConfigError, match="reference_acc"):
        load_config(None, {"reference_acc": {"best": "high"}})
    cfg = _cfg(tmp_path, epochs=1, reference_acc={"best": 99.0, "final": 98.5})
    summary = train(cfg)
    assert summary["reference_acc"] == {"best": 99.0, "final": 98.5}
    assert "reference AR-LIF run of this recipe: best 99.0%, final 98.5%" in capsys.readouterr().out


def test_negative_exponent_values_reach_the_config_check(capsys):
    """argparse alone reads -1e-4 as an option; the CLI passes it as the value so the range check speaks."""
    assert cli(["train", "--weight-decay", "-1e-4"]) == 2
    assert "config key 'weight_decay' must be >= 0" in capsys.readouterr().err


def test_exponent_numbers_inside_nested_options(tmp_path):
    """1e-4 without a dot is a number in a config file, on the command line, and in configs saved before
    the loader read it so (run folders and checkpoints hold the text)."""
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-1\nneuron_kwargs: {decay: 5e-1, init_a: 1e-2}\n")
    cfg = load_config(path)
    assert cfg.lr == 0.1 and cfg.neuron_kwargs == {"decay": 0.5, "init_a": 0.01}
    from arlif.train.config import from_dict, parse_value

    assert parse_value("{decay: 2e-1}") == {"decay": 0.2} and parse_value("3E2") == 300.0
    old = from_dict({"neuron_kwargs": {"decay": "5e-1", "surrogate": "atan"}, "dataset_options": {"x": ["1e3"]}})
    assert old.neuron_kwargs == {"decay": 0.5, "surrogate": "atan"} and old.dataset_options == {"x": [1000.0]}
    from arlif.neurons import neuron_factory

    assert neuron_factory(cfg.neuron, **cfg.neuron_kwargs)().decay == 0.5


def test_config_paths_that_are_not_recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        load_config("./cifar100_resnet18_t8_mine.yaml")
    with pytest.raises(ConfigError, match="shipped recipe of that name is --config cifar100_resnet18_t8"):
        load_config("./cifar100_resnet18_t8.yaml")  # a path, even where a recipe has the name
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_config("folder")
    with pytest.raises(ConfigError, match="reference_acc"):
        load_config(None, {"reference_acc": {"best": 90.0}})  # both numbers, or none


def test_default_run_folder_name_is_a_plain_path_for_a_neuron_given_by_module_path():
    from arlif.train.run_folder import location

    folder = location(load_config(None, {"neuron": "my_neurons:GainLIF", "name": "digits demo"}))
    assert folder.parent == Path("runs")
    assert re.fullmatch(r"digits_demo-my_neurons_GainLIF-\d{8}-\d{6}", folder.name), folder.name
