"""Binomial (Bernoulli) diffusion on binary piano rolls (Atassi, "Generating symbolic music using
diffusion models").

The roll is ``(B, 4, T, P)`` of bits: accompaniment onset, accompaniment sustain, melody onset, melody
sustain. Forward process, with β_t = (t + 1)/T for t = 0..T−1 (so β_{T−1} = 1 is pure noise) and r the
data's note density per channel:

    x_t ~ Bernoulli((1 − β_t) x0 + β_t r)

which is sampled as "keep x0 with probability 1 − β_t, else take a noise bit z ~ Bernoulli(r)". The
network predicts x0 (logits, trained with binary cross-entropy).

The U-Net predicts a residual on top of the exact posterior logit for independent Bernoulli(r) bits
(:func:`independent_bit_logit`). Its output layer starts at zero, so an untrained model already is the
exact denoiser of that simple prior and samples notes at the data's density; training only has to add
the musical structure. Without this, the network first has to learn to copy x_t at small β through a
centred input and an all-zero start, and a few hundred CPU steps ended in the "every bit off" minimum
for bits that are 97% zeros (the first shipped checkpoint generated silence).

Every task is the same sampler with a different known region (bits fixed from a given roll):
completion (first half known), infill (first and last quarters known), harmonisation (the melody
channels known) and variation (start from a partially noised existing roll instead of pure noise).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from musicprod_common.checkpoint import load_pretrained
from musicprod_common.config import pick_preset
from musicprod_common.errors import InputError
from musicprod_common.training import example_rand

from .data import BAR_STEPS, SLICE_STEPS
from .fgg import FGGConfig, FGGUNet
from .generate import OVERLAP_BARS, window_starts

CHANNELS = 4  # accompaniment onset, sustain; melody onset, sustain
ACCOMPANIMENT = (0, 1)
MELODY = (2, 3)


@dataclass
class BinomialConfig:
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2, 4)
    res_blocks: int = 1
    attn_levels: tuple[int, ...] = (3,)
    heads: int = 4
    dropout: float = 0.0
    num_timesteps: int = 100  # Atassi: T = 100, β_t = (t + 1)/T
    density: tuple[float, ...] = (0.014, 0.03, 0.006, 0.03)  # r per channel; train_binomial measures it on the data
    steps: int = 64
    pitches: int = 64


PRESETS: dict[str, BinomialConfig] = {
    "tiny": BinomialConfig(base_channels=8, channel_mults=(1, 2, 2), attn_levels=(), heads=1),
    "small": BinomialConfig(),
}


def binomial_config(name: str) -> BinomialConfig:
    return pick_preset(PRESETS, name)


class BinomialNet(nn.Module):
    """x0 logits from x_t: ``(B, 4, T, P)`` bits and t ``(B,)`` in 0..T−1 → ``(B, 4, T, P)`` logits."""

    def __init__(self, cfg: BinomialConfig):
        super().__init__()
        self.cfg = cfg
        unet = FGGConfig(
            base_channels=cfg.base_channels,
            channel_mults=cfg.channel_mults,
            res_blocks=cfg.res_blocks,
            attn_levels=cfg.attn_levels,
            heads=cfg.heads,
            dropout=cfg.dropout,
        )
        self.unet = FGGUNet(unet, in_channels=CHANNELS, out_channels=CHANNELS)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # Bits {0,1} are centred so the network sees zero-mean input; t is spread to the U-Net's 0..1000 range.
        beta = betas(self.cfg.num_timesteps).to(x_t.device)[t.long()][:, None, None, None]
        prior = independent_bit_logit(x_t, beta, density_like(self.cfg, x_t))
        return prior + self.unet(2.0 * x_t - 1.0, t.float() * (1000.0 / self.cfg.num_timesteps))


def build_binomial(cfg: BinomialConfig) -> BinomialNet:
    return BinomialNet(cfg)


def load_binomial(path_or_hub_id: str) -> BinomialNet:
    return load_pretrained(path_or_hub_id, BinomialConfig, build_binomial)


def betas(num_timesteps: int) -> torch.Tensor:
    """β_t = (t + 1)/T, t = 0..T−1 (Atassi)."""
    return torch.arange(1, num_timesteps + 1, dtype=torch.float32) / num_timesteps


def density_like(cfg: BinomialConfig, x: torch.Tensor) -> torch.Tensor:
    """r broadcast to ``(1, 4, 1, 1)``."""
    return torch.tensor(cfg.density, device=x.device, dtype=x.dtype)[None, :, None, None]


def independent_bit_logit(x_t: torch.Tensor, beta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """logit P(x0 = 1 | x_t) when every bit of x0 is an independent Bernoulli(r) draw (Bayes' rule).

    P(x_t = 1 | x0) = (1 − β) x0 + β r, so
      x_t = 1: logit = log(1 − β + β r) − log((1 − r) β)
      x_t = 0: logit = log(r β) − log(1 − β r)
    At β = 1 both are the prior logit log(r / (1 − r)); as β → 0 they tend to ±∞ (x_t is x0).
    """
    beta = beta.float().clamp(1e-6, 1.0)
    r = r.float()
    one = torch.log1p(-beta + beta * r) - torch.log((1.0 - r) * beta)
    zero = torch.log(r * beta) - torch.log1p(-beta * r)
    return torch.where(x_t > 0.5, one, zero)


def q_sample(x0: torch.Tensor, beta: torch.Tensor, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x_t = z where u < β else x0: a draw of Bernoulli((1 − β) x0 + β r) when z ~ Bernoulli(r), u ~ U[0,1).

    ``beta`` broadcasts against ``x0`` (``(B, 1, 1, 1)``).
    """
    return torch.where(u < beta, z, x0)


# Known regions drawn for --known-prob training: the tasks the sampler serves, plus a long-form
# harmonisation window (melody known everywhere, the first two bars known from the previous window).
TRAINING_TASKS = ("harmonize", "completion", "infill", "harmonize+completion")


@functools.lru_cache(maxsize=4)
def _training_regions(shape: tuple[int, ...]) -> torch.Tensor:
    """The known region of each of :data:`TRAINING_TASKS` for one example of ``shape``: ``(tasks, *shape)``, built
    once."""
    return torch.stack(
        [torch.stack([task_mask(task, (1, *shape))[0] for task in name.split("+")]).any(0) for name in TRAINING_TASKS]
    )


def training_known_mask(keys: torch.Tensor, shape: tuple[int, ...], known_prob: float, device) -> torch.Tensor:
    """Per-example known-bit mask ``(B, 4, T, P)``: with probability ``known_prob`` one of :data:`TRAINING_TASKS`."""
    regions = _training_regions(tuple(shape))
    use, which = example_rand(keys, (2,), salt=24, device="cpu").unbind(1)
    choice = (which * len(TRAINING_TASKS)).long().clamp_max(len(TRAINING_TASKS) - 1)
    return (regions[choice] & (use < known_prob)[:, None, None, None]).to(device)


def binomial_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], cfg: BinomialConfig, known_prob: float = 0.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """BCE of the x0 logits against the clean bits (Atassi: the network predicts x0).

    ``known_prob`` > 0 trains the conditional the sampler uses: for that share of the examples a task's known
    region is shown clean at every level (as :func:`sample_binomial` shows it) and left out of the loss. Trained
    only on fully noised rolls, the network never saw a clean condition, and an exactly empty melody at a high
    noise level (a song's intro) made it write three times the data's note density.
    """
    x0 = torch.cat([batch["x0"], batch["melody"]], 1)  # (B, 4, T, P)
    keys, device = batch["key"], x0.device
    shape = tuple(x0.shape[1:])
    t = (example_rand(keys, (), salt=21, device=device) * cfg.num_timesteps).long().clamp_max(cfg.num_timesteps - 1)
    z = (example_rand(keys, shape, salt=22, device=device) < density_like(cfg, x0)[0]).to(x0.dtype)
    u = example_rand(keys, shape, salt=23, device=device)
    x_t = q_sample(x0, betas(cfg.num_timesteps).to(device)[t][:, None, None, None], z, u)
    if known_prob > 0:
        known = training_known_mask(keys, shape, known_prob, device)
        x_t = torch.where(known, x0, x_t)
    bce = F.binary_cross_entropy_with_logits(model(x_t, t).float(), x0.float(), reduction="none")
    loss = bce.mean() if known_prob == 0 else (bce * ~known).sum() / (~known).sum().clamp_min(1)
    return loss, {"bce": float(loss.detach())}


