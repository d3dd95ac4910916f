"""Noise schedules as pure functions of continuous time t ∈ [0, 1].

x_t = α_t x0 + σ_t ε. Levy et al. 2023 use the cosine schedule α_t = cos(πt/2), σ_t = sin(πt/2),
so α_t² + σ_t² = 1 (variance preserving).
"""

from __future__ import annotations

import math

import torch


def cosine_alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(α_t, σ_t) of the cosine schedule, elementwise in ``t``."""
    return torch.cos(0.5 * math.pi * t), torch.sin(0.5 * math.pi * t)


def uniform_timesteps(steps: int, t_max: float = 1.0, t_min: float = 0.0) -> torch.Tensor:
    """``steps + 1`` decreasing times from ``t_max`` to ``t_min``: the grid a sampler walks."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return torch.linspace(t_max, t_min, steps + 1)


def resampling_timesteps(steps: int, jump: int, resamples: int) -> torch.Tensor:
    """The uniform grid walked with RePaint's resampling (Lugmayr et al. 2022, §4.2): after every ``jump`` steps
    down, jump back up ``jump`` steps and walk down again, ``resamples - 1`` more times.

    The result is not monotonic; :func:`guidance.sampler.sample` re-noises where it rises. It holds exactly
    ``steps * resamples`` descending pairs when ``jump`` divides ``steps``; ``resamples=1`` is the plain grid.
    """
    if jump < 1 or resamples < 1:
        raise ValueError(f"jump and resamples must be at least 1, got {jump} and {resamples}")
    grid = uniform_timesteps(steps)
    path = [0]
    for i in range(1, steps + 1):
        path.append(i)
        if i % jump == 0:
            for _ in range(resamples - 1):
                path.extend(range(i - jump, i + 1))  # one rise i -> i - jump, then the walk back down
    return grid[path]


def broadcast_like(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-example values ``(B,)`` to broadcast against ``x`` ``(B, ...)``."""
    return values.reshape(values.shape + (1,) * (x.ndim - values.ndim))
