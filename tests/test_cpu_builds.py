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


def _x86_cannot_run(name: str) -> str | None:
    """Why the x86 variant ``name`` cannot be built and run here, or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"not an x86-64 CPU ({platform.machine()})"
    if cpu_build.compiler() is None:
        return "no C++ compiler"
    missing = X86[name][1] - _cpu_flags()
    if missing:
        return f"this CPU cannot run the {name} build: it lacks {sorted(missing)}"
    return None


@functools.cache
def _x86_skip(name: str) -> str | None:
    why = _x86_cannot_run(name)
    if why:
        return why
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


# ---- the loops meant to vectorise do, on every target -------------------------------------------------------
# A `#pragma GCC ivdep` in the kernels marks an inner loop over the neurons of a block, written to be
# vectorised. GCC's optimisation report (-fopt-info-vec-optimized) says which loops it vectorised; a loop
# it leaves scalar on one target (as the LIF loops were on AVX2 and SSE2 before -fno-trapping-math) runs
# several times slower there with the same results, so only this check catches it.
VECTOR_TARGETS = {name: flags for name, (flags, *_) in X86.items()}


def _gcc(cxx: str | None) -> bool:
    if cxx is None:
        return False
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    return "clang" not in version.lower()


def _marked_loops(source: Path) -> list[int]:
    """Line numbers of the loops that follow a `#pragma GCC ivdep`."""
    lines = source.read_text().splitlines()
    return [i + 2 for i, line in enumerate(lines) if line.strip() == "#pragma GCC ivdep"]


@pytest.fixture(scope="module")
def vector_reports(tmp_path_factory):
    """target -> (processes compiling each family's kernels with that target's flags and GCC's
    vectorisation report, folder). Compile only (-S): nothing runs, so every x86 level is checked on any
    x86-64 machine, and aarch64 where the cross compiler is installed."""
    targets = {}
    cxx = cpu_build.compiler()
    if platform.machine().lower() in ("x86_64", "amd64") and _gcc(cxx):
        targets.update({name: (cxx, flags.split()) for name, flags in VECTOR_TARGETS.items()})
    cross = shutil.which(AARCH64_CXX)
    if cross:
        targets["aarch64"] = (cross, [])
    started = {}
    for name, (compiler, flags) in targets.items():
        folder = tmp_path_factory.mktemp(f"vec-{name}")
        base = [f for f in cpu_build.FLAGS if f != "-shared"] + cpu_build._openmp_flags(compiler)
        procs = []
        for src in cpu_build.SOURCES[1:]:  # the families' kernels (cpu_abi.cpp has no loops)
            report = folder / f"{src.parent.name}.txt"
            cmd = [compiler, *base, *flags, f"-fopt-info-vec-optimized={report}", "-S", "-o", os.devnull, str(src)]
            procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
                          src, report))  # fmt: skip
        started[name] = procs
    yield started
    for procs in started.values():
        for proc, *_ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("name", [*VECTOR_TARGETS, "aarch64"])
def test_marked_loops_are_vectorised(name, vector_reports):
    if name not in vector_reports:
        pytest.skip("needs GCC on x86-64" if name != "aarch64" else f"no aarch64 cross compiler ({AARCH64_CXX})")
    reports = []
    for proc, _src, report in vector_reports[name]:
        out = _finish(proc)
        assert proc.returncode == 0, out[-4000:]
        reports.append(report.read_text())
    # the header's loops (the surrogates) are compiled into every family: vectorised in any counts
    sources = [cpu_build.HEADER, *cpu_build.SOURCES[1:]]
    missed = []
    for src in sources:
        tail = f"{src.parent.name}/{src.name}"
        vectorised = {
            int(line.split(":")[1])
            for text in reports
            for line in text.splitlines()
            if "loop vectorized" in line and Path(os.path.normpath(line.split(":")[0])) == src
        }
        marked = _marked_loops(src)
        assert marked, f"no marked loops found in {src}"
        missed += [f"{tail}:{n}" for n in marked if n not in vectorised]
    assert not missed, f"loops left scalar by the {name} build: {missed}"


# ---- the float exp of each build level: accuracy, and vector code equal to its scalar twin ------------------
# The parity tests compare whole neuron runs with a tolerance that a wrong table entry or coefficient of the
# exp (an error of 1e-5) passes; this harness measures Math<float>::exp_neg itself against double exp.
EXP_HARNESS = r"""
#include "cpu_common.h"
#include <cstdio>
int main() {
    const long M = 2000000;
    double worst = 0, sum = 0;
    for (long i = 0; i <= M; ++i) {
        const float x = static_cast<float>(-87.0 + 174.0 * i / M);
        const double rel = std::fabs(Math<float>::exp_neg(x) / std::exp(-static_cast<double>(x)) - 1.0);
        worst = std::max(worst, rel);
        sum += rel;
    }
    long differ = 0, vectors = 0;
#ifdef ARLIF_HAVE_VECTORS
    for (long i = 0; i + VW <= M; i += VW, ++vectors) {
        float xs[VW], got[VW];
        for (int j = 0; j < VW; ++j) xs[j] = static_cast<float>(-87.0 + 174.0 * ((i + j) * 7919 % M) / M);
        vf in[1] = {vload(xs)}, out[1];
        vexp_neg<1>(in, out);
        vstore(got, out[0]);
        for (int j = 0; j < VW; ++j) differ += got[j] != Math<float>::exp_neg(xs[j]);
    }
#endif
    std::printf("%.6g %.6g %ld %ld\n", worst, sum / (M + 1), differ, vectors);
}
"""


@pytest.mark.parametrize("name", list(X86))
def test_float_exp_is_accurate_on_every_x86_level(name, tmp_path):
    why = _x86_cannot_run(name)  # every level that runs here, the one of the default build included
    if why:
        pytest.skip(why)
    src = tmp_path / "exp_harness.cpp"
    src.write_text(EXP_HARNESS)
    flags = [f for f in cpu_build.FLAGS if f not in ("-shared", "-fPIC")]
    exe = tmp_path / "exp_harness"
    build = subprocess.run([cpu_build.compiler(), *flags, *X86[name][0].split(), f"-I{cpu_build.HEADER.parent}",
                            str(src), "-o", str(exe)], capture_output=True, text=True)  # fmt: skip
    assert build.returncode == 0, build.stderr[-4000:]
    worst, mean, differ, vectors = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    # the bounds cpu_common.h states: 4.0e-7 at most on [-87, 87], 1.2e-7 to 1.3e-7 on average
    assert float(worst) < 4.1e-7 and float(mean) < 1.4e-7, (name, worst, mean)
    assert int(differ) == 0, f"{name}: the vector exp differs from its scalar twin in {differ} values"
    # the levels with explicit vector code (AVX2+FMA, AVX-512) compared it with the scalar exp
    assert (int(vectors) > 0) == ("__FMA__" in X86[name][2]), (name, vectors)
