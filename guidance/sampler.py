"""The one sampling loop: DDIM with η, reconstruction/classifier guidance and data-consistency projection.

Every model family (latent DiT, waveform U-Net, symbolic ε-prediction U-Net) and every task goes through
:func:`sample`; the task only chooses ``x_T``, the guidance terms, the projection and the x̂0 edit.

Per step t → s (Levy et al. 2023, Algorithm 2):

1. x̂0 = α_t x_t − σ_t v_θ(x_t, t)            (done by the Denoiser for any prediction type)
2. ε̂ = (x_t − α_t x̂0) / σ_t
3. ε̂ ← ε̂ − ξ σ_t ∇_{x_t} d(y, A(x̂0))
4. x_s = α_s x̂0 + σ_s ε̂                     (η > 0 adds DDIM's stochastic term, Song et al. 2021, eq. 12)
5. x_s ← projection of x_s onto the measurement noised to level s

The last step lands on t = 0, where α = 1 and σ = 0, so it returns the (edited, projected) x̂0.
Where the times rise (RePaint's resampling, :func:`guidance.schedule.resampling_timesteps`), the step is the
forward process q(x_s | x_t) instead, which needs no network call.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch

from .denoiser import Denoised
from .terms import Guidance

Callback = Callable[[dict[str, Any]], None]
EditDenoised = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x̂0, t (B,)) -> x̂0
Project = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]  # (x_s, s (B,), gen) -> x_s


class DenoiserLike(Protocol):
    def __call__(self, x: torch.Tensor, t: torch.Tensor, **extra: Any) -> Denoised: ...

    def alpha_sigma(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def denoise(
    denoiser: DenoiserLike, x: torch.Tensor, t: torch.Tensor, guidance: Guidance | None, extra: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(x̂0, ε̂, ∇ Σ w d) for x ``(B, ...)`` at times t ``(B,)``; the gradient is None without guidance.

    The gradient is with respect to x_t, or to x̂0 itself for ``guidance.step == "x0"``."""
    if guidance is None or guidance.step == "x0" or not guidance.through_net:
        with torch.no_grad():
            x0, eps = denoiser(x, t, **extra)
        if guidance is None:
            return x0, eps, None
        # The network held constant: only the decoder and the loss are differentiated, at x̂0 ...
        with torch.enable_grad():
            x0_in = x0.detach().requires_grad_(True)
            grad = _gradient(guidance.loss(x0_in), x0_in)
        if guidance.step == "eps":  # ... and x̂0 = α_t x_t − σ_t v has ∂x̂0/∂x_t = α_t whatever the network predicts
            grad = denoiser.alpha_sigma(t, x)[0] * grad
        return x0, eps, grad
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        x0, eps = denoiser(x_in, t, **extra)
        grad = _gradient(guidance.loss(x0), x_in)
    return x0.detach(), eps.detach(), grad


def _gradient(loss: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor:
    # a loss without a graph measured nothing (e.g. a whole-window regeneration: no known audio, no other term)
    return torch.autograd.grad(loss, wrt)[0] if loss.requires_grad else torch.zeros_like(wrt)


def ddim_step(
    x0: torch.Tensor,
    eps: torch.Tensor,
    alpha_t: torch.Tensor,
    sigma_t: torch.Tensor,
    alpha_s: torch.Tensor,
    sigma_s: torch.Tensor,
    eta: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """x_s from (x̂0, ε̂): Song et al. 2021, eq. 12, with ᾱ = α² and 1 − ᾱ = σ² (variance preserving)."""
    c = eta * sigma_s / sigma_t * (1.0 - (alpha_t / alpha_s) ** 2).clamp(min=0).sqrt()  # eq. 16: σ_t(η)
    x = alpha_s * x0 + (sigma_s**2 - c**2).clamp(min=0).sqrt() * eps  # "direction pointing to x_t"
    if eta > 0:
        x = x + c * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)  # random noise
    return x


def renoise(
    x: torch.Tensor,
    alpha_t: torch.Tensor,
    sigma_t: torch.Tensor,
    alpha_s: torch.Tensor,
    sigma_s: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """x_s ~ q(x_s | x_t) for s > t: x_s = (α_s/α_t) x_t + sqrt(σ_s² − (α_s/α_t)² σ_t²) z (the forward process, as
    RePaint re-noises; Lugmayr et al. 2022, §4.2). The marginal of x_s given x0 is then α_s x0 + σ_s ε, as if sampled
    directly."""
    ratio = alpha_s / alpha_t
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return ratio * x + (sigma_s**2 - (ratio * sigma_t) ** 2).clamp(min=0).sqrt() * noise


def sample(
    denoiser: DenoiserLike,
    x_T: torch.Tensor,
    ts: torch.Tensor,
    *,
    eta: float = 0.0,
    guidance: Guidance | None = None,
    edit_denoised: EditDenoised | None = None,
    project: Project | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    extra_args: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Guided DDIM from ``x_T`` ``(B, ...)`` along times ``ts`` ``(steps + 1,)``; returns x at ts[-1].

    ``ts`` usually decreases; where it rises, x is re-noised (RePaint's resampling) and ``callback`` is skipped,
    so the callback runs once per network evaluation.
    ``eta=0`` is deterministic DDIM, ``eta=1`` DDPM-like ancestral sampling. ``edit_denoised(x̂0, t)`` edits x̂0
    before ε̂ is recomputed from it (Zhu et al. 2024 fine-grained guidance). ``project(x_s, s, generator)``
    enforces data consistency. ``callback`` gets ``{'x', 'i', 't', 'denoised'}`` after every step.
    """
    extra = extra_args or {}
    x = x_T
    batch = x.shape[0]
    for i in range(len(ts) - 1):
        t = ts[i].to(x.device, torch.float32).expand(batch)  # (B,)
        s = ts[i + 1].to(x.device, torch.float32).expand(batch)
        alpha_t, sigma_t = denoiser.alpha_sigma(t, x)
        alpha_s, sigma_s = denoiser.alpha_sigma(s, x)
        if bool((s > t).all()):
            x = renoise(x, alpha_t, sigma_t, alpha_s, sigma_s, generator)
            continue
        # An ε̂ step only moves x_s through σ_s ε̂, so it is skipped when σ_s = 0 (the final step); an x̂0 step is not.
        guided = guidance if guidance is not None and (guidance.step == "x0" or bool((sigma_s > 0).any())) else None
        x0, eps, grad = denoise(denoiser, x, t, guided, extra)  # Alg. 2, lines 1-2 (ε̂ from the Denoiser)
        if edit_denoised is not None:
            x0 = edit_denoised(x0, t)  # Zhu et al. 2024: correct x̂0 ...
            eps = (x - alpha_t * x0) / sigma_t  # ... and recompute ε̂ from it (Alg. 2, line 2)
        if grad is not None and guided.step == "x0":
            x0 = x0 - guided.xi * grad  # He et al. 2024, Alg. 1: step x̂0, keep the network's ε̂
        elif grad is not None:
            eps = eps - guided.xi * sigma_t * grad  # Alg. 2, line 3
        x = ddim_step(x0, eps, alpha_t, sigma_t, alpha_s, sigma_s, eta, generator)  # Alg. 2, line 4
        if project is not None:
            x = project(x, s, generator)  # Alg. 2, line 5: data consistency
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "denoised": x0})
    return x
