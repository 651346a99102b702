"""Training memory tiers: what the autograd graph keeps between forward and backward.

``"default"`` keeps what PyTorch keeps. ``"compact"`` stores the spike tensors that convolutions and linear
layers keep for their weight gradient at 1 bit per element instead of 4 (fp32) or 2 (bf16/fp16) bytes; the
gradients are bitwise the same, because backward gets back exactly the tensor forward saved.

How it works. Spikes are marked where they are made: a forward hook on every neuron records its output
(storage, dtype and version counter, through a weak reference, so the registry never keeps a tensor
alive). While a :class:`~arlif.models.SeqToANN` in compact mode runs, a ``saved_tensors_hooks`` pair packs
every saved tensor that is a marked spike tensor, or a view of one (``flatten(0, 1)``), with vectorised
torch ops, and passes everything else through untouched. Marking costs nothing per element and no device
synchronisation; an in-place change of the spikes bumps their version, after which they are no longer
taken for binary. A tensor that is not marked is never packed: the first convolution on images, pooled or
dropped-out spikes, BatchNorm's inputs.

The same spikes saved twice in one forward (the ResNet shortcut: the block's spikes feed conv1 and the
1×1 shortcut conv) are packed once; both saves hold the same bits, and each unpack gives its own copy.

Outer ``saved_tensors_hooks`` (a memory meter, ``save_on_cpu``) still see every saved tensor: the packed
bits, or the tensor itself, go through them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

TIERS = ("default", "compact")

# The neuron classes arlif itself defines and registers: their forward is the Heaviside step of the
# surrogate in the input dtype, so their outputs are exactly 0 or 1 (docs/neurons.md#surrogate-gradients).
# Read from the registry when first needed (importing the neurons here would be circular for arlif.models);
# classes registered from elsewhere are not in it.
_BINARY_CLASSES: frozenset[type] | None = None


def _binary_classes() -> frozenset[type]:
    global _BINARY_CLASSES
    if _BINARY_CLASSES is None:
        from ..neurons.registry import neuron_classes

        _BINARY_CLASSES = frozenset(c for c in neuron_classes() if c.__module__.startswith("arlif.neurons."))
    return _BINARY_CLASSES


def check_tier(memory: str) -> str:
    if memory not in TIERS:
        raise ValueError(f"memory must be one of {list(TIERS)}, got {memory!r}")
    return memory


# ---- the registry of spike tensors ------------------------------------------------------------------------


class _Spikes:
    """One marked spike tensor: a weak reference to it, its version when marked, and the bits already
    packed from it in this forward (by view geometry), so that a second save reuses them."""

    __slots__ = ("ref", "version", "dtype", "packed")

    def __init__(self, t: torch.Tensor, on_death, packed: dict | None = None):
        self.ref = weakref.ref(t, on_death)
        self.version = t._version
        self.dtype = t.dtype
        self.packed: dict[tuple, weakref.ref] = {} if packed is None else packed


_REGISTRY: dict[int, _Spikes] = {}
_PACKED: dict[int, weakref.ref] = {}  # id -> the bits tensors packed and still alive (for meters)


def _note_packed(bits: torch.Tensor) -> None:
    key = id(bits)
    _PACKED[key] = weakref.ref(bits, lambda _r, key=key: _PACKED.pop(key, None))


def is_packed_bits(t: torch.Tensor) -> bool:
    """Whether ``t`` is the bits of spikes a compact layer packed (for meters in outer hooks)."""
    ref = _PACKED.get(id(t))
    return ref is not None and ref() is t


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def mark_spikes(t: torch.Tensor, _share: _Spikes | None = None) -> None:
    """Record that ``t`` holds only 0s and 1s (the caller's promise), so compact layers may keep it as bits.

    Only dense, non-empty floating-point tensors are recorded; the mark lapses when ``t`` is freed or
    changed in place."""
    if not isinstance(t, torch.Tensor) or t.layout is not torch.strided or t.numel() == 0:
        return
    if t.dtype not in _PACKABLE or t.is_nested or _is_fake(t):
        return
    key = _storage_key(t)

    def forget(_ref, key=key):
        entry = _REGISTRY.get(key)
        if entry is not None and entry.ref is _ref:
            del _REGISTRY[key]

    _REGISTRY[key] = _Spikes(t, forget, None if _share is None else _share.packed)


def _is_fake(t: torch.Tensor) -> bool:
    # FakeTensors and functional wrappers (torch.compile tracing) have no real storage to key on
    return type(t) is not torch.Tensor and not isinstance(t, nn.Parameter)


def _marked(t: torch.Tensor) -> _Spikes | None:
    """The registry entry ``t`` is (a view of), if its values are still the marked spikes."""
    if t.layout is not torch.strided or t.numel() == 0 or _is_fake(t):
        return None
    entry = _REGISTRY.get(_storage_key(t))
    if entry is None:
        return None
    src = entry.ref()
    if src is None or src._version != entry.version or t.dtype != entry.dtype or t._version != entry.version:
        return None
    if t.device != src.device:
        return None
    return entry


def cast_spikes_for_autocast(x: torch.Tensor) -> torch.Tensor:
    """Under autocast, marked spikes ``x`` cast to the autocast dtype, the same cast autocast makes for a
    convolution or linear layer, and marked in turn (0s and 1s stay 0s and 1s), so that the layer saves a
    marked tensor. The cast shares ``x``'s packed bits: two layers fed by the same spikes (each casting them,
    as autocast does) keep one copy of the bits. Outside autocast, ``x`` itself."""
    kind = x.device.type
    if not torch.is_autocast_enabled(kind):
        return x
    dtype = torch.get_autocast_dtype(kind)
    entry = _marked(x)
    if x.dtype == dtype or entry is None:
        return x
    y = x.to(dtype)
    mark_spikes(y, _share=entry)
    return y


def is_marked_binary(t: torch.Tensor) -> bool:
    """Whether compact layers would keep ``t`` as bits (it is, or views, marked spikes left unchanged)."""
    return _marked(t) is not None


# ---- packing ------------------------------------------------------------------------------------------------

# Packing is one matrix-vector product: each group of 8 elements (0s and 1s) times the weights 1, 2, ..., 128
# is its byte, exactly (integers up to 255 are exact in every float dtype, products and sums included).
# Unpacking is one row lookup in a table of the 256 bytes' 8 elements. Few operations matter as much as
# few passes: on a shared machine each parallel operation can wait a time slice for its threads.
_PACKABLE = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_WEIGHTS: dict[tuple, torch.Tensor] = {}
_TABLES: dict[tuple, torch.Tensor] = {}


def _weights(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    w = _WEIGHTS.get((dtype, device))
    if w is None:
        w = _WEIGHTS[(dtype, device)] = (2 ** torch.arange(8, device=device)).to(dtype)
    return w


def _table(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    table = _TABLES.get((dtype, device))
    if table is None:
        byte = torch.arange(256, device=device).unsqueeze(-1)
        table = _TABLES[(dtype, device)] = ((byte >> torch.arange(8, device=device)) & 1).to(dtype)
    return table


class PackedBits:
    """A binary tensor kept as 1 bit per element (``bits``, uint8, 8 elements a byte, in the tensor's memory
    order) with what it takes to rebuild it exactly: shape, strides, dtype, device."""

    __slots__ = ("bits", "shape", "stride", "dtype", "numel")

    def __init__(self, bits, shape, stride, dtype, numel):
        self.bits, self.shape, self.stride, self.dtype, self.numel = bits, shape, stride, dtype, numel


def _dense_order(t: torch.Tensor) -> torch.Tensor | None:
    """``t`` permuted so that it is contiguous in memory (channels-last stays channels-last), or None when
    its strides overlap or leave gaps."""
    if t.is_contiguous():
        return t
    order = sorted(range(t.dim()), key=lambda d: (t.stride(d), t.size(d)), reverse=True)
    p = t.permute(order)
    return p if p.is_contiguous() else None


def pack_bits(t: torch.Tensor) -> PackedBits:
    """Pack a tensor of 0s and 1s (float32/float64/bfloat16/float16) to 1 bit per element (torch ops, any
    device)."""
    if t.dtype not in _PACKABLE:
        raise TypeError(f"pack_bits packs {list(_PACKABLE)}, got {t.dtype}")
    with torch.no_grad(), torch.autocast(t.device.type, enabled=False):
        dense = _dense_order(t.detach())
        flat = (dense if dense is not None else t.detach().contiguous()).reshape(-1)
        n = flat.numel()
        if n % 8:
            flat = torch.nn.functional.pad(flat, (0, -n % 8))
        bits = (flat.view(-1, 8) @ _weights(t.dtype, t.device)).to(torch.uint8)
    stride = tuple(t.stride()) if dense is not None else None
    return PackedBits(bits, tuple(t.shape), stride, t.dtype, n)


def unpack_bits(p: PackedBits) -> torch.Tensor:
    """The exact tensor :func:`pack_bits` packed (values, dtype, shape, strides, device)."""
    with torch.no_grad():
        rows = _table(p.dtype, p.bits.device).index_select(0, p.bits.to(torch.int32))
        flat = rows.view(-1)[: p.numel]
        if p.stride is None:
            return flat.view(p.shape)
        out = torch.empty_strided(p.shape, p.stride, dtype=p.dtype, device=p.bits.device)
        dense = _dense_order(out)
        if dense is out:
            return flat.view(p.shape)
        dense.copy_(flat.view(dense.shape))
        return out


# ---- the saved-tensor hooks ---------------------------------------------------------------------------------


class _Saved:
    """What a compact pack hook stores: the outer hooks' packing of the bits, or of the tensor itself."""

    __slots__ = ("outer", "meta")

    def __init__(self, outer, meta):
        self.outer, self.meta = outer, meta  # meta: PackedBits without .bits, or None for a plain tensor


