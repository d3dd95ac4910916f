"""Audio features: each distance against a direct computation of its definition, known answers for the chroma."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicprod_common.errors import InputError
from musicprod_common.features import (
    ChromaSTFT,
    Log10MelL1,
    MelDistance,
    chroma_correlation,
    chromagram,
    log_mel,
    mel_distance,
)

SR = 44100
A = 9  # librosa's chroma order starts at C


def tone(hz: list[float], seconds: float = 1.0, batch: int = 1, sr: int = SR) -> torch.Tensor:
    """Equal-level sines, the same in both channels: ``(batch, 2, samples)``."""
    t = torch.arange(int(seconds * sr)) / sr
    mono = sum(torch.sin(2 * math.pi * f * t) for f in hz) / len(hz)
    return mono.expand(batch, 2, -1).clone()


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------- MelDistance


def test_mel_distance_properties():
    x = noise(2, 2, 22050)
    small = x + 0.01 * noise(*x.shape, seed=1)
    large = x + 0.5 * noise(*x.shape, seed=2)
    mr = MelDistance(sample_rate=22050, fft_sizes=(1024, 512))
    assert torch.equal(mr(x, x), torch.zeros(2))
    d_small, d_large = mr(x, small), mr(x, large)
    assert d_small.shape == (2,) and (0 < d_small).all() and (d_small < d_large).all()
    with pytest.raises(ValueError):
        mr(x, x[..., :100])


def test_mel_distance_is_the_natural_log_mel_l1_of_librosa_mel_magnitudes():
    import librosa

    x, y = noise(2, 2, 8000, seed=3), noise(2, 2, 8000, seed=4)
    sizes, n_mels = (1024, 512), 32
    total = torch.zeros(2)
    for n in sizes:
        bank = torch.from_numpy(librosa.filters.mel(sr=22050, n_fft=n, n_mels=n_mels))  # Slaney, area-normalised

        def log_mel(a: torch.Tensor, n: int = n, bank: torch.Tensor = bank) -> torch.Tensor:
            spec = torch.stft(a.reshape(-1, a.shape[-1]), n, n // 4, window=torch.hann_window(n), return_complex=True)
            return torch.log(bank @ spec.abs().square().clamp(min=1e-8).sqrt())  # auraloss's floor: 1e-8 in power

        total += (log_mel(x) - log_mel(y)).abs().reshape(2, -1).mean(-1)
    mr = MelDistance(sample_rate=22050, fft_sizes=sizes, n_mels=n_mels)
    torch.testing.assert_close(mr(x, y), total / len(sizes))


def test_mel_distance_of_a_level_change_is_ln_2():
    x = 0.3 * noise(1, 2, SR, seed=5)
    torch.testing.assert_close(mel_distance(x, 0.5 * x), torch.tensor([math.log(2.0)]), atol=1e-4, rtol=0)


def test_mel_distance_function_equals_the_module():
    x, y = noise(2, 2, 10000, seed=6), noise(2, 2, 10000, seed=7)
    assert torch.equal(mel_distance(x, y, 22050), MelDistance(22050)(x, y))


def test_mel_distance_against_a_fixed_target_equals_auraloss_forward():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 8000, generator=g, requires_grad=True)
    y = torch.randn(3, 2, 8000, generator=g)
    mr = MelDistance(sample_rate=22050, fft_sizes=(1024, 512))
    cached = mr.against(y)
    torch.testing.assert_close(cached(x), mr(x, y))
    (g_cached,) = torch.autograd.grad(cached(x).sum(), x)
    (g_forward,) = torch.autograd.grad(mr(x, y).sum(), x)
    torch.testing.assert_close(g_cached, g_forward)
    with pytest.raises(ValueError):
        cached(x[..., :4000])


# ----------------------------------------------------------------------------------------------- Log10MelL1


def test_log10_mel_l1_is_the_log10_mel_l1_of_torchaudio_mel_magnitudes():
    import torchaudio

    ref, est = noise(2, 2, 12000, seed=8), 0.1 * noise(2, 2, 12000, seed=9)
    scales = ((512, 32), (1024, 64))
    total = torch.zeros(2)
    for n, m in scales:
        bank = torchaudio.functional.melscale_fbanks(n // 2 + 1, 0.0, SR / 2, m, SR)  # HTK scale, no normalisation

        def log_mel(a: torch.Tensor, n: int = n, bank: torch.Tensor = bank) -> torch.Tensor:
            rows = a.reshape(-1, a.shape[-1])
            spec = torch.stft(rows, n, n // 4, window=torch.hann_window(n), pad_mode="reflect", return_complex=True)
            return torch.log10((bank.T @ spec.abs()).clamp(min=1e-5))  # magnitudes, not power

        total += (log_mel(ref) - log_mel(est)).abs().reshape(2, -1).mean(-1)
    torch.testing.assert_close(Log10MelL1(SR, scales)(ref, est), total / len(scales))


def test_log10_mel_l1_known_answers_and_how_it_differs_from_the_mel_distance():
    x = 0.3 * noise(2, 2, SR // 2, seed=10)
    metric = Log10MelL1()
    assert torch.equal(metric(x, x), torch.zeros(2))
    torch.testing.assert_close(metric(x, 0.5 * x), torch.full((2,), math.log10(2.0)), atol=1e-4, rtol=0)
    # a level change reads ln 10 ≈ 2.3 times larger as a mel distance: the two are not one number
    assert float(mel_distance(x, 0.5 * x).mean() / metric(x, 0.5 * x).mean()) == pytest.approx(math.log(10), rel=1e-3)
    # floored at 1e-5: silence against silence is 0, and against sound finite
    silence = torch.zeros_like(x)
    assert torch.equal(metric(silence, silence), torch.zeros(2)) and torch.isfinite(metric(x, silence)).all()


# ----------------------------------------------------------------------------------------------- chroma


@pytest.mark.parametrize("kind", ["cqt", "stft"])
def test_chromagram_of_a4_peaks_at_a(kind):
    chroma = chromagram(tone([440.0])[0], SR, kind=kind)
    assert chroma.shape == (12, 1 + SR // 512)
    assert int(chroma.mean(1).argmax()) == A
    assert chromagram(tone([440.0])[0], SR, kind=kind, hop_length=1024).shape == (12, 1 + SR // 1024)


def test_chromagram_refuses_an_unknown_kind():
    with pytest.raises(InputError, match="cqt"):
        chromagram(tone([440.0])[0], SR, kind="mfcc")


def test_chroma_correlation_known_cases():
    x, y = tone([440.0]), tone([523.25])  # A4, C5
    for kind in ("cqt", "stft"):
        same = chroma_correlation(x, 0.5 * x, kind=kind)
        other = chroma_correlation(x, y, kind=kind)
        assert same.item() == pytest.approx(1.0, abs=1e-6)
        assert other.item() < 0.5


@pytest.mark.parametrize("n_fft", [2048, 8192])
def test_chroma_stft_equals_librosa_chroma_stft(n_fft):
    import librosa

    audio = torch.cat([tone([110.0, 261.63, 329.63]), tone([98.0, 246.94, 293.66])]) + 0.05 * noise(2, 2, SR)
    ours = ChromaSTFT(SR, n_fft=n_fft)(audio).numpy()
    for b in range(2):
        theirs = librosa.feature.chroma_stft(
            y=audio[b].mean(0).numpy(), sr=SR, n_fft=n_fft, hop_length=n_fft // 4, tuning=0.0
        )
        assert ours[b].shape == theirs.shape
        assert np.abs(ours[b] - theirs).max() < 1e-5


def test_chroma_stft_of_a4_peaks_at_a_and_has_a_gradient():
    chroma_stft = ChromaSTFT(SR, n_fft=8192)
    assert int(chroma_stft(tone([440.0]))[0].mean(-1).argmax()) == A
    audio = tone([440.0, 523.25]).requires_grad_(True)
    (grad,) = torch.autograd.grad(chroma_stft(audio)[:, A].sum(), audio)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------- pictures


def test_log_mel_frames_floor_and_pitch_order():
    low, high = log_mel(tone([500.0])[0], SR), log_mel(tone([4000.0])[0], SR)
    assert low.shape == (96, 1 + SR // 256)  # 2048-sample windows, hop 256 at 44.1 kHz
    assert int(low.mean(1).argmax()) < int(high.mean(1).argmax())
    assert log_mel(torch.zeros(2, SR // 10), SR).max() == pytest.approx(-100.0)
    assert log_mel(torch.zeros(2, 100), 16000, n_mels=64).shape == (64, 1 + 1024 // 128)  # padded to one window
