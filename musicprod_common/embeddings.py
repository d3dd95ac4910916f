"""Continuous-time embedding shared by every diffusion network (the DiT and the waveform U-Net)."""

from __future__ import annotations

import math

import torch
from torch import nn


class TimestepEmbedding(nn.Module):
    """t ∈ [0, 1] ``(B,)`` → ``(B, width)``: fixed sinusoidal features, then a two-layer MLP.

    The frequencies are log-spaced from 1 to 1000 cycles over [0, 1] (fixed, not learned, so the
    embedding needs no random initialisation state); the MLP learns what to do with them.
    """

    def __init__(self, width: int, features: int = 256, max_frequency: float = 1000.0):
        super().__init__()
        half = features // 2
        freqs = 2 * math.pi * torch.exp(torch.linspace(0.0, math.log(max_frequency), half))
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * half, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.freqs[None, :]  # (B, half)
        features = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


def expand_time(t: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    """Accept a scalar or ``(B,)`` time and return ``(B,)`` float32 on ``device``."""
    t = torch.as_tensor(t, dtype=torch.float32, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must be a scalar or have shape ({batch},), got {tuple(t.shape)}")
    return t
