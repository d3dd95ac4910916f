"""Warm-started Griffin-Lim: a consistent spectrogram is its fixed point, and an inconsistent one moves toward
a signal whose STFT magnitude is the one asked for."""

import torch

from vae.phase_refinement import refine_phase

N_FFT, HOP = 512, 128
WINDOW = torch.hann_window(N_FFT)


def _stft(x: torch.Tensor) -> torch.Tensor:
    return torch.stft(x, N_FFT, HOP, window=WINDOW, center=True, pad_mode="constant", return_complex=True)


def _signal(seed: int = 0, length: int = 8192) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 8000.0
    tones = sum(
        torch.sin(2 * torch.pi * f * t + float(torch.rand(1, generator=g)) * 6.28) for f in (220.0, 330.0, 1234.5)
    )
    return torch.stack([tones, 0.5 * tones]) + 0.05 * torch.randn(2, length, generator=g)


def test_a_consistent_spectrogram_is_a_fixed_point():
    x = _signal()
    out = refine_phase(_stft(x), n_fft=N_FFT, hop_length=HOP, window=WINDOW, length=x.shape[-1], iterations=8)
    torch.testing.assert_close(out, x, atol=1e-4, rtol=1e-4)


def test_no_iterations_is_the_inverse_stft():
    spec = _stft(_signal())
    spec = spec * torch.polar(torch.ones(()), torch.tensor(0.7))  # still consistent: a global phase turn
    plain = torch.istft(spec, N_FFT, HOP, window=WINDOW, center=True, length=8192)
    torch.testing.assert_close(
        refine_phase(spec, n_fft=N_FFT, hop_length=HOP, window=WINDOW, length=8192, iterations=0), plain
    )


def test_iterations_bring_the_heard_magnitude_toward_the_target():
    x = _signal(1)
    target = _stft(x).abs()
    g = torch.Generator().manual_seed(2)
    scrambled = torch.polar(
        target, torch.rand(target.shape, generator=g) * 2 * torch.pi
    )  # right magnitude, wrong phase

    def error(iterations: int) -> float:
        y = refine_phase(
            scrambled, n_fft=N_FFT, hop_length=HOP, window=WINDOW, length=x.shape[-1], iterations=iterations
        )
        return float((_stft(y).abs() - target).norm() / target.norm())

    errors = [error(n) for n in (0, 4, 32)]
    assert errors[1] < 0.8 * errors[0] and errors[2] < 0.6 * errors[0]


def test_one_iteration_is_one_projection_onto_the_magnitude():
    g = torch.Generator().manual_seed(3)
    spec = _stft(_signal(2)) * torch.polar(
        torch.ones(()), torch.rand(257, 1, generator=g) * 6.28
    )  # a per-bin turn: inconsistent
    mag = spec.abs()
    by_hand = torch.istft(
        mag * torch.sgn(_stft(torch.istft(spec, N_FFT, HOP, window=WINDOW, center=True, length=8192))),
        N_FFT,
        HOP,
        window=WINDOW,
        center=True,
        length=8192,
    )
    torch.testing.assert_close(
        refine_phase(spec, n_fft=N_FFT, hop_length=HOP, window=WINDOW, length=8192, iterations=1), by_hand
    )


def test_a_given_magnitude_in_the_decoders_layout_is_the_same_as_recomputing_it():
    # the VAE passes its own magnitude as a transposed view of a frame-major tensor; the result must not depend on that
    g = torch.Generator().manual_seed(4)
    spec = _stft(_signal(3)) * torch.polar(torch.ones(()), torch.rand(257, 1, generator=g) * 6.28)
    frame_major = spec.abs().transpose(-1, -2).contiguous()  # (2, N, F), like the decoder's output
    kwargs = dict(n_fft=N_FFT, hop_length=HOP, window=WINDOW, length=8192, iterations=2)
    torch.testing.assert_close(
        refine_phase(spec, magnitude=frame_major.transpose(-1, -2), **kwargs), refine_phase(spec, **kwargs)
    )
