"""A 1D U-Net diffusion model on the raw stereo waveform ``(B, 2, T)``: the waveform baseline of Levy et al. 2023.

Ronneberger et al. 2015's encoder–decoder with skip connections, as used for diffusion by Ho et al. 2020,
in 1D: residual conv blocks conditioned on the time by FiLM (a per-channel scale and shift from the
timestep embedding), strided-conv downsampling and transposed-conv upsampling between levels, and
self-attention only at the coarsest levels, where the sequence is short enough for it.

The network predicts v (Salimans & Ho 2022): ``net(x_t, t) -> v``. ``T`` must be a multiple of
``config.total_factor``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from musicprod_common.checkpoint import load_pretrained
from musicprod_common.embeddings import TimestepEmbedding, expand_time

from .config import UNetConfig


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, FiLM by the time, GroupNorm → SiLU → conv (zero-initialised), plus a skip."""

    def __init__(self, c_in: int, c_out: int, time_width: int, kernel_size: int, groups: int):
        super().__init__()
        pad = kernel_size // 2
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding=pad)
        self.film = nn.Linear(time_width, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding=pad)
        nn.init.zeros_(self.conv2.weight)  # each block starts as its skip path: stable deep U-Nets
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, c_in, T)``, ``temb`` ``(B, time_width)`` → ``(B, c_out, T)``."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(temb)[:, :, None].chunk(2, dim=1)  # (B, c_out, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class AttentionBlock(nn.Module):
    """Multi-head self-attention over time, residual, output projection zero-initialised."""

    def __init__(self, width: int, head_width: int, groups: int):
        super().__init__()
        self.heads = max(1, width // head_width)
        self.norm = nn.GroupNorm(groups, width)
        self.qkv = nn.Conv1d(width, 3 * width, 1)
        self.proj = nn.Conv1d(width, width, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        q, k, v = rearrange(self.qkv(self.norm(x)), "b (three h e) t -> three b h t e", three=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, e)
        return x + self.proj(rearrange(out, "b h t e -> b (h e) t"))


class Level(nn.Module):
    """Residual blocks at one resolution, each optionally followed by attention."""

    def __init__(self, c_in: int, width: int, count: int, attention: bool, cfg: UNetConfig):
        super().__init__()
        self.res = nn.ModuleList(
            ResBlock(c_in if i == 0 else width, width, cfg.time_width, cfg.kernel_size, cfg.groups)
            for i in range(count)
        )
        self.attn = nn.ModuleList(
            AttentionBlock(width, cfg.head_width, cfg.groups) if attention else nn.Identity() for _ in range(count)
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for res, attn in zip(self.res, self.attn):
            x = attn(res(x, temb))
        return x


class WaveformUNet(nn.Module):
    """v-prediction U-Net: ``forward(x_t (B, 2, T), t (B,)) -> v (B, 2, T)``."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = c = config
        w = c.widths
        last = len(w) - 1
        self.time_embed = TimestepEmbedding(c.time_width)
        self.stem = nn.Conv1d(c.channels, w[0], c.kernel_size, padding=c.kernel_size // 2)
        self.down = nn.ModuleList(Level(w[i], w[i], c.blocks[i], c.attention[i], c) for i in range(len(w)))
        # Strided conv with kernel 2f, stride f, padding f/2 maps T to exactly T/f; the transposed one inverts it.
        self.downsample = nn.ModuleList(
            nn.Conv1d(w[i], w[i + 1], 2 * f, stride=f, padding=f // 2) for i, f in enumerate(c.factors)
        )
        self.mid = Level(w[last], w[last], 2, True, c)
        self.upsample = nn.ModuleList(
            nn.ConvTranspose1d(w[i + 1], w[i], 2 * f, stride=f, padding=f // 2) for i, f in enumerate(c.factors)
        )
        # On the way up each level first merges its skip (2w → w), then runs as many blocks as on the way down.
        self.up = nn.ModuleList(Level(2 * w[i], w[i], c.blocks[i] + 1, c.attention[i], c) for i in range(len(w)))
        self.out_norm = nn.GroupNorm(c.groups, w[0])
        self.out = nn.Conv1d(w[0], c.channels, c.kernel_size, padding=c.kernel_size // 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B, C, T = x.shape
        if C != self.config.channels or T % self.config.total_factor:
            raise ValueError(
                f"expected (B, {self.config.channels}, T) with T a multiple of {self.config.total_factor}, got "
                f"{tuple(x.shape)}"
            )
        temb = self.time_embed(expand_time(t, B, x.device))  # (B, time_width)
        h = self.stem(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, temb)
        for i in reversed(range(len(self.up))):
            if i < len(self.upsample):
                h = self.upsample[i](h)
            h = self.up[i](torch.cat([h, skips[i]], dim=1), temb)
        return self.out(F.silu(self.out_norm(h))).to(x.dtype)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike) -> "WaveformUNet":
        """Load ``model.safetensors`` + ``config.json`` from a folder (e.g. ``runs/unet/final``) or a hub id."""
        return load_pretrained(path_or_hub_id, UNetConfig, cls)


def build_unet(config: UNetConfig) -> WaveformUNet:
    return WaveformUNet(config)
