"""Helpers for the recipe tests: tiny random-init checkpoints saved the way the shipped ones are, test songs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from guidance.passt import PaSST, passt_config
from latent_diffusion import dit_preset
from latent_diffusion.dit import DiT
from musicprod_common.checkpoint import save_pretrained
from vae import SpectrogramVAE, get_config
from waveform_diffusion import WaveformUNet, unet_preset

TINY_FRAMES = 128  # latent frames per DiT window: 128 × the tiny VAE's hop of 128 = 16384 samples (0.37 s)
TINY_UNET_WINDOW = 2**14  # same window for the tiny U-Net, so a 0.2 s region fits either model


def save_tiny_checkpoints(root: Path) -> Path:
    """``root/{vae,dit,unet,classifier}/`` with random-init tiny models (seeded, so every run gets the same weights)."""
    torch.manual_seed(0)
    vae_cfg = get_config("tiny")
    vae = SpectrogramVAE(vae_cfg)
    dit_cfg = dit_preset(
        "tiny", in_channels=vae_cfg.latent_channels, hop_samples=vae_cfg.latent_hop, frames=TINY_FRAMES
    )
    dit = DiT(dit_cfg)
    unet_cfg = unet_preset("tiny", window=TINY_UNET_WINDOW)
    unet = WaveformUNet(unet_cfg)
    # The U-Net's output layer starts at zero (v = 0 everywhere); nudge it so sampling is not trivially linear.
    with torch.no_grad():
        unet.out.weight.normal_(0.0, 0.02)
    save_pretrained(vae, vae_cfg, root / "vae")
    save_pretrained(dit, dit_cfg, root / "dit")
    save_pretrained(unet, unet_cfg, root / "unet")
    classifier_cfg = passt_config("tiny")
    classifier = PaSST(classifier_cfg)
    with torch.no_grad():  # PaSST's heads start at zero: give the style guidance a gradient to follow
        for p in classifier.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_pretrained(classifier, classifier_cfg, root / "classifier")
    return root


def synth_song(seconds: float, sample_rate: int = 44100, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A deterministic test 'song' ``(T, channels)`` float32: a few decaying harmonic notes plus a little noise."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    note, ring = 0.25, 1.0  # a note every 0.25 s, each ringing for 1 s (exp(-6) ≈ 0.25% at the cut)
    span = int(ring * sample_rate)
    tt = t[:span]
    for k in range(int(seconds / note) + 1):
        f0 = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        i0 = int(k * note * sample_rate)
        m = min(span, n - i0)
        if m <= 0:
            break
        out[i0 : i0 + m] += (
            np.exp(-tt[:m] * 6.0) * sum(np.sin(2 * np.pi * f0 * h * tt[:m]) / h for h in (1, 2, 3)) * 0.15
        )
    out += 0.01 * rng.standard_normal(n)
    out = np.clip(out, -0.95, 0.95)
    pan = np.linspace(0.8, 1.0, channels)[None, :]
    return (out[:, None] * pan).astype(np.float32)


def write_song(
    path: Path, seconds: float, sample_rate: int = 44100, channels: int = 2, subtype: str | None = None, seed: int = 0
) -> Path:
    sf.write(str(path), synth_song(seconds, sample_rate, channels, seed), sample_rate, subtype=subtype)
    return path


def changed_span(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """First and one-past-last frame where ``a`` and ``b`` (``(T,)`` or ``(T, C)``) differ; (0, 0) if none."""
    diff = np.nonzero((a != b).reshape(len(a), -1).any(axis=1))[0]
    return (int(diff[0]), int(diff[-1]) + 1) if diff.size else (0, 0)
