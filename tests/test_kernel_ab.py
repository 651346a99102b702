"""benchmarks/kernel_ab.py and the build API it stands on (arlif.ops.cpu_build.build, open_library, using)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arlif.ops import cpu_build
from arlif.ops.backends import BackendUnavailableError

pytestmark = pytest.mark.cpu_kernels
ROOT = Path(__file__).resolve().parents[1]


def _copy_sources(dst: Path) -> Path:
    shutil.copytree(cpu_build.HEADER.parent, dst, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return dst


def test_a_verbatim_copy_of_the_sources_is_the_same_library(tmp_path):
    """The cache key is the sources' relative paths and contents (not where they lie), the compiler, its flags
    and the CPU: a copy builds nothing new, and the library loads."""
    assert cpu_build.sources() == cpu_build.SOURCES
    path = cpu_build.build()
    assert cpu_build.build(root=_copy_sources(tmp_path / "ops")) == path
    assert cpu_build.open_library(path).arlif_kernels_abi_version() == cpu_build.ABI_VERSION


def test_flags_change_the_library_key(tmp_path, monkeypatch):
    """``build(cxxflags)`` takes the place of $ARLIF_CXXFLAGS: the flags are part of the cache key. Checked
    on a folder whose kernels do not compile, so that nothing slow is built: the error names the flags."""
    broken = _copy_sources(tmp_path / "ops")
    (broken / "cpu_common.h").write_text("this is not C++\n")  # every source includes it: fails at once
    monkeypatch.setenv("ARLIF_CXXFLAGS", "-DFROM_THE_ENVIRONMENT")
    monkeypatch.setenv("ARLIF_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(BackendUnavailableError, match="building the fused CPU kernels failed") as err:
        cpu_build.build("-DGIVEN_HERE", root=broken)
    assert "-DGIVEN_HERE" in str(err.value) and "-DFROM_THE_ENVIRONMENT" not in str(err.value)
    with pytest.raises(BackendUnavailableError, match="-DFROM_THE_ENVIRONMENT"):
        cpu_build.build(root=broken)


def test_a_folder_without_sources_is_refused_by_name(tmp_path):
    with pytest.raises(BackendUnavailableError, match=r"holds no kernel sources.*cpu_common\.h"):
        cpu_build.build(root=tmp_path)


def test_using_runs_kernels_from_the_given_library_and_restores_the_loaded_one():
    loaded = cpu_build.load()
    other = cpu_build.open_library(cpu_build.build())  # a second handle of the same file: another object
    with cpu_build.using(other) as lib:
        assert lib is other and cpu_build.load() is other
    assert cpu_build.load() is loaded
    with pytest.raises(RuntimeError), cpu_build.using(other):
        raise RuntimeError("the library is put back on errors too")
    assert cpu_build.load() is loaded


def _run(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "kernel_ab.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


def test_kernel_ab_times_two_builds_in_turn(tmp_path):
    """One library against itself (the default): both variants timed in every round, the paired B/A ratio within
    the per-round ratios, the neuron-to-first ratio per variant, and a note that A and B are the same build."""
    out = tmp_path / "ab.json"
    proc = _run(["--neurons", "lif_soft,arlif", "--shape", "4,32", "--T", "3", "--rounds", "3", "--warmup", "1",
                 "--threads", "1", "--json", str(out)], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the same library" in proc.stdout and "CPU " in proc.stdout
    data = json.loads(out.read_text())
    assert data["same_library"] and data["a"]["library"] == data["b"]["library"]
    rows = {r["neuron"]: r for r in data["results"]}
    assert set(rows) == {"lif_soft", "arlif"}
    for r in rows.values():
        assert len(r["a_ms"]) == len(r["b_ms"]) == 3
        ratios = sorted(b / a for a, b in zip(r["a_ms"], r["b_ms"]))
        assert r["b_over_a"][0] == pytest.approx(ratios[1])
    assert set(data["ratio_to_first"]) == {"A:arlif/lif_soft", "B:arlif/lif_soft"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--b-src", "."], "is not a kernel source folder"),
        (["--shape", "4,,32"], "--shape must be positive integers separated by commas"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--neurons", "no_such_neuron"], "no_such_neuron"),
        (["--rounds", "0"], "--rounds and --T must be >= 1"),
    ],
)
def test_kernel_ab_refuses_bad_input_before_building(tmp_path, args, message):
    proc = _run([*args, "--b-flags=-DNEVER_BUILT"], tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr and "build A" not in proc.stdout


def test_kernel_ab_reports_a_failed_build_without_a_traceback(tmp_path):
    broken = _copy_sources(tmp_path / "ops")
    (broken / "cpu_common.h").write_text("this is not C++\n")  # every source includes it: fails at once
    proc = _run(["--b-src", str(broken), "--rounds", "1"], tmp_path)
    assert proc.returncode == 1
    assert "build B failed" in proc.stderr and "this is not C++" in proc.stderr and "Traceback" not in proc.stderr
