"""Build the module for each golden case of tests/golden/neurons.npz and evaluate its loss."""

from __future__ import annotations

import json

import numpy as np
import torch

from arlif import ARLIF, CLIF, LIF, PLIF


def load(path):
    data = np.load(path)
    return data, json.loads(str(data["meta_json"]))


def build(name: str, meta: dict, dtype=torch.float64, **kw):
    """The neuron module of golden case ``name`` with its parameters set."""
    params = meta["params"]
    common = dict(surrogate=meta.get("surrogate", "rectangle"), store_state=True, **kw)
    if name.startswith("arlif"):
        mod = ARLIF(
            decay=meta.get("decay", 0.5),
            threshold_adjust=meta.get("threshold_adjust", True),
            adaptive_reset=meta.get("adaptive_reset", True),
            carry_memory=meta.get("carry_memory", True),
            init_a=params["a"],
            init_c=params["c"],
            **common,
        )
    elif name.startswith("lif"):
        mod = LIF(reset=meta["reset"], **common)
    elif name == "plif":
        mod = PLIF(init_w=params["w"], **common)
    elif name == "clif":
        mod = CLIF(**common)
    else:
        raise KeyError(name)
    mod = mod.to(dtype)
    with torch.no_grad():  # set after the cast: 0.4 rounded to float32 is not 0.4 in float64
        for pname, value in params.items():
            getattr(mod, pname).fill_(value)
    return mod


def run(mod, data, dtype, step_mode: str):
    """Forward the shared input and backpropagate the golden loss; return ``(x, spikes, v, m)`` (``m`` is
    ``None`` for a neuron without that state). ``x.grad`` and the parameters' ``.grad`` hold the gradients."""
    x = torch.tensor(data["x"], dtype=dtype, requires_grad=True)
    mod.step_mode = step_mode
    mod.reset()
    if step_mode == "m":
        spikes = mod(x)
        v, m = mod.v_seq, mod.m_seq
    else:
        outs, vs, ms = [], [], []
        for t in range(x.shape[0]):
            outs.append(mod(x[t]))
            vs.append(mod.v)
            ms.append(mod.m if isinstance(getattr(mod, "m", None), torch.Tensor) else None)
        spikes, v = torch.stack(outs), torch.stack(vs)
        m = torch.stack(ms) if ms[0] is not None else None
    g = {k: torch.tensor(data[k], dtype=dtype) for k in ("g_spike", "g_v", "g_m")}
    loss = (spikes * g["g_spike"]).sum() + (v * g["g_v"]).sum()
    if m is not None:
        loss = loss + (m * g["g_m"]).sum()
    loss.backward()
    return x, spikes, v, m
