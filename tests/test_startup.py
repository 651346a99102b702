"""Start-up cost: `arlif --help` and every `arlif CMD --help` import no torch, and the neurons do not import
torch._dynamo (seconds of start-up) until something compiles."""

import subprocess
import sys

import pytest
import torch

from arlif.cli import COMMANDS


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return set(out.split())


@pytest.mark.parametrize("argv", [[]] + [[c] for c in COMMANDS] + [["plot", "curves"], ["data", "info"]])
def test_help_imports_no_torch(argv):
    code = (
        "import contextlib, io\nfrom arlif.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main({argv + ['--help']!r})\n    except SystemExit:\n        pass"
    )
    assert "torch" not in _modules_after(code)


def test_import_arlif_is_lazy_and_neurons_skip_dynamo():
    mods = _modules_after("import arlif")
    assert "torch" not in mods
    mods = _modules_after("from arlif import ARLIF, reset_net\nimport arlif.models, arlif.analysis")
    assert "torch" in mods and "torch._dynamo" not in mods


def test_lazy_names_resolve():
    import arlif
    import arlif.train

    assert arlif.ARLIF.__name__ == "ARLIF" and arlif.surrogate.Rectangle
    assert set(arlif.__all__) <= set(dir(arlif))
    for name in arlif.train.__all__:
        assert getattr(arlif.train, name) is not None
    assert callable(arlif.train.evaluate) and not isinstance(arlif.train.evaluate, type(arlif))
    with pytest.raises(AttributeError):
        arlif.no_such_name  # noqa: B018


def test_constant_marker_matches_torch():
    """arlif.ops.backends marks its trace-time constant the way torch.compiler.assume_constant_result does,
    without importing dynamo; if a torch release changes the mechanism this fails (and compile tests would)."""
    from arlif.ops.backends import _resolution

    def probe():
        return 1

    before = set(vars(probe))
    torch.compiler.assume_constant_result(probe)
    added = {k: v for k, v in vars(probe).items() if k not in before}
    assert added == {"_dynamo_marked_constant": True}
    assert _resolution._dynamo_marked_constant is True


def test_version_is_the_packages_and_needs_no_torch():
    import arlif

    out = subprocess.run([sys.executable, "-m", "arlif", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"arlif {arlif.__version__}"
    assert "torch" not in _modules_after("import arlif.cli, contextlib, io\n"
                                         "with contextlib.redirect_stdout(io.StringIO()):\n"
                                         "    try:\n        arlif.cli.main(['--version'])\n"
                                         "    except SystemExit:\n        pass")  # fmt: skip


def test_subpackages_are_attributes_as_before_the_lazy_names():
    code = (
        "import arlif, arlif.train\n"
        "assert callable(arlif.neurons.neuron_factory) and callable(arlif.ops.reference.arlif_step)\n"
        "assert arlif.train.loss.tet_loss and arlif.train.config.TrainConfig and arlif.train.checkpoint\n"
        "assert callable(arlif.train.evaluate) and callable(arlif.train.train)\n"
        "for bad in ('arlif.nothing', 'arlif.train.nothing'):\n"
        "    mod, _, name = bad.rpartition('.')\n"
        "    try:\n        getattr(__import__(mod, fromlist=['x']), name)\n"
        "    except AttributeError:\n        pass\n"
        "    else:\n        raise SystemExit(bad)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list_configs_imports_no_torch():
    code = (
        "import contextlib, io\nfrom arlif.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['train', '--list-configs']) == 0"
    )
    assert "torch" not in _modules_after(code)
