"""Latent cache: encode with a stand-in codec, store, read back normalised, undo the normalisation."""

from __future__ import annotations

import pytest
import torch

from latent_diffusion import DiT, dit_preset
from latent_diffusion.latent_cache import LatentCache, build_latent_cache, save_latent_cache
from musicprod_common.errors import InputError


class _Posterior:
    def __init__(self, mean: torch.Tensor):
        self.mean = mean

    def mode(self) -> torch.Tensor:
        return self.mean


class StandInCodec:
    """Averages each channel over hop-long frames, then mixes channels with a fixed matrix and offset:
    a deterministic encoder with the VAE's interface (``encode`` → posterior, ``latent_hop``, ``config``)."""

    latent_hop = 64

    class config:  # noqa: N801 - mimics ``vae.config``
        sample_rate = 44100

    def __init__(self, channels: int = 4):
        g = torch.Generator().manual_seed(1)
        self.mix = torch.randn(channels, 2, generator=g) * 3
        self.offset = torch.randn(channels, 1, generator=g) * 2

    def encode(self, audio: torch.Tensor) -> _Posterior:  # (B, 2, T) -> (B, C, T / hop)
        frames = audio.unflatten(-1, (-1, self.latent_hop)).mean(-1)  # (B, 2, L)
        return _Posterior(torch.einsum("cs,bsl->bcl", self.mix, frames) + self.offset)


def _audio_items(n: int, samples: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"audio": torch.randn(2, samples, generator=g).cumsum(-1) / 30} for _ in range(n)]


def test_round_trip(tmp_path):
    codec, items = StandInCodec(), _audio_items(10, 64 * 16)
    path = tmp_path / "latents.safetensors"
    build_latent_cache(codec, items, path, batch_size=3)
    cache = LatentCache(path)
    expected = torch.cat([codec.encode(item["audio"][None]).mode() for item in items])  # (N, C, L)
    assert len(cache) == 10 and cache.channels == 4 and cache.frames == 16 and cache.hop_samples == 64
    torch.testing.assert_close(cache.raw, expected, rtol=1e-3, atol=1e-3)  # stored as float16
    # training data is ~unit variance and centred, per channel
    normalised = torch.stack([cache[i]["latents"] for i in range(len(cache))])
    torch.testing.assert_close(normalised.mean((0, 2)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(normalised.std((0, 2)), torch.ones(4), atol=1e-4, rtol=0)
    # the DiT built from the cache's overrides undoes the scaling for the decoder
    model = DiT(dit_preset("tiny", patch_size=2, **cache.dit_overrides()))
    assert model.config.in_channels == 4
    torch.testing.assert_close(model.denormalize_latents(normalised), cache.raw, atol=1e-4, rtol=1e-4)


def test_bad_cache_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        LatentCache(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="junk.safetensors"):
        LatentCache(junk)


def test_empty_dataset_is_refused(tmp_path):
    with pytest.raises(InputError):
        build_latent_cache(StandInCodec(), [], tmp_path / "latents.safetensors")
    assert not (tmp_path / "latents.safetensors").exists()


def test_several_files_read_as_one_with_joint_statistics(tmp_path):
    a, b = torch.randn(6, 4, 16), 3.0 + 2.0 * torch.randn(4, 4, 16)
    save_latent_cache(tmp_path / "a.safetensors", a, hop_samples=64, sample_rate=44100)
    save_latent_cache(tmp_path / "b.safetensors", b, hop_samples=64, sample_rate=44100)
    both = LatentCache([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    assert len(both) == 10
    torch.testing.assert_close(both.raw, torch.cat([a, b]).half().float())
    normalised = torch.stack([both[i]["latents"] for i in range(10)])
    torch.testing.assert_close(normalised.mean((0, 2)), torch.zeros(4), atol=1e-4, rtol=0)
    save_latent_cache(tmp_path / "c.safetensors", torch.randn(2, 4, 32), hop_samples=64, sample_rate=44100)
    with pytest.raises(InputError, match="differ"):
        LatentCache([tmp_path / "a.safetensors", tmp_path / "c.safetensors"])
