"""The examples of docs/own_data.md run as written, on tiny generated data in the folders they name.

A fenced block after a line ``<!-- example: NAME -->`` belongs to the example NAME; ``<!-- example: NAME file
PATH -->`` marks a block that the example writes to PATH before its other blocks run. ``bash`` blocks are
``arlif`` commands (run in this process; a ``PYTHONPATH=DIR`` prefix puts DIR on ``sys.path``), ``python``
blocks are executed. Every example runs in a fresh folder with the data of ``DATA[NAME]``."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "own_data.md"
sys.path.insert(0, str(ROOT / "tests" / "data"))
from formats import write_event_folder, write_image_folder, write_nmnist  # noqa: E402

from arlif.data import tonic_sets  # noqa: E402

MARK = r"(?:<!-- example: (?P<name>[\w-]+)(?: file (?P<file>\S+))? -->\n)?"
BLOCK = re.compile(r"^" + MARK + r"```(?P<lang>\w*)\n(?P<code>.*?)^```", re.S | re.M)


def blocks(text: str) -> list[dict]:
    return [m.groupdict() for m in BLOCK.finditer(text)]


def examples() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for b in blocks(PAGE.read_text(encoding="utf-8")):
        if b["name"]:
            out.setdefault(b["name"], []).append(b)
    return out


def images(tmp):
    write_image_folder(tmp / "data/pets", classes=("cat", "dog"), counts=(("train", 4), ("test", 2)), size=(40, 48))


def events(tmp):
    write_event_folder(tmp / "data/my-dvs", counts=(("train", 3), ("test", 2)), sensor=(34, 34), n=300)


def nmnist(tmp):
    write_nmnist(tmp / "data/tonic")


DATA = {"images": images, "events": events, "tonic": nmnist, "python-model": events, "cli-model": images}


def run_shell(code: str, monkeypatch) -> None:
    from arlif.cli import main as cli

    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        while re.match(r"^[A-Z_]+=", words[0]):
            name, _, value = words.pop(0).partition("=")
            assert name == "PYTHONPATH", f"an example sets {name}, which this test does not know"
            monkeypatch.syspath_prepend(str(Path(value).resolve()))
        assert words[0] == "arlif", line
        assert cli(words[1:]) == 0, line


@pytest.fixture
def no_user_module(monkeypatch):
    """``my_models`` imported by another test's folder must not stand in for the example's, nor the example's
    for theirs."""
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    yield
    sys.modules.pop("my_models", None)


def test_every_code_block_of_the_page_is_an_example_or_a_layout():
    untested = [b["code"][:60] for b in blocks(PAGE.read_text(encoding="utf-8")) if b["lang"] and not b["name"]]
    assert not untested, f"code blocks in {PAGE.name} that no test runs: {untested}"
    assert sorted(examples()) == sorted(DATA)


@pytest.mark.parametrize("name", sorted(DATA))
def test_example_runs(name, tmp_path, monkeypatch, capsys, no_user_module):
    if name == "tonic":
        tonic = pytest.importorskip("tonic")
        # tonic's NMNIST checks for the downloaded archive and 10,000 files; the generated files are fewer
        monkeypatch.setattr(tonic.datasets.NMNIST, "_check_exists", lambda self: True)
    monkeypatch.chdir(tmp_path)
    # from_tonic's default cache, in the test's folder (not $ARLIF_CACHE_DIR: the kernels are cached there too)
    monkeypatch.setattr(tonic_sets, "default_cache_dir", lambda: tmp_path / "cache" / "tonic")
    DATA[name](tmp_path)
    namespace: dict = {"__name__": "__main__"}
    for b in examples()[name]:
        if b["file"]:
            (tmp_path / b["file"]).write_text(b["code"])
        elif b["lang"] == "bash":
            run_shell(b["code"], monkeypatch)
        elif b["lang"] == "python":
            exec(compile(b["code"], f"{PAGE.name} example {name}", "exec"), namespace)
        else:
            raise AssertionError(f"example {name}: a {b['lang']!r} block")
    out = capsys.readouterr().out
    runs = {"images": "pets", "events": "my-dvs", "tonic": "nmnist", "python-model": "my-net", "cli-model": "mine"}
    summary = json.loads((tmp_path / "runs" / runs[name] / "summary.json").read_text())
    assert summary["epochs"] == 2 and 0 <= summary["final_acc"] <= 100
    if name in ("images", "events", "cli-model"):
        assert "top-1 accuracy" in out  # arlif eval ran
    if name == "images":
        assert "cat" in out and "dog" in out  # arlif data info listed the classes
    if name == "tonic":
        train_set = namespace["train_set"]
        assert train_set.num_classes == 10 and len(train_set) == 4 and train_set.targets == [0, 0, 1, 1]
        assert tuple(train_set[0][0].shape) == (8, 2, 32, 32) and float(train_set[0][0].sum()) > 0
        assert str(train_set.cache_folder).startswith(str(tmp_path / "cache" / "tonic" / "NMNIST-4-"))
        assert f"10 (8, 2, 32, 32) {train_set.cache_folder}" in out
    if name == "python-model":
        assert re.search(r"^best \d+\.\d%, final \d+\.\d%$", out, re.M)
    if name == "cli-model":
        assert "model: my_models:build" in (tmp_path / "runs/mine/config.yaml").read_text()
