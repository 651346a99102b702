"""Neuron math: the per-step reference (:mod:`.reference`) and the backend registry (:mod:`.backends`)."""

from . import backends, reference
from .backends import BackendUnavailableError, available_backends

__all__ = ["reference", "backends", "BackendUnavailableError", "available_backends"]
