"""`arlif bench` end to end on a tiny input."""

import json

import pytest

from arlif.cli import main


@pytest.mark.cpu_kernels
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
    assert data["settings"] == {"T": 3, "shape": [2, 3], "dtype": "float32", "repeats": 2, "warmup": 0,
                                "skipped": []}  # fmt: skip


def test_bench_refuses_bad_shapes_threads_and_an_empty_run(monkeypatch, capsys):
    for shape in ("2,x", "4x", "2,,3", "2,-1", "0"):
        assert main(["bench", "--neurons", "lif", "--backends", "cpu", "--shape", shape]) == 2, shape
        assert "--shape must be positive" in capsys.readouterr().err
    assert main(["bench", "--neurons", "lif", "--backends", "cpu", "--shape", "2", "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
    assert main(["bench", "--neurons", ",", "--backends", "cpu"]) == 2
    assert "at least one" in capsys.readouterr().err
    # every pair skipped: the reasons are printed even with --quiet, and nothing pretends to have run
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert main(["bench", "--neurons", "lif", "--backends", "triton", "--shape", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "skip lif/triton" in err and "nothing could be benchmarked" in err


def test_bench_rejects_unknown_names(capsys):
    assert main(["bench", "--neurons", "izhikevich"]) == 2
    assert "unknown neuron" in capsys.readouterr().err
    assert main(["bench", "--backends", "cuda"]) == 2


@pytest.mark.cpu_kernels
def test_bench_counts_page_faults_and_steadies_the_heap(tmp_path, capsys):
    import mmap

    import torch

    from arlif import bench

    if bench.resource is None:
        pytest.skip("no page-fault counter on this platform")

    def touch_fresh_pages(x):
        buf = mmap.mmap(-1, 8 << 20)  # 2048 fresh pages, each faulted in by its first write
        for off in range(0, len(buf), mmap.PAGESIZE):
            buf[off] = 1
        buf.close()
        return x * 2

    x = torch.ones(3)
    _, faults = bench._time_once(touch_fresh_pages, x, torch.ones(3), "cpu")
    assert faults >= (8 << 20) // mmap.PAGESIZE

    js = tmp_path / "b.json"
    args = ["--neurons", "lif", "--backends", "cpu", "--shape", "2,3", "--T", "2", "--quiet", "--repeats", "2"]
    assert main(["bench", *args, "--steady-heap", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "faults" in out and "steady heap" in out
    data = json.loads(js.read_text())
    assert data["environment"]["heap"] == "steady"
    assert isinstance(data["results"][0]["page_faults"], (int, float))


def test_steady_heap_without_glibc_is_a_clear_error(monkeypatch, capsys):
    from arlif import bench

    monkeypatch.setattr(bench, "steady_heap", lambda: False)
    args = ["bench", "--neurons", "lif", "--backends", "cpu", "--shape", "2", "--T", "2", "--steady-heap"]
    assert main(args) == 2
    assert "--steady-heap needs glibc" in capsys.readouterr().err


def test_cli_dtypes_match_the_benchmark_and_neurons_come_from_the_registry():
    """The CLI spells the dtype names out (so --help needs no torch); they must be the bench's. The default
    neurons are the registry's benchmark set: one name per kernel configuration, aliases included."""
    from arlif import bench
    from arlif.cli import bench as cli_bench
    from arlif.neurons.registry import bench_entries

    assert sorted(cli_bench.DTYPES) == sorted(bench.DTYPES)
    assert bench.default_neurons() == [e.name for e in bench_entries()] == ["arlif", "lif", "lif_hard", "plif", "clif"]
