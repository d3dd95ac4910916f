"""Chord-conditioned piano-roll diffusion (Zhu et al. 2024, "Efficient Fine-Grained Guidance for
Diffusion Model Based Symbolic Music Generation"): a 2D U-Net predicting ε on a discrete T=1000 DDPM
schedule, conditioned on chord, rhythm and (optionally) melody channels stacked with x_t.

Piano rolls are ``(B, 2, T, P)``: onset and sustain channels, T = 64 16th steps, P = 64 pitches (MIDI
33–96), values in {0, 1}; a note is a cell above 0.5.

Classifier-free guidance: training drops the rhythm condition and the melody independently with
p = 0.5 each; two flag channels tell the network which conditions are present, so "dropped" is never
confused with "silent". The chord is never dropped: the fine-grained correction relies on it anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from musicprod_common.checkpoint import load_pretrained
from musicprod_common.config import pick_preset
from musicprod_common.training import example_rand, example_randn

ROLL_CHANNELS = 2
COND_CHANNELS = 1 + 2 + 2 + 2  # chord, rhythm (onset, sustain), melody (onset, sustain), 2 presence flags


@dataclass
class FGGConfig:
    base_channels: int = 64  # width of the first U-Net level
    channel_mults: tuple[int, ...] = (1, 2, 4, 4)  # one level per entry; each level after the first halves T and P
    res_blocks: int = 2  # residual blocks per level on the way down (one more on the way up)
    attn_levels: tuple[int, ...] = (2, 3)  # levels with self-attention (the low-resolution ones)
    heads: int = 4
    dropout: float = 0.0
    num_timesteps: int = 1000  # discrete DDPM schedule, ε-prediction
    beta_start: float = 1e-4  # linear β schedule (Ho et al. 2020)
    beta_end: float = 0.02
    drop_rhythm: float = 0.5  # classifier-free guidance: p(drop rhythm) during training
    drop_melody: float = 0.5  # p(drop melody), independent of the rhythm drop
    steps: int = 64  # roll length in 16th steps (4 bars)
    pitches: int = 64  # MIDI 33..96


PRESETS: dict[str, FGGConfig] = {
    "tiny": FGGConfig(base_channels=8, channel_mults=(1, 2, 2), res_blocks=1, attn_levels=(), heads=1),
    "small": FGGConfig(base_channels=32, channel_mults=(1, 2, 2, 4), res_blocks=1, attn_levels=(3,), heads=4),
    "paper": FGGConfig(),  # Zhu et al. 2024: base 64, mults [1,2,4,4], 2 res blocks, attention at low res
}


def fgg_config(name: str) -> FGGConfig:
    return pick_preset(PRESETS, name)


def linear_alphas_cumprod(cfg: FGGConfig) -> torch.Tensor:
    """ᾱ_t for t = 0..T−1 of the linear β schedule (Ho et al. 2020, eq. 4): x_t = √ᾱ x0 + √(1−ᾱ) ε."""
    betas = torch.linspace(cfg.beta_start, cfg.beta_end, cfg.num_timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0).float()


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps ``(B,)`` → ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], 1)


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, ch // 4) if ch >= 4 else 1, ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, 2 * cout)  # scale and shift (FiLM) from the timestep
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.temb(emb)[:, :, None, None].chunk(2, 1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """A transformer block over the T×P cells: self-attention, then a GEGLU feed-forward (4× width)."""

    def __init__(self, ch: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        self.ff_norm = nn.LayerNorm(ch)
        self.ff_in = nn.Linear(ch, 8 * ch)  # value and gate of GEGLU (Shazeer 2020)
        self.ff_out = nn.Linear(4 * ch, ch)
        for layer in (self.out, self.ff_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, c/heads)
        x = x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        value, gate = self.ff_in(self.ff_norm(tokens)).chunk(2, -1)
        tokens = tokens + self.ff_out(value * F.gelu(gate))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class FGGUNet(nn.Module):
    """ε_θ(x_t, t, cond): x_t ``(B, 2, T, P)``, t ``(B,)`` in [0, 1000), cond ``(B, 7, T, P)`` → ε ``(B, 2, T, P)``.

    ``in_channels``/``out_channels`` let the binomial model reuse the same network on a 4-channel roll
    with no conditions (then ``cond`` is None).
    """

    def __init__(
        self, cfg: FGGConfig, in_channels: int = ROLL_CHANNELS + COND_CHANNELS, out_channels: int = ROLL_CHANNELS
    ):
        super().__init__()
        self.cfg = cfg
        ch0 = cfg.base_channels
        temb = 4 * ch0
        self.time_mlp = nn.Sequential(nn.Linear(ch0, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(in_channels, ch0, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [ch0], ch0
        for level, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.res_blocks):
                blocks = [ResBlock(ch, ch0 * mult, temb, cfg.dropout)]
                ch = ch0 * mult
                if level in cfg.attn_levels:
                    blocks.append(Attention(ch, cfg.heads))
                self.down.append(nn.ModuleList(blocks))
                skips.append(ch)
            if level < len(cfg.channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        self.mid = nn.ModuleList(
            [ResBlock(ch, ch, temb, cfg.dropout), Attention(ch, cfg.heads), ResBlock(ch, ch, temb, cfg.dropout)]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            for i in range(cfg.res_blocks + 1):
                blocks = [ResBlock(ch + skips.pop(), ch0 * mult, temb, cfg.dropout)]
                ch = ch0 * mult
                if level in cfg.attn_levels:
                    blocks.append(Attention(ch, cfg.heads))
                if level > 0 and i == cfg.res_blocks:
                    blocks.append(
                        nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1))
                    )
                self.up.append(nn.ModuleList(blocks))
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @staticmethod
    def _run(blocks: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            h = block(h, emb) if isinstance(block, ResBlock) else block(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.cfg.base_channels))
        h = self.conv_in(x if cond is None else torch.cat([x, cond.to(x.dtype)], 1))
        hs = [h]
        for blocks in self.down:
            h = self._run(blocks, h, emb)
            hs.append(h)
        h = self._run(self.mid, h, emb)
        for blocks in self.up:
            h = self._run(blocks, torch.cat([h, hs.pop()], 1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


def build_fgg(cfg: FGGConfig) -> FGGUNet:
    return FGGUNet(cfg)


def make_cond(
    chord: torch.Tensor,
    rhythm: torch.Tensor | None = None,
    melody: torch.Tensor | None = None,
    *,
    keep_rhythm: torch.Tensor | None = None,
    keep_melody: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stack the conditions into ``(B, 7, T, P)``: chord (1), rhythm (2), melody (2), presence flags (2).

    ``rhythm``/``melody`` may be None (absent); ``keep_*`` ``(B,)`` 0/1 drop them per example (CFG).
    """
    b, _, t, p = chord.shape
    zeros = chord.new_zeros(b, 2, t, p)
    keep_r = (
        chord.new_zeros(b) if rhythm is None else (chord.new_ones(b) if keep_rhythm is None else keep_rhythm.to(chord))
    )
    keep_m = (
        chord.new_zeros(b) if melody is None else (chord.new_ones(b) if keep_melody is None else keep_melody.to(chord))
    )
    r = zeros if rhythm is None else rhythm * keep_r[:, None, None, None]
    m = zeros if melody is None else melody * keep_m[:, None, None, None]
    flags = torch.stack([keep_r, keep_m], 1)[:, :, None, None].expand(b, 2, t, p)
    return torch.cat([chord, r, m, flags], 1)


