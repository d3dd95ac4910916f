"""Refine a decoded phase toward a consistent spectrogram: fast Griffin-Lim, warm-started from the decoder.

The decoder's magnitude alone, paired with the input's true phase, scores much better than its output
(`benchmarks/vae_consistency.py`): the phase it predicts is not the phase of any signal, and the overlap-add
cancels part of the magnitude. Griffin-Lim (Griffin & Lim 1984) alternates between the set of spectrograms with
the predicted magnitude and the set of consistent ones (the STFTs of signals); the "fast" variant adds an inertial
step (Perraudin, Balazs & Søndergaard 2013, Eq. 5, α = 0.99). torchaudio's and librosa's implementations start
from a random or zero phase only, which throws away what the decoder knows, hence this warm-started loop.
"""

from __future__ import annotations

import torch


def refine_phase(
    spec: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    length: int,
    iterations: int,
    momentum: float = 0.99,
    magnitude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Complex STFT ``(..., F, N)`` (the decoder's magnitude and phase) → waveform ``(..., length)`` whose STFT
    magnitude is closer to ``spec.abs()``; ``iterations=0`` is the plain inverse STFT. ``magnitude``: ``spec.abs()``
    where the caller has it already (the decoder built ``spec`` from it), which saves recomputing it."""
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])

    def istft(x: torch.Tensor) -> torch.Tensor:
        return torch.istft(x, n_fft, hop_length, window=window, center=True, length=length)

    def stft(wav: torch.Tensor) -> torch.Tensor:
        return torch.stft(wav, n_fft, hop_length, window=window, center=True, pad_mode="constant", return_complex=True)

    wav = istft(flat)  # the first projection: flat already has the target magnitude, so no polar step before it
    if iterations == 0:  # every training and guidance decode stops here: no magnitude to compute
        return wav.reshape(*lead, length)
    mag = flat.abs() if magnitude is None else magnitude.reshape(flat.shape)
    previous = None
    for _ in range(iterations):
        projected = stft(wav)
        estimate = projected if previous is None else projected + momentum * (projected - previous)
        previous = projected
        wav = istft(mag * torch.sgn(estimate))
    return wav.reshape(*lead, length)
