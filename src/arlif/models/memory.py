"""Training memory tiers: what the autograd graph keeps between forward and backward.

``"default"`` keeps what PyTorch keeps. ``"compact"`` stores the spike tensors that convolutions and linear
layers keep for their weight gradient at 1 bit per element instead of 4 (fp32) or 2 (bf16/fp16) bytes, and
keeps no BatchNorm output for the neuron after it: backward recomputes it from the BatchNorm's input, which
the BatchNorm keeps anyway. ``"minimal"`` also recomputes, from the bits, the outputs of convolutions, linear
layers and average pools fed by spikes (or by average-pooled spikes) and the ResNet block's residual sums
(:func:`note_sum`), so that BatchNorm keeps no input of its own there either. The gradients are bitwise
the same, because backward gets back exactly the tensors forward saved.

Spikes. Spikes are marked where they are made: a forward hook on every neuron records its output
(storage, dtype and version counter, through a weak reference, so the registry never keeps a tensor
alive). While a :class:`~arlif.models.SeqToANN` or a neuron in a compact tier runs, a ``saved_tensors_hooks``
pair packs every saved tensor that is a marked spike tensor, or a view of one (``flatten(0, 1)``), with
vectorised torch ops, and passes everything else through untouched. Marking costs nothing per element and
no device synchronisation; an in-place change of the spikes bumps their version, after which they are no
longer taken for binary. A tensor that is not marked is never packed: the first convolution on images,
pooled or dropped-out spikes, BatchNorm's inputs. The same spikes saved twice in one forward (the ResNet
shortcut: the block's spikes feed conv1 and the 1×1 shortcut conv) are packed once; both saves hold the
same bits, and each unpack gives its own copy.

Recomputed outputs. A forward hook on every BatchNorm (and, in ``"minimal"``, on every convolution, linear
layer or average pool in a ``SeqToANN`` whose input is marked spikes or a recomputable output) registers
its output, by storage and through a weak reference, with a recipe: the module, what the output is made
from (the BatchNorm's input, weakly; the spikes' bits, shared with the layer's own save; or the input's
recipe) and the autocast state. A saved tensor that is such an output, or a view of one, still at its
version, is kept as the recipe. Backward runs the forward's kernel again (``F.batch_norm`` with the same
arguments, running statistics as clones in training mode so that they are updated once; ``layer.forward``
on the unpacked bits) under the recorded autocast state, and takes the saved view. A recipe that several
saves share (the BatchNorm recipe refers to the convolution's, whose output BatchNorm also keeps) makes its
output once per backward and drops it at its last unpack; nothing outlives the graph. An output changed in
place before it is saved is kept as it is; a tensor a recipe needs that is changed in place after the save
makes backward fail, as autograd does in ``"default"``.

Outer ``saved_tensors_hooks`` (a memory meter, ``save_on_cpu``) still see every saved tensor: the packed
bits, the tensor itself, or what a recipe keeps (the BatchNorm's input, the bits).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from .._tiers import MEMORY_TIERS

TIERS = MEMORY_TIERS

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


def _usable(t) -> bool:
    return isinstance(t, torch.Tensor) and t.layout is torch.strided and t.numel() > 0 and not _is_fake(t)


def _registered(registry: dict, t: torch.Tensor):
    """The entry of ``registry`` (spikes or recipes, keyed by storage) for the tensor ``t`` is a view of, if
    that tensor is alive and ``t`` still holds what was registered: same version, dtype and device."""
    if not _usable(t):
        return None
    entry = registry.get(_storage_key(t))
    if entry is None:
        return None
    src = entry.ref()
    if src is None or src._version != entry.version or t._version != entry.version:
        return None
    if t.dtype != entry.dtype or t.device != src.device:
        return None
    return entry


def _marked(t: torch.Tensor) -> _Spikes | None:
    """The registry entry ``t`` is (a view of), if its values are still the marked spikes."""
    return _registered(_REGISTRY, t)


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


# ---- tensors made again in backward -------------------------------------------------------------------------


def _autocast_state(device_type: str) -> tuple | None:
    if not torch.amp.is_autocast_available(device_type):
        return None
    return device_type, torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)


def _autocast(state: tuple | None):
    """The autocast state a forward ran under, for its recomputation (backward may run under any)."""
    if state is None:
        return nullcontext()
    device_type, enabled, dtype = state
    return torch.autocast(device_type, dtype=dtype, enabled=enabled)


def _outer_pack(outer: tuple, t: torch.Tensor):
    return outer[0](t) if outer[0] is not None else t


def _outer_unpack(outer: tuple, saved) -> torch.Tensor:
    return outer[1](saved) if outer[1] is not None else saved


def _modified(what: str) -> RuntimeError:
    return RuntimeError(
        f"{what}, which the memory tier recomputes in backward, or a tensor it is recomputed from, was modified "
        "by an inplace operation after the forward; use memory='default' for this model, or avoid the change"
    )


class _Recipe:
    """How to make a layer's output again in backward, shared by every save of it (or of a view of it).

    Registered by storage while the output is alive (a weak reference, its version, dtype and geometry), so
    that the registry keeps nothing alive. At its first save it takes what it needs to recompute (``_seal``;
    False where that is gone, and the save keeps the tensor itself). ``pending`` counts the saves not yet
    unpacked: the output made again for the first is kept on the recipe for the others, until the last."""

    __slots__ = ("ref", "version", "dtype", "device", "shape", "stride", "offset", "autocast", "outer",
                 "pending", "cache")  # fmt: skip

    what = "a layer's output"

    def __init__(self, out: torch.Tensor):
        self.version = out._version
        self.dtype, self.device = out.dtype, out.device
        self.shape, self.stride, self.offset = tuple(out.shape), tuple(out.stride()), out.storage_offset()
        self.autocast = _autocast_state(out.device.type)
        self.outer = None  # the hooks outside the first save, which keep what the recipe keeps
        self.pending = 0
        self.cache = None
        key = _storage_key(out)

        def forget(_ref, key=key):  # no reference to self: the recipe is freed as soon as its saves are
            recipe = _MADE.get(key)
            if recipe is not None and recipe.ref is _ref:
                del _MADE[key]

        self.ref = weakref.ref(out, forget)
        _MADE[key] = self

    def hold(self, outer: tuple) -> bool:
        """One more save refers to this recipe (``outer``: the pack/unpack hooks around it)."""
        if self.outer is None:
            if not self._seal(outer):
                return False
            self.outer = outer
        self.pending += 1
        return True

    def get(self) -> torch.Tensor:
        """The output, made again (or kept from an earlier unpack of the same backward)."""
        out = self.cache
        if out is None:
            target = self.ref()
            if target is not None and target._version != self.version:
                raise _modified(self.what)
            with torch.no_grad(), _autocast(self.autocast):
                out = self._make()
            if tuple(out.shape) != self.shape or tuple(out.stride()) != self.stride:
                dense = torch.empty_strided(self.shape, self.stride, dtype=self.dtype, device=self.device)
                out = dense.copy_(out)
        self.pending -= 1
        self.cache = out if self.pending > 0 else None
        return out

    def _seal(self, outer: tuple) -> bool:
        raise NotImplementedError

    def _make(self) -> torch.Tensor:
        raise NotImplementedError


def _versions(*tensors) -> tuple:
    return tuple((t, t._version) for t in tensors if t is not None)


def _check_versions(versions: tuple, what: str) -> None:
    if any(t._version != v for t, v in versions):
        raise _modified(what)


class _BatchNormRecipe(_Recipe):
    """A BatchNorm output, made again from the BatchNorm's input with the forward's kernel: training mode
    from the batch statistics (running statistics passed as clones, so they are updated once, in the
    forward), eval mode from the running statistics. The input is kept by the BatchNorm itself for its
    backward; where it is a recomputed output in turn (a convolution's, ``"minimal"``), the recipe refers to
    that recipe instead and keeps nothing of its own."""

    __slots__ = ("x_ref", "x_version", "x_kept", "source", "training", "stats", "params", "versions", "eps")

    what = "a BatchNorm output"

    def __init__(self, bn: nn.Module, out: torch.Tensor, x: torch.Tensor):
        super().__init__(out)
        self.x_ref, self.x_version, self.x_kept = weakref.ref(x), x._version, None
        made = _made(x)
        self.source = None if made is None else _View(made, x)
        # what nn.BatchNorm's forward passes to F.batch_norm
        self.training = bn.training or (bn.running_mean is None and bn.running_var is None)
        use_stats = not bn.training or bn.track_running_stats
        self.stats = (bn.running_mean, bn.running_var) if use_stats else (None, None)
        self.params = (bn.weight, bn.bias)
        # versions as the forward used them: an optimiser step or an edit before backward is an error
        self.versions = _versions(*self.params) + (() if self.training else _versions(*self.stats))
        self.eps = bn.eps

    def _seal(self, outer: tuple) -> bool:
        if self.source is not None and self.source.recipe.hold(outer):
            return True
        self.source = None
        x = self.x_ref()
        if x is None or x._version != self.x_version:
            return False
        self.x_kept = _outer_pack(outer, x)
        return True

    def _make(self) -> torch.Tensor:
        x = self.x_ref()
        if x is not None and x._version != self.x_version:
            raise _modified(self.what)
        _check_versions(self.versions, self.what)
        x = self.source.take() if self.source is not None else _outer_unpack(self.outer, self.x_kept)
        mean, var = self.stats
        if self.training:
            mean = None if mean is None else mean.clone()
            var = None if var is None else var.clone()
        return F.batch_norm(x, mean, var, *self.params, self.training, 0.0, self.eps)


class _LayerRecipe(_Recipe):
    """The output of a convolution, linear layer or average pool fed by spikes, made again from the spikes'
    bits (the same bits the layer keeps for its own backward: one copy); or of one fed by such an output (a
    convolution on average-pooled spikes), made again from that output's recipe."""

    __slots__ = ("layer", "source", "bits", "meta", "params")

    what = "a layer's output"

    def __init__(self, layer: nn.Module, out: torch.Tensor, s: torch.Tensor, entry=None, source=None):
        super().__init__(out)
        self.layer = layer
        self.source = None if source is None else _View(source, s)
        self.bits = self.meta = None
        if entry is not None:
            # now, while the spikes are alive (the layer has just packed them for its own save: shared)
            p = _pack_spikes(s, entry)
            _note_packed(p.bits)
            self.bits, p.bits = p.bits, None
            self.meta = p
        self.params = _versions(getattr(layer, "weight", None), getattr(layer, "bias", None))

    def _seal(self, outer: tuple) -> bool:
        if self.source is not None:
            return self.source.recipe.hold(outer)
        self.bits = _outer_pack(outer, self.bits)
        return True

    def _make(self) -> torch.Tensor:
        _check_versions(self.params, self.what)
        if self.source is not None:
            s = self.source.take()
        else:
            m = self.meta
            s = unpack_bits(PackedBits(_outer_unpack(self.outer, self.bits), m.shape, m.stride, m.dtype, m.numel))
        return self.layer.forward(s)  # not __call__: no hooks


class _SumRecipe(_Recipe):
    """A sum of two tensors that are each spikes or a recomputable output (the pre-activation ResNet block's
    ``conv2(...) + shortcut(s)``, the shortcut being the spikes or a 1×1 convolution of them), made again
    from their bits and recipes."""

    __slots__ = ("parts",)

    what = "a residual sum"

    def __init__(self, out: torch.Tensor, parts: list):
        super().__init__(out)
        self.parts = parts  # each a _View of a recipe, or a PackedBits (then outer-packed at the seal)

    def _seal(self, outer: tuple) -> bool:
        for i, part in enumerate(self.parts):
            if type(part) is _View:
                if not part.recipe.hold(outer):
                    return False
            else:
                self.parts[i] = (_outer_pack(outer, part.bits), part)
        return True

    def _make(self) -> torch.Tensor:
        a, b = (
            part.take()
            if type(part) is _View
            else unpack_bits(PackedBits(_outer_unpack(self.outer, part[0]), *_meta(part[1])))
            for part in self.parts
        )
        return a + b


def _meta(p: PackedBits) -> tuple:
    return p.shape, p.stride, p.dtype, p.numel


def note_sum(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """Register ``out = a + b`` as recomputable where ``a`` and ``b`` are each marked spikes or a recomputable
    output (in ``"minimal"``, a convolution's on spikes); otherwise, and in the other tiers, nothing."""
    if not torch.is_grad_enabled() or torch.compiler.is_compiling() or not _usable(out):
        return
    parts = []
    for t in (a, b):
        if not _usable(t):
            return
        made = _made(t)
        if made is not None:
            parts.append(_View(made, t))
            continue
        entry = _marked(t)
        if entry is None:
            return
        p = _pack_spikes(t, entry)
        _note_packed(p.bits)
        parts.append(p)
    _SumRecipe(out, parts)


_MADE: dict[int, _Recipe] = {}


def _made(t: torch.Tensor) -> _Recipe | None:
    """The recipe of the output ``t`` is (a view of), if it still holds what the layer made."""
    return _registered(_MADE, t)


# ---- the saved-tensor hooks ---------------------------------------------------------------------------------


class _Saved:
    """What a compact pack hook stores: the outer hooks' packing of the bits, or of the tensor itself.

    Autograd does not check the version of a tensor that went through saved-tensor hooks, so ``check``
    keeps what it would have checked: the saved tensor (weakly) and its version at the save. Unpacking a
    tensor changed in place since (a weight after an optimiser step, spikes edited) raises as autograd does
    in ``"default"``, instead of giving gradients of values the forward never used."""

    __slots__ = ("outer", "meta", "check")

    def __init__(self, outer, meta, t: torch.Tensor | None = None, base: torch.Tensor | None = None):
        # meta: PackedBits without .bits, a _View of a recipe's output, or None for a plain tensor. ``base``:
        # a tensor sharing t's version counter that outlives it (the spikes a packed view was taken of:
        # nothing keeps the view itself once its bits are saved)
        self.outer, self.meta = outer, meta
        self.check = None if t is None else (weakref.ref(t if base is None else base), t._version)

    def check_version(self) -> None:
        if self.check is None:
            return
        ref, version = self.check
        t = ref()
        if t is not None and t._version != version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: [{t.dtype} {list(t.shape)}] is at version {t._version}; expected version {version} "
                "instead (between this model's forward and backward: call backward before changing it, e.g. "
                "before optimizer.step())"
            )


class _View:
    """A save of a recomputed output (or of a view of it): the recipe and the view's geometry."""

    __slots__ = ("recipe", "shape", "stride", "offset")

    def __init__(self, recipe: _Recipe, t: torch.Tensor):
        self.recipe = recipe
        self.shape, self.stride, self.offset = tuple(t.shape), tuple(t.stride()), t.storage_offset() - recipe.offset

    def take(self) -> torch.Tensor:
        out = self.recipe.get()
        if self.shape == tuple(out.shape) and self.stride == tuple(out.stride()) and self.offset == 0:
            return out
        return out.as_strided(self.shape, self.stride, out.storage_offset() + self.offset)


def _pack_spikes(t: torch.Tensor, entry: _Spikes) -> PackedBits:
    # a contiguous tensor's bits are in memory order whatever its shape: [T, B, ...] and its flatten(0, 1)
    # (the ResNet block adds the first, its conv1 keeps the second) share them
    if t.is_contiguous():
        geometry = ("contiguous", t.numel(), t.storage_offset())
    else:
        geometry = (tuple(t.shape), tuple(t.stride()), t.storage_offset())
    ref = entry.packed.get(geometry)
    bits = ref() if ref is not None else None
    if bits is not None:
        stride = tuple(t.stride()) if _dense_order(t) is not None else None
        return PackedBits(bits, tuple(t.shape), stride, t.dtype, t.numel())
    p = pack_bits(t)
    entry.packed[geometry] = weakref.ref(p.bits)
    return p


def _no_double_backward() -> None:
    # backward runs with grad mode on only for create_graph=True; a tensor made again here has no graph
    if torch.is_grad_enabled():
        raise RuntimeError(
            "backward with create_graph=True (double backward) needs the graph of the saved tensors, which the "
            "memory tiers 'compact' and 'minimal' keep as bits or recompute; use memory='default' for it"
        )


@contextmanager
def compact_saved_tensors() -> Iterator[None]:
    """Within this block, saved tensors that are marked spikes (see :func:`mark_spikes`) are kept as bits,
    and saved outputs that a recipe can make again (a BatchNorm's, in ``"minimal"`` a convolution's on
    spikes) are kept as the recipe.

    Hooks already active outside (a meter, ``save_on_cpu``) get the bits, the plain tensor, or what the
    recipe keeps, in turn."""
    top = torch._C._autograd._top_saved_tensors_default_hooks(False)
    outer = top if top is not None else (None, None)
    outer_pack, outer_unpack = outer

    def pack(t):
        entry = _marked(t)
        if entry is not None:
            p = _pack_spikes(t, entry)
            bits = p.bits
            _note_packed(bits)
            p.bits = None
            return _Saved(outer_pack(bits) if outer_pack else bits, p, t, entry.ref())
        recipe = _made(t)
        if recipe is not None and recipe.hold(outer):
            return _Saved(None, _View(recipe, t))
        return _Saved(outer_pack(t) if outer_pack else t, None, t)

    def unpack(saved):
        saved.check_version()
        m = saved.meta
        if m is None:
            return outer_unpack(saved.outer) if outer_unpack else saved.outer
        _no_double_backward()
        if type(m) is _View:
            return m.take()
        inner = outer_unpack(saved.outer) if outer_unpack else saved.outer
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


def _note_batchnorm(module: nn.Module, args, output) -> None:
    """Register a BatchNorm's output as recomputable from its input (``"compact"`` and ``"minimal"``)."""
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        return
    if args and _usable(args[0]) and _usable(output):
        _BatchNormRecipe(module, output, args[0])


def _note_layer(module: nn.Module, args, output) -> None:
    """Register the output of a convolution, linear layer or average pool fed by marked spikes (or by a
    recomputable output) as recomputable from the spikes' bits (``"minimal"``)."""
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        return
    if not args or not _usable(args[0]) or not _usable(output):
        return
    entry = _marked(args[0])
    if entry is not None:
        _LayerRecipe(module, output, args[0], entry=entry)
        return
    made = _made(args[0])
    if made is not None:
        _LayerRecipe(module, output, args[0], source=made)


# Exact classes: a subclass (SyncBatchNorm is not one, but a user's may be) can compute something else,
# and SyncBatchNorm's statistics would need the other processes in backward.
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
           nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)  # fmt: skip


