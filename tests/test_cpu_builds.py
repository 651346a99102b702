"""The fused CPU kernels built for other CPUs than this one: the x86 instruction-set levels through
``ARLIF_CXXFLAGS`` (the library built into a fresh ``ARLIF_CACHE_DIR``, then the CPU parity tests of
tests/test_fused.py run on it, in float32 and float64, in a subprocess), and aarch64 with a cross compiler,
compiled with warnings as errors (nothing runs it here).

The variants' subprocesses start together, once per module (``builds``): each build takes 10-15 s of one
core, and the CI machine has two. Skipped, with the reason: a variant this CPU cannot run; the variant whose
vector code is that of the default build here (``-march=native``: tests/test_fused.py checks it); the
aarch64 compile where the cross compiler is not installed (``.ci/run`` installs Debian's
``g++-aarch64-linux-gnu`` where it runs as root).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arlif.ops import cpu_build

TESTS = Path(__file__).resolve().parent
# the warnings the kernels must build without, on every target
STRICT = ["-Wall", "-Wextra", "-Werror"]
# name -> (ARLIF_CXXFLAGS, CPU flags the build needs to run, predefined macros it must have, must not have)
X86 = {
    # SSE2 only: the loops left to the auto-vectoriser, no explicit vector code (cpu_common.h), no fma
    "x86-64": ("-march=x86-64 -mno-avx -mno-avx2 -mno-fma -mno-avx512f", set(), {"__SSE2__"},
               {"__AVX__", "__AVX2__", "__FMA__", "__AVX512F__"}),
    # AVX2 + FMA: the 8-wide explicit vectors
    "avx2": ("-march=x86-64-v3", {"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"},
             {"__AVX2__", "__FMA__"}, {"__AVX512F__"}),
    # AVX-512: the 16-wide explicit vectors and the exp table
    "avx512": ("-march=x86-64-v4", {"avx2", "fma", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
               {"__AVX512F__", "__AVX2__", "__FMA__"}, set()),
}  # fmt: skip
# the parity tests run for each variant: float32 for every neuron variant and surrogate, float64 on odd
# shapes and several blocks, and the vector/tail split of the kernels (results independent of position)
PARITY = "cpu and (test_parity_float32 or test_parity_shapes or do_not_depend_on_position)"
AARCH64_CXX = "aarch64-linux-gnu-g++"


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _macros(cxx: str, flags: list[str]) -> set[str]:
    """The macros ``cxx`` predefines with ``flags``."""
    out = subprocess.run([cxx, *flags, "-dM", "-E", "-x", "c++", os.devnull], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return {line.split()[1] for line in out.stdout.splitlines() if line.startswith("#define ")}


def _with_cxxflags(flags: str | None) -> list[str]:
    """cpu_build's flags for this compiler with ``ARLIF_CXXFLAGS`` set to ``flags`` (None: unset)."""
    old = os.environ.pop("ARLIF_CXXFLAGS", None)
    try:
        if flags is not None:
            os.environ["ARLIF_CXXFLAGS"] = flags
        return cpu_build.build_flags(cpu_build.compiler())
    finally:
        os.environ.pop("ARLIF_CXXFLAGS", None)
        if old is not None:
            os.environ["ARLIF_CXXFLAGS"] = old


# the macros that choose the code paths of cpu_common.h
PATH_MACROS = {"__AVX__", "__AVX2__", "__FMA__", "__AVX512F__"}


@functools.cache
def _x86_skip(name: str) -> str | None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"not an x86-64 CPU ({platform.machine()})"
    if cpu_build.compiler() is None:
        return "no C++ compiler"
    missing = X86[name][1] - _cpu_flags()
    if missing:
        return f"this CPU cannot run the {name} build: it lacks {sorted(missing)}"
    cxx = cpu_build.compiler()
    if _macros(cxx, _with_cxxflags(None)) & PATH_MACROS == _macros(cxx, _with_cxxflags(X86[name][0])) & PATH_MACROS:
        # its vector code is that of the default build (-march=native), which tests/test_fused.py checks
        return f"the {name} build takes the code path of this CPU's default build, which test_fused.py checks"
    return None


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """name -> (process, folder) of every variant that can run here, all started at once; the aarch64
    compile among them where the cross compiler is installed."""
    started = {}
    for name, (flags, *_) in X86.items():
        if _x86_skip(name):
            continue
        folder = tmp_path_factory.mktemp(name)
        env = {**os.environ, "ARLIF_CXXFLAGS": " ".join([flags, *STRICT]), "ARLIF_CACHE_DIR": str(folder)}
        cmd = [sys.executable, "-m", "pytest", str(TESTS / "test_fused.py"), "-o", "addopts=", "-q", "-p",
               "no:cacheprovider", "-k", PARITY]  # fmt: skip
        started[name] = (subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, cwd=TESTS.parent), folder)  # fmt: skip
    cross = shutil.which(AARCH64_CXX)
    if cross:
        folder = tmp_path_factory.mktemp("aarch64")
        flags = cpu_build.FLAGS + cpu_build._openmp_flags(cross) + STRICT
        cmd = [cross, *flags, *map(str, cpu_build.SOURCES), "-o", str(folder / "arlif_cpu.so")]
        started["aarch64"] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
                              folder)  # fmt: skip
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    return out


@pytest.mark.parametrize("name", list(X86))
def test_x86_build_passes_the_parity_tests(name, builds):
    why = _x86_skip(name)
    if why:
        pytest.skip(why)
    flags, _, need, forbid = X86[name]
    # the variant's flags, as cpu_build puts them after its own (-march=native among them), select that level
    macros = _macros(cpu_build.compiler(), _with_cxxflags(flags))
    assert need <= macros and not (forbid & macros), (sorted(need - macros), sorted(forbid & macros))
    proc, folder = builds[name]
    out = _finish(proc)
    assert proc.returncode == 0, f"{name} ({flags}):\n{out[-6000:]}"
    assert " passed" in out and "skipped" not in out, out[-2000:]
    # the tests ran on this variant's library: built into the fresh cache folder, and only there
    assert len(list((folder / "kernels").glob("arlif_cpu_*.so"))) == 1


def test_aarch64_cross_compile_without_warnings(builds):
    if "aarch64" not in builds:
        pytest.skip(f"no aarch64 cross compiler ({AARCH64_CXX}; Debian: apt-get install g++-aarch64-linux-gnu)")
    proc, folder = builds["aarch64"]
    out = _finish(proc)
    assert proc.returncode == 0, out[-6000:]
    assert out.strip() == "", out  # no warnings either
    head = (folder / "arlif_cpu.so").read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183  # e_machine EM_AARCH64
