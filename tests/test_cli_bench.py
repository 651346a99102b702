"""`arlif bench` end to end on a tiny input."""

import json
import os
import platform
import statistics

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
    assert (cli_bench.BACKENDS, cli_bench.DEFAULT_BACKENDS) == (bench.BACKENDS, bench.DEFAULT_BACKENDS)
    assert bench.default_neurons() == [e.name for e in bench_entries()] == ["arlif", "lif", "lif_hard", "plif", "clif"]


class _Traffic:
    """Counts the bytes the aten ops run inside it read and write, from their tensors' sizes and schemas: an
    argument the op writes to (``copy_``'s destination, an ``out=``) is written, every other tensor argument
    read, and a returned tensor that aliases no argument (a fresh output) written. Views move nothing."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        outer = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                outer._count(func, args, kwargs, out)
                return out

        self.mode = Mode()
        self.read = self.written_in_place = self.written_fresh = 0
        self.ops: list[str] = []

    def _count(self, func, args, kwargs, out):
        import torch

        schema = func._schema
        if any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns):
            return  # a view: no data moved
        self.ops.append(schema.name.split("::")[-1])
        values = dict(zip([a.name for a in schema.arguments], args)) | kwargs
        for arg in schema.arguments:
            t = values.get(arg.name)
            if isinstance(t, torch.Tensor):
                if arg.alias_info is not None and arg.alias_info.is_write:
                    self.written_in_place += t.nbytes
                else:
                    self.read += t.nbytes
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for r, t in zip(schema.returns, outs):
            if r.alias_info is None and isinstance(t, torch.Tensor):
                self.written_fresh += t.nbytes

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)


@pytest.mark.parametrize("neuron", ["arlif", "lif", "clif"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_roofline_moves_the_bytes_of_the_traffic_model(neuron, dtype):
    """The roofline's forward+backward reads and writes exactly the fused op's bytes of the traffic model, and
    writes its two outputs (spikes, input gradient) into fresh tensors, as the fused op does; the rest (the
    scratch state) goes to buffers kept between runs."""
    import torch

    from arlif import bench

    tdtype = bench.DTYPES[dtype]
    run = bench._runner(neuron, "roofline", tdtype, "cpu")
    base = bench._make_input((3, 5), 4, tdtype, "cpu")
    grad = torch.rand_like(base)
    run(base.clone().requires_grad_())  # the first call makes the kept buffers, as the untimed warm-up does
    x = base.clone().requires_grad_()
    with _Traffic() as traffic:
        out = run(x)
        out.backward(grad)
    numel, e = base.numel(), base.element_size()
    assert traffic.read + traffic.written_in_place + traffic.written_fresh == bench._traffic_bytes(neuron, numel, e)
    assert traffic.written_fresh == 2 * numel * e  # spikes and grad_x, fresh every run
    assert out.shape == x.shape and x.grad is not None and x.grad.shape == x.shape
    assert traffic.ops == ["mul", "copy_", "addcmul"]


@pytest.mark.cpu_kernels
def test_bench_roofline_fraction_compiled_row_and_cpu_header(tmp_path, capsys):
    """One run with every CPU backend: a roofline row per neuron, each row's fraction of it (roofline time /
    row time in each round, then the median), the compiled row (aot_eager: it traces forward and backward as
    inductor does, quickly) with its compile time apart, and the CPU named in text, Markdown and JSON."""
    from arlif import bench

    js, md = tmp_path / "b.json", tmp_path / "b.md"
    args = ["--neurons", "clif,lif", "--backends", "torch,roofline,cpu", "--compiled", "--compile-backend",
            "aot_eager", "--shape", "2,3", "--T", "3", "--quiet", "--repeats", "3", "--warmup", "1"]  # fmt: skip
    assert main(["bench", *args, "--json", str(js), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    data = json.loads(js.read_text())
    rows = {(r["neuron"], r["backend"]): r for r in data["results"]}
    assert set(rows) == {(n, b) for n in ("clif", "lif") for b in ("torch", "roofline", "cpu", "compiled")}
    for (neuron, backend), r in rows.items():
        roof = rows[(neuron, "roofline")]["times_ms"]
        assert len(r["times_ms"]) == 3 and r["median_ms"] == pytest.approx(statistics.median(r["times_ms"]))
        per_round = [a / b for a, b in zip(roof, r["times_ms"])]
        assert r["roofline_fraction"] == pytest.approx(statistics.median(per_round), rel=1e-12)
        assert (r["compile_s"] is not None) == (backend == "compiled")
        assert (r["bandwidth_gbs"] is not None) == (backend in ("roofline", "cpu"))
    assert rows[("lif", "roofline")]["roofline_fraction"] == 1.0
    assert all(rows[(n, "compiled")]["compile_s"] > 0 for n in ("clif", "lif"))
    assert data["settings"]["compile_backend"] == "aot_eager"

    cpu = data["environment"]["cpu"]
    assert cpu == {**bench.cpu_info(), "threads": cpu["threads"]}
    assert set(cpu) == {"model", "flags", "cores", "logical", "usable", "threads"} and cpu["model"]
    assert cpu["cores"] >= 1 and cpu["logical"] >= cpu["usable"] >= 1
    line = bench.cpu_line(cpu)
    assert cpu["model"] in line and f"{cpu['cores']} cores" in line
    if cpu["flags"] is not None:
        assert all(f in bench.CPU_FLAGS for f in cpu["flags"])
        assert " ".join(cpu["flags"]) in line
    text = md.read_text()
    assert line in out and line in text
    assert "| of roofline |" in text and "| compile (s) |" in text and "| clif | roofline |" in text
    columns = out.splitlines()[3 + bool(data["environment"]["kernel_target"])]
    assert "roofline" in columns and "compile s" in columns
    # what the kernels were compiled for, as the compiler resolved -march=native (GCC; None with Clang)
    target = data["environment"]["kernel_target"]
    from arlif.ops import cpu_build

    assert target == cpu_build.build_target()
    if target is not None:
        assert target.startswith("-march=") and f"CPU kernels built for {target}" in out


def test_build_target_follows_arlif_cxxflags(monkeypatch):
    """The resolved target names the -march that ARLIF_CXXFLAGS selects, not the CPU's."""
    from arlif.ops import cpu_build

    cxx = cpu_build.compiler()
    if cxx is None or platform.machine().lower() not in ("x86_64", "amd64") or cpu_build.build_target() is None:
        pytest.skip("needs GCC on x86-64")
    monkeypatch.setenv("ARLIF_CXXFLAGS", "-march=x86-64-v3")
    assert cpu_build.build_target().split()[0] == "-march=x86-64-v3"


