"""A 20-step tiny training run through the shared loop lowers the loss and exports a loadable model."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from vae import SpectrogramVAE
from vae.train import LossConfig, RandomCrops, VAELoss, main


def _write_clips(folder, n=4, seconds=0.5, sr=44100):
    folder.mkdir()
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n):
        tone = sum(np.sin(2 * np.pi * 110 * 2 ** (i / 3) * k * t) / k for k in range(1, 5)) * 0.3
        sf.write(str(folder / f"clip{i}.flac"), np.stack([tone, 0.7 * tone], 1).astype(np.float32), sr)


def test_random_crops_are_a_function_of_the_index():
    bank = torch.randn(3, 2, 1000).half()
    crops = RandomCrops(bank, 256, crops_per_clip=4, peak_db=(-30.0, -6.0))
    assert len(crops) == 12
    a, b = crops[5]["audio"], crops[5]["audio"]
    assert a.shape == (2, 256) and torch.equal(a, b)
    peaks = torch.stack([20 * crops[i]["audio"].abs().amax().log10() for i in range(12)])
    assert (peaks > -30.001).all() and (peaks < -5.999).all() and peaks.std() > 1.0
    assert not torch.equal(crops[5]["audio"], crops[6]["audio"])


def test_tiny_training_lowers_the_loss(tmp_path):
    _write_clips(tmp_path / "data")
    out = tmp_path / "run"
    args = [
        "--preset",
        "tiny",
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--steps",
        "20",
        "--batch-size",
        "4",
        "--crop-frames",
        "16",
        "--clip-seconds",
        "0.5",
        "--num-workers",
        "0",
        "--lr",
        "3e-3",
        "--warmup-steps",
        "2",
        "--cpu",
        "--no-progress",
        "--export-dtype",
        "float32",
    ]

    # the same fixed batch, scored before training (same init seed) and after
    torch.manual_seed(0)
    crops = RandomCrops(
        torch.from_numpy(sf.read(str(tmp_path / "data" / "clip1.flac"), dtype="float32")[0].T.copy())[None], 2048, 4
    )
    batch = {"audio": torch.stack([crops[i]["audio"] for i in range(4)]), "key": torch.arange(4)}
    loss_fn = VAELoss(crop_samples=2048)

    def score(model):
        model.eval()
        with torch.no_grad():
            return float(loss_fn(model, batch)[0])

    torch.manual_seed(0)
    before = score(SpectrogramVAE.from_preset("tiny"))
    torch.manual_seed(0)
    summary = main(args)
    after = score(SpectrogramVAE.from_pretrained(out / "final"))

    assert summary["steps"] == 20
    logged = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == list(range(1, 21))
    assert after < before


def test_mel_term_is_the_log_mel_ratio():
    """A doubled signal is off by ln 2 in every log-mel bin at every resolution; the same signal by nothing."""
    x = torch.randn(2, 2, 16384, generator=torch.Generator().manual_seed(0)) * 0.1
    loss = VAELoss(LossConfig(w_mel=1.0), crop_samples=16384)
    assert float(loss.terms(x, x)[1]["mel"]) == 0.0
    torch.testing.assert_close(loss.terms(2 * x, x)[1]["mel"], torch.tensor(2.0).log())
    assert "mel" not in VAELoss(crop_samples=16384).terms(x, x)[1]  # off unless weighted


def test_spectrum_term_is_spectral_convergence_plus_log_ratio():
    """A doubled magnitude is off by ||2m - m|| / ||m|| = 1 in spectral convergence and by ln 2 in log-magnitude L1."""
    mag = torch.rand(2, 9, 2, 33, generator=torch.Generator().manual_seed(0)) + 0.1
    x = torch.zeros(2, 2, 2048)
    loss = VAELoss(LossConfig(w_spectrum=1.0), crop_samples=2048)
    assert float(loss.terms(x, x, (mag, mag))[1]["spectrum"]) == 0.0
    torch.testing.assert_close(loss.terms(x, x, (2 * mag, mag))[1]["spectrum"], 1 + torch.tensor(2.0).log())
    assert "spectrum" not in VAELoss(LossConfig(w_spectrum=0.0), crop_samples=2048).terms(x, x, (2 * mag, mag))[1]


def test_the_training_pass_returns_the_decoders_magnitude_on_the_input_grid():
    torch.manual_seed(0)
    model = SpectrogramVAE.from_preset("tiny").eval()
    x = torch.randn(2, 2, 2048, generator=torch.Generator().manual_seed(1)) * 0.1
    y, _, magnitude = model(x)
    assert y.shape == x.shape and magnitude.shape == model.input_magnitude(x).shape
    mag, phase = model.decode_spectrum(model.encode(x).mode())
    assert torch.equal(magnitude, mag)
    reference = torch.stft(
        x[1, 0], 256, 64, window=torch.hann_window(256), pad_mode="constant", return_complex=True
    ).abs()
    torch.testing.assert_close(model.input_magnitude(x)[1, :, 0], reference.T)