def _pack_spikes(t: torch.Tensor, entry: _Spikes) -> PackedBits:
    geometry = (tuple(t.shape), tuple(t.stride()), t.storage_offset())
    ref = entry.packed.get(geometry)
    bits = ref() if ref is not None else None
    if bits is not None:
        stride = tuple(t.stride()) if _dense_order(t) is not None else None
        return PackedBits(bits, tuple(t.shape), stride, t.dtype, t.numel())
    p = pack_bits(t)
    entry.packed[geometry] = weakref.ref(p.bits)
    return p


@contextmanager
def compact_saved_tensors() -> Iterator[None]:
    """Within this block, saved tensors that are marked spikes (see :func:`mark_spikes`) are kept as bits.

    Hooks already active outside (a meter, ``save_on_cpu``) get the bits or the plain tensor in turn."""
    top = torch._C._autograd._top_saved_tensors_default_hooks(False)
    outer_pack, outer_unpack = top if top is not None else (None, None)

    def pack(t):
        entry = _marked(t)
        if entry is None:
            return _Saved(outer_pack(t) if outer_pack else t, None)
        p = _pack_spikes(t, entry)
        bits = p.bits
        _note_packed(bits)
        p.bits = None
        return _Saved(outer_pack(bits) if outer_pack else bits, p)

    def unpack(saved):
        inner = outer_unpack(saved.outer) if outer_unpack else saved.outer
        if saved.meta is None:
            return inner
        m = saved.meta
        return unpack_bits(PackedBits(inner, m.shape, m.stride, m.dtype, m.numel))

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