def test_cpu_info_reads_the_flags_that_matter(monkeypatch):
    """From /proc/cpuinfo: model, the flags of CPU_FLAGS it has (NEON as asimd on aarch64), physical cores
    (distinct core ids) and logical CPUs."""
    from arlif import bench

    x86 = "\n\n".join(
        f"processor\t: {i}\nmodel name\t: Some CPU 9000\nphysical id\t: 0\ncore id\t: {i // 2}\n"
        "flags\t\t: fpu sse4_2 avx avx2 fma bmi2 avx512f\n"
        for i in range(4)
    )
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n\nprocessor\t: 1\nFeatures\t: fp asimd\n"
    monkeypatch.setattr(bench, "_cpuinfo_blocks", lambda: bench._parse_cpuinfo(x86))
    info = bench.cpu_info()
    assert (info["model"], info["flags"], info["cores"], info["logical"]) == (
        "Some CPU 9000", ["sse4_2", "avx", "avx2", "fma", "avx512f"], 2, 4)  # fmt: skip
    monkeypatch.setattr(bench, "_cpuinfo_blocks", lambda: bench._parse_cpuinfo(arm))
    info = bench.cpu_info()
    assert info["flags"] == ["asimd"] and info["cores"] == info["logical"] == 2 and info["model"]
    monkeypatch.setattr(bench, "_cpuinfo_blocks", lambda: [])
    assert bench.cpu_info()["flags"] is None and "flags unknown" in bench.cpu_line(bench.cpu_info())


