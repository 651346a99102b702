"""Neuron math: the per-step reference (:mod:`.reference`), the backend registry (:mod:`.backends`) and
the fused multi-step custom ops (:mod:`.fused`, registered on import)."""

from . import backends, fused, reference
from .backends import BackendUnavailableError, available_backends

__all__ = ["reference", "backends", "fused", "BackendUnavailableError", "available_backends"]
