"""Latent diffusion: a DiT over the spectrogram-VAE latent sequence (Levy et al. 2023)."""

from .config import PRESETS, DiTConfig, dit_preset
from .dit import DiT, build_dit
from .latent_cache import LatentCache, build_latent_cache

__all__ = ["DiT", "DiTConfig", "LatentCache", "PRESETS", "build_dit", "build_latent_cache", "dit_preset"]