def _is_neuron(module: nn.Module) -> bool:
    from ..neurons import BaseNeuron

    return isinstance(module, BaseNeuron)


def _set_hook(module: nn.Module, hook, on: bool) -> None:
    # found by identity, not by a stored handle: a deep copy or a pickled model keeps its hooks
    keys = [k for k, h in module._forward_hooks.items() if h is hook]
    if on and not keys:
        module.register_forward_hook(hook)
    elif not on:
        for k in keys:
            del module._forward_hooks[k]


def set_memory(model: nn.Module, memory: str) -> nn.Module:
    """Set the training-memory tier of ``model`` (any module tree: a registered model, or your own
    ``nn.Sequential`` of ``SeqToANN(conv), BatchNorm, neuron``) and return it. The module tree and the
    ``state_dict`` stay the same in every tier; only attributes and forward hooks change.

    ``"compact"``: every :class:`~arlif.models.SeqToANN` keeps the spikes it saves for backward as bits,
    every arlif neuron marks its output as spikes, and every BatchNorm (``nn.BatchNorm1d/2d/3d``) output that
    a neuron keeps is recomputed in backward from the BatchNorm's input. ``"minimal"`` also recomputes, from
    the bits, the output of each convolution, linear layer or average pool in a ``SeqToANN`` fed by spikes
    (or by such an output: a convolution on pooled spikes).
    ``"default"`` undoes both. Neurons of the built-in classes are known to emit exactly 0/1; for a neuron
    class of your own set ``binary_spikes = True`` on it, or every output is checked (one pass over the
    spikes, and a device synchronisation on a GPU)."""
    check_tier(memory)
    compact = memory != "default"
    minimal = memory == "minimal"
    for mod in model.modules():
        if getattr(mod, "_arlif_memory_aware", False):  # SeqToANN, the recurrent layer and the neurons
            mod.memory = memory
        if _is_neuron(mod):
            _set_hook(mod, _mark_output, compact)
        elif type(mod) in _BATCHNORMS:
            _set_hook(mod, _note_batchnorm, compact)
        _set_hook(mod, _note_layer, False)
    if minimal:
        for mod in model.modules():
            if getattr(mod, "_arlif_memory_aware", False) and isinstance(mod, nn.Sequential):
                for layer in mod:
                    if type(layer) in _LAYERS:
                        _set_hook(layer, _note_layer, True)
    return model