# ---- the switch ---------------------------------------------------------------------------------------------


def _mark_output(module: nn.Module, args, output) -> None:
    spikes = output[0] if isinstance(output, tuple) else output
    if not isinstance(spikes, torch.Tensor) or not torch.is_grad_enabled():
        return
    if torch.compiler.is_compiling():
        return
    if type(module) in _binary_classes() or getattr(module, "binary_spikes", False):
        mark_spikes(spikes)
    elif spikes.numel() and bool(((spikes == 0) | (spikes == 1)).all()):
        mark_spikes(spikes)


def _is_neuron(module: nn.Module) -> bool:
    from ..neurons import BaseNeuron

    return isinstance(module, BaseNeuron)


def set_memory(model: nn.Module, memory: str) -> nn.Module:
    """Set the training-memory tier of ``model`` (any module tree: a registered model, or your own
    ``nn.Sequential`` of ``SeqToANN(conv), BatchNorm, neuron``) and return it.

    ``"compact"``: every :class:`~arlif.models.SeqToANN` keeps the spikes it saves for backward as bits,
    and every arlif neuron marks its output as spikes. ``"default"`` undoes it. Neurons of the built-in
    classes are known to emit exactly 0/1; for a neuron class of your own set ``binary_spikes = True`` on it,
    or every output is checked (one pass over the spikes, and a device synchronisation on a GPU)."""
    check_tier(memory)
    compact = memory == "compact"
    for mod in model.modules():
        if getattr(mod, "_arlif_memory_aware", False):  # SeqToANN and the recurrent layer
            mod.memory = memory
        if _is_neuron(mod):
            # found by identity, not by a stored handle: a deep copy or a pickled model keeps its hooks
            keys = [k for k, hook in mod._forward_hooks.items() if hook is _mark_output]
            if compact and not keys:
                mod.register_forward_hook(_mark_output)
            elif not compact:
                for k in keys:
                    del mod._forward_hooks[k]
    return model


