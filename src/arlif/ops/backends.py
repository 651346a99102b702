"""Which implementation runs a neuron's multi-step forward.

``"torch"`` is the per-step reference of :mod:`arlif.ops.reference` and is always available. Fused
implementations register themselves here per neuron (``"cpu"`` for CPU tensors, ``"triton"`` for CUDA
tensors, or CPU tensors under ``TRITON_INTERPRET=1``). ``"auto"`` picks the fastest one available for the
input's device. Asking for a backend that cannot run raises :class:`BackendUnavailableError`; nothing
falls back silently.

A fused implementation has the contract of :func:`arlif.ops.reference.run_steps` minus ``step``:
``fn(x_seq, states, params, keep_states, **config) -> (spikes, final_states, state_seqs)``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Callable

import torch

from ..errors import ArlifError

BACKEND_NAMES = ("auto", "torch", "cpu", "triton")

_FUSED: dict[str, dict[str, Callable]] = {}
# optional per-(neuron, backend) probes: (build) -> None when usable, else the reason (e.g. no C++ compiler);
# with build=True the probe may build or load the implementation now to find out
_PROBES: dict[tuple[str, str], Callable[[bool], str | None]] = {}
# reasons already reported by a warning of backend="auto" (once each)
_WARNED: set[str] = set()


class BackendUnavailableError(ArlifError, RuntimeError):
    """The requested backend cannot run here (not built, wrong device, or Triton missing)."""


def check_backend_name(name: str) -> str:
    if not isinstance(name, str) or name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {list(BACKEND_NAMES)}")
    return name


def register_fused(
    neuron: str, backend: str, fn: Callable, unavailable: Callable[[bool], str | None] | None = None
) -> None:
    """Register ``fn`` as the ``backend`` implementation of ``neuron`` ("arlif", "lif", "plif", "clif").

    ``unavailable``, if given, is a probe returning ``None`` when the implementation can run here and
    otherwise the reason (shown in the error of :func:`resolve_backend`). It takes ``build``: False asks for
    a cheap check, True allows building or loading the implementation now to be sure."""
    if backend not in ("cpu", "triton"):
        raise ValueError(f"fused backends are 'cpu' or 'triton', got {backend!r}")
    _FUSED.setdefault(neuron, {})[backend] = fn
    if unavailable is not None:
        _PROBES[(neuron, backend)] = unavailable


def get_fused(neuron: str, backend: str) -> Callable:
    return _FUSED[neuron][backend]


def fused_backends(neuron: str) -> list[str]:
    """The fused backends registered for ``neuron`` (whether or not they can run here)."""
    return sorted(_FUSED.get(neuron, {}))


def triton_importable() -> bool:
    return importlib.util.find_spec("triton") is not None


def _why_unavailable(neuron: str, backend: str, device: torch.device, build: bool = False) -> str | None:
    """``None`` when ``backend`` can run ``neuron`` on ``device``, else the reason (``build``: see
    :func:`register_fused`)."""
    if backend == "torch":
        return None
    if backend not in _FUSED.get(neuron, {}):
        return f"no fused {backend!r} implementation of {neuron!r} is registered"
    if backend == "cpu" and device.type != "cpu":
        return f"backend 'cpu' runs on CPU tensors, but the input is on {device}"
    if backend == "triton":
        if not triton_importable():
            return "Triton is not installed (pip install triton)"
        if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            return (
                "backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors, slow, for tests)"
            )
        if device.type not in ("cpu", "cuda"):
            return f"backend 'triton' does not support device {device}"
    probe = _PROBES.get((neuron, backend))
    return probe(build) if probe is not None else None


def available_backends(neuron: str, device: torch.device | str = "cpu") -> list[str]:
    """Backends that can run ``neuron`` on ``device``, fastest first (``"torch"`` last)."""
    device = torch.device(device)
    order = ("triton", "cpu") if device.type == "cuda" else ("cpu", "triton")
    names = [b for b in order if _why_unavailable(neuron, b, device) is None]
    return names + ["torch"]


def _constant_when_traced(fn: Callable) -> Callable:
    """Mark ``fn`` so that torch.compile runs it once at trace time and keeps the answer.

    ``torch.compiler.assume_constant_result`` does only this, but calling it imports ``torch._dynamo``, which
    costs seconds at ``import arlif``. So set the flag it sets ourselves, unless dynamo is loaded anyway;
    ``tests/test_neurons.py`` checks that the public decorator still sets exactly this flag."""
    if "torch._dynamo" in sys.modules:
        return torch.compiler.assume_constant_result(fn)
    fn._dynamo_marked_constant = True
    return fn


# Backend resolution looks at the file system (the compiler, the kernel cache) and at the environment, which
# torch.compile cannot trace: with fullgraph=True a model compiled in a fresh process would fail on it. Its
# result depends only on the arguments (and the process), so the trace runs it once and keeps the answer.
@_constant_when_traced
def _resolution(neuron: str, backend: str, device: torch.device) -> str:
    """The backend that will run, or ``"!"`` + the reason it cannot. The error is raised by the caller, outside
    this trace-time constant: raised inside, torch.compile would wrap it in an internal error."""
    if backend == "auto":
        # the fused backend of the device; interpreted Triton (CPU tensors) is a correctness tool, never the fast path
        fast = {"cpu": "cpu", "cuda": "triton"}.get(device.type)
        if fast is None or not _FUSED.get(neuron):  # a neuron with only its reference has nothing to warn about
            return "torch"
        why = _why_unavailable(neuron, fast, device, build=True)
        if why is None:
            return fast
        if why not in _WARNED:
            # the documented choice of "auto", but said once: the reference is several times slower
            _WARNED.add(why)
            warnings.warn(f"backend='auto' runs the per-step reference: {why}", RuntimeWarning, stacklevel=4)
        return "torch"
    why = _why_unavailable(neuron, backend, device, build=True)
    if why is not None:
        return (
            f"!backend {backend!r} is unavailable for {neuron}: {why}. "
            f"Available here: {available_backends(neuron, device)} (or use backend='auto')."
        )
    return backend


def resolve_backend(neuron: str, backend: str, device: torch.device) -> str:
    """Turn a requested backend name into the one that will run, or raise a clear error."""
    check_backend_name(backend)
    name = _resolution(neuron, backend, device)
    if name.startswith("!"):
        raise BackendUnavailableError(name[1:])
    return name
