"""The shipped models by name: ``load_models("latent")`` reads ``checkpoints/{vae,dit}/`` (or
``$MUSICPROD_CHECKPOINTS``) and returns the :class:`guidance.tasks.EditModel` every edit takes::

    model = load_models("latent")
    out = guidance.tasks.infill(model, audio, sr, 30.0, 32.0, seed=0)   # audio (channels, T) at any rate
"""

from __future__ import annotations

import os
from pathlib import Path

from guidance.tasks import EditModel, latent_edit_model, waveform_edit_model
from latent_diffusion import DiT
from musicprod_common.errors import InputError
from musicprod_common.resources import shipped
from vae import SpectrogramVAE
from waveform_diffusion import WaveformUNet

MODEL_KINDS = ("latent", "waveform")


def default_checkpoints() -> Path:
    """``$MUSICPROD_CHECKPOINTS`` or the shipped ``checkpoints/`` folder (``musicprod_common.resources.shipped``)."""
    return Path(os.environ.get("MUSICPROD_CHECKPOINTS") or shipped("checkpoints"))


def _checkpoint_folder(root: Path, name: str) -> Path:
    folder = root / name
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{folder}: no checkpoint there (config.json + model.safetensors); pass --checkpoints DIR holding "
            f"vae/, dit/ and unet/, or set MUSICPROD_CHECKPOINTS"
        )
    return folder


def load_models(kind: str = "latent", checkpoints: str | os.PathLike | None = None) -> EditModel:
    """Load ``kind`` ∈ {"latent", "waveform"} from ``checkpoints/{vae,dit}`` or ``checkpoints/unet``, in eval mode,
    as the tasks' :class:`guidance.tasks.EditModel` (denoiser, codec, window, sampler preset)."""
    if kind not in MODEL_KINDS:
        raise InputError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    root = Path(checkpoints) if checkpoints is not None else default_checkpoints()
    if kind == "latent":
        vae = SpectrogramVAE.from_pretrained(_checkpoint_folder(root, "vae"))
        dit = DiT.from_pretrained(_checkpoint_folder(root, "dit"))
        if (dit.config.in_channels, dit.config.hop_samples) != (vae.config.latent_channels, vae.latent_hop):
            raise InputError(
                f"{root}: the DiT expects {dit.config.in_channels}-channel latents every {dit.config.hop_samples} "
                f"samples but the VAE makes {vae.config.latent_channels} every {vae.latent_hop}; "
                "ship checkpoints trained together"
            )
        return latent_edit_model(dit.eval().requires_grad_(False), vae.eval().requires_grad_(False))

    unet = WaveformUNet.from_pretrained(_checkpoint_folder(root, "unet"))
    return waveform_edit_model(unet.eval().requires_grad_(False))
