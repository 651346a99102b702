"""Shared machinery of the neuron modules: step modes, state, input checks and backend choice.

Conventions follow SpikingJelly: ``step_mode="m"`` takes ``[T, B, ...]`` and returns spikes of the same
shape; ``step_mode="s"`` takes ``[B, ...]`` and keeps the state (``v``, and ``m`` for neurons with a reset
memory) on the module until :meth:`reset`. In both modes the state carries over between calls until
``reset()`` (call :func:`reset_net` after every batch). After a reset the state is the float ``0.``.

Inputs are not scanned for NaN/Inf: that costs a device synchronisation on every call. A NaN input gives
NaN membrane potentials and no spikes; the trainer checks the loss instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ..ops import backends
from ..ops.dtypes import compute_dtype
from ..ops.reference import run_steps
from ..surrogate import Surrogate, get_surrogate

Tensor = torch.Tensor
_STRIDED = torch.strided


def check_option(neuron: str, name: str, value, ok: Callable[[float], bool], allowed: str) -> float:
    """``value`` as a float, if it is a finite real number for which ``ok`` holds; else an error that names
    the neuron, the option and its ``allowed`` range (raised when the neuron is made, not at the first step,
    where a bad value would only show as silent or always-firing neurons)."""
    try:
        if isinstance(value, (bool, str)):  # float("0.5") or float(True) would hide a mistake
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{neuron}: {name} must be a number ({allowed}), got {value!r}") from None
    if not (math.isfinite(number) and ok(number)):
        raise ValueError(f"{neuron}: {name} must be {allowed}, got {value!r}")
    return number


def check_decay(neuron: str, decay) -> float:
    """The leak λ of ``H = λV + x``, in [0, 1]. Both ends are allowed on purpose: λ = 0 is a memoryless
    neuron (it fires on this step's input alone), λ = 1 a non-leaky integrate-and-fire neuron. Outside,
    λ > 1 makes the potential grow without input and λ < 0 flips its sign every step."""
    return check_option(neuron, "decay", decay, lambda v: 0 <= v <= 1, "in [0, 1] (the leak λ of H = λV + x)")


def _layout_problem(neuron: str, x: Tensor) -> str:
    """The message for an input that is not a dense tensor: what it is and how to convert it."""
    if x.is_nested:
        what, fix = "a nested tensor", "pad it to one shape with x.to_padded_tensor(0.0)"
    elif x.is_quantized:
        what, fix = f"a quantized tensor ({x.dtype})", "convert it with x.dequantize()"
    elif x.layout == torch._mkldnn:
        what, fix = "an MKLDNN tensor (layout torch._mkldnn)", "convert it with x.to_dense()"
    else:
        what, fix = f"a sparse tensor (layout {x.layout})", "convert it with x.to_dense()"
    return f"{neuron} expects a dense tensor (layout torch.strided), got {what}; {fix}"


class NeuronState(NamedTuple):
    """The states of the built-in neurons, as returned with ``return_state=True`` (``m`` is ``None`` for a
    neuron without a reset memory). A neuron with other states declares its own NamedTuple as
    :attr:`BaseNeuron.state_type`."""

    v: Tensor
    m: Tensor | None

    @classmethod
    def of(cls, states) -> NeuronState:
        """From a neuron's states in order (``v``, then ``m`` where the neuron has one)."""
        return cls(states[0], states[1] if len(states) > 1 else None)


def output_spikes(out):
    """The spikes of a neuron's output: ``out`` itself, or its first item when the neuron returns
    ``(spikes, NeuronState)`` (``return_state=True``). For forward hooks that read the spikes."""
    return out[0] if isinstance(out, tuple) else out


class BaseNeuron(nn.Module):
    """Base class of all arlif neurons.

    A neuron is one unit: its file defines its class, and registers its names
    (:func:`arlif.neurons.register_neuron`). The rest of the package reads what the class declares:

    * ``state_type``: a NamedTuple of its state fields (``NeuronState(v, m)`` by default), returned with
      ``return_state=True`` and kept per field as ``<field>_seq`` with ``store_state=True``;
      ``state_names``: the fields it carries from step to step, in the step function's order;
    * :meth:`learned_scalars` (logged every epoch, plotted by ``arlif plot params``) and ``scalar_labels``;
    * :meth:`update_ops`: its elementwise operations per step (the energy report);
    * :meth:`effective_threshold`: the threshold each step's ``H`` was compared with (``arlif plot dynamics``);
    * :meth:`switching_states`: states whose sign switches the dynamics (``arlif selftest`` keeps away from 0);
    * ``neuron_kind``: the key of its fused kernels (``""`` when it has only the reference).

    Subclasses implement :meth:`_step_fn` (the pure step function), :meth:`_params` (its learnable tensors,
    in the step function's order) and :meth:`_config` (its keyword constants).

    Args:
        v_threshold: base firing threshold V_th.
        surrogate: surrogate gradient, a name (``"rectangle"``, ``"triangle"``, ``"sigmoid"``, ``"atan"``)
            or an :class:`arlif.surrogate.Surrogate` instance.
        step_mode: ``"m"`` (multi-step, ``[T, B, ...]``) or ``"s"`` (single step, ``[B, ...]``).
        backend: ``"auto"``, ``"torch"`` (per-step reference), ``"cpu"`` or ``"triton"`` (fused).
        store_state: keep ``<field>_seq`` ``[T, ...]`` for each state field (``v_seq``, ``m_seq``) after each
            multi-step forward.
        return_state: make ``forward`` return ``(spikes, state)``, a ``state_type`` (``NeuronState(v, m)``):
            in multi-step mode the sequences ``[T, ...]`` (V_t after reset, m_t), in single-step mode the
            state after the step; a field the neuron does not carry is ``None``. They stay in the autograd
            graph, so a loss may use them.
    """

    neuron_kind: str = ""
    state_type: type = NeuronState
    state_names: tuple[str, ...] = ("v",)
    zero_states: tuple[str, ...] = ("v",)  # states the reference step gets as zeros, not None, at rest
    scalar_labels: dict[str, str] = {}
    # the training-memory tier (arlif.models.set_memory sets it on every module with this flag)
    memory: str = "default"
    _arlif_memory_aware = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [n for n in cls.state_names if n not in cls.state_type._fields]
        if missing:
            raise TypeError(
                f"{cls.__name__}: state_names {missing} are not fields of state_type "
                f"{cls.state_type.__name__}{cls.state_type._fields}"
            )

    def __init__(
        self,
        v_threshold: float = 1.0,
        surrogate: str | Surrogate | None = "rectangle",
        step_mode: str = "m",
        backend: str = "auto",
        store_state: bool = False,
        return_state: bool = False,
    ):
        super().__init__()
        self.v_threshold = check_option(
            type(self).__name__, "v_threshold", v_threshold, lambda v: v > 0, "a finite number > 0"
        )
        self.surrogate = get_surrogate(surrogate)
        self.step_mode = step_mode
        self.backend = backend
        self.store_state = bool(store_state)
        self.return_state = bool(return_state)
        self.reset()

    # ---- configuration -------------------------------------------------------------------------
    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        if mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 's' (single step) or 'm' (multi-step), got {mode!r}")
        self._step_mode = mode

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, name: str) -> None:
        self._backend = backends.check_backend_name(name)

    # ---- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Set every state back to 0 and drop stored sequences (call between samples/batches)."""
        for name in self.state_names:
            setattr(self, name, 0.0)
        for name in self.state_type._fields:
            setattr(self, f"{name}_seq", None)

    def _current_state(self, like: Tensor) -> tuple[Tensor | None, ...]:
        """The stored state as tensors shaped like ``like`` (``None`` where it is still the reset 0.)."""
        out = []
        for name in self.state_names:
            st = getattr(self, name)
            if isinstance(st, Tensor):
                if st.shape != like.shape:
                    raise ValueError(
                        f"{type(self).__name__}: input of shape {tuple(like.shape)} does not match the "
                        f"stored state {name} of shape {tuple(st.shape)}; call reset() "
                        "(or arlif.reset_net(net)) before feeding a new batch"
                    )
                out.append(st)
            else:
                out.append(None)
        return tuple(out)

    def _state_tuple(self, states):
        """A ``state_type`` from values in ``state_names`` order; fields the neuron does not carry are ``None``."""
        given = dict(zip(self.state_names, states))
        return self.state_type(*(given.get(f) for f in self.state_type._fields))

    def _initial_states(self, like: Tensor) -> tuple[Tensor | None, ...]:
        """Stored state, with the states of ``zero_states`` materialised as zeros on first use (the others
        stay ``None`` at rest, for step functions that treat that case on their own)."""
        return tuple(
            torch.zeros_like(like) if st is None and name in self.zero_states else st
            for name, st in zip(self.state_names, self._current_state(like))
        )

    # ---- subclass hooks ----------------------------------------------------------------------------
    def _step_fn(self) -> Callable[..., tuple]:
        raise NotImplementedError

    def _params(self) -> tuple[Tensor, ...]:
        return ()

    def _config(self) -> dict:
        raise NotImplementedError

    # ---- what the rest of the package reads ----------------------------------------------------------
    def learned_scalars(self) -> dict[str, float]:
        """The neuron's learned scalars by name (every 0-dim parameter of its own), logged per epoch."""
        return {name: float(p.detach()) for name, p in self.named_parameters(recurse=False) if p.dim() == 0}

    def update_ops(self) -> dict[str, int] | None:
        """Elementwise operations of one neuron per time step, ``{"arith": .., "transcendental": ..}``, from
        its update rule (counted as in docs/energy.md#neuron-update-operations); ``None`` when not declared, which
        the energy report shows as unknown."""
        return None

    def effective_threshold(self, x_seq: Tensor, states) -> Tensor:
        """The threshold ``θ_t`` that ``H_t`` was compared with at each step, shaped like ``x_seq``
        ``[T, ...]``; ``states`` is this neuron's ``state_type`` of sequences after each step, starting from
        rest. A fixed threshold by default."""
        return torch.full_like(x_seq, self.v_threshold)

    def short_name(self) -> str:
        """The name in per-layer tables (the energy report): the class name, with a variant where it matters."""
        return type(self).__name__

    def switching_states(self) -> tuple[str, ...]:
        """State fields whose sign switches the update rule (AR-LIF's memory leaks by g or 1 - g), so that
        tests can keep inputs away from their zero crossings."""
        return ()

    # ---- forward -----------------------------------------------------------------------------------
    def _check_input(self, x: Tensor, min_dim: int, layout: str) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}")
        # Attribute reads only (no device sync, no kernel): sparse, MKLDNN, nested and quantized tensors
        # would otherwise fail deep inside an operator of whichever backend runs, with the dispatcher's message.
        # Quantized tensors are strided with a non-float dtype, so they are told apart only on that error path.
        if x.layout is not _STRIDED or x.is_nested:
            raise TypeError(_layout_problem(type(self).__name__, x))
        if not x.is_floating_point():
            if x.is_quantized:
                raise TypeError(_layout_problem(type(self).__name__, x))
            raise TypeError(
                f"{type(self).__name__} expects a floating-point input (float32/float64/bfloat16/float16), "
                f"got {x.dtype}; convert it with x.float()"
            )
        if self.step_mode == "m" and x.dim() >= 1 and x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: the input has T = 0 time steps (shape {tuple(x.shape)})")
        if x.dim() < min_dim:
            raise ValueError(
                f"{type(self).__name__} in step_mode={self.step_mode!r} expects input {layout}, got shape "
                f"{tuple(x.shape)}"
                + (" (use step_mode='s' for a single step)" if self.step_mode == "m" else "")
            )

    def single_step_forward(self, x: Tensor) -> Tensor:
        """One step: ``x`` [B, ...] -> spikes [B, ...] in x's dtype; updates the stored state (float32 for
        bf16/fp16 input, as in the fused multi-step path)."""
        self._check_input(x, 1, "[B, ...] (one time step)")
        xc = x.to(compute_dtype(x.dtype))
        states = self._initial_states(xc)
        s, *new_states = self._step_fn()(xc, *states, *self._params(), **self._config())
        for name, st in zip(self.state_names, new_states):
            setattr(self, name, 0.0 if st is None else st)
        if self.return_state:
            return s.to(x.dtype), self._state_tuple(new_states)
        return s.to(x.dtype)

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        """All steps: ``x_seq`` [T, B, ...] -> spikes [T, B, ...]; stores the final state."""
        self._check_input(x_seq, 2, "[T, B, ...] (time first)")
        backend = backends.resolve_backend(self.neuron_kind, self.backend, x_seq.device)
        keep = self.store_state or self.return_state
        if backend == "torch":
            xc = x_seq.to(compute_dtype(x_seq.dtype))
            states = self._initial_states(xc[0])
            spikes, final, seqs = run_steps(
                self._step_fn(), xc, states, self._params(), keep_states=keep, **self._config()
            )
            # the fused ops' contract: spikes and state sequences in the input dtype, final states in fp32
            spikes = spikes.to(x_seq.dtype)
            seqs = tuple(None if q is None else q.to(x_seq.dtype) for q in seqs)
        else:
            # a state still at rest stays None: the fused ops start it at zero without a tensor to make,
            # read and keep for backward
            states = self._current_state(x_seq[0])
            fused = backends.get_fused(self.neuron_kind, backend)
            spikes, final, seqs = fused(x_seq, states, self._params(), keep, **self._config())
        for name, st in zip(self.state_names, final):
            setattr(self, name, 0.0 if st is None else st)
        seq_state = self._state_tuple(seqs)
        if self.store_state:
            for name, seq in zip(self.state_type._fields, seq_state):
                setattr(self, f"{name}_seq", seq)
        if self.return_state:
            return spikes, seq_state
        return spikes

    def detach(self) -> None:
        """Cut the state from the autograd graph of earlier steps, keeping its value (truncated BPTT: call
        between chunks of one long sequence; SpikingJelly's ``functional.detach_net`` calls this too)."""
        for name in self.state_names:
            st = getattr(self, name)
            if isinstance(st, Tensor):
                setattr(self, name, st.detach())

    def __getstate__(self) -> dict:
        """For pickling and ``copy.deepcopy``: a state tensor still in the autograd graph (after a forward,
        before ``reset()``) cannot be deep-copied, so the copy holds its value, detached."""
        parent = getattr(super(), "__getstate__", None)  # nn.Module's drops what cannot be pickled
        state = dict(parent() if parent is not None else self.__dict__)
        for name in (*self.state_names, *(f"{f}_seq" for f in self.state_type._fields)):
            if isinstance(state.get(name), Tensor):
                state[name] = state[name].detach()
        return state

    def forward(self, x: Tensor) -> Tensor:
        if self.memory != "default" and torch.is_grad_enabled() and not torch.compiler.is_compiling():
            # what the neuron keeps for backward (its input: a BatchNorm's output) may be recomputed there
            from ..models.memory import compact_saved_tensors  # arlif.models imports the neurons

            with compact_saved_tensors():
                return self._forward(x)
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        if self._step_mode == "m":
            return self.multi_step_forward(x)
        return self.single_step_forward(x)

    def extra_repr(self) -> str:
        return (
            f"v_threshold={self.v_threshold}, surrogate={self.surrogate.kind}(width={self.surrogate.width}), "
            f"step_mode={self.step_mode!r}, backend={self.backend!r}"
        )


