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
from arlif.models import HeldBytes, SeqToANN, create_model, get_memory, memory, set_memory
from arlif.models.memory import (
    TIERS,
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


def _grads(name, memory, dtype=torch.float32, amp=False, backend="auto", compile_backend=None, bn_eval=False):
    kw, shape, _ = SMALL[name]
    torch.manual_seed(0)
    model = create_model(name, 5, shape[0], input_size=shape[1:], memory=memory, **kw).to(dtype)
    for m in model.modules():
        if isinstance(m, BaseNeuron):
            m.backend = backend
        if bn_eval and isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()  # eval-mode BatchNorm: running statistics, and an input gradient through them
    run = torch.compile(model, backend=compile_backend) if compile_backend else model
    torch.manual_seed(1)
    x = torch.randn(3, 4, *shape, dtype=dtype, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out, seen = _saved_kinds(lambda: run(x))
        loss = tet_loss(out.float(), y)
    loss.backward()
    reset_net(model)
    grads = {k: p.grad for k, p in model.named_parameters()}
    grads["input"] = x.grad
    stats = {k: b.clone() for k, b in model.named_buffers()}
    return grads, stats, loss.detach(), sum(bits for _, bits in seen)


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tier", ["compact", "minimal"])
def test_tier_gradients_bitwise_equal(name, dtype, tier):
    g0, s0, l0, n0 = _grads(name, "default", dtype)
    g1, s1, l1, n1 = _grads(name, tier, dtype)
    assert n0 == 0
    if tier == "compact":  # minimal also hands the bits of recomputed layers to outer hooks
        assert n1 == SMALL[name][2]
    assert torch.equal(l0, l1)
    assert _equal(g0, g1), name  # parameters and the input
    assert _equal(s0, s1)  # BN running statistics and num_batches_tracked: updated once, in the forward


@pytest.mark.parametrize("name", ["spiking_resnet18", "vggsnn", "small_cnn"])
@pytest.mark.parametrize("tier", ["compact", "minimal"])
def test_tier_gradients_bitwise_equal_with_batchnorm_in_eval_mode(name, tier):
    for dtype in (torch.float32, torch.float64):
        g0, s0, _, _ = _grads(name, "default", dtype, bn_eval=True)
        g1, s1, _, _ = _grads(name, tier, dtype, bn_eval=True)
        assert _equal(g0, g1) and _equal(s0, s1), (name, dtype)


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("tier", ["compact", "minimal"])
def test_tiers_under_autocast_and_reference_backend(backend, tier):
    g0, _, _, _ = _grads("spiking_resnet18", "default", amp=True, backend=backend)
    g1, _, _, n1 = _grads("spiking_resnet18", tier, amp=True, backend=backend)
    if tier == "compact":
        assert n1 == SMALL["spiking_resnet18"][2]
    assert _equal(g0, g1)


@pytest.mark.parametrize("tier", ["compact", "minimal"])
def test_tiers_under_torch_compile_run_with_the_same_gradients(tier):
    # compiled regions keep what AOTAutograd keeps: the tiers step aside there, without a graph break
    g0, _, _, _ = _grads("small_cnn", "default")
    g1, _, _, n1 = _grads("small_cnn", tier, compile_backend="aot_eager")
    assert n1 == 0
    assert all(torch.allclose(g0[k], g1[k], rtol=1e-5, atol=1e-6) for k in g0)
    torch._dynamo.reset()
    model = create_model("small_cnn", 5, 1, memory=tier, channels=(4, 8), hidden=16)
    explained = torch._dynamo.explain(model)(torch.randn(3, 4, 1, 8, 8))
    assert explained.graph_count == 1 and explained.graph_break_count == 0


# ---- recomputation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", ["train", "eval", "no_running_stats", "cumulative"])
def test_recomputed_batchnorm_output_is_the_forward_s(dtype, mode):
    torch.manual_seed(0)
    momentum = None if mode == "cumulative" else 0.1
    bn = nn.BatchNorm2d(5, track_running_stats=mode != "no_running_stats", momentum=momentum)
    bn = bn.to(dtype).train(mode != "eval")
    if bn.running_mean is not None:
        bn.running_mean.add_(0.3)
    x = torch.randn(6, 5, 7, 7, dtype=dtype, requires_grad=True) * 3 + 1
    y = bn(x)
    before = {k: b.clone() for k, b in bn.named_buffers()}
    recipe = memory._BatchNormRecipe(bn, y, x)
    assert recipe.hold((None, None)) and recipe.hold((None, None))  # two saves: kept for the second
    first = recipe.get()
    assert torch.equal(first, y) and recipe.cache is first
    assert recipe.get() is first and recipe.cache is None
    assert _equal(before, dict(bn.named_buffers()))  # the recomputation updates no running statistic
    if dtype != torch.float32:
        return
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 input, float32 statistics and affine
        x16 = x.to(torch.bfloat16)
        y16 = bn(x16)
    recipe = memory._BatchNormRecipe(bn, y16, x16)
    assert recipe.hold((None, None)) and torch.equal(recipe.get(), y16)  # recorded autocast state, not today's


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layer", ["conv", "linear"])
def test_recomputed_layer_output_is_the_forward_s_from_the_layer_s_own_bits(dtype, layer):
    torch.manual_seed(0)
    mod = (nn.Conv2d(4, 6, 3, padding=1) if layer == "conv" else nn.Linear(4 * 5 * 5, 7)).to(dtype)
    s = (torch.rand(8, 4, 5, 5, dtype=dtype) > 0.6).to(dtype).requires_grad_()
    if layer == "linear":
        s = s.flatten(1)
    mark_spikes(s)
    packed = []

    def pack(t):
        if is_packed_bits(t):
            packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), memory.compact_saved_tensors():
        out = mod(s)
        recipe = memory._LayerRecipe(mod, out, s, memory._marked(s))
        assert memory._made(out) is recipe and memory._made(out.view(-1)) is recipe
        saved = mod.weight * 1.0
        assert recipe.hold(torch._C._autograd._top_saved_tensors_default_hooks(False))
    assert len(packed) == 2 and packed[0] is packed[1]  # the layer's save and the recipe share one copy of the bits
    assert torch.equal(recipe.get(), out)
    del saved


class _InPlace(nn.Module):
    def forward(self, x):
        return x.mul_(1.0)  # a version bump, no change of value


def _own_stack(*extra):
    return nn.Sequential(
        SeqToANN(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), *extra), LIF(),
        SeqToANN(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4, momentum=None), *extra), LIF(),
        SeqToANN(nn.Flatten(1), nn.Linear(4 * 36, 3)),
    )  # fmt: skip


