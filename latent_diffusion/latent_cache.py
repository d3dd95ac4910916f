"""Pre-encoded VAE latents for DiT training: encode the audio once, train many epochs on the latents.

A cache is one safetensors file:

* ``latents`` ``(N, C, L)`` float16 — the VAE posterior mode of N audio windows (the mode, not a sample,
  so the DiT learns the decoder's input distribution without the encoder's sampling noise). Half
  precision halves what has to travel to a GPU machine; its 1e-3 relative rounding is far below the
  noise the DiT is trained to remove. Readers get float32;
* ``mean``, ``std`` ``(C,)`` — per-channel statistics over all N·L frames. Training sees
  ``(z - mean) / std`` (~unit variance, which the cosine schedule's σ = 1 end point assumes); the DiT's
  config stores both so sampling can undo it (:meth:`latent_diffusion.dit.DiT.denormalize_latents`);
* metadata: ``hop_samples`` (audio samples per latent frame) and ``sample_rate``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.errors import InputError
from musicprod_common.files import atomic_path

FORMAT = "musicprod-latent-cache-v1"


def posterior_mode(encoded: Any) -> torch.Tensor:
    """The latent of whatever ``encode`` returned: a tensor, or a posterior with ``.mode()`` or ``.mean``."""
    if torch.is_tensor(encoded):
        return encoded
    if hasattr(encoded, "mode"):
        return encoded.mode()
    return encoded.mean


@dataclass
class LatentStats:
    mean: torch.Tensor  # (C,)
    std: torch.Tensor  # (C,)


def channel_stats(latents: torch.Tensor, eps: float = 1e-6) -> LatentStats:
    """Per-channel mean and std of ``(N, C, L)`` latents, computed in float64 for stability."""
    z = latents.double().transpose(0, 1).reshape(latents.shape[1], -1)  # (C, N·L)
    return LatentStats(z.mean(1).float(), z.std(1).clamp_min(eps).float())


def _audio_of(item: Any) -> torch.Tensor:
    return item["audio"] if isinstance(item, Mapping) else item


@torch.no_grad()
def encode_dataset(
    encode: Callable[[torch.Tensor], Any],
    dataset: Dataset,
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    callback: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Encode every item of an audio dataset (items ``(2, T)`` or ``{"audio": (2, T)}``) → ``(N, C, L)`` on the CPU.

    ``callback(done, total)`` is called after each batch (the CLI draws a progress bar with it).
    """
    total = len(dataset)
    if total == 0:
        raise InputError("the audio dataset is empty; point --data at a folder with clips and a manifest.jsonl")
    out = []
    for start in range(0, total, batch_size):
        audio = torch.stack([_audio_of(dataset[i]) for i in range(start, min(total, start + batch_size))]).to(device)
        out.append(posterior_mode(encode(audio.float())).float().cpu())
        if callback is not None:
            callback(min(total, start + batch_size), total)
    return torch.cat(out)


def save_latent_cache(
    path: str | os.PathLike, latents: torch.Tensor, *, hop_samples: int, sample_rate: int, source: str = ""
) -> LatentStats:
    """Write latents ``(N, C, L)`` with their per-channel statistics, atomically; returns the statistics."""
    if latents.ndim != 3 or latents.shape[0] == 0:
        raise ValueError(f"latents must be (N, C, L) with N > 0, got {tuple(latents.shape)}")
    if not torch.isfinite(latents).all():
        raise InputError(f"{path}: the encoded latents contain NaN or inf; check the VAE checkpoint and the audio")
    latents = latents.half()  # statistics of the stored values, so the training data is exactly centred
    stats = channel_stats(latents)
    meta = {"format": FORMAT, "hop_samples": str(hop_samples), "sample_rate": str(sample_rate), "source": source}
    tensors = {"latents": latents.contiguous(), "mean": stats.mean, "std": stats.std}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return stats


def build_latent_cache(
    vae: Any,
    dataset: Dataset,
    path: str | os.PathLike,
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    callback: Callable[[int, int], None] | None = None,
    source: str = "",
) -> LatentStats:
    """Encode ``dataset`` with ``vae`` (anything with ``encode`` and ``latent_hop``) into a cache at ``path``."""
    latents = encode_dataset(vae.encode, dataset, batch_size=batch_size, device=device, callback=callback)
    sample_rate = getattr(getattr(vae, "config", None), "sample_rate", SAMPLE_RATE)
    return save_latent_cache(
        path, latents, hop_samples=int(vae.latent_hop), sample_rate=int(sample_rate), source=source
    )


def _read_cache(path: Path) -> tuple[torch.Tensor, dict[str, str]]:
    """One cache file: latents ``(N, C, L)`` as float32, and its metadata."""
    if not path.is_file():
        raise InputError(
            f"{path}: latent cache not found; build one with --vae CKPT --data DIR, or pass an existing --latents file"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            keys = set(f.keys())
            if meta.get("format") != FORMAT or not {"latents", "mean", "std"} <= keys:
                raise InputError(
                    f"{path}: not a musicprod latent cache (format {meta.get('format')!r}, keys {sorted(keys)}); "
                    "rebuild it with --vae and --data"
                )
            return f.get_tensor("latents").float(), meta  # older caches are float32 already
    except (SafetensorError, OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read the latent cache ({err}); it may be truncated, rebuild it") from err


class LatentCache(Dataset):
    """One or more latent cache files as a map-style dataset of ``{"latents": (C, L)}``, normalised to ~unit
    variance."""

    def __init__(self, paths: str | os.PathLike | list, *, normalize: bool = True, stats: LatentStats | None = None):
        """Several files (from the same VAE and window) are read as one, with statistics over all of them.

        ``stats`` replaces those statistics for the normalisation (a fine-tune keeps its checkpoint's).
        """
        paths = [Path(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
        self.name = " + ".join(map(str, paths))
        parts = [_read_cache(p) for p in paths]
        layouts = {(raw.shape[1:], meta["hop_samples"], meta["sample_rate"]) for raw, meta in parts}
        if len(layouts) > 1:
            raise InputError(
                f"{self.name}: the caches differ in channels, frames, hop or sample rate; "
                "pass caches encoded by one VAE with one window"
            )
        self.raw = torch.cat([raw for raw, _ in parts])  # (N, C, L)
        stats = stats or channel_stats(self.raw)  # for one file: the statistics stored in it
        self.mean, self.std = stats.mean.float(), stats.std.float()  # (C,) each
        meta = parts[0][1]
        self.hop_samples = int(meta["hop_samples"])
        self.sample_rate = int(meta["sample_rate"])
        self.latents = (self.raw - self.mean[None, :, None]) / self.std[None, :, None] if normalize else self.raw

    @property
    def channels(self) -> int:
        return self.raw.shape[1]

    @property
    def frames(self) -> int:
        return self.raw.shape[2]

    def __len__(self) -> int:
        return self.raw.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"latents": self.latents[index]}

    def dit_overrides(self) -> dict[str, Any]:
        """The DiTConfig fields this cache fixes: channels, window and the latent statistics."""
        return {
            "in_channels": self.channels,
            "frames": self.frames,
            "hop_samples": self.hop_samples,
            "sample_rate": self.sample_rate,
            "latent_mean": tuple(self.mean.tolist()),
            "latent_std": tuple(self.std.tolist()),
        }