def get_memory(model: nn.Module) -> str:
    """The tier :func:`set_memory` set: ``"default"`` or ``"compact"``, ``"mixed"`` where the model's
    ``SeqToANN`` (and recurrent) layers differ (``"default"`` for a model without any)."""
    tiers = {m.memory for m in model.modules() if getattr(m, "_arlif_memory_aware", False)}
    return tiers.pop() if len(tiers) == 1 else ("default" if not tiers else "mixed")


# ---- measuring --------------------------------------------------------------------------------------------

KINDS = ("spikes", "bn_input", "neuron_input", "other")


class HeldBytes:
    """Context manager counting the bytes the autograd graph keeps for backward while open, each storage
    once, split by kind: ``spikes`` (neuron outputs, as floats or as bits), ``bn_input`` (what BatchNorm
    keeps), ``neuron_input`` (what the neurons keep), ``other`` (weights, pooling, ...). Kinds are told by
    storage from forward hooks on ``model``'s neurons and BatchNorm layers. ``meter.bytes`` and
    ``meter.by_kind`` after the block."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._seen: dict[int, tuple[str, weakref.ref]] = {}
        self._storages: dict[int, tuple[str, int]] = {}
        self._handles: list = []
        self._hooks = None

    def _note(self, kind: str, t) -> None:
        if isinstance(t, torch.Tensor) and t.numel():
            self._seen[_storage_key(t)] = (kind, weakref.ref(t))

    def _kind(self, t: torch.Tensor) -> str:
        if is_packed_bits(t):
            return "spikes"
        seen = self._seen.get(_storage_key(t))
        if seen is not None and seen[1]() is not None:
            return seen[0]
        return "other"

    def _pack(self, t):
        st = t.untyped_storage()
        if st.data_ptr() not in self._storages:
            self._storages[st.data_ptr()] = (self._kind(t), st.nbytes())
        return t

    def __enter__(self) -> HeldBytes:
        bn = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
        for mod in self.model.modules():
            if _is_neuron(mod):
                self._handles.append(mod.register_forward_pre_hook(lambda m, a: self._note("neuron_input", a[0])))
                self._handles.append(
                    mod.register_forward_hook(lambda m, a, o: self._note("spikes", o[0] if isinstance(o, tuple) else o))
                )
            elif isinstance(mod, bn):
                self._handles.append(mod.register_forward_pre_hook(lambda m, a: self._note("bn_input", a[0])))
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @property
    def bytes(self) -> int:
        return sum(n for _, n in self._storages.values())

    @property
    def by_kind(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for kind, n in self._storages.values():
            out[kind] += n
        return out