def _own_grads(net, tier, x):
    net = set_memory(copy.deepcopy(net), tier)
    x = x.clone().requires_grad_()
    with HeldBytes(net) as meter:
        out = net(x)
    out.square().mean().backward()
    reset_net(net)
    grads = {k: p.grad for k, p in net.named_parameters()} | {"input": x.grad}
    return grads, dict(net.named_buffers()), meter.by_kind


def test_batchnorm_output_changed_in_place_is_kept_not_recomputed():
    torch.manual_seed(0)
    net, x = _own_stack(_InPlace()), torch.randn(2, 2, 1, 6, 6)
    g0, s0, _ = _own_grads(net, "default", x)
    for tier in ("compact", "minimal"):
        g1, s1, kinds = _own_grads(net, tier, x)
        assert _equal(g0, g1) and _equal(s0, s1), tier
        assert kinds["neuron_input"] == 2 * 4 * 4 * 36 * 4  # both BN outputs kept by their neurons, as floats


def test_tensor_changed_in_place_after_its_save_is_an_error_as_in_default():
    torch.manual_seed(0)
    for tier in TIERS:
        net = set_memory(_own_stack(), tier)
        seq = net[0]
        kept = []
        handle = seq[1].register_forward_hook(lambda m, a, o, kept=kept: kept.append(o))
        out = net(torch.randn(2, 2, 1, 6, 6))
        handle.remove()
        kept[0].add_(1.0)  # the first neuron's input, after the neuron kept it
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()
        reset_net(net)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("what", ["conv1", "bn1", "linear", "spikes", "optimizer_step"])
