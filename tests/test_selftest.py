"""`arlif selftest`: it passes on correct kernels, catches a wrong one (and only that one), writes strict JSON,
and refuses devices and backends that are not there with a clear message."""

from __future__ import annotations

import json
import os

import pytest
import torch

from arlif import selftest
from arlif.cli import main
from arlif.neurons import get_neuron
from arlif.ops import backends
from arlif.ops.backends import available_backends
from arlif.surrogate import get_surrogate

if backends.triton_importable() and os.environ.get("TRITON_INTERPRET") == "1":
    # Triton's own @jit helpers take the interpreter setting when triton is first imported. The compiled step of
    # the first test below imports it (through torch._dynamo) with TRITON_INTERPRET unset, which would leave the
    # interpreter unable to call them in the last test; import it now, at collection, under conftest's setting.
    import arlif.ops.arlif.triton_impl  # noqa: F401


def _strict_json(text: str):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_quick_selftest_passes_on_cpu_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the interpreter is opt-in (and slow)
    out = tmp_path / "sub" / "selftest.json"
    assert main(["selftest", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    data = _strict_json(out.read_text())
    assert data["ok"] is True and data["device"] == "cpu" and data["settings"]["quick"] is True
    assert data["machine"]["torch"] == torch.__version__ and data["machine"]["cpu"]
    parity = {(r["neuron"], r["backend"], r["dtype"]) for r in data["rows"] if r["check"] == "parity"}
    kinds = {v: get_neuron(v).cls.neuron_kind for v in selftest.variants()}
    want = {(v, b, d) for v, k in kinds.items() for b in available_backends(k, "cpu") for d in ("float32", "bfloat16")}
    assert parity == want and ("lif_hard", "torch", "float32") in parity
    assert all(r["ok"] and r["cases"] >= 1 and r["ratio"] <= 1 for r in data["rows"])
    compiled = [r for r in data["rows"] if r["check"] == "compile"]
    assert len(compiled) == 1 and compiled[0]["backend"] == available_backends("arlif", "cpu")[0]
    assert "aot_eager" in compiled[0]["worst"]  # --quick traces without inductor's code generation
    assert f"all {len(data['rows'])} checks passed" in text
    assert "not checked: triton on cpu" in text  # says what it did not check, and why


def _scale_input_grad(fn, factor):
    """A registered fused implementation whose input gradient comes back multiplied by ``factor``."""

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return g * factor

    def wrong(x_seq, states, params, keep_states, **config):
        return fn(Scale.apply(x_seq), states, params, keep_states, **config)

    return wrong


@pytest.mark.cpu_kernels
def test_a_wrong_gradient_fails_exactly_that_neuron_and_backend(monkeypatch):
    monkeypatch.setitem(backends._FUSED["plif"], "cpu", _scale_input_grad(backends.get_fused("plif", "cpu"), 1.05))
    report = selftest.run_selftest("cpu", quick=True, backends=["cpu", "torch"], compile_check=False)
    failed = {(r.neuron, r.backend, r.dtype) for r in report.failed}
    assert failed == {("plif", "cpu", "float32"), ("plif", "cpu", "bfloat16")}
    # two dtypes of torch and cpu for each neuron, of torch alone for a neuron without cpu kernels (ALIF)
    has_cpu = ["cpu" in backends.fused_backends(get_neuron(v).cls.neuron_kind) for v in selftest.variants()]
    assert not report.ok and len(report.rows) == sum(2 * (1 + c) for c in has_cpu) and not all(has_cpu)
    for row in report.failed:
        assert row.worst.startswith("grad x") and row.ratio > 1
        assert all("grad x" in f for f in row.failures)
    table = selftest.format_report(report)
    assert f"FAILED 2 of {len(report.rows)} checks" in table and "plif / cpu / float32:" in table


def _ignores_threshold(fn):
    def wrong(x_seq, states, params, keep_states, **config):
        return fn(x_seq, states, params, keep_states, **{**config, "v_threshold": 1.0})

    return wrong


def _inverts_box_width(fn):
    def wrong(x_seq, states, params, keep_states, **config):
        sg = config["surrogate"]
        if sg.kind in ("rectangle", "triangle"):  # 1/width where the kernel should use width
            config = {**config, "surrogate": get_surrogate(sg.kind, 1.0 / sg.width)}
        return fn(x_seq, states, params, keep_states, **config)

    return wrong


@pytest.mark.cpu_kernels
@pytest.mark.parametrize("family, mutate, variant", [("clif", _ignores_threshold, "clif"),
                                                      ("lif", _ignores_threshold, "lif_hard"),
                                                      ("arlif", _inverts_box_width, "arlif")])  # fmt: skip
def test_kernels_that_mishandle_a_constant_at_its_default_fail(monkeypatch, family, mutate, variant):
    """Thresholds and surrogate widths are not left at 1, where such kernels would give the right numbers."""
    monkeypatch.setitem(backends._FUSED[family], "cpu", mutate(backends.get_fused(family, "cpu")))
    report = selftest.run_selftest("cpu", quick=True, neurons=[variant], backends=["cpu"], dtypes=["float32"],
                                   compile_check=False)  # fmt: skip
    assert not report.ok and {r.neuron for r in report.failed} == {variant}


@pytest.mark.cpu_kernels
def test_a_wrong_spike_makes_the_cli_exit_1_with_a_clear_table(monkeypatch, capsys, tmp_path):
    right = backends.get_fused("lif", "cpu")

    def one_spike_flipped(x_seq, states, params, keep_states, **config):
        spikes, final, seqs = right(x_seq, states, params, keep_states, **config)
        if config["hard_reset"]:  # the kernel family serves lif_hard too: break the soft reset only
            return spikes, final, seqs
        spikes = spikes.clone()
        first = (0,) * spikes.dim()
        spikes[first] = 1 - spikes[first]
        return spikes, final, seqs

    monkeypatch.setitem(backends._FUSED["lif"], "cpu", one_spike_flipped)
    out = tmp_path / "st.json"
    args = ["selftest", "--quick", "--neurons", "lif_soft,lif_hard,clif", "--backends", "cpu", "--dtypes", "float32",
            "--no-compile", "--json", str(out)]  # fmt: skip
    assert main(args) == 1
    text = capsys.readouterr().out
    # the table's rows (the list of failures below it is indented)
    lines = {
        line.split()[0]: line for line in text.splitlines() if line.startswith(("lif_soft ", "lif_hard ", "clif "))
    }
    assert lines["lif_soft"].rstrip().endswith("FAIL") and "spikes" in lines["lif_soft"]
    assert lines["lif_hard"].rstrip().endswith("OK") and lines["clif"].rstrip().endswith("OK")
    assert "FAILED 1 of 3 checks" in text and "spikes (chunk 1): 1 of" in text
    data = _strict_json(out.read_text())  # written on failure too, infinite ratios as null
    assert data["ok"] is False
    bad = [r for r in data["rows"] if not r["ok"]]
    assert [(r["neuron"], r["backend"]) for r in bad] == [("lif_soft", "cpu")] and bad[0]["ratio"] is None


def test_screening_redraws_neurons_at_a_discontinuity():
    """A LIF neuron from rest with x = V_th sits exactly on its threshold (u = 0) at step 0; one with
    x = V_th + 1/2 sits on the edge of the rectangle's window (|u| = α/2). Neither can be compared exactly
    in float32, so they are flagged (the second only for the rectangle surrogate), and the others are not."""
    x = torch.full((3, 6), -4.0, dtype=torch.float64)  # far below the threshold of 0.9
    x[0, 2] = 0.9
    x[0, 4] = 0.9 + 0.5
    near_sigmoid = selftest._near_jumps("lif_soft", get_surrogate("sigmoid"), x)
    near_rect = selftest._near_jumps("lif_soft", get_surrogate("rectangle"), x)
    assert near_sigmoid.tolist() == [False, False, True, False, False, False]
    assert near_rect.tolist() == [False, False, True, False, True, False]
    # a screened input has no such neuron, and its values are exact in the dtype under test
    case = selftest._Case("random", 4, (50, 7))
    xs = selftest._screened_input("arlif", get_surrogate("rectangle"), case, torch.bfloat16, seed=0)
    assert xs.shape == (8, 50, 7) and torch.equal(xs.to(torch.bfloat16).double(), xs)
    assert not selftest._near_jumps("arlif", get_surrogate("rectangle"), xs).any()


def test_a_compile_failure_is_a_failed_row(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler for you")

    monkeypatch.setattr(torch, "compile", broken)
    row = selftest._compile_check(torch.device("cpu"), "torch", "aot_eager")
    assert not row.ok and "no compiler for you" in row.failures[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_without_cuda_is_a_clear_error(capsys):
    assert main(["selftest", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "arlif selftest: error: --device cuda: CUDA is not available here" in err
    assert "Traceback" not in err


def test_bad_names_are_clear_errors(capsys, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    for args, msg in [
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "meta"], "runs on cpu or cuda"),
        (["--neurons", "izhikevich"], "unknown neuron(s) ['izhikevich']"),
        (["--dtypes", "float8"], "unknown dtype(s) ['float8']"),
        (["--backends", "triton"], "backend 'triton' cannot run arlif on cpu"),
    ]:
        assert main(["selftest", "--quick", *args]) == 2, args
        assert msg in capsys.readouterr().err, args


def test_every_registered_neuron_is_checked_with_its_check_options():
    """The variants are the registry's names (aliases once), each made with the entry's ``check`` options."""
    from arlif.neurons import neuron_entries

    makers = selftest.variants()
    assert list(makers) == [e.name for e in neuron_entries()] and "lif" not in makers
    for e in neuron_entries():
        mod = makers[e.name](backend="torch")
        assert type(mod) is e.cls
        for key, value in e.check.items():  # init_a=0.4 sets the parameter a; decay=0.6 the constant decay
            got = torch.as_tensor(getattr(mod, key.removeprefix("init_"))).detach()
            assert float(got) == pytest.approx(value), (e.name, key)
        assert e.check or not e.cls.neuron_kind, f"{e.name}: fused kernels are checked with default constants"


def test_tolerances_are_the_test_suites():
    from test_fused import TOL

    assert selftest.TOLERANCES[torch.float32] == (TOL[torch.float32]["rtol"], TOL[torch.float32]["atol"])


@pytest.mark.skipif("triton" not in available_backends("arlif", "cpu"), reason="needs Triton's interpreter")
def test_triton_through_the_interpreter():
    report = selftest.run_selftest("cpu", quick=True, neurons=["arlif", "clif"], backends=["triton"],
                                   dtypes=["float32"], compile_check=False)  # fmt: skip
    assert report.ok and [(r.neuron, r.backend) for r in report.rows] == [("arlif", "triton"), ("clif", "triton")]