def test_model_step_benchmark_times_neurons_in_turn(tmp_path):
    """benchmarks/model_step.py: one timed step per neuron and round, ratios to the first neuron, and with
    --neuron-layers the neuron layers alone and the step ratio they imply."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "step.json"
    cmd = [sys.executable, str(root / "benchmarks" / "model_step.py"), "--neurons", "lif_soft,arlif", "--T", "2",
           "--batch", "1", "--repeats", "2", "--warmup", "0", "--threads", "1", "--json", str(out),
           "--neuron-layers", "3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["neuron"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"lif_soft", "arlif"}
    assert rows["lif_soft"]["ratio_median"] == 1.0 and len(rows["arlif"]["step_ms_all"]) == 2
    ratios = [a / b for a, b in zip(rows["arlif"]["step_ms_all"], rows["lif_soft"]["step_ms_all"])]
    assert min(ratios) - 0.01 <= rows["arlif"]["ratio_median"] <= max(ratios) + 0.01
    assert "ratio to lif_soft" in proc.stdout and "CPU " in proc.stdout
    # --neuron-layers: the 17 neuron layers alone, 3 rounds; the estimate is 1 + (layer-time difference) / step
    assert "the 17 neuron layers alone" in proc.stdout
    lif, ar = rows["lif_soft"], rows["arlif"]
    assert len(ar["layers_ms_all"]) == 3 and lif["layers_diff_ms"] == 0.0 and lif["estimated_ratio"] == 1.0
    diffs = sorted(a - b for a, b in zip(ar["layers_ms_all"], lif["layers_ms_all"]))
    assert ar["layers_diff_ms"] == pytest.approx(diffs[1], abs=0.02)
    assert ar["estimated_ratio"] == pytest.approx(1 + ar["layers_diff_ms"] / lif["step_ms"], rel=1e-9)


def test_paired_ratio_takes_the_ratio_within_each_round():
    """A drift that slows both rows of a round alike leaves the paired ratio exact, where the ratio of the
    medians is off; unequal or empty series are refused."""
    from arlif.bench import paired_ratio

    drift = [1.0, 1.0, 3.0, 3.0, 3.0]  # the machine got 3x slower after two rounds
    num = [2.0 * d for d in drift]
    den = [d * k for d, k in zip(drift, (1.0, 1.0, 1.0, 1.0, 0.5))]  # one round where the denominator was fast
    med, q1, q3 = paired_ratio(num, den)
    assert med == 2.0 and q1 == 2.0 and q3 == 2.0
    assert statistics.median(num) / statistics.median(den) != 2.0
    assert paired_ratio([3.0], [2.0]) == (1.5, 1.5, 1.5)
    for a, b in (([1.0], [1.0, 2.0]), ([], [])):
        with pytest.raises(ValueError, match="equally long"):
            paired_ratio(a, b)


def test_paired_ratio_script_reads_a_bench_json(tmp_path):
    """benchmarks/paired_ratio.py prints the per-round ratio of two rows of a bench JSON, names the rows a
    file has when asked for one it lacks, and says what is wrong with an odd row count or a file without
    per-round times."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    js = tmp_path / "b.json"
    rows = [dict(neuron="arlif", backend="cpu", times_ms=[4.0, 6.0, 9.0]),
            dict(neuron="lif_soft", backend="cpu", times_ms=[2.0, 2.0, 3.0])]  # fmt: skip
    js.write_text(json.dumps({"results": rows}))
    script = [sys.executable, str(root / "benchmarks" / "paired_ratio.py"), str(js)]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    ok = subprocess.run([*script, "arlif/cpu", "lif_soft/cpu"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "arlif/cpu / lif_soft/cpu: 3.000 (quartiles 2.500, 3.000; 3 rounds)" in ok.stdout
    bad = subprocess.run([*script, "arlif/triton", "lif_soft/cpu"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "no row arlif/triton" in bad.stderr and "arlif/cpu, lif_soft/cpu" in bad.stderr
    odd = subprocess.run([*script, "arlif/cpu"], capture_output=True, text=True, env=env)
    assert odd.returncode == 2 and "give the rows in pairs" in odd.stderr
    old = tmp_path / "old.json"  # written before the bench kept its per-round times
    old.write_text(json.dumps({"results": [{k: v for k, v in r.items() if k != "times_ms"} for r in rows]}))
    stale = subprocess.run([*script[:-1], str(old), "arlif/cpu", "lif_soft/cpu"], capture_output=True, text=True,
                           env=env)  # fmt: skip
    assert stale.returncode == 2 and "no per-round times" in stale.stderr and "run the bench again" in stale.stderr


def test_header_names_the_streaming_threshold():
    from arlif import bench

    env = dict(heap="system", torch="2.x", threads=2, cpu=bench.cpu_info(), kernel_target="-march=x")
    assert bench.header([], {**env, "streaming_threshold": 24 * 2**20})[-1].endswith(
        "; outputs streamed past the cache in calls over 24.0 MiB"
    )
    assert bench.header([], {**env, "streaming_threshold": 2**63 - 1})[-1].endswith("never streamed past the cache")
    assert bench.header([], {**env, "streaming_threshold": None})[-1] == "CPU kernels built for -march=x"
