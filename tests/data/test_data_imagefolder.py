"""The imagefolder dataset on generated PNG folders: layout, labels, size, mean/std, augmentation, bad input,
and one training run through the CLI."""

import json

import numpy as np
import pytest
import torch
from formats import write_image_folder
from PIL import Image

from arlif.cli import main as cli
from arlif.data import build_datasets, build_split
from arlif.data.imagefolder import ImageStats
from arlif.errors import DataError

RAW = {"mean": None, "std": None}  # pixels scaled to [0, 1], nothing else


@pytest.fixture(autouse=True)
def fresh_stats_memo():
    ImageStats._memo.clear()  # each test sees only the files it wrote
    yield
    ImageStats._memo.clear()


def pixels(path, mode="RGB") -> np.ndarray:
    with Image.open(path) as im:
        a = np.asarray(im.convert(mode), dtype=np.float64) / 255
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def test_classes_labels_and_samples(tmp_path):
    files = write_image_folder(tmp_path)
    train, test, info = build_datasets("imagefolder", tmp_path, **RAW)
    assert train.classes == test.classes == ["ant", "bee", "cat"]  # sorted folder names, as ImageFolder
    assert (info.num_classes, info.in_channels, info.input_size, info.temporal) == (3, 3, (16, 16), False)
    assert (len(train), len(test)) == (9, 6)
    expected = sorted(files["test"], key=lambda f: (f[1], f[0].name))
    for i, (path, cls) in enumerate(expected):
        x, y = test[i]
        assert y == ["ant", "bee", "cat"].index(cls) and x.dtype == torch.float32 and x.shape == (3, 16, 16)
        np.testing.assert_allclose(x.numpy(), pixels(path), atol=1e-6)
    assert train.targets == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_val_folder_serves_as_test_split_and_numbers_classes_as_train(tmp_path):
    # the test split lacks "ant": its classes keep the training split's numbers
    write_image_folder(tmp_path, classes=("ant", "bee", "cat"), counts=(("train", 1),))
    write_image_folder(tmp_path, classes=("bee", "cat"), counts=(("val", 2),))
    test, info = build_split("imagefolder", tmp_path, train=False, **RAW)
    assert test.targets == [1, 1, 2, 2] and info.num_classes == 3


def test_grayscale_and_size(tmp_path):
    write_image_folder(tmp_path, size=(12, 20))
    train, _, info = build_datasets("imagefolder", tmp_path, grayscale=True, size=8, **RAW)
    assert (info.in_channels, info.input_size) == (1, (8, 8))
    x, _ = train[0]
    assert x.shape == (1, 8, 8)
    # the shorter side (12) to 8, the longer to 13; then the centre 8 columns
    path = train.samples[0][0]
    with Image.open(path) as im:
        small = np.asarray(im.convert("L").resize((13, 8), Image.BILINEAR), dtype=np.float64) / 255
    assert np.abs(x.numpy()[0] - small[:, 2:10]).max() < 0.06  # PIL's and torchvision's bilinear differ a little


def test_mean_std_auto_is_computed_once_and_cached(tmp_path, monkeypatch):
    files = write_image_folder(tmp_path)
    train, test, _ = build_datasets("imagefolder", tmp_path)
    every = np.stack([pixels(p) for p, _ in files["train"]])  # [N, 3, H, W]
    mean, std = every.mean(axis=(0, 2, 3)), every.std(axis=(0, 2, 3))
    np.testing.assert_allclose(train.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(train.std, std, rtol=1e-9)
    assert test.mean == train.mean and test.std == train.std  # the test split uses the training values
    x, _ = test[0]
    np.testing.assert_allclose(x.numpy(), (pixels(test.samples[0][0]) - mean[:, None, None]) / std[:, None, None],
                               atol=1e-5)  # fmt: skip
    cache = tmp_path / "arlif-cache" / "imagefolder" / "mean-std-native-rgb.json"
    assert json.loads(cache.read_text())["mean"] == train.mean

    # a new process (empty memo) reads the file instead of the images
    ImageStats._memo.clear()
    calls = []
    real = ImageStats.compute
    monkeypatch.setattr(ImageStats, "compute", lambda self, *a: calls.append(1) or real(self, *a))
    again, _, _ = build_datasets("imagefolder", tmp_path)
    assert again.mean == train.mean and calls == []
    # another size is another file; an added training image makes the values be computed again
    build_datasets("imagefolder", tmp_path, size=8)
    assert len(calls) == 1 and (cache.parent / "mean-std-8-rgb.json").exists()
    ImageStats._memo.clear()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "train" / "ant" / "black.png")
    changed, _, _ = build_datasets("imagefolder", tmp_path)
    assert len(calls) == 2 and changed.mean[0] < train.mean[0]


