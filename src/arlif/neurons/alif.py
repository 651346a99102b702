"""The adaptive-threshold LIF neuron (ALIF; Bellec et al. 2018, "Long short-term memory and
learning-to-learn in networks of spiking neurons"), the usual comparison for temporal tasks
(docs/neurons.md#alif).

Per step, from V_0 = b_0 = 0::

    H_t = λ·V_{t-1} + x_t
    θ_t = V_th + β·b_{t-1}
    S_t = Θ(H_t − θ_t)
    b_t = ρ·b_{t-1} + (1 − ρ)·S_t
    V_t = H_t − S_t·θ_t

Every spike raises the threshold by β·(1 − ρ), and the raise fades by ρ per step. The surrogate gradient
stands in for Θ wherever S_t appears (the reset and the adaptation), and nothing is detached.

This file is the whole neuron: its step function (the reference every backend would be tested against),
its module and its registry entry. It has no fused kernels, so every backend choice runs the reference.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..surrogate import Surrogate
from .base import BaseNeuron, check_decay, check_option
from .registry import register_neuron

Tensor = torch.Tensor


class ALIFState(NamedTuple):
    """ALIF's states: the membrane potential ``v`` (after reset) and the threshold adaptation ``b``."""

    v: Tensor
    b: Tensor


def alif_step(
    x: Tensor,
    v: Tensor,
    b: Tensor,
    *,
    surrogate: Surrogate,
    v_threshold: float = 1.0,
    decay: float = 0.5,
    rho: float = 0.9,
    beta: float = 1.8,
) -> tuple[Tensor, Tensor, Tensor]:
    """One ALIF step. Returns ``(spike, v, b)``."""
    h = decay * v + x
    theta = v_threshold + beta * b
    s = surrogate(h - theta)
    b_new = rho * b + (1 - rho) * s
    return s, h - s * theta, b_new


class ALIF(BaseNeuron):
    """Adaptive-threshold LIF: a leaky integrator whose threshold rises with its own recent spikes.

    Args:
        v_threshold: base threshold V_th.
        decay: leak λ of ``H = λV + x``, in [0, 1].
        rho: decay ρ of the adaptation ``b``, in [0, 1] (0.9: a spike's effect fades over about 10 steps).
        beta: adaptation strength β >= 0 (0 is a soft-reset LIF).
        surrogate, step_mode, backend, store_state, return_state: see :class:`arlif.neurons.BaseNeuron`.

    State: ``v`` and ``b`` (:class:`ALIFState`); with ``return_state=True`` the forward returns
    ``(spikes, ALIFState(v, b))``, in multi-step mode each ``[T, ...]``.
    """

    neuron_kind = "alif"
    state_type = ALIFState
    state_names = ("v", "b")
    zero_states = ("v", "b")

    def __init__(
        self,
        decay: float = 0.5,
        v_threshold: float = 1.0,
        rho: float = 0.9,
        beta: float = 1.8,
        surrogate: str | Surrogate | None = "rectangle",
        step_mode: str = "m",
        backend: str = "auto",
        store_state: bool = False,
        return_state: bool = False,
    ):
        name = type(self).__name__
        decay = check_decay(name, decay)
        rho = check_option(name, "rho", rho, lambda r: 0 <= r <= 1, "in [0, 1] (the decay of b)")
        beta = check_option(name, "beta", beta, lambda r: r >= 0, "a finite number >= 0")
        super().__init__(v_threshold, surrogate, step_mode, backend, store_state, return_state)
        self.decay, self.rho, self.beta = decay, rho, beta

    def _step_fn(self):
        return alif_step

    def _config(self) -> dict:
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold, decay=self.decay, rho=self.rho,
                    beta=self.beta)  # fmt: skip

    def update_ops(self) -> dict[str, int]:
        """H = λV + x (2); θ = V_th + β·b (2); fire (2); b = ρ·b + (1 − ρ)·S (3); V = H − S·θ (2): 11 arith."""
        return {"arith": 11, "transcendental": 0}

    def effective_threshold(self, x_seq: Tensor, states) -> Tensor:
        b_prev = torch.cat([torch.zeros_like(states.b[:1]), states.b[:-1]])  # b_{t-1}, from rest
        return (self.v_threshold + self.beta * b_prev).to(x_seq.dtype)

    def extra_repr(self) -> str:
        return f"decay={self.decay}, rho={self.rho}, beta={self.beta}, " + super().extra_repr()


register_neuron("alif", ALIF, label="ALIF", description="adaptive-threshold LIF (Bellec et al. 2018)",
                check={"decay": 0.7, "v_threshold": 0.9, "rho": 0.8, "beta": 1.3})  # fmt: skip
