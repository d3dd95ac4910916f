"""Shapes, the exact 128x ratio, lengths, long-audio chunking, bad input and loading of the spectrogram VAE."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from musicprod_common.checkpoint import save_pretrained
from musicprod_common.errors import InputError
from vae import PRESETS, SpectrogramVAE, VAEConfig, prepare_audio
from vae.model import summed_phase


@pytest.fixture
def tiny() -> SpectrogramVAE:
    torch.manual_seed(0)
    return SpectrogramVAE.from_preset("tiny").eval()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_compresses_exactly_128x(name):
    cfg = PRESETS[name]
    assert 2 * cfg.latent_hop == 128 * cfg.latent_channels


def test_small_preset_is_16_channels_at_43_hz():
    cfg = PRESETS["small"]
    assert cfg.latent_channels == 16 and cfg.latent_hop == 1024
    assert 2**18 // cfg.latent_hop == 256  # 5.94 s -> 256 latent frames


def test_config_refuses_a_wrong_ratio():
    with pytest.raises(InputError, match="128x"):
        VAEConfig(latent_channels=32)


def test_encode_decode_shapes_and_ratio(tiny, seeded):
    hop = tiny.latent_hop
    audio = torch.randn(3, 2, 40 * hop, generator=seeded) * 0.1
    with torch.no_grad():
        post = tiny.encode(audio)
        z = post.mode()
        out = tiny.decode(z)
    assert z.shape == (3, tiny.config.latent_channels, 40)
    assert audio.numel() / z.numel() == 128
    assert torch.equal(post.mean, z)
    assert post.sample(generator=seeded).shape == z.shape
    assert out.shape == audio.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("length", [1, 17, 1001, 4097])
def test_decode_returns_the_input_length(tiny, seeded, length):
    audio = torch.randn(1, 2, length, generator=seeded) * 0.1
    with torch.no_grad():
        z = tiny.encode(audio).mode()
        out = tiny.decode(z, length)
    assert z.shape[-1] == math.ceil(length / tiny.latent_hop)
    assert out.shape == (1, 2, length)


@pytest.fixture(params=["absolute", "instantaneous_frequency"])
def tiny_phase(request) -> SpectrogramVAE:
    torch.manual_seed(0)
    cfg = dataclasses.replace(PRESETS["tiny"], phase=request.param)
    return SpectrogramVAE(cfg).eval()


def test_chunked_decode_matches_whole_decode(tiny_phase, seeded):
    tiny = tiny_phase
    frames = 5 * tiny.config.chunk_frames + 7  # several chunks, the last one partial
    z = torch.randn(2, tiny.config.latent_channels, frames, generator=seeded)
    with torch.no_grad():
        whole = tiny.decode(z, chunked=False)  # both with the config's phase refinement
        chunked = tiny.decode(z, chunked=True)
    assert chunked.shape == whole.shape
    rms = (chunked - whole).pow(2).mean().sqrt() / whole.pow(2).mean().sqrt()
    assert rms < 1e-3


@pytest.mark.parametrize("name", ["small", "paper"])
def test_chunk_context_covers_the_receptive_field(name):
    # every ConvNeXt block and the input conv widen the decoder's reach by kernel_size // 2 latent frames
    # (blocks at the STFT rate and the iSTFT window reach less than one latent frame each)
    cfg = PRESETS[name]
    reach = (cfg.dec_blocks + 1) * (cfg.kernel_size // 2) + cfg.dec_stft_blocks + 1
    assert cfg.context_frames >= reach


@pytest.mark.parametrize(
    "phase,iterations", [("absolute", 0), ("instantaneous_frequency", 0), ("instantaneous_frequency", 2)]
)
def test_small_preset_chunked_decode_matches_whole_decode(seeded, phase, iterations):
    torch.manual_seed(0)
    model = SpectrogramVAE(dataclasses.replace(PRESETS["small"], phase=phase)).eval()
    z = torch.randn(1, 16, 100, generator=seeded)
    with torch.no_grad():
        whole = model.decode(z, chunked=False, phase_iterations=iterations)
        chunked = model.decode_long(z, chunk_frames=30, phase_iterations=iterations)
    rms = (chunked - whole).pow(2).mean().sqrt() / whole.pow(2).mean().sqrt()
    assert rms < 1e-3


def test_chunked_encode_matches_whole_encode(tiny, seeded):
    frames = 3 * tiny.config.chunk_frames + 5
    audio = torch.randn(1, 2, frames * tiny.latent_hop, generator=seeded) * 0.1
    with torch.no_grad():
        whole = tiny.encode(audio, chunked=False).mean
        chunked = tiny.encode_long(audio).mean
    assert chunked.shape == whole.shape
    assert (chunked - whole).pow(2).mean().sqrt() < 1e-3 * whole.pow(2).mean().sqrt()


def test_long_inputs_are_chunked_automatically_without_grad(tiny, seeded):
    frames = 4 * tiny.config.chunk_frames
    z = torch.randn(1, tiny.config.latent_channels, frames, generator=seeded)
    with torch.no_grad():
        auto = tiny.decode(z)
        chunked = tiny.decode_long(z, phase_iterations=tiny.config.phase_iterations)
    assert torch.equal(auto, chunked)


def test_the_phase_is_refined_only_where_no_gradient_flows(tiny, seeded):
    assert tiny.config.phase_iterations > 0
    z = torch.randn(1, tiny.config.latent_channels, 12, generator=seeded)
    with torch.no_grad():
        heard = tiny.decode(z)
        refined = tiny.decode(z, phase_iterations=tiny.config.phase_iterations)
        raw = tiny.decode(z, phase_iterations=0)
    assert torch.equal(heard, refined) and not torch.allclose(heard, raw, atol=1e-4)
    with_grad = tiny.decode(z.requires_grad_())
    torch.testing.assert_close(with_grad.detach(), raw)


def test_bad_waveforms_raise_input_error(tiny):
    hop = tiny.latent_hop
    with pytest.raises(InputError, match="3 channels"):
        tiny.encode(torch.zeros(1, 3, hop))
    bad = torch.zeros(1, 2, hop)
    bad[0, 1, 5] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        tiny.encode(bad)
    with pytest.raises(InputError, match="latent"):
        tiny.decode(torch.zeros(1, tiny.config.latent_channels + 1, 4))
    with pytest.raises(InputError, match="length"):
        tiny.decode(torch.zeros(1, tiny.config.latent_channels, 2), length=3 * hop)


def test_encode_takes_mono_and_other_rates(tiny, seeded):
    mono = torch.randn(1, 1, 10 * tiny.latent_hop, generator=seeded) * 0.1
    with torch.no_grad():
        assert torch.equal(tiny.encode(mono).mean, tiny.encode(mono.expand(1, 2, -1).contiguous()).mean)
        assert tiny.encode(mono[0, 0]).mean.shape == (1, tiny.config.latent_channels, 10)
        assert tiny.encode(mono, sample_rate=22050).mean.shape[-1] == 20  # resampled to twice the samples


def test_prepare_audio_handles_mono_rates_and_channels(seeded):
    mono = torch.randn(1, 22050, generator=seeded)
    out = prepare_audio(mono, 22050)
    assert out.shape == (1, 2, 44100)
    assert torch.equal(out[0, 0], out[0, 1])
    with pytest.raises(InputError, match="channels"):
        prepare_audio(torch.zeros(4, 100), 44100)
    with pytest.raises(InputError, match="NaN"):
        prepare_audio(torch.full((2, 100), float("inf")), 44100)


def test_from_pretrained_local_folder(tiny, tmp_path, seeded):
    save_pretrained(tiny, tiny.config, tmp_path / "ckpt")
    loaded = SpectrogramVAE.from_pretrained(tmp_path / "ckpt")
    audio = torch.randn(1, 2, 8 * tiny.latent_hop, generator=seeded) * 0.1
    with torch.no_grad():
        assert torch.equal(loaded.encode(audio).mean, tiny.encode(audio).mean)
    assert loaded.config == tiny.config


def test_from_pretrained_hub_id_from_offline_cache(tiny, tmp_path, monkeypatch):
    # The layout huggingface_hub uses: models--org--name/{refs/main, snapshots/<commit>/files}
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--musicprod--vae-test"
    save_pretrained(tiny, tiny.config, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = SpectrogramVAE.from_pretrained("musicprod/vae-test")
    for (k, a), b in zip(tiny.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(InputError, match="musicprod/missing"):
        SpectrogramVAE.from_pretrained("musicprod/missing")


def test_fp16_weights_load_into_a_float32_model(tiny, tmp_path, seeded):
    save_pretrained(tiny, tiny.config, tmp_path / "half", dtype=torch.float16)
    loaded = SpectrogramVAE.from_pretrained(tmp_path / "half")
    assert next(loaded.parameters()).dtype == torch.float32
    audio = torch.randn(1, 2, 8 * tiny.latent_hop, generator=seeded) * 0.1
    with torch.no_grad():
        a, b = tiny.decode(tiny.encode(audio).mode()), loaded.decode(loaded.encode(audio).mode())
    assert (a - b).abs().max() < 1e-2 * a.abs().max() + 1e-6


def test_paper_preset_builds_on_meta_with_expected_size():
    with torch.device("meta"):
        model = SpectrogramVAE.from_preset("paper")
    cfg = model.config
    blocks = [m for m in model.modules() if type(m).__name__ == "ConvNeXtBlock1d"]
    assert len(blocks) == 16  # 8 ConvNeXt layers on each side (Levy et al. 2023)
    per_block = (
        cfg.dim * cfg.kernel_size
        + cfg.dim
        + 2 * cfg.dim
        + 2 * int(cfg.dim * cfg.mlp_ratio) * cfg.dim
        + int(cfg.dim * cfg.mlp_ratio)
        + 2 * cfg.dim
    )
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params > 16 * per_block  # blocks plus the projections
    assert sum(p.numel() for b in blocks for p in b.parameters()) == 16 * per_block
    assert cfg.time_down == 128


def test_encoder_features_carry_the_compressed_magnitude(tiny, seeded):
    feats = tiny._features(torch.randn(2, 2, 4 * tiny.latent_hop))
    assert feats.shape[-1] == 3  # re, im, magnitude
    # re/im are X |X|^(p-1), so their modulus is |X|^p: exactly the magnitude part
    assert torch.allclose(torch.hypot(feats[..., 0], feats[..., 1]), feats[..., 2], atol=1e-4)


@pytest.mark.parametrize("out_norm", [False, True])
def test_the_latent_follows_the_input_level_only_without_the_output_norm(seeded, out_norm):
    # A checkpoint trained with encoder_out_norm=True decoded every input level to about -25 dB: its
    # per-frame LayerNorm divides the level out of the latent. Without it, 24 dB louder moves the latent.
    cfg = VAEConfig(**{**PRESETS["tiny"].__dict__, "encoder_out_norm": out_norm})
    model = SpectrogramVAE(cfg).eval()
    x = 0.05 * torch.randn(1, 2, 16 * model.latent_hop)
    with torch.no_grad():
        quiet, loud = model.encode(x).mean, model.encode(16.0 * x).mean
    change = float((loud - quiet).norm() / quiet.norm())
    assert (change > 0.5) if not out_norm else (change < 0.5), change


def _one_bin_tone(phase_mode: str, k: int, frames: int = 256) -> tuple[torch.Tensor, float]:
    """Decoder output with energy in STFT bin ``k`` only and every phase output 0, synthesised."""
    model = SpectrogramVAE(dataclasses.replace(PRESETS["small"], phase=phase_mode))
    bins = model.config.n_fft // 2 + 1
    out = torch.full((1, frames + 1, 2, 2, bins), 0.0)
    out[..., 0, :] = -30.0  # log-magnitude: silence ...
    out[..., 0, k] = 0.0  # ... except bin k
    mag, phase = model._spectrum(out.reshape(1, frames + 1, 4 * bins))
    return model._istft(mag, phase, frames * model.config.hop_length), k * model.config.sample_rate / model.config.n_fft


@pytest.mark.parametrize("phase_mode", ["absolute", "instantaneous_frequency"])
def test_a_steady_decoder_output_is_a_tone_only_with_summed_phase(phase_mode):
    # bin 9 (388 Hz) is not a multiple of sr / hop = 172 Hz; an absolute phase that stays the same in
    # every frame overlap-adds to a signal periodic in the hop (measured: all of it at 345 Hz), the summed
    # phase to the bin's own tone
    wav, freq = _one_bin_tone(phase_mode, k=9)
    spectrum = torch.fft.rfft(wav[0, 0] * torch.hann_window(wav.shape[-1])).abs().pow(2)
    hz = torch.fft.rfftfreq(wav.shape[-1], 1 / 44100)
    near = spectrum[(hz - freq).abs() < 20].sum() / spectrum.sum()
    if phase_mode == "instantaneous_frequency":
        assert near > 0.95
    else:
        assert near < 0.05


def test_configs_saved_before_the_phase_refinement_decode_without_it(tmp_path):
    from musicprod_common.config import config_to_dict, load_config

    data = config_to_dict(PRESETS["small"])
    assert data.pop("phase_iterations") == 1  # the presets refine
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert load_config(VAEConfig, tmp_path / "config.json").phase_iterations == 0


@pytest.mark.parametrize("hop, n_fft, frames", [(256, 1024, 20001), (96, 1024, 3001)])
def test_summed_phase_matches_a_float64_running_sum(hop, n_fft, frames):
    # deviations with a drift, so that the sum grows past 1e4 rad, where float32 has no fractional digits to spare
    g = torch.Generator().manual_seed(0)
    deviation = torch.randn(1, frames, 1, n_fft // 2 + 1, generator=g) * 2 + 1.3
    advance = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (2 * math.pi * hop / n_fft)
    reference = torch.cumsum(deviation.double() + advance, dim=1)
    error = torch.remainder(summed_phase(deviation, hop, n_fft).double() - reference + math.pi, 2 * math.pi) - math.pi
    assert error.abs().max() < 1e-3
