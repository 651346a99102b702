"""Every real dataset, from format-exact fixture files, through the trainer and `arlif eval`."""

import json

import pytest
from formats import write_cifar, write_cifar10dvs, write_tinyimagenet

from arlif.cli import main as cli

TINY = {"spiking_resnet18": "{width: 4}", "vggsnn": "{width_mult: 0.0625}",
        "spiking_vgg11_bn": "{width_mult: 0.0625, dropout: 0.4}", "spiking_vgg13_bn": "{width_mult: 0.0625}"}


@pytest.mark.parametrize(
    "dataset, model, extra",
    [
        ("cifar10", "spiking_resnet18", ["--mixup-alpha", "0.2", "--cutmix-alpha", "1.0"]),
        ("cifar100", "spiking_resnet18", []),
        ("tinyimagenet", "spiking_vgg13_bn", ["--mse-target", "onehot", "--mse-lambda", "0.2"]),
        ("cifar10dvs", "vggsnn", ["--neuron", "arlif_dvs_ref"]),
        ("dvsgesture", "spiking_vgg11_bn", []),
    ],
)
def test_train_and_eval_on_fixture_files(tmp_path, request, dataset, model, extra):
    if dataset in ("cifar10", "cifar100"):
        write_cifar(tmp_path / "data", dataset)
        root = tmp_path / "data"
    elif dataset == "tinyimagenet":
        write_tinyimagenet(tmp_path / "data")
        root = tmp_path / "data"
    else:
        root = request.getfixturevalue("cifar10dvs_tree" if dataset == "cifar10dvs" else "gesture_tree")[0]
    out = tmp_path / "run"
    options = {"cifar10dvs": {"cache_dir": str(tmp_path / "cache")},
               "dvsgesture": {"cache_dir": str(tmp_path / "cache"), "size": 32}}.get(dataset, {})
    args = ["train", "--dataset", dataset, "--data-root", str(root), "--model", model, "--model-kwargs",
            TINY[model], "--T", "2", "--epochs", "1", "--batch-size", "4", "--out", str(out),
            "--tensorboard", "false", "--dataset-options", json.dumps(options), *extra]
    assert cli(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == dataset and summary["T"] == 2 and 0 <= summary["final_acc"] <= 100
    assert cli(["eval", str(out / "last.pt"), "--json", str(tmp_path / "eval.json")]) == 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["acc"] == pytest.approx(summary["final_acc"])


def test_train_on_corrupt_recordings_stops_before_the_run_folder_or_skips_them(tmp_path, capsys):
    root = tmp_path / "data"
    write_cifar10dvs(root, indices=(0, 2, 100, 101), n_events=6)
    bad = [root / "cat" / "cifar10_cat_100.aedat", root / "dog" / "cifar10_dog_2.aedat"]
    bad[0].write_bytes(bad[0].read_bytes()[:-3])
    bad[1].write_bytes(b"garbage")
    out = tmp_path / "run"
    args = ["train", "--dataset", "cifar10dvs", "--data-root", str(root), "--model", "vggsnn", "--model-kwargs",
            TINY["vggsnn"], "--T", "2", "--epochs", "1", "--batch-size", "4", "--out", str(out),
            "--tensorboard", "false"]  # fmt: skip
    assert cli([*args, "--dataset-options", "{size: 32}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arlif train: error: cifar10dvs: 2 of 40 recordings are corrupt")
    assert f"{bad[0]}: truncated or corrupt AEDAT 2.0 file" in err and f"{bad[1]}: not an AEDAT 2.0 file" in err
    # the flag that skips them keeps the other dataset options
    assert "--dataset-options '{size: 32, skip_corrupt: true}'" in err and "Traceback" not in err
    assert not out.exists()
    assert cli([*args, "--dataset-options", "{size: 32, skip_corrupt: true}"]) == 0
    assert "left out 2 corrupt recording(s) (2 samples)" in capsys.readouterr().out
    lines = (out / "skipped_recordings.txt").read_text().splitlines()
    assert lines[0].startswith("#") and len(lines) == 3
    rows = {tuple(line.split("\t")[:3]) for line in lines[1:]}
    assert rows == {("train", str(bad[0]), "1"), ("test", str(bad[1]), "1")}
    assert json.loads((out / "summary.json").read_text())["skipped_recordings"] == 2
    assert "skip_corrupt: true" in (out / "config.yaml").read_text()


def test_resume_onto_corrupt_recordings_names_a_command_that_works(tmp_path, capsys):
    """A resumed run cannot change its dataset_options; the hint says how to start a new run instead."""
    root = tmp_path / "data"
    write_cifar10dvs(root, indices=(0, 100), n_events=6)
    out = tmp_path / "run"
    args = ["train", "--dataset", "cifar10dvs", "--data-root", str(root), "--model", "vggsnn", "--model-kwargs",
            TINY["vggsnn"], "--T", "2", "--epochs", "1", "--batch-size", "4", "--out", str(out),
            "--tensorboard", "false", "--dataset-options", "{size: 32}"]  # fmt: skip
    assert cli(args) == 0
    bad = root / "cat" / "cifar10_cat_100.aedat"
    bad.write_bytes(bad.read_bytes()[:-3])
    capsys.readouterr()
    assert cli(["train", "--resume", str(out), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "was not created" not in err
    options = "{size: 32, skip_corrupt: true}"
    assert f"arlif train --config {out}/config.yaml --out NEW_FOLDER --dataset-options '{options}'" in err
    new = tmp_path / "new"  # the command the hint names, run
    assert cli(["train", "--config", f"{out}/config.yaml", "--out", str(new), "--dataset-options", options,
                "--tensorboard", "false"]) == 0  # fmt: skip
    assert (new / "skipped_recordings.txt").is_file()
