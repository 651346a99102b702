import functools
import os
from pathlib import Path

import pytest
import torch

# Without a GPU, run the Triton kernels on CPU tensors through Triton's interpreter. Triton reads this when
# a kernel is decorated, so it must be set before a family's arlif.ops.<family>.triton_impl is first imported
# (i.e. here, at collection). backend="auto" never picks interpreted Triton, so the other tests are unaffected.
# With a GPU the Triton kernels are compiled and tests/test_fused_cuda.py checks them on CUDA tensors.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Float64 golden vectors of every neuron variant, kept in the repo (tests/golden/README.md explains them).
GOLDEN = Path(os.environ.get("ARLIF_GOLDEN", Path(__file__).resolve().parent / "golden" / "neurons.npz"))


@pytest.fixture(scope="session")
def golden_path() -> Path:
    if not GOLDEN.exists():
        pytest.fail(f"golden vectors not found at {GOLDEN}; set ARLIF_GOLDEN to the path of neurons.npz")
    return GOLDEN


@functools.cache
def _cpu_kernels_missing() -> str | None:
    """Why the fused CPU kernels cannot run here (no C++ compiler to build them), or ``None``."""
    from arlif.ops import available_backends

    if "cpu" in available_backends("arlif", "cpu"):
        return None
    return "fused CPU kernels unavailable: no C++ compiler to build them (install g++ or set ARLIF_CXX)"


def pytest_runtest_setup(item):
    # the one skip of tests that run the fused CPU kernels: mark them (or their "cpu" parameter) cpu_kernels
    if item.get_closest_marker("cpu_kernels") is not None and _cpu_kernels_missing():
        pytest.skip(_cpu_kernels_missing())
