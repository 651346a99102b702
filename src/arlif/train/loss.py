"""The TET-style training loss (docs/recipes.md#loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tet_loss(
    outputs: torch.Tensor,
    target: torch.Tensor,
    mse_lambda: float = 0.05,
    mse_target: str = "const",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``(1 - λ)·mean_t CE(O_t, y) + λ·MSE(O, target)``.

    Args:
        outputs: per-step logits ``[T, B, K]``.
        target: class indices ``[B]`` (int) or soft labels ``[B, K]`` (from MixUp/CutMix).
        mse_lambda: λ_L.
        mse_target: ``"const"`` (every logit regressed to 1.0) or ``"onehot"`` (to the (soft) label).
        label_smoothing: passed to the cross-entropy.
    Returns a 0-dim tensor. The MSE is the mean over T, B and K.
    """
    if outputs.dim() != 3:
        raise ValueError(f"tet_loss expects outputs [T, B, K], got shape {tuple(outputs.shape)}")
    T, B, K = outputs.shape
    flat = outputs.reshape(T * B, K)
    if target.dim() == 1:
        ce_target = target.repeat(T)
    else:
        ce_target = target.unsqueeze(0).expand(T, B, K).reshape(T * B, K)
    ce = F.cross_entropy(flat, ce_target, label_smoothing=label_smoothing)  # mean over T·B = mean_t CE_t
    if mse_lambda == 0:
        return ce
    if mse_target == "const":
        goal = torch.ones_like(outputs)
    elif mse_target == "onehot":
        onehot = F.one_hot(target, K).to(outputs.dtype) if target.dim() == 1 else target.to(outputs.dtype)
        goal = onehot.unsqueeze(0).expand_as(outputs)
    else:
        raise ValueError(f"mse_target must be 'const' or 'onehot', got {mse_target!r}")
    return (1 - mse_lambda) * ce + mse_lambda * F.mse_loss(outputs, goal)
