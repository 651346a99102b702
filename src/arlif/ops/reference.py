"""The neuron dynamics of docs/neurons.md, step by step, in plain PyTorch autograd: the public functional API.

Each family defines its step once, in its own folder (:mod:`arlif.ops.arlif.reference`,
:mod:`arlif.ops.leaky.reference`, :mod:`arlif.ops.clif.reference`); this module gathers them with the loop
:func:`run_steps`. The modules in :mod:`arlif.neurons` call these functions for the ``"torch"`` backend and in
single-step mode, and every fused kernel is tested against them. All steps are pure: they take the previous
state and return the new one.

Shapes: in a step function ``x``, ``v`` and ``m`` share one shape (any, e.g. ``[B, C, H, W]``); in a
multi-step function ``x_seq`` is ``[T, *shape]`` and the states are ``[*shape]``. Learnable parameters
(``a``, ``c``, ``w``) are 0-dim tensors; they are cast to the input's dtype.
"""

from .arlif.reference import arlif_step
from .clif.reference import clif_step
from .leaky.reference import lif_step, plif_step
from .loop import run_steps

__all__ = ["arlif_step", "lif_step", "plif_step", "clif_step", "run_steps"]
