"""`arlif bench` end to end on a tiny input."""

import json

from arlif.cli import main


def test_bench_writes_json_and_markdown(tmp_path, capsys):
    js, md = tmp_path / "b.json", tmp_path / "b.md"
    args = ["--neurons", "arlif,clif", "--backends", "torch,cpu", "--shape", "2,3", "--T", "3", "--quiet"]
    rc = main(["bench", *args, "--repeats", "2", "--warmup", "0", "--json", str(js), "--markdown", str(md)])
    assert rc == 0
    data = json.loads(js.read_text())
    rows = {(r["neuron"], r["backend"]): r for r in data["results"]}
    assert set(rows) == {("arlif", "torch"), ("arlif", "cpu"), ("clif", "torch"), ("clif", "cpu")}
    assert rows[("arlif", "torch")]["speedup_vs_torch"] == 1.0
    saved = {b: rows[("arlif", b)]["saved_bytes_per_element"] for b in ("cpu", "torch")}
    assert saved["cpu"] < saved["torch"]
    assert "| arlif | cpu |" in md.read_text()
    assert "arlif" in capsys.readouterr().out


def test_bench_rejects_unknown_names(capsys):
    assert main(["bench", "--neurons", "izhikevich"]) == 2
    assert "unknown neuron" in capsys.readouterr().err
    assert main(["bench", "--backends", "cuda"]) == 2
