"""Every registered dataset builds through build_datasets from format-exact fixtures."""

import ast
import importlib.util
from pathlib import Path

import pytest
import torch
from formats import (
    write_cifar,
    write_cifar10dvs,
    write_event_folder,
    write_gesture,
    write_image_folder,
    write_tinyimagenet,
)

import arlif.data
from arlif.data import build_datasets, dataset_names, get_dataset_info
from arlif.errors import DataError

EXPECTED = {  # name: (classes, channels, input size, temporal, default T)
    "digits": (10, 1, (8, 8), False, None),
    "cifar10": (10, 3, (32, 32), False, None),
    "cifar100": (100, 3, (32, 32), False, None),
    "tinyimagenet": (200, 3, (64, 64), False, None),
    "cifar10dvs": (10, 2, (48, 48), True, 8),
    "dvsgesture": (11, 2, (128, 128), True, 20),
    "mnist1d": (10, 1, (40,), False, None),
    "mnist1d_seq": (10, 1, (), True, 40),
    # from the data: what the fixture files give (the registry has placeholders)
    "imagefolder": (3, 3, (16, 16), False, None),
    "events": (2, 2, (12, 20), True, None),
}


def test_registry_entries_and_aliases():
    assert set(dataset_names()) == set(EXPECTED)
    for name, (classes, channels, size, temporal, T) in EXPECTED.items():
        info = get_dataset_info(name)
        if info.from_data:
            assert (info.num_classes, info.temporal, info.default_T) == (0, temporal, T)
            continue
        assert (info.num_classes, info.in_channels, info.input_size, info.temporal, info.default_T) == (
            classes, channels, size, temporal, T,
        )  # fmt: skip
        assert "augment" in info.options
    for alias, name in [("CIFAR-10", "cifar10"), ("tiny-imagenet", "tinyimagenet"),
                        ("cifar10-dvs", "cifar10dvs"), ("dvs128gesture", "dvsgesture"), ("MNIST-1D", "mnist1d"),
                        ("mnist-1d-seq", "mnist1d_seq")]:  # fmt: skip
        assert get_dataset_info(alias).name == name


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("roots")
    write_cifar(base / "c10", "cifar10", n=2)
    write_cifar(base / "c100", "cifar100", n=2)
    write_tinyimagenet(base / "tiny")
    write_cifar10dvs(base / "dvs", indices=(0, 100), n_events=5)
    write_gesture(base / "gesture")
    write_image_folder(base / "images")
    write_event_folder(base / "events", sensor=(20, 12))
    return {
        "digits": None, "cifar10": base / "c10", "cifar100": base / "c100", "tinyimagenet": base / "tiny",
        "cifar10dvs": base / "dvs", "dvsgesture": base / "gesture",
        "mnist1d": base / "m1d", "mnist1d_seq": base / "m1d",  # generated; the root holds the cache
        "imagefolder": base / "images", "events": base / "events",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_dataset_builds_and_yields_model_ready_samples(name, roots, tmp_path):
    classes, channels, size, temporal, default_T = EXPECTED[name]
    options = {"cache_dir": tmp_path} if "cache_dir" in get_dataset_info(name).options else {}
    if name.startswith("mnist1d"):
        options["num_samples"] = 100  # small: generated in a moment
    T = (40 if name == "mnist1d_seq" else 3) if temporal else None  # one step per value of a 40-value signal
    torch.manual_seed(0)
    train, test, info = build_datasets(name, roots[name], T, **options)
    assert info.name == name and len(train) > 0 and len(test) > 0
    assert (info.num_classes, info.in_channels, info.input_size) == (classes, channels, size)
    for ds in (train, test):
        x, y = ds[0]
        assert x.dtype == torch.float32 and isinstance(y, int) and 0 <= y < classes
        assert x.shape == ((T, channels, *size) if temporal else (channels, *size))
    loader = torch.utils.data.DataLoader(test, batch_size=2)
    xb, yb = next(iter(loader))
    assert xb.shape[0] == yb.shape[0] == min(2, len(test))


def test_temporal_default_T_and_size_option_updates_info(roots, tmp_path):
    train, _, info = build_datasets("cifar10dvs", roots["cifar10dvs"], None, cache_dir=tmp_path)
    assert train.T == 8 and info.input_size == (48, 48)
    train, _, info = build_datasets("cifar10dvs", roots["cifar10dvs"], 2, size=None, cache=False)
    assert info.input_size == (128, 128) and train[0][0].shape == (2, 2, 128, 128)
    assert get_dataset_info("cifar10dvs").input_size == (48, 48)  # the registry entry is unchanged
    _, test, info = build_datasets("dvsgesture", roots["dvsgesture"], 2, size=32, cache=False)
    assert info.input_size == (32, 32) and test[0][0].shape == (2, 2, 32, 32)


def test_registry_errors(roots):
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        build_datasets("mnist", "/x")
    with pytest.raises(DataError, match="(?s)needs its data root.*--data-root.*cifar-10-batches-py.*kriz"):
        build_datasets("cifar10", None)
    with pytest.raises(DataError, match=r"no option\(s\) \['sise'\]; its options are \[.*'size'"):
        build_datasets("cifar10dvs", roots["cifar10dvs"], 4, sise=48)
    with pytest.raises(DataError, match="needs T >= 1"):
        build_datasets("dvsgesture", roots["dvsgesture"], 0)


def _imported_modules(source: str, package: str) -> list[str]:
    """Every module the imports of ``source`` (code of a module in ``package``) may load, relative imports
    resolved: ``from .. import neurons`` in arlif.data loads arlif.neurons."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names += [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_data_package_imports_no_neurons_models_or_training():
    forbidden = ("arlif.neurons", "arlif.models", "arlif.train", "arlif.ops")

    def bad(names):
        return [n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)]

    # the guard sees every spelling of such an import, and passes the package's own ones
    caught = ("import arlif.ops", "from arlif.models import x", "from ..train import loop", "from .. import neurons")
    for line in caught:
        assert bad(_imported_modules(line, "arlif.data")), line
    assert not bad(_imported_modules("from . import registry\nfrom ..errors import DataError", "arlif.data"))
    folder = Path(arlif.data.__file__).parent
    for path in folder.glob("*.py"):
        names = _imported_modules(path.read_text(), "arlif.data")
        assert not bad(names), (path.name, bad(names))
