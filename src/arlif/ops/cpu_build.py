"""Build and load the fused CPU kernels on first use: one shared library from every family's
``cpu_kernels.cpp`` (``arlif.ops.<family>/``), the shared ``cpu_common.h`` and ``cpu_abi.cpp``.

The kernels are plain C++ without torch headers, compiled by the system C++ compiler into a shared
library and called through :mod:`ctypes` with raw data pointers (each family's ``cpu.py`` declares its
entry points). We do this by hand rather than with ``torch.utils.cpp_extension.load_inline`` because that
always compiles against the torch headers, which takes about a minute on a small machine (and in every fresh
CI run); this file builds in seconds.

The library is cached under ``$ARLIF_CACHE_DIR`` (default ``~/.cache/arlif/kernels``), keyed by a hash of
the source, the compiler, its flags and the CPU's instruction-set flags (``-march=native``), so a cache
shared between different machines never loads code built for another CPU. Set ``ARLIF_CXX`` to choose
the compiler and ``ARLIF_CXXFLAGS`` to add flags, and ``ARLIF_STREAMING_STORES`` for when outputs bypass
the cache (:func:`streaming_threshold`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from .._files import cache_root, chmod_like_new_file
from .backends import BackendUnavailableError

_HERE = Path(__file__).parent
HEADER = _HERE / "cpu_common.h"
ABI_SOURCE = _HERE / "cpu_abi.cpp"


def sources(root: Path = _HERE) -> list[Path]:
    """The C++ sources of the library under ``root`` (an ``arlif/ops`` folder): the ABI file, then every
    family's kernels, found rather than listed (a new family needs no entry here). The shared header is
    ``root / "cpu_common.h"``."""
    return [root / ABI_SOURCE.name, *sorted(root.glob("*/cpu_kernels.cpp"))]


SOURCES = sources()

# The library's ABI version and block size, defined here only and given to the compiler: the loaded library
# must report the same version, and the host allocates one gradient partial per BLOCK neurons.
ABI_VERSION = 1
BLOCK = 128
# -fno-trapping-math: the kernels never read the floating-point exception flags, and without it GCC will not
# turn the spike test `u >= 0 ? 1 : 0` into a vector compare-and-select where the target lacks masked
# operations (AVX2, SSE): the LIF loops then stayed scalar, ~8x slower than the AVX-512 build. It permits no
# reassociation or contraction (that is -ffast-math / -ffp-contract), so results stay bit for bit the same.
FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-ffp-contract=off", "-fno-math-errno",
         "-fno-trapping-math", f"-DARLIF_ABI_VERSION={ABI_VERSION}", f"-DARLIF_BLOCK={BLOCK}"]  # fmt: skip

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_error: str | None = None


def compiler() -> str | None:
    """Path of the C++ compiler that will build the kernels, or ``None``."""
    name = os.environ.get("ARLIF_CXX")
    if name:
        return shutil.which(name)
    for cand in ("g++", "c++", "clang++"):
        path = shutil.which(cand)
        if path:
            return path
    return None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _accepts(cxx: str, flag: str, code: str = "int main(){}", link: bool = False) -> bool:
    """Whether ``cxx`` compiles ``code`` with ``flag`` (and links it, with ``link``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = ["-o", os.path.join(tmp, "probe")] if link else ["-fsyntax-only"]
        probe = subprocess.run([cxx, flag, "-x", "c++", "-", *out], input=code, capture_output=True, text=True)
    return probe.returncode == 0


def _march_flags(cxx: str) -> list[str]:
    """``-march=native`` where the compiler accepts it (gcc/clang on x86 and most ARM builds)."""
    return ["-march=native"] if _accepts(cxx, "-march=native") else []


def _openmp_flags(cxx: str) -> list[str]:
    """``-fopenmp`` where the compiler has an OpenMP runtime to link (gcc: libgomp; clang only with libomp).
    Without it the kernels start threads of their own (see ``parallel_blocks`` in cpu_common.h)."""
    code = "#include <omp.h>\nint main(){ return omp_get_max_threads() > 0 ? 0 : 1; }"
    return ["-fopenmp"] if _accepts(cxx, "-fopenmp", code, link=True) else []


def build_flags(cxx: str, cxxflags: str | None = None) -> list[str]:
    """The flags the library is built with by ``cxx``: ours, ``-march=native`` and ``-fopenmp`` where it takes
    them, then ``cxxflags`` (default ``$ARLIF_CXXFLAGS``). Those come last so that they win: ``-march=x86-64-v3``
    there builds for AVX2 instead of this CPU, as GCC and Clang take the last ``-march``."""
    extra = os.environ.get("ARLIF_CXXFLAGS", "") if cxxflags is None else cxxflags
    return FLAGS + _march_flags(cxx) + _openmp_flags(cxx) + extra.split()


def build_target(cxx: str | None = None) -> str | None:
    """What the kernels are compiled for, as the compiler resolves :func:`build_flags`: e.g.
    ``"-march=cooperlake -mtune=generic"`` for ``-march=native`` with GCC on a Xeon whose model name is
    hidden (the instruction sets come from CPUID, the tuning falls back to generic). ``None`` where the
    compiler does not say (Clang has no ``-Q --help=target``) or there is none."""
    cxx = cxx or compiler()
    if cxx is None:
        return None
    flags = [f for f in build_flags(cxx) if f.startswith(("-m", "-f"))]
    try:
        out = subprocess.run([cxx, *flags, "-Q", "--help=target"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("-march=", "-mtune="):
            found[parts[0]] = parts[1]
    if out.returncode != 0 or "-march=" not in found:
        return None
    return " ".join(f"{k}{v}" for k, v in found.items())


def cache_dir() -> Path:
    return cache_root() / "kernels"


def unavailable_reason(build: bool = False) -> str | None:
    """Why the CPU kernels cannot be used here, or ``None``. Without ``build`` a cheap check (is there a
    compiler?); with ``build`` the library is built and loaded now if it is not yet, so that a failing build
    is reported here rather than at the first forward."""
    if build and _lib is None and _error is None and compiler() is not None:
        try:
            load()
        except BackendUnavailableError:
            pass  # _error holds the reason
    if _error is not None:
        return _error
    if _lib is None and compiler() is None:
        return "no C++ compiler found to build the fused CPU kernels (install g++ or set ARLIF_CXX)"
    return None


def build(cxxflags: str | None = None, root: Path | None = None) -> Path:
    """Build the kernel library, or find it in the cache, and return its path. ``cxxflags`` replaces
    ``$ARLIF_CXXFLAGS``, and ``root`` is another ``arlif/ops`` folder to build from (a modified copy of this
    one): ``benchmarks/kernel_ab.py`` builds two variants this way. Raises :class:`BackendUnavailableError`."""
    cxx = compiler()
    if cxx is None:
        raise BackendUnavailableError(unavailable_reason())
    root = _HERE if root is None else Path(root)
    srcs = sources(root)
    header = root / HEADER.name
    if not header.is_file() or len(srcs) < 2:
        raise BackendUnavailableError(
            f"{root} holds no kernel sources: it needs {HEADER.name}, {ABI_SOURCE.name} and <family>/cpu_kernels.cpp, "
            "as src/arlif/ops does"
        )
    # the sources by name and content: a renamed or moved file makes another library too
    source = b"\0".join(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() for p in (header, *srcs))
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    flags = build_flags(cxx, cxxflags)
    key = hashlib.sha256(
        b"\0".join([source, version.encode(), " ".join(flags).encode(), _cpu_flags().encode()])
    ).hexdigest()[:20]
    target = cache_dir() / f"arlif_cpu_{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # build into a temporary file, then rename: concurrent processes never see a half-written library
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        cmd = [cxx, *flags, *map(str, srcs), "-o", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            os.unlink(tmp)
            raise BackendUnavailableError(
                "building the fused CPU kernels failed:\n" + " ".join(cmd) + "\n" + proc.stderr[-4000:]
            )
        chmod_like_new_file(tmp, 0o755)  # a shared ARLIF_CACHE_DIR must stay loadable by others
        os.replace(tmp, target)
    return target


def open_library(path: Path) -> ctypes.CDLL:
    """Load a library that :func:`build` made, check its ABI version and set its streaming threshold."""
    lib = ctypes.CDLL(str(path))
    if lib.arlif_kernels_abi_version() != ABI_VERSION:
        raise BackendUnavailableError(f"stale kernel library {path}; delete it and retry")
    lib.arlif_streaming_threshold.restype = ctypes.c_int64
    lib.arlif_set_streaming_threshold.argtypes = [ctypes.c_int64]
    lib.arlif_set_streaming_threshold(_env_streaming_threshold())
    return lib


def _build() -> ctypes.CDLL:
    return open_library(build())


@contextlib.contextmanager
def using(lib: ctypes.CDLL):
    """Run the fused CPU kernels from ``lib`` (:func:`open_library`) inside the block, then from the library
    before it. For timing two builds in one process, interleaved (``benchmarks/kernel_ab.py``); not for use
    while other threads run kernels."""
    global _lib
    with _lock:
        before, _lib = _lib, lib
    try:
        yield lib
    finally:
        with _lock:
            _lib = before


STREAMING_ENV = "ARLIF_STREAMING_STORES"
NEVER = 2**63 - 1  # a streaming threshold no call reaches


def last_level_cache_bytes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Size of the largest cache of CPU 0 as Linux's sysfs reports it, or ``None`` where it does not. Read from
    sysfs rather than ``os.sysconf``: glibc's ``SC_LEVEL3_CACHE_SIZE`` can report the whole package's L3 (384
    MiB on a 2-vCPU AMD EPYC VM whose sysfs and ``lscpu`` say 32 MiB)."""
    sizes = []
    for index in root.glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return max(sizes) if sizes else None


def default_streaming_threshold() -> int:
    """3/4 of :func:`last_level_cache_bytes` (a call that moves more cannot keep its data in cache anyway; the
    same criterion as glibc's memcpy, as a fraction of the cache), or never where the size is unknown."""
    llc = last_level_cache_bytes()
    return llc // 4 * 3 if llc else NEVER


def _env_streaming_threshold() -> int:
    """``$ARLIF_STREAMING_STORES`` as a threshold in bytes: ``auto`` (or unset) for
    :func:`default_streaming_threshold`, ``always`` (0), ``never``, or a size in bytes."""
    raw = os.environ.get(STREAMING_ENV, "auto")
    value = raw.strip().lower()
    if value in ("", "auto"):
        return default_streaming_threshold()
    if value in ("always", "never"):
        return 0 if value == "always" else NEVER
    if value.isdigit():
        return int(value)
    raise BackendUnavailableError(
        f"{STREAMING_ENV}={raw!r} is not understood: use auto, always, never or a size in bytes (e.g. 25165824)"
    )


def streaming_threshold() -> int:
    """The size in bytes above which a kernel call writes its outputs with non-temporal stores, which go around
    the cache (a call's size: all its ``[T, N]`` inputs and outputs together). By default
    :func:`default_streaming_threshold`; ``$ARLIF_STREAMING_STORES``
    (``auto``, ``always``, ``never`` or bytes) or :func:`set_streaming_threshold` change it. The stores change
    no value, only whether the outputs pass through the cache (``docs/backends.md#cpu-kernels``)."""
    return int(load().arlif_streaming_threshold())


def set_streaming_threshold(nbytes: int | None) -> None:
    """Write outputs with non-temporal stores in calls larger than ``nbytes`` (0: always; ``None``: back to
    :func:`default_streaming_threshold`)."""
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0):
        raise ValueError(f"the threshold is a size in bytes >= 0 (or None for the default), not {nbytes!r}")
    load().arlif_set_streaming_threshold(default_streaming_threshold() if nbytes is None else nbytes)


def load() -> ctypes.CDLL:
    """The loaded kernel library (built on first call). Raises :class:`BackendUnavailableError`."""
    global _lib, _error
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            if _error is not None:
                raise BackendUnavailableError(_error)
            try:
                _lib = _build()
            except BackendUnavailableError as exc:
                _error = str(exc)
                raise
            except OSError as exc:
                _error = f"cannot build or load the fused CPU kernels: {exc}"
                raise BackendUnavailableError(_error) from exc
    return _lib
