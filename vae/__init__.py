"""Spectrogram VAE: 44.1 kHz stereo audio ↔ a latent with exactly 128× fewer values."""

from .model import PRESETS, DiagonalGaussian, SpectrogramVAE, VAEConfig, get_config, prepare_audio

__all__ = ["PRESETS", "DiagonalGaussian", "SpectrogramVAE", "VAEConfig", "get_config", "prepare_audio"]
