"""The AR-LIF neuron module (docs/neurons.md#ar-lif)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ops.arlif.reference import arlif_step
from ..surrogate import Surrogate
from .base import BaseNeuron, check_decay, check_option
from .registry import register_neuron


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
        return arlif_step

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

    scalar_labels = {"tanh_a": "tanh(a)"}

    def learned_scalars(self) -> dict[str, float]:
        out = super().learned_scalars()
        out["tanh_a"] = math.tanh(out["a"])
        return out

    def update_ops(self) -> dict[str, int]:
        """H = λV + x (2); θ = V_th + tanh(a)·tanh(x) (2 + 1 tanh); fire (2); g = σ(c·x) (1 + 1σ);
        m' = max(m,0)·g + min(m,0)·(1 − g) (6); m = m' + (2S − 1)·σ(x) (4 + 1σ); V = H − S·(θ + σ(m))
        (3 + 1σ): 20 arith, 4 transcendental. Without threshold adjustment 18 and 3; without adaptive reset
        H, θ, fire, V = H − S·θ: 8 and 1 (6 and 0 with both off: a soft LIF); without a carried memory
        m = (2S − 1)·σ(x) (3 + 1σ): 12 and 3."""
        theta = (2, 1) if self.threshold_adjust else (0, 0)
        if not self.adaptive_reset:
            return {"arith": 2 + theta[0] + 2 + 2, "transcendental": theta[1]}
        memory = (1 + 6 + 4, 2) if self.carry_memory else (3, 1)
        return {"arith": 2 + theta[0] + 2 + memory[0] + 3, "transcendental": theta[1] + memory[1] + 1}

    def effective_threshold(self, x_seq: torch.Tensor, states) -> torch.Tensor:
        if not self.threshold_adjust:
            return super().effective_threshold(x_seq, states)
        return self.v_threshold + torch.tanh(self.a.detach().to(x_seq.dtype)) * torch.tanh(x_seq)

    def switching_states(self) -> tuple[str, ...]:
        return ("m",) if self.adaptive_reset and self.carry_memory else ()

    def extra_repr(self) -> str:
        return (
            f"decay={self.decay}, threshold_adjust={self.threshold_adjust}, "
            f"adaptive_reset={self.adaptive_reset}, carry_memory={self.carry_memory}, " + super().extra_repr()
        )


register_neuron(
    "arlif", ARLIF, label="AR-LIF", description="AR-LIF: input-adjusted threshold and adaptive reset memory",
    ablation=True, bench={"init_a": 0.3}, check={"init_a": 0.4, "init_c": -0.8, "decay": 0.6, "v_threshold": 1.2},
)  # fmt: skip
register_neuron(
    "arlif_no_threshold_adjust", ARLIF, label="AR-LIF w/o threshold adjustment",
    description="AR-LIF ablation: fixed threshold θ = V_th", options={"threshold_adjust": False}, ablation=True,
    check={"init_c": 1.3, "decay": 0.3, "v_threshold": 0.8},
)  # fmt: skip
register_neuron(
    "arlif_no_adaptive_reset", ARLIF, label="AR-LIF w/o adaptive reset",
    description="AR-LIF ablation: soft reset by θ, no reset memory", options={"adaptive_reset": False},
    ablation=True, check={"init_a": -0.7, "decay": 0.4, "v_threshold": 1.1},
)  # fmt: skip
# the CIFAR10-DVS reference runs: memory not carried, λ = 0.2, triangle surrogate
# (docs/neurons.md#reference-run-compatibility)
register_neuron(
    "arlif_dvs_ref", ARLIF, label="AR-LIF (DVS reference runs)",
    description="AR-LIF as in the CIFAR10-DVS reference runs: memory not carried, λ = 0.2, triangle surrogate",
    options={"carry_memory": False, "decay": 0.2, "surrogate": "triangle"},
    check={"init_a": 0.4, "init_c": -0.8, "decay": 0.2, "v_threshold": 0.9},
)  # fmt: skip
