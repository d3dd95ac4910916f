"""A diffusion transformer (DiT) over the VAE latent sequence ``(B, C, L)``.

Peebles & Xie 2023 ("Scalable Diffusion Models with Transformers"), in 1D: the latent is cut into
patches of ``patch_size`` frames, each patch is one token, and every block is conditioned on the time
through adaLN-Zero — a LayerNorm without affine weights whose shift, scale and residual gate come from
the timestep embedding, with the gate initialised to zero so each block starts as the identity.
Positions are relative, via rotary embeddings on queries and keys (Su et al. 2021, RoFormer), so the
model also runs on windows longer or shorter than it was trained on.

The network predicts v (Salimans & Ho 2022), as used by Levy et al. 2023: ``net(x_t, t) -> v``.

With ``config.known_conditioning`` it also takes the known part of an edit, ``net(x_t, t, known, known_mask)``:
the clean latents of the known frames and their mask enter through a second patch projection that starts at
zero, so a checkpoint trained without it loads unchanged and behaves the same until the projection is trained.
A mask of zeros (or no ``known``) is the unconditional model. This is the inpainting input of image models
(e.g. Rombach et al. 2022, §4.3: masked image and mask concatenated to the input), here added instead of
concatenated so the pretrained input projection stays as it was.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from musicprod_common.checkpoint import load_pretrained
from musicprod_common.embeddings import TimestepEmbedding, expand_time

from .config import DiTConfig


def rotary_cos_sin(n: int, head_width: int, base: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables ``(n, head_width / 2)`` for rotary positions 0..n-1."""
    inv_freq = base ** (-torch.arange(0, head_width, 2, device=device, dtype=torch.float32) / head_width)
    angles = torch.arange(n, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return torch.cos(angles), torch.sin(angles)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive feature pairs of ``x`` ``(B, H, N, hd)`` by position-dependent angles.

    RoFormer eq. 34: (x1, x2) → (x1 cos θ − x2 sin θ, x1 sin θ + x2 cos θ), so q·k depends only on the
    distance between the two positions.
    """
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # (B, H, N, hd/2) each
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.flatten(-2).to(x.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x`` ``(B, N, d)`` normalised elsewhere, then scaled and shifted per example ``(B, d)``."""
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, rope_base: float):
        super().__init__()
        self.heads, self.rope_base = heads, rope_base
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, d) -> (B, N, d)``."""
        q, k, v = rearrange(self.qkv(x), "b n (three h e) -> three b h n e", three=3, h=self.heads)
        cos, sin = rotary_cos_sin(x.shape[1], q.shape[-1], self.rope_base, x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, hd)
        return self.proj(rearrange(out, "b h n e -> b n (h e)"))


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-Zero conditioning (Peebles & Xie 2023, Fig. 3)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, cond_width: int, rope_base: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads, rope_base)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cond_width, 6 * width))
        # adaLN-Zero: all six modulations start at zero, so the gates are 0 and the block is the identity.
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, d)``, ``cond`` ``(B, cond_width)`` → ``(B, N, d)``."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond).chunk(6, dim=-1)
        x = x + gate1[:, None, :] * self.attn(modulate(self.norm1(x), shift1, scale1))
        x = x + gate2[:, None, :] * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x


class FinalLayer(nn.Module):
    """adaLN (shift, scale) then a linear map from width to one patch of latent values, zero-initialised."""

    def __init__(self, width: int, cond_width: int, patch_values: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cond_width, 2 * width))
        self.linear = nn.Linear(width, patch_values)
        for layer in (self.ada[1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(cond).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """v-prediction transformer: ``forward(x_t (B, C, L), t (B,)) -> v (B, C, L)``.

    ``L`` must be a multiple of ``config.patch_size``; it need not equal ``config.frames``.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        c = config
        self.patch_in = nn.Linear(c.in_channels * c.patch_size, c.width)
        if c.known_conditioning:
            self.known_in = nn.Linear((c.in_channels + 1) * c.patch_size, c.width)
            nn.init.zeros_(self.known_in.weight)
            nn.init.zeros_(self.known_in.bias)
        self.time_embed = TimestepEmbedding(c.cond_width)
        self.blocks = nn.ModuleList(
            DiTBlock(c.width, c.heads, c.mlp_ratio, c.cond_width, c.rope_base) for _ in range(c.depth)
        )
        self.final = FinalLayer(c.width, c.cond_width, c.in_channels * c.patch_size)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` ``(B, C, L)``, ``t`` ``(B,)``; ``known`` ``(B, C, L)`` and ``known_mask`` ``(B, 1, L)`` (1 = known
        frame) only with ``config.known_conditioning``. Returns v ``(B, C, L)``."""
        B, C, L = x.shape
        p = self.config.patch_size
        if C != self.config.in_channels or L % p:
            raise ValueError(
                f"expected (B, {self.config.in_channels}, L) with L a multiple of {p}, got {tuple(x.shape)}"
            )
        if (known is None) != (known_mask is None):
            raise ValueError("known and known_mask go together")
        cond = self.time_embed(expand_time(t, B, x.device))  # (B, cond_width)
        h = self.patch_in(rearrange(x, "b c (n p) -> b n (p c)", p=p))  # (B, N, d)
        if self.config.known_conditioning:
            if known is None:
                known, known_mask = torch.zeros_like(x), x.new_zeros(B, 1, L)
            mask = known_mask.to(x.dtype).expand(B, 1, L)
            context = torch.cat([known.to(x.dtype) * mask, mask], dim=1)  # unknown frames carry nothing
            h = h + self.known_in(rearrange(context, "b c (n p) -> b n (p c)", p=p))
        elif known is not None:
            raise ValueError(
                "this DiT was trained without known-frame conditioning (config.known_conditioning is false)"
            )
        for block in self.blocks:
            h = block(h, cond)
        out = self.final(h, cond)  # (B, N, p·C)
        return rearrange(out, "b n (p c) -> b c (n p)", p=p).to(x.dtype)

    # --- latent scaling: the DiT works on (z - mean) / std, the VAE on z -------------------------
    def _stats(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self.config.latent_std:
            return None
        mean = torch.tensor(self.config.latent_mean, dtype=z.dtype, device=z.device)[None, :, None]
        std = torch.tensor(self.config.latent_std, dtype=z.dtype, device=z.device)[None, :, None]
        return mean, std

    def normalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        """VAE latent ``(B, C, L)`` → the ~unit-variance space the DiT was trained in."""
        stats = self._stats(z)
        return z if stats is None else (z - stats[0]) / stats[1]

    def denormalize_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize_latents`: a DiT sample ``(B, C, L)`` → a VAE latent to decode."""
        stats = self._stats(x)
        return x if stats is None else x * stats[1] + stats[0]

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike) -> "DiT":
        """Load ``model.safetensors`` + ``config.json`` from a folder (e.g. ``runs/dit/final``) or a hub id."""
        return load_pretrained(path_or_hub_id, DiTConfig, cls)


def build_dit(config: DiTConfig) -> DiT:
    return DiT(config)
