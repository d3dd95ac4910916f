"""The latent model pair the benchmarks time: shipped/trained checkpoints, or the ``small`` presets with
random weights when none are given (speed and memory do not depend on the weight values)."""

from __future__ import annotations

from latent_diffusion import DiT, dit_preset
from vae import SpectrogramVAE


def load_latent_models(vae_path: str | None, dit_path: str | None) -> tuple[DiT, SpectrogramVAE, str]:
    """(DiT, VAE, a word on where they came from), both in eval mode."""
    vae = SpectrogramVAE.from_pretrained(vae_path) if vae_path else SpectrogramVAE.from_preset("small")
    if dit_path:
        dit = DiT.from_pretrained(dit_path)
    else:
        dit = DiT(dit_preset("small", in_channels=vae.config.latent_channels, hop_samples=vae.latent_hop))
    source = "checkpoints" if vae_path and dit_path else "random-init small presets"
    return dit.eval(), vae.eval(), source
