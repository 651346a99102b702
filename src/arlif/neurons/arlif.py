"""The AR-LIF neuron module (docs/neurons.md#ar-lif)."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import reference
from ..surrogate import Surrogate
from .base import BaseNeuron, check_decay, check_option


class ARLIF(BaseNeuron):
    """Adaptive Reset LIF neuron.

    ``H = λV + x``; ``θ = V_th + tanh(a)·tanh(x)``; ``S = Θ(H - θ)``; the reset memory ``m`` rises on spikes
    and falls on silence (gated by ``σ(c·x)``), and the reset subtracts ``S·(θ + σ(m))``.

    Args:
        v_threshold: base threshold V_th.
        decay: leak λ (0.5 means τ = 2).
        surrogate, step_mode, backend, store_state, return_state: see :class:`arlif.neurons.BaseNeuron`.
        threshold_adjust: use the input-dependent threshold (``False``: θ = V_th, ``a`` frozen).
        adaptive_reset: use the reset memory (``False``: soft reset by θ, no ``m``, ``c`` frozen).
        carry_memory: carry ``m`` across steps (``False`` reproduces the CIFAR10-DVS reference runs, where
            ``m_{t-1}`` is taken as 0 and ``c`` gets no gradient; docs/neurons.md#reference-run-compatibility).
        init_a, init_c: initial values of the learnable scalars ``a`` (0) and ``c`` (1).

    A parameter that the chosen switches leave unused has ``requires_grad=False``, so optimisers and
    DistributedDataParallel skip it.

    State: ``v`` and ``m`` (shape of one step's input). With ``store_state=True`` a multi-step forward
    leaves ``v_seq`` (V_t after reset) and ``m_seq`` (m_t), each ``[T, ...]``.
    """

    neuron_kind = "arlif"
    state_names = ("v", "m")

    def __init__(
        self,
        v_threshold: float = 1.0,
        decay: float = 0.5,
        surrogate: str | Surrogate | None = "rectangle",
        threshold_adjust: bool = True,
        adaptive_reset: bool = True,
        carry_memory: bool = True,
        step_mode: str = "m",
        backend: str = "auto",
        store_state: bool = False,
        return_state: bool = False,
        init_a: float = 0.0,
        init_c: float = 1.0,
    ):
        super().__init__(v_threshold, surrogate, step_mode, backend, store_state, return_state)
        self.decay = check_decay(type(self).__name__, decay)
        self.threshold_adjust = bool(threshold_adjust)
        self.adaptive_reset = bool(adaptive_reset)
        self.carry_memory = bool(carry_memory)
        init_a = check_option(type(self).__name__, "init_a", init_a, lambda v: True, "a finite number")
        init_c = check_option(type(self).__name__, "init_c", init_c, lambda v: True, "a finite number")
        self.a = nn.Parameter(torch.tensor(init_a), requires_grad=self.threshold_adjust)
        self.c = nn.Parameter(torch.tensor(init_c), requires_grad=self.adaptive_reset and self.carry_memory)

    def _step_fn(self):
        return reference.arlif_step

    def _params(self):
        return (self.a, self.c)

    def _config(self) -> dict:
        return dict(
            surrogate=self.surrogate,
            v_threshold=self.v_threshold,
            decay=self.decay,
            threshold_adjust=self.threshold_adjust,
            adaptive_reset=self.adaptive_reset,
            carry_memory=self.carry_memory,
        )

    def extra_repr(self) -> str:
        return (
            f"decay={self.decay}, threshold_adjust={self.threshold_adjust}, "
            f"adaptive_reset={self.adaptive_reset}, carry_memory={self.carry_memory}, " + super().extra_repr()
        )
