"""One denoiser wrapper for every model family: raw network output (v, ε or x0) → ``(x̂0, ε̂)``.

A *schedule* maps time t ∈ [0, 1] to (α_t, σ_t) with x_t = α_t x0 + σ_t ε, and to the time value the network
was trained on (``model_time``). Samplers only ever see ``(x̂0, ε̂)`` and the schedule, so they never branch
on the prediction type (k-diffusion's ``Denoiser`` owns the scalings the same way).

Shapes: ``x`` is ``(B, ...)`` — latents ``(B, C, L)``, waveforms ``(B, 2, T)``, piano rolls ``(B, 2, T, P)``;
``t`` is ``(B,)``.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple, Protocol

import torch

from .schedule import broadcast_like, cosine_alpha_sigma

Prediction = Literal["v", "eps", "x0"]


class Denoised(NamedTuple):
    x0: torch.Tensor  # x̂0, same shape as x
    eps: torch.Tensor  # ε̂, same shape as x


class Schedule(Protocol):
    def __call__(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...  # (α_t, σ_t)

    def model_time(self, t: torch.Tensor) -> torch.Tensor: ...  # what the network receives


class CosineSchedule:
    """Levy et al. 2023: α_t = cos(πt/2), σ_t = sin(πt/2); the network receives t itself."""

    def __call__(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return cosine_alpha_sigma(t)

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        return t


def linear_betas(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. 2020 linear β schedule, ``(steps,)`` in float64."""
    return torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)


class DiscreteSchedule:
    """A DDPM schedule of T steps seen in continuous time: step k ∈ {0..T} sits at t = k/T.

    ᾱ_k = Π_{i≤k}(1 − β_i) (Ho et al. 2020, eq. 4) with ᾱ_0 = 1 (clean data), α_t = √ᾱ_k, σ_t = √(1 − ᾱ_k).
    The network receives the 0-based training index k − 1, as in DDPM/diffusers code (``alphas_cumprod[k-1]``).
    Times off the k/T grid round to the nearest step, for both (α, σ) and the network input, so they agree.
    """

    def __init__(self, betas: torch.Tensor | None = None):
        betas = linear_betas() if betas is None else betas.to(torch.float64)
        self.steps = betas.numel()
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.alphas_cumprod = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod])  # (T+1,), index k

    def step_index(self, t: torch.Tensor) -> torch.Tensor:
        return torch.round(t.double() * self.steps).long().clamp(0, self.steps)

    def __call__(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        abar = self.alphas_cumprod.to(t.device)[self.step_index(t)]
        return abar.sqrt().to(t.dtype), (1.0 - abar).sqrt().to(t.dtype)

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        return (self.step_index(t) - 1).clamp(min=0).to(t.dtype)


class Denoiser:
    """Wraps ``net(x, model_time, **extra)`` predicting ``prediction`` ∈ {"v", "eps", "x0"}.

    ``predict`` is the raw network call, ``convert`` the prediction-type algebra; ``__call__`` is both. The
    split lets :class:`CFGDenoiser` combine raw outputs before converting.
    """

    def __init__(
        self, net: Callable[..., torch.Tensor], schedule: Schedule | None = None, prediction: Prediction = "v"
    ):
        if prediction not in ("v", "eps", "x0"):
            raise ValueError(f"prediction must be 'v', 'eps' or 'x0', got {prediction!r}")
        self.net = net
        self.schedule = schedule if schedule is not None else CosineSchedule()
        self.prediction = prediction

    def alpha_sigma(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(α_t, σ_t) reshaped to broadcast against ``like`` ``(B, ...)``, in its dtype."""
        alpha, sigma = self.schedule(t)
        return broadcast_like(alpha, like).to(like.dtype), broadcast_like(sigma, like).to(like.dtype)

    def predict(self, x: torch.Tensor, t: torch.Tensor, **extra: Any) -> torch.Tensor:
        return self.net(x, self.schedule.model_time(t), **extra).to(x.dtype)

    def convert(self, x: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> Denoised:
        alpha, sigma = self.alpha_sigma(t, x)
        if self.prediction == "v":
            x0 = alpha * x - sigma * out  # Salimans & Ho 2022: v = α ε − σ x0 ⇒ x0 = α x_t − σ v (VP)
            eps = sigma * x + alpha * out  # same identity solved for ε
        elif self.prediction == "eps":
            x0 = (x - sigma * out) / alpha  # x_t = α x0 + σ ε
            eps = out
        else:
            x0 = out
            eps = (x - alpha * out) / sigma
        return Denoised(x0, eps)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, **extra: Any) -> Denoised:
        return self.convert(x, t, self.predict(x, t, **extra))


class CFGDenoiser:
    """Classifier-free guidance (Ho & Salimans 2022) with Lin et al. 2024 rescaling, same interface as Denoiser.

    out = out_u + w (out_c − out_u); rescaled = out · std(out_c)/std(out) (per example, Lin et al. 2024 §3.4);
    final = φ rescaled + (1 − φ) out. The combination is done on the raw network output (v or ε), like
    diffusers' ``rescale_noise_cfg``; for CFG itself the space does not matter (x̂0 is affine in it).
    ``uncond`` holds the keyword arguments that replace the conditional ones in the unconditional call.
    """

    def __init__(self, denoiser: Denoiser, scale: float, *, rescale: float = 0.0, uncond: dict[str, Any] | None = None):
        self.inner = denoiser
        self.schedule = denoiser.schedule
        self.scale = scale
        self.rescale = rescale
        self.uncond = uncond or {}

    def alpha_sigma(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.alpha_sigma(t, like)

    def predict(self, x: torch.Tensor, t: torch.Tensor, **extra: Any) -> torch.Tensor:
        out_c = self.inner.predict(x, t, **extra)
        out_u = self.inner.predict(x, t, **{**extra, **self.uncond})
        out = out_u + self.scale * (out_c - out_u)
        if self.rescale > 0:
            dims = tuple(range(1, x.ndim))
            # the floor keeps an all-zero output (a freshly initialised network) from giving 0/0
            rescaled = out * out_c.std(dim=dims, keepdim=True) / out.std(dim=dims, keepdim=True).clamp_min(1e-8)
            out = self.rescale * rescaled + (1.0 - self.rescale) * out
        return out

    def convert(self, x: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> Denoised:
        return self.inner.convert(x, t, out)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, **extra: Any) -> Denoised:
        return self.convert(x, t, self.predict(x, t, **extra))
