"""The checkpoints in ``checkpoints/``: each loads into its architecture, has a model card, and the sizes
stay inside the budgets the issues set (all < 100 MB, VAE ≤ 25 MB, DiT + U-Net ≤ 40 MB)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
MB = 1e6


def _load(name: str):
    path = str(CHECKPOINTS / name)
    if name == "vae":
        from vae import SpectrogramVAE

        return SpectrogramVAE.from_pretrained(path)
    if name == "dit":
        from latent_diffusion import DiT

        return DiT.from_pretrained(path)
    if name == "unet":
        from waveform_diffusion import WaveformUNet

        return WaveformUNet.from_pretrained(path)
    if name == "fgg":
        from symbolic.fgg import load_fgg

        return load_fgg(path)
    if name == "binomial":
        from symbolic.binomial import load_binomial

        return load_binomial(path)
    from guidance.passt import from_pretrained

    return from_pretrained(path)


def _size(name: str) -> float:
    return (CHECKPOINTS / name / "model.safetensors").stat().st_size / MB


@pytest.mark.parametrize("name", ["vae", "dit", "unet", "fgg", "binomial", "classifier"])
def test_checkpoint_loads_and_has_a_card(name):
    model = _load(name)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert "## " in (CHECKPOINTS / name / "README.md").read_text()


def test_sizes_stay_inside_the_budgets():
    total = sum(p.stat().st_size for p in CHECKPOINTS.glob("*/model.safetensors")) / MB
    assert total < 100
    assert _size("vae") <= 25
    assert _size("dit") + _size("unet") <= 40


def test_the_dit_reads_the_shipped_vae_latent_layout():
    vae, dit = _load("vae"), _load("dit")
    assert dit.config.in_channels == vae.config.latent_channels
    assert dit.config.hop_samples == vae.latent_hop
