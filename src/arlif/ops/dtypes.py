"""The compute-dtype rule of every neuron and backend, defined once."""

from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the dynamics run in for input of ``dtype``: float64 for float64, float32 otherwise
    (bfloat16/float16 inputs and autocast). Half-precision states would drift from the float32 result within
    a few steps (bfloat16 has 8 bits of mantissa)."""
    return torch.float64 if dtype == torch.float64 else torch.float32