def test_weights_or_spikes_changed_between_forward_and_backward_are_an_error_in_every_tier(tier, what):
    """Saved-tensor hooks switch off autograd's own version check, so the tiers keep it themselves: a weight
    (or the spikes a layer kept) changed in place after the forward raises, as in "default", rather than
    giving the gradients of values the forward did not use."""
    torch.manual_seed(0)
    net = set_memory(_own_stack(), tier)
    kept = []
    handle = net[1].register_forward_hook(lambda m, a, o, kept=kept: kept.append(o))
    out = net(torch.randn(2, 2, 1, 6, 6))
    handle.remove()
    with torch.no_grad():
        if what == "conv1":
            net[2][0].weight.mul_(2.0)  # the second convolution's weight, kept for its input gradient
        elif what == "bn1":
            net[0][1].weight.mul_(2.0)
        elif what == "linear":
            net[4][1].weight.mul_(2.0)
        elif what == "spikes":
            kept[0].mul_(1.0)  # the first neuron's spikes, kept (as bits in compact) by the next convolution
        else:
            for q in net.parameters():
                q.grad = torch.ones_like(q)
            torch.optim.SGD(net.parameters(), lr=0.1).step()
    # "default" words a changed view differently ("... has been modified inplace")
    with pytest.raises(RuntimeError, match="modified (by an )?inplace"):
        out.square().sum().backward()
    reset_net(net)


def test_double_backward_is_refused_where_saved_tensors_have_no_graph():
    torch.manual_seed(0)
    net = set_memory(_own_stack(), "compact")
    x = torch.randn(2, 2, 1, 6, 6, requires_grad=True)
    out = net(x)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(out.sum(), x, create_graph=True)


def test_real_valued_layer_input_is_kept_and_its_output_not_recomputed():
    torch.manual_seed(0)
    layer = set_memory(SeqToANN(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)), "minimal")
    outputs = []
    layer[0].register_forward_hook(lambda m, a, o: outputs.append(o))
    x = (torch.rand(3, 2, 2, 6, 6) > 0.5).float()  # 0/1 values that no neuron made
    ptrs = []

    def pack(t):
        ptrs.append(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    assert memory._made(outputs[0]) is None  # no recipe for a convolution of real values
    assert outputs[0].untyped_storage().data_ptr() in ptrs  # BatchNorm keeps its input itself
    y.sum().backward()


def test_minimal_runs_each_convolution_once_more_and_keeps_nothing_past_backward():
    torch.manual_seed(0)
    net = set_memory(_own_stack(), "minimal")
    conv = net[2][0]
    calls = []
    forward = conv.forward
    conv.forward = lambda t: calls.append(1) or forward(t)
    out = net(torch.randn(2, 2, 1, 6, 6))
    assert len(calls) == 1 and memory._MADE
    out.square().sum().backward()
    assert len(calls) == 2  # recomputed once for the neuron's input and BatchNorm's, not twice
    del out
    reset_net(net)
    assert not memory._MADE  # no recipe, and so no recomputed tensor, outlives the graph (no gc needed)


def test_minimal_recomputes_through_average_pools():
    torch.manual_seed(0)
    net = nn.Sequential(
        SeqToANN(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)), LIF(),
        SeqToANN(nn.AvgPool2d(2)),
        SeqToANN(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)), LIF(),
        SeqToANN(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(4, 3)),
    )  # fmt: skip
    x = torch.randn(2, 2, 1, 6, 6)
    g0, s0, k0 = _own_grads(net, "default", x)
    g1, s1, k1 = _own_grads(net, "compact", x)
    g2, s2, k2 = _own_grads(net, "minimal", x)
    assert _equal(g0, g2) and _equal(s0, s2) and _equal(g0, g1)
    full, pooled = 4 * 4 * 36 * 4, 4 * 4 * 9 * 4  # [T·B, 4, 6, 6] and [T·B, 4, 3, 3] float32
    # minimal: the second convolution's output (on pooled spikes) and the pooled spikes it keeps are made
    # again from the first neuron's bits, the head's pooled spikes from the second neuron's
    assert k1["bn_input"] == full + pooled and k2["bn_input"] == full
    assert k1["other"] - k2["other"] == pooled + 4 * 4 * 4


