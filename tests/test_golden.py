"""Every golden case (tests/golden/README.md) in float64 and float32, single- and multi-step, through every backend
that can run here (multi-step: the reference, the fused CPU kernels and Triton under TRITON_INTERPRET)."""

import numpy as np
import pytest
import torch

from arlif.ops.backends import available_backends
from golden_cases import build, load, run

# (step_mode, backend): single-step mode always runs the reference; the fused CPU kernels skip without a C++
# compiler (conftest.py)
MODES = [
    pytest.param("s", "torch", id="s-torch"),
    pytest.param("m", "torch", id="m-torch"),
    pytest.param("m", "cpu", id="m-cpu", marks=pytest.mark.cpu_kernels),
    pytest.param("m", "triton", id="m-triton"),
]

CASES = [
    "arlif",
    "arlif_init",
    "arlif_no_threshold_adjust",
    "arlif_no_adaptive_reset",
    "arlif_no_carry_triangle_decay02",
    "lif_soft",
    "lif_hard",
    "plif",
    "clif",
]
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def _close(actual, expected, dtype, what):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, err_msg=what, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("step_mode,backend", MODES)
@pytest.mark.parametrize("case", CASES)
def test_golden_case(golden_path, case, step_mode, backend, dtype):
    if backend not in available_backends(case.split("_")[0]):
        pytest.skip(f"backend {backend} is not available here")
    data, meta = load(golden_path)
    mod = build(case, meta[case], dtype=dtype, backend=backend)
    x, spikes, v, m = run(mod, data, dtype, step_mode)
    # spikes must agree exactly: the golden inputs keep u away from 0 by 2e-3
    np.testing.assert_array_equal(spikes.detach().numpy(), data[f"{case}/spikes"])
    _close(v.detach(), data[f"{case}/v"], dtype, "v")
    if f"{case}/m" in data.files:
        expected_m = data[f"{case}/m"]
        _close(np.zeros_like(expected_m) if m is None else m.detach(), expected_m, dtype, "m")
    _close(x.grad, data[f"{case}/grad_x"], dtype, "grad_x")
    for pname, param in mod.named_parameters():
        key = f"{case}/grad_{pname}"
        assert key in data.files, key
        got = 0.0 if param.grad is None else param.grad.item()
        _close(got, data[key], dtype, f"grad_{pname}")
