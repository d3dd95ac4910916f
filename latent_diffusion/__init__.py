"""Latent diffusion: a DiT over the spectrogram-VAE latent sequence (Levy et al. 2023)."""
from .config import PRESETS, DiTConfig, dit_preset
from .dit import DiT, build_dit

__all__ = ["DiT", "DiTConfig", "PRESETS", "build_dit", "dit_preset"]