def fgg_loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: FGGConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """ε-prediction MSE (Ho et al. 2020, eq. 14) with CFG condition dropout; noise is a deterministic function of each
    draw's key."""
    x0, keys = batch["x0"], batch["key"]
    device = x0.device
    u = example_rand(keys, (3,), salt=11, device=device)  # (B, 3): timestep, rhythm drop, melody drop
    t = (u[:, 0] * cfg.num_timesteps).long().clamp_max(cfg.num_timesteps - 1)
    eps = example_randn(keys, tuple(x0.shape[1:]), salt=12, device=device)
    abar = linear_alphas_cumprod(cfg).to(device)[t][:, None, None, None]
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    cond = make_cond(
        batch["chord"],
        batch["rhythm"],
        batch["melody"],
        keep_rhythm=(u[:, 1] >= cfg.drop_rhythm).float(),
        keep_melody=(u[:, 2] >= cfg.drop_melody).float(),
    )
    eps_hat = model(x_t, t, cond)
    loss = F.mse_loss(eps_hat.float(), eps)
    return loss, {"mse": float(loss.detach())}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_fgg(path_or_hub_id: str) -> FGGUNet:
    """A trained model from a folder with ``model.safetensors`` + ``config.json`` (or a hub id)."""
    return load_pretrained(path_or_hub_id, FGGConfig, build_fgg)
