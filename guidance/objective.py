"""The v-objective used to train every continuous-time model (DiT and waveform U-Net).

Salimans & Ho 2022 / Levy et al. 2023: v = α_t ε − σ_t x0, loss ‖v − v_θ(x_t, t)‖².
"""

from __future__ import annotations

from typing import Any

import torch

from musicprod_common.training import example_rand, example_randn

from .schedule import broadcast_like, cosine_alpha_sigma


def v_squared_error(
    net: torch.nn.Module, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, **net_kwargs: Any
) -> torch.Tensor:
    """Elementwise ``(v_θ(x_t, t) − v)²`` for clean ``x0``, times ``t`` ``(B,)`` and noise ``eps`` (shaped like
    ``x0``)."""
    alpha, sigma = (broadcast_like(a, x0) for a in cosine_alpha_sigma(t))
    x_t = alpha * x0 + sigma * eps
    v_target = alpha * eps - sigma * x0
    v_pred = net(x_t, t, **net_kwargs)
    return (v_pred.float() - v_target.float()) ** 2


def v_objective_loss(
    net: torch.nn.Module, x0: torch.Tensor, keys: torch.Tensor, weight: torch.Tensor | None = None, **net_kwargs: Any
) -> torch.Tensor:
    """Mean squared v-error for a batch ``x0`` ``(B, C, L)``; t and noise are functions of the draws' ``keys``.

    ``weight`` (broadcastable to ``x0``, e.g. ``(B, 1, L)``) makes it a weighted mean, e.g. over generated frames only.
    """
    t = example_rand(keys, (), salt=1, device=x0.device)  # (B,)
    eps = example_randn(keys, tuple(x0.shape[1:]), salt=2, device=x0.device).to(x0.dtype)
    err = v_squared_error(net, x0, t, eps, **net_kwargs)
    if weight is None:
        return torch.mean(err)
    weight = weight.to(err.dtype).expand_as(err)
    return (err * weight).sum() / weight.sum().clamp_min(1.0)
