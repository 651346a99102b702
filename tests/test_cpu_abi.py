"""The C ABI of the fused CPU kernels is declared once, in each family's ``cpu.py`` (a ``Kernels`` table); these
tests hold every table against the ``extern "C"`` definitions in the C++ sources and the built library."""

from __future__ import annotations

import ctypes
import importlib
import re

import pytest

from arlif.ops import cpu_build
from arlif.ops.cpu_host import F64, I64, INT, PTR

# C parameter types as ctypes: every pointer is passed as void*
_C_TYPES = {"int64_t": I64, "double": F64, "int": INT}
_EXTERN = re.compile(r'extern\s+"C"\s+(\w+)\s+(\w+?)(_##SUF)?\s*\(([^)]*)\)', re.S)


def _c_param(decl: str):
    decl = decl.replace("\\", " ").strip()
    if "*" in decl:
        return PTR
    words = [w for w in decl.split() if w != "const"]
    return _C_TYPES[words[0]]


def cpp_entry_points(text: str) -> dict[str, tuple[str, list, bool]]:
    """``name -> (return type, parameter ctypes, defined per compute dtype)`` of every ``extern "C"``
    definition in C++ source ``text`` (``name_##SUF`` inside an export macro is one name per dtype)."""
    found = {}
    for ret, name, per_dtype, params in _EXTERN.findall(text):
        args = [_c_param(p) for p in params.split(",") if p.replace("\\", "").strip()]
        found[name] = (ret, args, bool(per_dtype))
    return found


def _families() -> list[str]:
    return [src.parent.name for src in cpu_build.SOURCES if src.name == "cpu_kernels.cpp"]


def _table(family: str) -> dict[str, list]:
    return importlib.import_module(f"arlif.ops.{family}.cpu").KERNELS.signatures


def mismatches(family_source: str, table: dict[str, list]) -> list[str]:
    """How the entry points defined in ``family_source`` differ from the Python ``table`` (empty: they agree)."""
    defined = cpp_entry_points(family_source)
    problems = [f"{n}: in the C++ but not in the table" for n in sorted(set(defined) - set(table))]
    problems += [f"{n}: in the table but not in the C++" for n in sorted(set(table) - set(defined))]
    for name in sorted(set(defined) & set(table)):
        ret, args, per_dtype = defined[name]
        if ret != "void" or not per_dtype:
            problems.append(f"{name}: must return void and be defined per compute dtype (name_##SUF)")
        if args != list(table[name]):
            problems.append(f"{name}: C++ parameters {[a.__name__ for a in args]} != table {table[name]}")
    return problems


def test_every_family_with_cpp_kernels_is_found():
    assert _families() == ["arlif", "clif", "leaky"]


@pytest.mark.parametrize("family", _families())
def test_python_table_matches_the_cpp_definitions(family):
    source = (cpu_build.HEADER.parent / family / "cpu_kernels.cpp").read_text()
    assert mismatches(source, _table(family)) == []


def test_a_disagreement_is_reported():
    """The check above can fail: a parameter dropped, a type changed or an entry point missing is found."""
    source = (cpu_build.HEADER.parent / "leaky" / "cpu_kernels.cpp").read_text()
    table = dict(_table("leaky"))
    assert mismatches(source, table) == []
    dropped = {**table, "leaky_fwd": table["leaky_fwd"][:-1]}
    assert any("leaky_fwd: C++ parameters" in p for p in mismatches(source, dropped))
    retyped = {**table, "leaky_bwd": [I64 if t is F64 else t for t in table["leaky_bwd"]]}
    assert any("leaky_bwd: C++ parameters" in p for p in mismatches(source, retyped))
    missing = {k: v for k, v in table.items() if k != "leaky_bwd"}
    assert mismatches(source, missing) == ["leaky_bwd: in the C++ but not in the table"]


def test_only_the_abi_version_and_streaming_threshold_are_exported_outside_the_families():
    abi = cpu_build.ABI_SOURCE.read_text()
    assert cpp_entry_points(abi) == {
        "arlif_kernels_abi_version": ("int", [], False),
        "arlif_streaming_threshold": ("int64_t", [], False),
        "arlif_set_streaming_threshold": ("void", [I64], False),
    }
    assert cpu_build.SOURCES == [
        cpu_build.ABI_SOURCE,
        *(cpu_build.HEADER.parent / f / "cpu_kernels.cpp" for f in _families()),
    ]
    # the version is defined once, in Python, and given to the compiler: no C++ source spells a number for it
    assert f"-DARLIF_ABI_VERSION={cpu_build.ABI_VERSION}" in cpu_build.FLAGS
    assert re.search(r"return\s+ARLIF_ABI_VERSION\s*;", abi)
    for src in (cpu_build.HEADER, *cpu_build.SOURCES):
        assert not re.search(
            r"define\s+ARLIF_ABI_VERSION|arlif_kernels_abi_version\(\)\s*{\s*return\s+\d", src.read_text()
        ), src


def test_the_built_library_exports_every_table_entry():
    if cpu_build.unavailable_reason(build=True) is not None:
        pytest.skip(cpu_build.unavailable_reason())
    lib = cpu_build.load()
    assert lib.arlif_kernels_abi_version() == cpu_build.ABI_VERSION
    for family in _families():
        for name in _table(family):
            for suffix in ("f32", "f64"):
                assert isinstance(getattr(lib, f"{name}_{suffix}"), ctypes._CFuncPtr)
