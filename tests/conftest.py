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
