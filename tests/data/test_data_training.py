"""Every real dataset, from format-exact fixture files, through the trainer and `arlif eval`."""

import json

import pytest
from formats import write_cifar, write_tinyimagenet

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
