"""CIFAR-10/100 pickles and the Tiny-ImageNet tree."""

import pickle

import numpy as np
import pytest
import torch
from formats import write_cifar, write_tinyimagenet
from PIL import Image

from arlif.data import CIFAR, TinyImageNet
from arlif.data.transforms import MEAN_STD
from arlif.errors import DataError


def unnormalise(x, name):
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in MEAN_STD[name])
    return x * std + mean


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar_reads_pixels_labels_and_names(tmp_path, name, bytes_keys):
    want = write_cifar(tmp_path, name, n=3, bytes_keys=bytes_keys)
    for train in (True, False):
        ds = CIFAR(tmp_path, name=name, train=train, augment=False)
        data, labels = want["train" if train else "test"]
        assert len(ds) == len(labels) == (15 if train and name == "cifar10" else 3)
        assert ds.targets == labels.tolist()
        assert ds.classes == want["names"]
        for i in (0, len(ds) - 1):
            x, y = ds[i]
            assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and y == labels[i]
            # planes R, G, B, each 32×32 row-major
            expected = torch.from_numpy(data[i].reshape(3, 32, 32).astype(np.float32) / 255)
            torch.testing.assert_close(unnormalise(x, name), expected, atol=1e-5, rtol=0)


def test_cifar_root_may_be_batch_folder_and_augment_keeps_shape(tmp_path):
    write_cifar(tmp_path, "cifar10", n=2)
    ds = CIFAR(tmp_path / "cifar-10-batches-py", train=True)
    torch.manual_seed(0)
    x, _ = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_cifar_missing_root_and_file(tmp_path):
    with pytest.raises(DataError, match="(?s)not a folder.*cifar-10-batches-py.*kriz"):
        CIFAR(tmp_path / "nowhere", "cifar10")
    with pytest.raises(DataError, match="no cifar-100-python/ folder"):
        CIFAR(tmp_path, "cifar100")
    # unrelated train/ and test/ folders in a generic data root are not CIFAR-100's batch files
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(DataError, match="(?s)no cifar-100-python/ folder.*Expected layout"):
        CIFAR(tmp_path, "cifar100")
    write_cifar(tmp_path, "cifar10", n=2)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing file .*data_batch_3"):
        CIFAR(tmp_path, "cifar10", train=True)
    CIFAR(tmp_path, "cifar10", train=False)  # the test split is still complete


def test_cifar_corrupt_truncated_and_unsafe_pickles(tmp_path):
    write_cifar(tmp_path, "cifar10", n=2)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="test_batch: corrupt or truncated CIFAR pickle"):
        CIFAR(tmp_path, train=False)
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(DataError, match="corrupt or truncated"):
        CIFAR(tmp_path, train=False)
    path.write_bytes(pickle.dumps({"data": Image.new("L", (1, 1))}))
    with pytest.raises(DataError, match="refusing to load PIL"):
        CIFAR(tmp_path, train=False)
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(DataError, match="without the 'labels' entry"):
        CIFAR(tmp_path, train=False)
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 1024), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataError, match=r"expected uint8 \[N, 3072\]"):
        CIFAR(tmp_path, train=False)
    path.write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}))
    with pytest.raises(DataError, match="labels outside 0..9"):
        CIFAR(tmp_path, train=False)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="expected a pickled dict"):
        CIFAR(tmp_path, train=False)


def test_tinyimagenet_sorted_wnids_grayscale_and_val(tmp_path):
    info = write_tinyimagenet(tmp_path, wnids=("n02", "n01", "n03"), per_class=2)
    train = TinyImageNet(tmp_path, train=True, augment=False)
    assert train.classes == ["n01", "n02", "n03"]
    assert len(train) == 6 and train.targets == [0, 0, 1, 1, 2, 2]
    gray = train.paths.index(info["gray_train"])
    assert train.targets[gray] == 1  # n02 is the second class in sorted order
    x, _ = train[gray]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    rgb = unnormalise(x, "tinyimagenet")
    torch.testing.assert_close(rgb[0], rgb[1], atol=1e-5, rtol=0)  # grayscale → three equal channels
    torch.testing.assert_close(rgb[1], rgb[2], atol=1e-5, rtol=0)

    test = TinyImageNet(tmp_path / "tiny-imagenet-200", train=False)
    assert len(test) == 4 and test.targets == [1, 0, 2, 1]
    assert test[3][0].shape == (3, 64, 64)  # the grayscale val image
    aug = TinyImageNet(tmp_path, train=True)
    assert aug[0][0].shape == (3, 64, 64)


def test_tinyimagenet_errors(tmp_path):
    with pytest.raises(DataError, match="(?s)not a folder.*wnids.txt.*tiny-imagenet-200.zip"):
        TinyImageNet(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no tiny-imagenet-200/wnids.txt"):
        TinyImageNet(tmp_path)
    write_tinyimagenet(tmp_path)
    base = tmp_path / "tiny-imagenet-200"
    ann = base / "val" / "val_annotations.txt"
    good = ann.read_text()
    ann.write_text(good + "val_99.JPEG\tn01\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match="names val_99.JPEG, which is not in"):
        TinyImageNet(tmp_path, train=False)
    ann.write_text(good + "val_0.JPEG\tn99\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match="class 'n99' is not in wnids.txt"):
        TinyImageNet(tmp_path, train=False)
    ann.write_text("just-a-file-name\n")
    with pytest.raises(DataError, match="line 1: expected"):
        TinyImageNet(tmp_path, train=False)
    ann.unlink()
    with pytest.raises(DataError, match="missing .*val_annotations.txt"):
        TinyImageNet(tmp_path, train=False)
    (base / "train" / "n01" / "images" / "n01_0.JPEG").write_bytes(b"\xff\xd8 truncated jpeg")
    ds = TinyImageNet(tmp_path, train=True)
    with pytest.raises(DataError, match="n01_0.JPEG: cannot decode image"):
        ds[0]
    import shutil

    shutil.rmtree(base / "train" / "n03")
    with pytest.raises(DataError, match="missing training folder .*n03"):
        TinyImageNet(tmp_path, train=True)