@torch.no_grad()
def sample_binomial(
    model: nn.Module,
    *,
    shape: tuple[int, ...] | None = None,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    start: torch.Tensor | None = None,
    strength: float = 1.0,
    noise_known: bool = False,
    generator: torch.Generator | None = None,
    callback=None,
) -> torch.Tensor:
    """Atassi's reverse process → bits ``(B, 4, T, P)``.

    Draw z ~ Bernoulli(r) once. At each step t → t−1: predict x̂0 (sampled from the network's Bernoulli
    probabilities), then every bit of x̂0 that disagrees with z reverts to z with probability β_{t−1}, so
    x_{t−1} has the forward marginal Bernoulli((1 − β) x̂0 + β r). The last step returns x̂0 (p > 0.5).

    ``known``/``known_mask`` (``(B, 4, T, P)``): bits fixed from a given roll and exact in the output
    (completion, infill, harmonisation). The network sees them clean at every level by default. With
    ``noise_known`` they are noised to each level with the same z, RePaint-style, which matches training but
    hides most of the condition during the early steps, where a sparse roll's key and chords are decided:
    on 50 valid slices that made harmonisation worse (see checkpoints/binomial/README.md). ``start`` with ``strength`` ∈
    (0, 1]:
    variation, starting at level ⌈strength·T⌉−1 from ``start`` noised there, instead of from pure noise.

    Why this is not :func:`guidance.sampler.sample`: that loop moves along a Gaussian path
    (x_s = α_s x̂0 + σ_s ε̂), and its hooks (ε̂ recomputation, DDIM step) have no meaning for bits; here a
    step is a Bernoulli resampling, so the whole loop is this one short function.
    """
    cfg: BinomialConfig = model.cfg
    ref = known if known is not None else start
    if shape is None:
        if ref is None:
            raise ValueError("give shape, known or start")
        shape = tuple(ref.shape)
    device = next(model.parameters()).device
    b = betas(cfg.num_timesteps).to(device)
    r = torch.tensor(cfg.density, device=device)[None, :, None, None]
    z = (torch.rand(shape, generator=generator, device=device) < r).float()
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength {strength}: must be in (0, 1]; 1 means generate from scratch")
    first = max(0, min(cfg.num_timesteps - 1, round(strength * cfg.num_timesteps) - 1))
    x = z.clone()
    if start is not None and first < cfg.num_timesteps - 1:
        x = q_sample(start.to(device).float(), b[first], z, torch.rand(shape, generator=generator, device=device))
    mask = known_mask.to(device).bool() if known_mask is not None else None

    def project(bits: torch.Tensor, beta: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return bits
        target = known.to(device).float()
        if beta is not None and noise_known:
            target = q_sample(target, beta, z, torch.rand(shape, generator=generator, device=device))
        return torch.where(mask, target, bits)

    x = project(x, b[first])
    for t in range(first, -1, -1):
        p0 = torch.sigmoid(model(x, torch.full((shape[0],), t, device=device)).float())
        if t == 0:
            x = project((p0 > 0.5).float(), None)
        else:
            x0 = (torch.rand(shape, generator=generator, device=device) < p0).float()
            revert = (x0 != z) & (torch.rand(shape, generator=generator, device=device) < b[t - 1])
            x = project(torch.where(revert, z, x0), b[t - 1])
        if callback is not None:
            callback({"x": x, "i": first - t, "t": t, "denoised": p0})
    return x


def task_mask(task: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Known-bit mask ``shape`` = (B, 4, T, P) for a task: completion, infill, harmonize."""
    mask = torch.zeros(shape, dtype=torch.bool)
    steps = shape[2]
    if task == "completion":
        mask[:, :, : steps // 2] = True
    elif task == "infill":
        mask[:, :, : steps // 4] = True
        mask[:, :, steps - steps // 4 :] = True
    elif task == "harmonize":
        mask[:, list(MELODY)] = True
    else:
        raise InputError(f"unknown task {task!r}; choose one of: completion, harmonize, infill, variation")
    return mask


@torch.no_grad()
def sample_binomial_long(
    model: nn.Module,
    known: torch.Tensor,
    known_mask: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    noise_known: bool = False,
    progress=None,
) -> torch.Tensor:
    """Any length (a multiple of 2 bars, ≥ 4 bars): ``known`` ``(4, T, P)`` bits with ``known_mask`` ``(4, T, P)``.

    Autoregressive inpainting with a 2-bar overlap: 4-bar windows with a hop of 2 bars, each window's first
    two bars fixed to what the previous window produced, plus the caller's known bits everywhere.
    """
    steps = known.shape[1]
    starts = window_starts(steps // BAR_STEPS)
    out = known.clone().float() * known_mask
    overlap = OVERLAP_BARS * BAR_STEPS
    for n, bar in enumerate(starts):
        a, b = bar * BAR_STEPS, bar * BAR_STEPS + SLICE_STEPS
        mask = known_mask[:, a:b].clone().bool()
        if n > 0:
            mask[:, :overlap] = True
        window = sample_binomial(
            model, known=out[None, :, a:b], known_mask=mask[None], noise_known=noise_known, generator=generator
        )[0].cpu()
        out[:, a:b] = torch.where(mask, out[:, a:b], window)
        if progress is not None:
            progress(n + 1, len(starts))
    return out
