"""A neuron is one unit: outside ``arlif/neurons/`` and ``arlif/ops/`` no code names a neuron class or keeps
a list of neuron names; everything reads the registry and the neuron protocol instead."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from arlif.neurons import BaseNeuron, neuron_entries, register_neuron
from arlif.neurons.registry import _REGISTRY, neuron_classes

SRC = Path(__file__).resolve().parents[1] / "src" / "arlif"
OWNERS = ("neurons", "ops")  # where neurons are defined and their kernels live


def _outside_files():
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] not in OWNERS:
            yield path


def _class_names() -> set[str]:
    names = {c.__name__ for c in neuron_classes()}
    names |= {c.state_type.__name__ for c in neuron_classes()}
    return names


def test_no_neuron_class_is_named_outside_neurons_and_ops():
    # the class names as whole words; "AR-LIF" (the neuron's name in prose) is not the class LIF
    pattern = re.compile(r"(?<![-\w])(" + "|".join(sorted(_class_names())) + r")(?![-\w])")
    hits = [f"{p.relative_to(SRC)}:{i}: {line.strip()}" for p in _outside_files()
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]  # fmt: skip
    assert not hits, "neuron classes named outside neurons/ and ops/:\n" + "\n".join(hits)


def _collections_of_names(tree: ast.AST, names: set[str]):
    for node in ast.walk(tree):
        items = []
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        found = [i.value for i in items if isinstance(i, ast.Constant) and i.value in names]
        if found:
            yield node.lineno, found


def test_no_list_of_neuron_names_outside_neurons_and_ops():
    names = set(_REGISTRY)
    hits = [f"{p.relative_to(SRC)}:{line}: {found}" for p in _outside_files()
            for line, found in _collections_of_names(ast.parse(p.read_text()), names)]  # fmt: skip
    assert not hits, "lists of neuron names outside neurons/ and ops/ (read the registry):\n" + "\n".join(hits)


def test_the_name_list_guard_finds_a_list():
    tree = ast.parse('X = ("arlif", "plif")\nY = {"clif": 1}\nZ = "arlif"\n')
    assert [line for line, _ in _collections_of_names(tree, set(_REGISTRY))] == [1, 2]


def test_registry_entries_are_consistent():
    for e in neuron_entries(aliases=True):
        assert issubclass(e.cls, BaseNeuron) and e.label and e.description, e.name
        mod = e.make()
        assert set(mod.state_names) <= set(mod.state_type._fields)
        ops = mod.update_ops()
        assert ops is not None and set(ops) == {"arith", "transcendental"}, e.name  # every shipped neuron declares it
        if e.alias_of:
            alias = _REGISTRY[e.alias_of]
            assert (alias.cls, dict(alias.options)) == (e.cls, dict(e.options))


def test_register_neuron_refuses_bad_entries():
    from arlif.neurons.lif import LIF

    with pytest.raises(TypeError, match="does not take the preset option"):
        register_neuron("lif_typo", LIF, label="x", description="x", options={"decy": 0.3})
    with pytest.raises(ValueError, match="lower-case"):
        register_neuron("LIF2", LIF, label="x", description="x")
    with pytest.raises(ValueError, match="alias_of"):
        register_neuron("lif2", LIF, label="x", description="x", alias_of="nothing")
    assert "lif_typo" not in _REGISTRY and "lif2" not in _REGISTRY


def test_a_state_name_must_be_a_field_of_the_state_type():
    with pytest.raises(TypeError, match="not fields of state_type"):

        class Bad(BaseNeuron):  # noqa: F841
            state_names = ("v", "q")


class _Quadratic(BaseNeuron):
    """A user's reference-only neuron that declares nothing beyond the minimum: no update cost."""

    def _step_fn(self):
        def step(x, v, *, surrogate, v_threshold):
            h = 0.5 * v + x * x
            s = surrogate(h - v_threshold)
            return s, h - s * v_threshold

        return step

    def _config(self):
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold)


def test_a_neuron_registered_outside_the_package_works_in_the_factory_and_energy():
    from arlif.analysis import energy_report
    from arlif.models import create_model

    register_neuron("quadratic_test", _Quadratic, label="quadratic", description="a test neuron")
    try:
        model = create_model("spiking_cnn1d", num_classes=3, in_channels=1, input_size=(8,), neuron="quadratic_test",
                             channels=[4, 4, 4], kernel=3)
        assert any(isinstance(m, _Quadratic) for m in model.modules())
        with pytest.warns(UserWarning, match="declare no update_ops"):
            report = energy_report(model, torch.rand(2, 5, 1, 8))
        assert report.totals["sops"] >= 0 and torch.isnan(torch.tensor(report.totals["neuron_update_ops"]))
        assert "?" in report.table()
    finally:
        del _REGISTRY["quadratic_test"]


_USER_MODULE = '''
from arlif.neurons import BaseNeuron


def _step(x, v, *, surrogate, v_threshold, gain):
    h = 0.5 * v + gain * x
    s = surrogate(h - v_threshold)
    return s, h - s * v_threshold


class GainLIF(BaseNeuron):
    def __init__(self, gain=1.5, **kw):
        super().__init__(**kw)
        self.gain = gain

    def _step_fn(self):
        return _step

    def _config(self):
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold, gain=self.gain)

    def update_ops(self):
        return {"arith": 7, "transcendental": 0}
'''


def test_a_class_of_your_own_by_module_path_trains_from_the_command_line(tmp_path, monkeypatch, capsys):
    import json

    from arlif.cli import main as cli
    from arlif.neurons import neuron_factory

    (tmp_path / "my_neurons.py").write_text(_USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert neuron_factory("my_neurons:GainLIF", gain=2.0)().gain == 2.0
    run = tmp_path / "run"
    args = ["train", "--neuron", "my_neurons:GainLIF", "--neuron-kwargs", "{gain: 1.2}", "--epochs", "1",
            "--max-steps-per-epoch", "2", "--out", str(run), "--tensorboard", "false"]  # fmt: skip
    assert cli(args) == 0
    assert cli(["energy", str(run / "best.pt"), "--samples", "8", "--json", str(tmp_path / "e.json")]) == 0
    layers = json.loads((tmp_path / "e.json").read_text())["neuron_layers"]
    assert layers and all(L["neuron"] == "GainLIF" and L["ops_per_update"]["arith"] == 7 for L in layers)
    with pytest.raises(ValueError, match="package.module:name"):
        neuron_factory(":GainLIF")
    for spec, msg in [("my_neurons:Nope", "has no class or function 'Nope'"), ("no_such_mod:X", "cannot import")]:
        capsys.readouterr()
        assert cli(["train", "--neuron", spec, "--epochs", "1", "--out", str(tmp_path / "bad")]) == 2
        assert msg in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()  # refused before the run folder is made