def test_mean_std_given_and_cache_dir(tmp_path):
    write_image_folder(tmp_path / "data")
    train, _, _ = build_datasets("imagefolder", tmp_path / "data", mean=[0.5, 0.5, 0.5], std=0.25)
    assert train.mean == [0.5] * 3 and train.std == [0.25] * 3 and train.cache_path is None
    x, _ = train[0]
    np.testing.assert_allclose(x.numpy(), (pixels(train.samples[0][0]) - 0.5) / 0.25, atol=1e-5)
    # one given, one auto: only the auto one is computed; the file goes under cache_dir
    train, _, _ = build_datasets("imagefolder", tmp_path / "data", mean=0, cache_dir=tmp_path / "c")
    assert train.mean == [0.0] * 3 and min(train.std) > 0.2
    assert train.cache_path.parent.parent.parent == tmp_path / "c"
    assert not (tmp_path / "data" / "arlif-cache").exists()
    for bad in ({"mean": [0.5, 0.5]}, {"std": 0}, {"std": "high"}, {"mean": True}):
        with pytest.raises(DataError, match=f"option {next(iter(bad))} must be 'auto', null, one number or 3"):
            build_datasets("imagefolder", tmp_path / "data", **bad)


@pytest.mark.parametrize("augment", ["none", "flip", "randaugment", "trivialaugment"])
def test_each_augment_runs_on_the_training_split_only(tmp_path, augment):
    write_image_folder(tmp_path, counts=(("train", 2), ("test", 1)))
    for gray in (False, True):
        train, test, _ = build_datasets("imagefolder", tmp_path, augment=augment, grayscale=gray)
        torch.manual_seed(0)
        xs = [train[i][0] for i in range(len(train)) for _ in range(4)]
        assert all(x.shape == (1 if gray else 3, 16, 16) and torch.isfinite(x).all() for x in xs)
        if augment != "none":  # random ops: four draws of the same six images are not all equal
            assert any(not torch.equal(xs[k], xs[k + 1]) for k in range(0, len(xs), 4))
        else:
            assert all(torch.equal(xs[k], xs[k + 1]) for k in range(0, len(xs), 4))
        assert torch.equal(test[0][0], test[0][0])
    with pytest.raises(DataError, match="augment must be one of none, flip, randaugment, trivialaugment"):
        build_datasets("imagefolder", tmp_path, augment=True)


def test_bad_layouts_name_the_folder_and_the_fix(tmp_path):
    write_image_folder(tmp_path)
    (tmp_path / "train" / "dog").mkdir()
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=f"empty class folder\\(s\\) {tmp_path / 'train' / 'dog'}: no file ending in"):
        build_datasets("imagefolder", tmp_path)
    (tmp_path / "train" / "dog" / "notes.txt").unlink()
    (tmp_path / "train" / "dog").rmdir()
    (tmp_path / "test" / "emu").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'test' / 'emu'} have no training counterpart"):
        build_datasets("imagefolder", tmp_path)
    (tmp_path / "test" / "emu").rmdir()
    (tmp_path / "train" / "ant" / "2.png").unlink()
    Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(tmp_path / "train" / "ant" / "2.png")
    with pytest.raises(DataError) as exc:
        build_datasets("imagefolder", tmp_path)
    msg = str(exc.value)
    assert "images of different sizes in" in msg and f"{tmp_path / 'train' / 'ant' / '2.png'} is 20×16" in msg
    assert "Give the dataset option size=N" in msg
    assert build_datasets("imagefolder", tmp_path, size=16)[2].input_size == (16, 16)
    (tmp_path / "train" / "ant" / "2.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"cannot read the image {tmp_path / 'train' / 'ant' / '2.png'}"):
        build_datasets("imagefolder", tmp_path)
    (tmp_path / "train" / "ant" / "2.png").unlink()
    (tmp_path / "test").rename(tmp_path / "testing")
    with pytest.raises(DataError, match=f"no test/ or val/ folder in {tmp_path}. Expected layout:"):
        build_datasets("imagefolder", tmp_path)


def test_splits_of_different_sizes(tmp_path):
    write_image_folder(tmp_path, counts=(("train", 1),), size=(16, 16))
    write_image_folder(tmp_path, counts=(("test", 1),), size=(8, 8))
    with pytest.raises(DataError, match="the training samples are 16×16 but the test samples 8×8"):
        build_datasets("imagefolder", tmp_path)
    assert build_datasets("imagefolder", tmp_path, size=8)[2].input_size == (8, 8)


def test_train_and_eval_through_the_cli(tmp_path, capsys):
    """The issue's command, `--dataset imagefolder --model spiking_vgg11_bn` (a narrow one), and an error
    before the run folder is made."""
    write_image_folder(tmp_path / "data", size=(32, 32))
    out = tmp_path / "run"
    args = ["train", "--dataset", "imagefolder", "--data-root", str(tmp_path / "data"), "--model", "spiking_vgg11_bn",
            "--model-kwargs", "{width_mult: 0.0625}", "--T", "2", "--epochs", "1", "--batch-size", "4",
            "--tensorboard", "false"]  # fmt: skip
    assert cli([*args, "--out", str(out), "--dataset-options", "{augment: flip}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "imagefolder"
    ckpt = torch.load(out / "last.pt", weights_only=False)
    assert ckpt["data_shape"] == {"num_classes": 3, "in_channels": 3, "input_size": [32, 32], "temporal": False}
    assert cli(["eval", str(out / "last.pt"), "--json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["acc"] == pytest.approx(summary["final_acc"])
    capsys.readouterr()
    (tmp_path / "data" / "test" / "owl").mkdir()
    assert cli([*args, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arlif train: error: imagefolder: class folder(s) ") and "owl have no training" in err
    assert not (tmp_path / "bad").exists()
