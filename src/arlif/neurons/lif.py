"""Baseline neurons (docs/neurons.md#baselines): LIF (soft/hard reset), PLIF and CLIF."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import reference
from ..surrogate import Surrogate
from .base import BaseNeuron, check_decay, check_option


class LIF(BaseNeuron):
    """Leaky integrate-and-fire: ``H = λV + x``, ``S = Θ(H - V_th)``; soft reset ``V = H - S·V_th`` or hard
    reset ``V = H·(1 - S)`` (not detached). State ``v``."""

    neuron_kind = "lif"

    def __init__(
        self,
        v_threshold: float = 1.0,
        decay: float = 0.5,
        reset: str = "soft",
        surrogate: str | Surrogate | None = "rectangle",
        step_mode: str = "m",
        backend: str = "auto",
        store_state: bool = False,
        return_state: bool = False,
    ):
        if reset not in ("soft", "hard"):
            raise ValueError(f"LIF reset must be 'soft' or 'hard', got {reset!r}")
        super().__init__(v_threshold, surrogate, step_mode, backend, store_state, return_state)
        self.decay = check_decay(type(self).__name__, decay)
        self.reset_mode = reset

    def _step_fn(self):
        return reference.lif_step

    def _config(self) -> dict:
        return dict(
            surrogate=self.surrogate,
            v_threshold=self.v_threshold,
            decay=self.decay,
            hard_reset=self.reset_mode == "hard",
        )

    def extra_repr(self) -> str:
        return f"decay={self.decay}, reset={self.reset_mode!r}, " + super().extra_repr()


class PLIF(BaseNeuron):
    """Parametric LIF: ``H = V·(1 - σ(w)) + x`` with a learnable scalar ``w`` (init 0, so the leak is ½),
    soft reset. State ``v``."""

    neuron_kind = "plif"

    def __init__(
        self,
        v_threshold: float = 1.0,
        init_w: float = 0.0,
        surrogate: str | Surrogate | None = "rectangle",
        step_mode: str = "m",
        backend: str = "auto",
        store_state: bool = False,
        return_state: bool = False,
    ):
        super().__init__(v_threshold, surrogate, step_mode, backend, store_state, return_state)
        # any finite w is a leak 1 - σ(w) strictly inside (0, 1)
        init_w = check_option(type(self).__name__, "init_w", init_w, lambda v: True, "a finite number")
        self.w = nn.Parameter(torch.tensor(init_w))

    def _step_fn(self):
        return reference.plif_step

    def _params(self):
        return (self.w,)

    def _config(self) -> dict:
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold)


class CLIF(BaseNeuron):
    """Complementary LIF with time constant ``tau``: ``H = V·(1 - 1/τ) + x``; memory ``m = m·σ(H/τ) + S``;
    reset ``V = H - S·(V_th + σ(m))``. States ``v`` and ``m``."""

    neuron_kind = "clif"
    state_names = ("v", "m")

    def __init__(
        self,
        v_threshold: float = 1.0,
        tau: float = 2.0,
        surrogate: str | Surrogate | None = "rectangle",
        step_mode: str = "m",
        backend: str = "auto",
        store_state: bool = False,
        return_state: bool = False,
    ):
        # the leak is 1 - 1/τ: τ < 1 would make it negative (a potential that flips sign every step); τ = 1 is
        # the memoryless limit, allowed like decay = 0
        tau = check_option(
            type(self).__name__, "tau", tau, lambda v: v >= 1, "a finite number >= 1 (the leak 1 - 1/tau in [0, 1))"
        )
        super().__init__(v_threshold, surrogate, step_mode, backend, store_state, return_state)
        self.tau = tau

    def _initial_states(self, like):
        v, m = super()._initial_states(like)
        return v, (torch.zeros_like(like) if m is None else m)

    def _step_fn(self):
        return reference.clif_step

    def _config(self) -> dict:
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold, tau=self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, " + super().extra_repr()
