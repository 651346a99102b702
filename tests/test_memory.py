"""Training-memory tiers: spikes kept for backward as bits give the same gradients and hold less."""

import copy
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from arlif import LIF, BaseNeuron, reset_net
from arlif.models import HeldBytes, SeqToANN, create_model, get_memory, set_memory
from arlif.models.memory import (
    is_marked_binary,
    is_packed_bits,
    mark_spikes,
    pack_bits,
    unpack_bits,
)
from arlif.train import load_config, tet_loss, train

# ---- packing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(1,), (13,), (3, 5, 7), (8, 16), (2, 3, 4, 5)])
def test_pack_unpack_is_exact(dtype, shape):
    torch.manual_seed(0)
    x = (torch.rand(shape) > 0.5).to(dtype)
    p = pack_bits(x)
    assert p.bits.dtype == torch.uint8 and p.bits.numel() == -(-x.numel() // 8)
    y = unpack_bits(p)
    assert y.dtype == dtype and y.shape == x.shape and y.stride() == x.stride() and torch.equal(x, y)


def test_pack_keeps_strides_and_takes_views():
    torch.manual_seed(0)
    x = (torch.rand(4, 6, 5, 7) > 0.5).float().to(memory_format=torch.channels_last)
    y = unpack_bits(pack_bits(x))
    assert y.stride() == x.stride() and torch.equal(x, y)
    view = x[:, ::2]  # neither contiguous nor dense
    assert torch.equal(unpack_bits(pack_bits(view)), view)
    ones = torch.ones(64)
    assert torch.equal(unpack_bits(pack_bits(ones)), ones) and pack_bits(ones).bits.tolist() == [255] * 8


# ---- marking ------------------------------------------------------------------------------------------------


def test_marks_lapse_on_in_place_change_and_dtype():
    s = (torch.rand(8, 8) > 0.5).float()
    mark_spikes(s)
    assert is_marked_binary(s) and is_marked_binary(s.flatten()) and is_marked_binary(s[2:])
    assert not is_marked_binary(s.clone()) and not is_marked_binary(s.view(torch.int32))
    s.mul_(0.5)
    assert not is_marked_binary(s)
    assert not is_marked_binary(torch.rand(8, 8))


def _saved_kinds(fn):
    """Run ``fn`` under an outer saved-tensor hook: the dtypes of what was saved and how many were bits."""
    seen = []

    def pack(t):
        seen.append((t.dtype, is_packed_bits(t)))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, seen


def test_non_binary_input_is_never_packed():
    torch.manual_seed(0)
    layer = set_memory(SeqToANN(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)), "compact")
    x = torch.randn(3, 2, 2, 6, 6)
    _, seen = _saved_kinds(lambda: layer(x))
    assert seen and not any(bits for _, bits in seen)
    # 0/1 values that no neuron made (not marked) are not packed either: nothing is guessed from values
    x01 = (torch.rand(3, 2, 2, 6, 6) > 0.5).float()
    _, seen = _saved_kinds(lambda: layer(x01))
    assert not any(bits for _, bits in seen)
    # a neuron's spikes are
    net = set_memory(nn.Sequential(LIF(), layer), "compact")
    _, seen = _saved_kinds(lambda: net(x))
    assert sum(bits for _, bits in seen) == 1


def test_own_neuron_with_graded_output_is_not_packed():
    class Graded(LIF):  # a subclass is not trusted: its outputs are checked
        def forward(self, x):
            return super().forward(x) * 0.5

    class Promised(LIF):
        binary_spikes = True

    conv = SeqToANN(nn.Conv2d(2, 2, 3, padding=1, bias=False))
    x = torch.randn(3, 2, 2, 6, 6)
    for neuron, packed in ((Graded(), 0), (Promised(), 1), (type("Plain", (LIF,), {})(), 1)):
        net = set_memory(nn.Sequential(neuron, copy.deepcopy(conv)), "compact")
        _, seen = _saved_kinds(lambda net=net: net(x))
        assert sum(bits for _, bits in seen) == packed, type(neuron).__name__


# ---- gradients ----------------------------------------------------------------------------------------------