def _neurons(net: nn.Module):
    return (m for m in net.modules() if isinstance(m, BaseNeuron))


def reset_net(net: nn.Module) -> None:
    """Reset the state of every stateful module in ``net`` (arlif neurons and any module with ``reset()``)."""
    for mod in net.modules():
        if isinstance(mod, BaseNeuron) or callable(getattr(mod, "reset", None)):
            mod.reset()


def detach_net(net: nn.Module) -> None:
    """Detach the state of every arlif neuron in ``net`` (and of any other module with a ``detach()``
    method, such as a recurrent layer's last spikes) from earlier steps' graph (see :meth:`BaseNeuron.detach`),
    keeping its value."""
    for mod in net.modules():
        if isinstance(mod, BaseNeuron) or callable(getattr(mod, "detach", None)):
            mod.detach()


def set_step_mode(net: nn.Module, mode: str) -> None:
    """Switch every module with a ``step_mode`` attribute in ``net`` to ``mode`` (``"s"`` or ``"m"``)."""
    if mode not in ("s", "m"):
        raise ValueError(f"step_mode must be 's' or 'm', got {mode!r}")
    for mod in net.modules():
        if hasattr(mod, "step_mode"):
            mod.step_mode = mode


def set_backend(net: nn.Module, backend: str) -> None:
    """Set the backend (``"auto"``, ``"torch"``, ``"cpu"``, ``"triton"``) of every arlif neuron in ``net``."""
    backends.check_backend_name(backend)
    for mod in _neurons(net):
        mod.backend = backend


def check_backends(net: nn.Module, device: torch.device | str) -> None:
    """Raise :class:`arlif.ops.BackendUnavailableError` now if a neuron's backend cannot run on ``device``
    (instead of at the first forward, e.g. before a training run creates its folder)."""
    for mod in _neurons(net):
        backends.resolve_backend(mod.neuron_kind, mod.backend, torch.device(device))