def test_residual_sum_is_recomputed_from_spikes_and_recipes_only():
    torch.manual_seed(0)
    s = (torch.rand(2, 3, 4, 5, 5) > 0.5).float().requires_grad_()
    mark_spikes(s)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    with memory.compact_saved_tensors():
        flat = s.flatten(0, 1)
        out = conv(flat)
        memory._LayerRecipe(conv, out, flat, entry=memory._marked(flat))
        out = out.unflatten(0, (2, 3))
        real = torch.randn_like(out)
        for a, b, made in ((out, s, True), (out, real, False), (real, s, False)):
            total = a + b
            memory.note_sum(total, a, b)
            recipe = memory._made(total)
            assert (recipe is not None) == made
            if made:
                assert recipe.hold((None, None)) and torch.equal(recipe.get(), total)


def test_state_dict_and_module_tree_are_the_same_in_every_tier():
    keys = {}
    for tier in TIERS:
        model = create_model("spiking_resnet18", 10, 3, width=4, memory=tier)
        assert get_memory(model) == tier
        keys[tier] = (list(model.state_dict()), [n for n, _ in model.named_modules()])
    assert keys["default"] == keys["compact"] == keys["minimal"]


# ---- held bytes ---------------------------------------------------------------------------------------------


def _held(model, x, amp=False):
    with HeldBytes(model) as meter, torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = model(x)
    del out
    reset_net(model)
    return meter


@pytest.mark.parametrize("amp", [False, True])
def test_held_bytes_drop_per_tier(amp):
    torch.manual_seed(0)
    model = create_model("spiking_resnet18", 10, 3, width=8)
    x = torch.randn(4, 2, 3, 32, 32)
    # the BatchNorms whose input is no convolution of spikes: on the stem's output and the residual sums
    sums = [m for name, m in model.named_modules() if name.endswith("bn_in") or name == "head_bn"]
    sum_bytes, pooled = [], []
    for m in sums:
        m.register_forward_pre_hook(lambda m, a: sum_bytes.append(a[0].untyped_storage().nbytes()))
    model.fc.register_forward_pre_hook(lambda m, a: pooled.append(a[0].untyped_storage().nbytes()))
    head = []
    model.head_sn.register_forward_hook(lambda m, a, o: head.append(o.numel()))
    held = {}
    for tier in TIERS:
        sum_bytes.clear()
        held[tier] = _held(set_memory(model, tier), x, amp).by_kind
    b, c, m = held["default"], held["compact"], held["minimal"]
    assert b["spikes"] > 0.25 * sum(b.values()) and b["neuron_input"] == b["bn_input"] > 0
    # compact: every spike tensor once at 1 bit an element (shortcut spikes packed once, not twice), no neuron
    # input (each is a BatchNorm output, recomputed), all else as in default
    elem = 2 if amp else 4
    assert c["spikes"] == b["spikes"] // (8 * elem) and c["neuron_input"] == 0
    assert {k: c[k] for k in ("bn_input", "params", "other")} == {k: b[k] for k in ("bn_input", "params", "other")}
    # minimal: of the BatchNorm inputs only the stem's output stays (a convolution of the images); the
    # residual sums are conv2's output plus the spikes or a 1x1 convolution of them, made again from bits; the
    # head's pooled spikes, which the classifier keeps, are recomputed from the bits of the head's spikes,
    # which the global pool (a mean) does not keep itself
    assert len(sum_bytes) == len(sums) == 9
    assert m["bn_input"] == sum_bytes[0] == 8 * 8 * 32 * 32 * elem
    assert m["other"] == c["other"] - pooled[-1] and pooled[-1] == 8 * 64 * elem
    assert m["spikes"] == c["spikes"] + head[-1] // 8 and head[-1] == 8 * 64 * 4 * 4
    assert m["neuron_input"] == 0 and m["params"] == c["params"]