# name: (architecture options, sample shape, saves of packed spikes in one forward with compact): a save
# is a convolution's, a linear layer's or an average pool's input (avg_pool keeps its input for backward)
SMALL = {
    "spiking_resnet18": ({"width": 4}, (3, 16, 16), 8 * 2 + 3),  # conv1, conv2 per block; 3 shortcut convs
    "small_cnn": ({"channels": (4, 8), "hidden": 16}, (1, 8, 8), 3),  # conv2, the pool, the head
    "vggsnn": ({"width_mult": 1 / 32}, (2, 16, 16), 8),  # one save per neuron layer
    "spiking_vgg11_bn": ({"width_mult": 1 / 32}, (2, 32, 32), 8),
    "spiking_vgg13_bn": ({"width_mult": 1 / 32, "dropout": 0.2}, (2, 32, 32), 0),  # dropped-out: not binary
    "spiking_cnn1d": ({"channels": (4, 4, 4)}, (1, 12), 3),
    "spiking_rnn": ({"hidden": (6, 5)}, (3,), 2 * 2),  # two layers' recurrent weights, T - 1 = 2 steps each
}


def _grads(name, memory, dtype=torch.float32, amp=False, backend="auto", compile_backend=None):
    kw, shape, _ = SMALL[name]
    torch.manual_seed(0)
    model = create_model(name, 5, shape[0], input_size=shape[1:], memory=memory, **kw).to(dtype)
    for m in model.modules():
        if isinstance(m, BaseNeuron):
            m.backend = backend
    run = torch.compile(model, backend=compile_backend) if compile_backend else model
    torch.manual_seed(1)
    x = torch.randn(3, 4, *shape, dtype=dtype)
    y = torch.tensor([0, 1, 2, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out, seen = _saved_kinds(lambda: run(x))
        loss = tet_loss(out.float(), y)
    loss.backward()
    reset_net(model)
    grads = {k: p.grad for k, p in model.named_parameters()}
    stats = {k: b.clone() for k, b in model.named_buffers()}
    return grads, stats, loss.detach(), sum(bits for _, bits in seen)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compact_gradients_bitwise_equal(name, dtype):
    g0, s0, l0, n0 = _grads(name, "default", dtype)
    g1, s1, l1, n1 = _grads(name, "compact", dtype)
    assert n0 == 0 and n1 == SMALL[name][2]
    assert torch.equal(l0, l1)
    assert g0.keys() == g1.keys() and all(torch.equal(g0[k], g1[k]) for k in g0), name
    assert all(torch.equal(s0[k], s1[k]) for k in s0)  # BN running statistics


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_compact_under_autocast_and_reference_backend(backend):
    g0, _, _, _ = _grads("spiking_resnet18", "default", amp=True, backend=backend)
    g1, _, _, n1 = _grads("spiking_resnet18", "compact", amp=True, backend=backend)
    assert n1 == SMALL["spiking_resnet18"][2]
    assert all(torch.equal(g0[k], g1[k]) for k in g0)


def test_compact_under_torch_compile_runs_with_the_same_gradients():
    # compiled regions keep what AOTAutograd keeps: compact steps aside there, without a graph break
    g0, _, _, _ = _grads("small_cnn", "default")
    g1, _, _, n1 = _grads("small_cnn", "compact", compile_backend="aot_eager")
    assert n1 == 0
    assert all(torch.allclose(g0[k], g1[k], rtol=1e-5, atol=1e-6) for k in g0)
    torch._dynamo.reset()
    model = create_model("small_cnn", 5, 1, memory="compact", channels=(4, 8), hidden=16)
    explained = torch._dynamo.explain(model)(torch.randn(3, 4, 1, 8, 8))
    assert explained.graph_count == 1 and explained.graph_break_count == 0


# ---- held bytes ---------------------------------------------------------------------------------------------


def _held(model, x, amp=False):
    with HeldBytes(model) as meter, torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = model(x)
    del out
    reset_net(model)
    return meter


@pytest.mark.parametrize("amp", [False, True])
def test_held_bytes_drop_spikes_to_one_bit(amp):
    torch.manual_seed(0)
    model = create_model("spiking_resnet18", 10, 3, width=8)
    x = torch.randn(4, 2, 3, 32, 32)
    before = _held(model, x, amp)
    after = _held(set_memory(model, "compact"), x, amp)
    b, a = before.by_kind, after.by_kind
    assert b["spikes"] > 0.25 * before.bytes
    # every spike tensor once at 1 bit an element (shortcut spikes packed once, not twice); all else as before
    elem = 2 if amp else 4
    assert a["spikes"] == b["spikes"] // (8 * elem)
    assert {k: v for k, v in a.items() if k != "spikes"} == {k: v for k, v in b.items() if k != "spikes"}
    assert before.bytes - after.bytes == b["spikes"] - a["spikes"]


def test_shortcut_spikes_packed_once_and_unpacked_for_each_layer():
    torch.manual_seed(0)
    model = create_model("spiking_resnet18", 10, 3, width=4, memory="compact")
    block = model.blocks[2]  # 1x1 conv shortcut on the same spikes as conv1
    assert isinstance(block.shortcut, SeqToANN)
    x = torch.randn(2, 2, 4, 8, 8)
    packed = []

    def pack(t):
        if is_packed_bits(t):
            packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = block(x)
    # conv1 saves the block's spikes, conv2 the middle spikes, the shortcut the block's spikes again
    assert len(packed) == 3 and packed[0] is packed[2] and packed[1] is not packed[0]
    out.sum().backward()
    g = {k: p.grad.clone() for k, p in block.named_parameters()}
    reset_net(block)
    set_memory(model, "default")
    block.zero_grad()
    block(x).sum().backward()
    assert all(torch.equal(g[k], p.grad) for k, p in block.named_parameters())


# ---- the switch ---------------------------------------------------------------------------------------------


def test_switch_on_models_and_own_sequential():
    with pytest.raises(ValueError, match="memory must be one of"):
        create_model("small_cnn", 10, 1, memory="tiny")
    model = create_model("small_cnn", 10, 1, memory="compact")
    assert get_memory(model) == "compact" and "memory='compact'" in repr(model)
    copied = copy.deepcopy(model)
    assert get_memory(copied) == "compact"
    set_memory(model, "default")
    assert get_memory(model) == "default" and get_memory(copied) == "compact"
    assert all(not m._forward_hooks for m in model.modules() if isinstance(m, BaseNeuron))
    # a user's own network: one call
    own = nn.Sequential(SeqToANN(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)), LIF(),
                        SeqToANN(nn.Conv2d(4, 4, 3, padding=1)), LIF())  # fmt: skip
    set_memory(own, "compact")
    set_memory(own, "compact")  # twice is once
    assert sum(len(m._forward_hooks) for m in own.modules() if isinstance(m, BaseNeuron)) == 2
    meter = _held(own, torch.randn(2, 2, 1, 6, 6))
    assert meter.by_kind["spikes"] == 2 * 2 * 4 * 36 // 8


def test_config_key_and_cli_flag():
    from arlif.cli import build_parser
    from arlif.cli.train import overrides_from
    from arlif.errors import ConfigError

    assert load_config(None, {"memory": "compact"}).memory == "compact"
    with pytest.raises(ConfigError, match="memory"):
        load_config(None, {"memory": "small"})
    assert overrides_from(build_parser().parse_args(["train", "--memory", "compact"])) == {"memory": "compact"}


def test_digits_demo_same_metrics_with_each_tier(tmp_path):
    runs = {}
    for tier in ("default", "compact"):
        cfg = load_config(None, {"epochs": 1, "max_steps_per_epoch": 3, "batch_size": 32, "tensorboard": False,
                                 "deterministic": True, "memory": tier, "out": str(tmp_path / tier)})  # fmt: skip
        train(cfg)
        lines = [json.loads(ln) for ln in (tmp_path / tier / "metrics.jsonl").read_text().splitlines()]
        for ln in lines:
            ln.pop("epoch_s")
        summary = json.loads((tmp_path / tier / "summary.json").read_text())
        runs[tier] = (lines, {k: v for k, v in summary.items() if "acc" in k or "loss" in k})
    assert runs["default"] == runs["compact"]


@pytest.mark.slow
def test_ddp_two_gloo_processes_with_compact(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "arlif",
           "train", "--epochs", "1", "--max-steps-per-epoch", "3", "--batch-size", "32", "--tensorboard", "false",
           "--memory", "compact", "--model-kwargs", "{channels: [4, 8], hidden: 16}",
           "--out", str(tmp_path / "ddp")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: best test accuracy") == 1
    assert "memory: compact" in (tmp_path / "ddp" / "config.yaml").read_text()
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["final_acc"] > 0