def get_memory(model: nn.Module) -> str:
    """The tier :func:`set_memory` set: ``"default"``, ``"compact"`` or ``"minimal"``; ``"mixed"`` where the
    model's ``SeqToANN`` layers, recurrent layers and neurons differ (``"default"`` for a model without
    any)."""
    tiers = {m.memory for m in model.modules() if getattr(m, "_arlif_memory_aware", False)}
    return tiers.pop() if len(tiers) == 1 else ("default" if not tiers else "mixed")


# ---- measuring --------------------------------------------------------------------------------------------

KINDS = ("spikes", "bn_input", "neuron_input", "params", "other")


class HeldBytes:
    """Context manager counting the bytes the autograd graph keeps for backward while open, each storage
    once, split by kind: ``spikes`` (neuron outputs, as floats or as bits), ``bn_input`` (what BatchNorm
    keeps), ``neuron_input`` (what the neurons keep), ``params`` (``model``'s parameters and buffers, which
    exist without the graph too), ``other`` (the first layer's input, pooling, weights cast by autocast, ...).
    Kinds are told by storage from forward hooks on ``model``'s neurons and BatchNorm layers. ``meter.bytes``
    and ``meter.by_kind`` after the block."""

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
        for t in (*self.model.parameters(), *self.model.buffers()):
            self._note("params", t)
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
