"""arlif.fit: a model object and datasets given in Python, trained by the loop of `arlif train`."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import arlif
from arlif.cli import main as cli
from arlif.errors import ArlifError, ConfigError
from arlif.models import SeqToANN
from arlif.train import evaluate, load_checkpoint, load_config, train

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(tensorboard=False, verbose=False)


def static_toy(n, seed, classes=4, noise=0.6):
    """``classes`` patterns of shape [2, 8]; each sample is one of them plus noise (separable at this noise)."""
    patterns = torch.randn(classes, 2, 8, generator=torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return TensorDataset(patterns[y] + noise * torch.randn(n, 2, 8, generator=g), y)


def sequence_toy(n, seed, T=4):
    """Sequences [T, 3] of noise whose last step carries the class (+1 or -1 on every feature)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.3 * torch.randn(n, T, 3, generator=g)
    x[:, -1] += (2.0 * y - 1).view(n, 1)
    return TensorDataset(x, y)


def mlp(neuron=arlif.LIF, features=16, classes=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(SeqToANN(nn.Flatten(), nn.Linear(features, 32)), neuron(), SeqToANN(nn.Linear(32, classes)))


def test_fit_learns_a_static_problem_and_writes_the_run_folder(tmp_path):
    model = mlp(arlif.LIF)
    test_set = static_toy(128, 1)
    out = tmp_path / "run"
    summary = arlif.fit(model, static_toy(256, 0), test_set, T=4, epochs=4, lr=0.05, batch_size=32, out=str(out),
                        **QUIET)  # fmt: skip
    assert summary["final_acc"] >= 90 and summary["best_acc"] >= summary["final_acc"]  # chance: 25%
    assert summary["epochs"] == 4 and 1 <= summary["best_epoch"] <= 4 and summary["out"] == str(out)
    assert summary == json.loads((out / "summary.json").read_text())
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    ckpt = load_checkpoint(out)
    assert ckpt["epoch"] == 4 and ckpt["data_shape"] == {"num_classes": 4, "in_channels": 2, "input_size": [8],
                                                          "temporal": False}  # fmt: skip
    assert (ckpt["config"]["model"], ckpt["config"]["dataset"]) == ("<Sequential object>", "<TensorDataset object>")
    assert ckpt["config"]["neuron"] == "LIF-soft" and ckpt["config"]["name"] == "fit"
    # trained in place: the object holds the last epoch's weights, and tests as the run's final epoch did
    ev = evaluate(model, DataLoader(test_set, batch_size=64), 4, False, torch.device("cpu"))
    assert ev["acc"] == summary["final_acc"]


def test_fit_sequences_made_time_first(tmp_path):
    T = 4
    model = mlp(arlif.ARLIF, features=3, classes=2)
    summary = arlif.fit(model, sequence_toy(256, 0, T), sequence_toy(128, 1, T), temporal=True, T=T, epochs=3,
                        lr=0.05, batch_size=32, out=str(tmp_path / "run"), **QUIET)  # fmt: skip
    assert summary["final_acc"] >= 90  # chance: 50%
    assert load_checkpoint(tmp_path / "run")["data_shape"]["temporal"] is True
    with pytest.raises(ArlifError, match=r"temporal=True takes sequences \[T=3, C, \.\.\.\].*set T=4"):
        arlif.fit(model, sequence_toy(8, 0, T), sequence_toy(8, 1, T), temporal=True, T=3, out=str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


def test_fit_resume_continues_bit_exactly(tmp_path):
    kw = dict(T=2, lr=0.05, batch_size=32, deterministic=True, **QUIET)
    train_set, test_set = static_toy(128, 0), static_toy(64, 1)
    straight = mlp()
    whole = arlif.fit(straight, train_set, test_set, epochs=3, out=str(tmp_path / "a"), **kw)
    arlif.fit(mlp(), train_set, test_set, epochs=1, out=str(tmp_path / "b"), **kw)
    resumed = mlp(seed=7)  # its own initial weights are replaced by the checkpoint's
    again = arlif.fit(resumed, train_set, test_set, resume=tmp_path / "b", epochs=3, **kw)
    assert again["final_acc"] == whole["final_acc"] and again["best_acc"] == whole["best_acc"]
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    lines = [json.loads(ln) for ln in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3]
    with pytest.raises(ConfigError, match="cannot change 'lr'"):
        arlif.fit(mlp(), train_set, test_set, resume=tmp_path / "b", lr=0.5)
    with pytest.raises(ConfigError, match=r"cannot resume .* on these data \(num_classes 4 in the checkpoint, 2"):
        arlif.fit(mlp(classes=2), static_toy(64, 0, classes=2), static_toy(64, 1, classes=2),
                  resume=tmp_path / "b", epochs=4, verbose=False)  # fmt: skip


def test_fit_config_errors_name_the_key_before_the_run_folder(tmp_path):
    out = str(tmp_path / "run")
    sets = static_toy(16, 0), static_toy(16, 1)
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['lrr'\] in arlif.fit"):
        arlif.fit(mlp(), *sets, lrr=0.1, out=out)
    with pytest.raises(ConfigError, match="config key 'lr' must be > 0"):
        arlif.fit(mlp(), *sets, lr=-1.0, out=out)
    with pytest.raises(ConfigError, match="config key 'neuron' does not apply to arlif.fit"):
        arlif.fit(mlp(), *sets, neuron="lif", out=out)
    with pytest.raises(ConfigError, match="config key 'dataset' does not apply to arlif.fit"):
        arlif.fit("small_cnn", *sets, dataset="cifar10", out=out)
    with pytest.raises(ConfigError, match="give num_classes="):
        arlif.fit("small_cnn", *sets, out=out)
    with pytest.raises(ArlifError, match=r"the model puts out 4 logits per step, but there are 3 classes"):
        arlif.fit(mlp(), *sets, num_classes=3, out=out)
    # a model whose output is not per-step logits: the mean over T, [B, classes]
    averaged = nn.Sequential(mlp(), Mean())
    with pytest.raises(ArlifError, match=r"per-step logits \[T, B, classes\]; .* it returned \(1, 4\)"):
        arlif.fit(averaged, *sets, out=out)
    with pytest.raises(ArlifError, match=r"failed on an input of shape \(4, 1, 2, 8\)"):
        arlif.fit(mlp(features=5), *sets, out=out)
    with pytest.raises(ConfigError, match=r"need static images \[C, H, W\].*samples of size \[8\]"):
        arlif.fit(mlp(), *sets, mixup_alpha=0.2, out=out)
    assert not Path(out).exists()


class Mean(nn.Module):
    def forward(self, x):
        return x.mean(0)


class DtypeProbe(nn.Module):
    """Records the dtype of what passes through it while training."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def forward(self, x):
        if self.training:
            self.seen.add(x.dtype)
        return x


def test_fit_amp_trains_under_bfloat16_autocast_on_cpu(tmp_path):
    probe = DtypeProbe()
    model = nn.Sequential(mlp(), probe)
    summary = arlif.fit(model, static_toy(64, 0), static_toy(32, 1), amp=True, T=2, epochs=1, device="cpu",
                        out=str(tmp_path / "run"), **QUIET)  # fmt: skip
    assert probe.seen == {torch.bfloat16}
    assert load_checkpoint(tmp_path / "run")["amp"] is True and 0 <= summary["final_acc"] <= 100


FAST = dict(epochs=2, max_steps_per_epoch=4, batch_size=32, tensorboard=False, deterministic=True)
SMALL = {"channels": [4, 8], "hidden": 16}


def test_fit_equals_arlif_train_on_the_same_config_and_data(tmp_path, capsys):
    """digits + small_cnn: `arlif train`'s run, and fit given the same model and datasets (built from the
    registry after the config's seed, as the trainer builds them), agree to the last bit."""
    from arlif.data import build_datasets
    from arlif.train.inputs import data_shape
    from arlif.train.model import build_model
    from arlif.train.runtime import seed_everything

    cfg = load_config(None, {**FAST, "model_kwargs": SMALL, "out": str(tmp_path / "cli")})
    by_cli = train(cfg, verbose=False)

    seed_everything(cfg.seed)
    train_set, test_set, info = build_datasets("digits")
    model = build_model(cfg, data_shape(info.num_classes, False, train_set[0][0]))
    by_object = arlif.fit(model, train_set, test_set, out=str(tmp_path / "object"), verbose=False, **FAST)
    by_name = arlif.fit("small_cnn", train_set, test_set, model_kwargs=SMALL, out=str(tmp_path / "name"),
                        verbose=False, **FAST)  # fmt: skip

    def metrics(run):
        lines = [json.loads(ln) for ln in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in m.items() if k != "epoch_s"} for m in lines]

    for fitted, run in ((by_object, "object"), (by_name, "name")):
        for key in ("best_acc", "final_acc", "best_epoch", "final_top5", "params"):
            assert fitted[key] == by_cli[key], (run, key)
        assert metrics(run) == metrics("cli"), run

    # a model built by name rebuilds from its checkpoint; its datasets, given as objects, do not
    assert cli(["eval", str(tmp_path / "name"), "--dataset", "digits", "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["acc"] == pytest.approx(by_name["final_acc"])
    assert cli(["eval", str(tmp_path / "name")]) == 2
    assert "dataset <Digits object> was given to arlif.fit as a Python object" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["eval"], ["energy"], ["train", "--resume"]])
def test_commands_say_a_model_object_rebuilds_in_python_only(tmp_path, capsys, argv):
    out = tmp_path / "run"
    arlif.fit(mlp(), static_toy(32, 0), static_toy(16, 1), T=2, epochs=1, out=str(out), **QUIET)
    assert cli([*argv, str(out)]) == 2
    err = capsys.readouterr().err
    assert "model <Sequential object> was given to arlif.fit as a Python object" in err
    assert "load_state_dict" in err and "Traceback" not in err


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python training API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert summary["epochs"] == 6 and summary["final_acc"] >= 90  # 4 classes: chance is 25%
    assert [json.loads(ln)["epoch"] for ln in (tmp_path / "runs/toy/metrics.jsonl").read_text().splitlines()] == [
        1, 2, 3, 4, 5, 6
    ]  # fmt: skip
    assert re.search(r"^best \d+\.\d%, final \d+\.\d%$", capsys.readouterr().out, re.M)


@pytest.mark.slow
def test_fit_under_torchrun_matches_one_process(tmp_path):
    """Two gloo processes of a script calling fit: the data are sharded, rank 0 alone writes and reports."""
    script = tmp_path / "fit_script.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\nimport arlif\nfrom test_fit import mlp, static_toy\n"
        "arlif.fit(mlp(), static_toy(256, 0), static_toy(128, 1), T=2, epochs=2, batch_size=64, lr=0.05,\n"
        "          deterministic=True, tensorboard=False, out=sys.argv[1])\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "one")], env=env, check=True, capture_output=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path / "two")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: best test accuracy") == 1
    one, two = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("one", "two"))
    # no BatchNorm, the same global batches: the runs agree up to the order of the gradient sums
    assert two["final_acc"] == pytest.approx(one["final_acc"], abs=2.0) and two["final_acc"] >= 60  # chance: 25%
