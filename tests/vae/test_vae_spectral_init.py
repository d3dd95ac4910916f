"""The PCA start: a whitened encoder filterbank and a decoder head spanning the leading log-spectrum components."""

from __future__ import annotations

import json

import pytest
import torch

from vae import SpectrogramVAE
from vae.spectral_init import init_from_spectra, spectral_statistics


def _tones(n: int = 24, frames: int = 16) -> list[dict[str, torch.Tensor]]:
    """Stereo harmonic tones at random pitches and levels over noise: spectra with real structure."""
    g = torch.Generator().manual_seed(0)
    length = frames * 128  # the tiny preset's latent hop
    t = torch.arange(length) / 44100
    items = []
    for _ in range(n):
        f0 = 80 + 900 * float(torch.rand((), generator=g))
        tone = sum(torch.sin(2 * torch.pi * f0 * k * t) / k for k in range(1, 6))
        noise = 0.05 * torch.randn(2, length, generator=g)
        items.append({"audio": (0.1 + float(torch.rand((), generator=g))) * torch.stack([tone, 0.6 * tone]) + noise})
    return items


def test_encoder_filterbank_whitens_the_training_spectra():
    torch.manual_seed(0)
    model = SpectrogramVAE.from_preset("tiny")
    data = _tones()
    init_from_spectra(model, data)
    cfg, bins = model.config, model.config.n_fft // 2 + 1
    power, _ = spectral_statistics(model, data)
    filters = (
        model.encoder.proj.weight.view(cfg.stft_dim, 2, cfg.encoder_parts, bins)[:, :, 2]
        .reshape(cfg.stft_dim, -1)
        .double()
    )
    response = power @ filters.T + model.encoder.proj.bias.double()
    assert response.mean(0).abs().max() < 1e-6  # centred
    assert torch.allclose(torch.cov(response.T), torch.eye(cfg.stft_dim, dtype=torch.float64), atol=1e-4)  # white


def test_decoder_head_spans_the_leading_log_spectrum_components():
    torch.manual_seed(0)
    model = SpectrogramVAE.from_preset("tiny")
    data = _tones()
    kept = init_from_spectra(model, data)
    cfg, bins = model.config, model.config.n_fft // 2 + 1
    _, log = spectral_statistics(model, data)
    rows = model.decoder.head.weight.view(2, 2, bins, cfg.stft_dim)
    basis = rows[:, 0].reshape(2 * bins, cfg.stft_dim).detach().double()  # (2F, d): columns = components * std
    bias = model.decoder.head.bias.view(2, 2, bins)[:, 0].reshape(-1).double()
    assert torch.allclose(bias, log.mean(0), atol=1e-4)
    gram = basis.T @ basis
    variances = gram.diagonal()
    assert torch.allclose(
        gram, torch.diag(variances), atol=1e-3 * float(variances.max().detach())
    )  # orthogonal columns
    assert (variances[:-1] >= variances[1:] - 1e-6).all()  # in order of variance
    # the columns explain the variance the function reports, and no other d directions explain more
    centred = log - log.mean(0)
    units = basis / variances.sqrt()
    explained = float((centred @ units).pow(2).sum(1).mean() / centred.pow(2).sum(1).mean())
    assert explained == pytest.approx(kept["decoder_variance_kept"], rel=1e-4)
    random_dirs = torch.linalg.qr(torch.randn(2 * bins, cfg.stft_dim, dtype=torch.float64))[0]
    assert float((centred @ random_dirs).pow(2).sum(1).mean() / centred.pow(2).sum(1).mean()) < explained
    # the phase head starts at zero: each bin at its centre-frequency advance
    assert not rows[:, 1].any() and not model.decoder.head.bias.view(2, 2, bins)[:, 1].any()


def test_train_cli_starts_from_the_spectra_unless_told_not_to(tmp_path):
    """``vae.train`` starts from the spectra by default: its first logged loss is not a random model's."""
    import soundfile as sf

    from vae.train import main

    (tmp_path / "data").mkdir()
    for i, item in enumerate(_tones(4, frames=64)):
        sf.write(str(tmp_path / "data" / f"clip{i}.flac"), item["audio"].T.numpy(), 44100)
    first = {}
    for flag in (["--no-spectral-init"], []):
        out = tmp_path / f"run{len(flag)}"
        torch.manual_seed(0)
        main(
            [
                "--preset",
                "tiny",
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--steps",
                "1",
                "--batch-size",
                "4",
                "--crop-frames",
                "16",
                "--clip-seconds",
                "0.18",
                "--num-workers",
                "0",
                "--cpu",
                "--no-progress",
            ]
            + flag
        )
        first[not flag] = json.loads((out / "losses.jsonl").read_text().splitlines()[0])["loss"]
    assert first[True] != first[False]


def test_too_few_frames_do_not_blow_up_the_filterbank():
    torch.manual_seed(0)
    model = SpectrogramVAE.from_preset("tiny")
    init_from_spectra(model, _tones(1, frames=8))  # 4 frames for 16 components
    assert torch.isfinite(model.encoder.proj.weight).all() and model.encoder.proj.weight.abs().max() < 1e4
