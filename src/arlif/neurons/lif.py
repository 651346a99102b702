"""Baseline neurons (docs/neurons.md#baselines): LIF (soft/hard reset), PLIF and CLIF."""

from __future__ import annotations

import torch
from torch import nn

from ..ops.clif.reference import clif_step
from ..ops.leaky.reference import lif_step, plif_step
from ..surrogate import Surrogate
from .base import BaseNeuron, check_decay, check_option
from .registry import register_neuron


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
        return lif_step

    def _config(self) -> dict:
        return dict(
            surrogate=self.surrogate,
            v_threshold=self.v_threshold,
            decay=self.decay,
            hard_reset=self.reset_mode == "hard",
        )

    def update_ops(self) -> dict[str, int]:
        """H = λV + x (2); S = Θ(H − V_th) (2); V = H − S·V_th or H·(1 − S) (2): 6 arith."""
        return {"arith": 6, "transcendental": 0}

    def short_name(self) -> str:
        return f"{type(self).__name__}-{self.reset_mode}"

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
        return plif_step

    def _params(self):
        return (self.w,)

    def _config(self) -> dict:
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold)

    def update_ops(self) -> dict[str, int]:
        """H = V·(1 − σ(w)) + x (2, σ(w) once per layer); fire (2); soft reset (2): 6 arith."""
        return {"arith": 6, "transcendental": 0}


class CLIF(BaseNeuron):
    """Complementary LIF with time constant ``tau``: ``H = V·(1 - 1/τ) + x``; memory ``m = m·σ(H/τ) + S``;
    reset ``V = H - S·(V_th + σ(m))``. States ``v`` and ``m``."""

    neuron_kind = "clif"
    state_names = ("v", "m")
    zero_states = ("v", "m")

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

    def _step_fn(self):
        return clif_step

    def _config(self) -> dict:
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold, tau=self.tau)

    def update_ops(self) -> dict[str, int]:
        """H (2); m' = m·σ(H/τ) (2 + 1σ); fire (2); m = m' + S (1); V = H − S·(V_th + σ(m)) (3 + 1σ):
        10 arith, 2 transcendental."""
        return {"arith": 10, "transcendental": 2}

    def extra_repr(self) -> str:
        return f"tau={self.tau}, " + super().extra_repr()


register_neuron("lif_soft", LIF, label="LIF, soft reset", description="LIF with soft reset V = H - S·V_th",
                options={"reset": "soft"}, ablation=True, check={"decay": 0.45, "v_threshold": 0.9})  # fmt: skip
register_neuron("lif", LIF, label="LIF", description="LIF (the same as lif_soft)", options={"reset": "soft"},
                bench={}, alias_of="lif_soft")  # fmt: skip
register_neuron("lif_hard", LIF, label="LIF, hard reset", description="LIF with hard reset V = H·(1 - S)",
                options={"reset": "hard"}, ablation=True, bench={},
                check={"decay": 0.7, "v_threshold": 1.15})  # fmt: skip
register_neuron("plif", PLIF, label="PLIF", description="parametric LIF: learned leak 1 - σ(w)", ablation=True,
                bench={}, check={"init_w": 0.3, "v_threshold": 0.85})  # fmt: skip
register_neuron("clif", CLIF, label="CLIF", description="complementary LIF: a memory m raises the reset after spikes",
                ablation=True, bench={}, check={"tau": 2.5, "v_threshold": 1.1})  # fmt: skip
