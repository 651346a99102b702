"""Neuron math, one folder per neuron family (:mod:`.arlif`, :mod:`.leaky` for LIF and PLIF, :mod:`.clif`),
each with its reference step, fused custom ops and kernels; the functional API (:mod:`.reference`), the
backend registry (:mod:`.backends`), every family's fused ops (:mod:`.fused`, registered on import) and the
plumbing the families share (:mod:`.op_glue`, :mod:`.dtypes`, :mod:`.loop`, :mod:`.cpu_build`,
:mod:`.cpu_host`, ``cpu_common.h``, :mod:`.triton_common`)."""

from . import backends, fused, reference
from .backends import BackendUnavailableError, available_backends

__all__ = ["reference", "backends", "fused", "BackendUnavailableError", "available_backends"]