def test_held_bytes_per_tier_on_a_network_of_your_own():
    torch.manual_seed(0)
    net, x = _own_stack(), torch.randn(2, 2, 1, 6, 6)
    act = 4 * 4 * 36 * 4  # a [T·B, 4, 6, 6] float32 tensor: the two convolutions' outputs, the BN outputs, spikes
    kinds = {tier: _own_grads(net, tier, x)[2] for tier in TIERS}
    assert {k: kinds["default"][k] for k in ("spikes", "bn_input", "neuron_input")} == dict.fromkeys(
        ("spikes", "bn_input", "neuron_input"), 2 * act
    )
    assert {k: kinds["compact"][k] for k in ("spikes", "bn_input", "neuron_input")} == {
        "spikes": 2 * act // 32, "bn_input": 2 * act, "neuron_input": 0
    }  # fmt: skip
    # the first convolution sees the real-valued input: BatchNorm keeps its output; the second is recomputed
    assert {k: kinds["minimal"][k] for k in ("spikes", "bn_input", "neuron_input")} == {
        "spikes": 2 * act // 32, "bn_input": act, "neuron_input": 0
    }  # fmt: skip
    assert kinds["default"]["params"] == kinds["minimal"]["params"] > 0


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

    assert all(load_config(None, {"memory": tier}).memory == tier for tier in TIERS)
    with pytest.raises(ConfigError, match="memory"):
        load_config(None, {"memory": "small"})
    for tier in TIERS:
        assert overrides_from(build_parser().parse_args(["train", "--memory", tier])) == {"memory": tier}


def test_digits_demo_same_metrics_with_each_tier(tmp_path):
    runs = {}
    for tier in TIERS:
        cfg = load_config(None, {"epochs": 1, "max_steps_per_epoch": 3, "batch_size": 32, "tensorboard": False,
                                 "deterministic": True, "memory": tier, "out": str(tmp_path / tier)})  # fmt: skip
        train(cfg)
        lines = [json.loads(ln) for ln in (tmp_path / tier / "metrics.jsonl").read_text().splitlines()]
        for ln in lines:
            ln.pop("epoch_s")
        summary = json.loads((tmp_path / tier / "summary.json").read_text())
        runs[tier] = (lines, {k: v for k, v in summary.items() if "acc" in k or "loss" in k})
    assert runs["default"] == runs["compact"] == runs["minimal"]


@pytest.mark.slow
@pytest.mark.parametrize("tier", ["compact", "minimal"])
def test_ddp_two_gloo_processes_with_each_tier(tmp_path, tier):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "arlif",
           "train", "--epochs", "1", "--max-steps-per-epoch", "3", "--batch-size", "32", "--tensorboard", "false",
           "--memory", tier, "--model-kwargs", "{channels: [4, 8], hidden: 16}",
           "--out", str(tmp_path / "ddp")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: best test accuracy") == 1
    assert f"memory: {tier}" in (tmp_path / "ddp" / "config.yaml").read_text()
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["final_acc"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("tier", ["compact", "minimal"])
@pytest.mark.parametrize("amp", [False, True])
def test_tiers_on_cuda_give_the_gradients_of_default(tier, amp):
    """The tiers on a GPU (Triton neurons, cuDNN BatchNorm and convolutions): the same loss and BatchNorm
    statistics, gradients within the fused tests' tolerance (cuDNN's weight gradients sum in an order of their
    own); and spikes really held as bits."""

    def run(memory):
        torch.manual_seed(0)
        model = create_model("spiking_resnet18", 10, 3, width=8, memory=memory).cuda()
        x = torch.randn(4, 4, 3, 16, 16, device="cuda", requires_grad=True)
        y = torch.tensor([0, 1, 2, 3], device="cuda")
        with HeldBytes(model) as meter, torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = tet_loss(model(x).float(), y)
        loss.backward()
        reset_net(model)
        grads = {k: p.grad for k, p in model.named_parameters()} | {"input": x.grad}
        return loss.detach(), grads, {k: b.clone() for k, b in model.named_buffers()}, meter.by_kind

    loss0, g0, s0, k0 = run("default")
    loss1, g1, s1, k1 = run(tier)
    assert torch.equal(loss0, loss1)
    assert s0.keys() == s1.keys() and all(torch.allclose(s0[k], s1[k], rtol=1e-5, atol=1e-6) for k in s0)
    tol = dict(rtol=2e-2, atol=1e-3) if amp else dict(rtol=1e-4, atol=1e-6)
    for k in g0:
        assert torch.allclose(g0[k], g1[k], **tol), k
    assert k1["spikes"] * 8 < k0["spikes"] and k1["neuron_input"] == 0
