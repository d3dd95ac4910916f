"""Audio features and the distances built on them, written once for the evaluations, the guidance terms, the benchmarks
and the pictures.

Two of the distances are log-mel L1 distances that differ in log base, filter bank and resolutions, so their values
cannot be compared; each has its own name:

* :class:`MelDistance` (:func:`mel_distance`): *the* mel distance, the project's fill-quality metric (MR in Levy et
  al. 2023) and the guidance's log-mel reconstruction term. Natural log of librosa (Slaney) mel magnitudes, 64 bands,
  FFTs of 4096, 2048, 1024 and 512 samples, computed by auraloss.
* :class:`Log10MelL1`: the VAE evaluation's reconstruction metric (``vae.evaluate``). log10 of torchaudio (HTK,
  unnormalised) mel magnitudes floored at 1e-5, (FFT, bands) of (512, 32), (1024, 64), (2048, 128), (4096, 128).
* :func:`chromagram` and :func:`chroma_correlation`: librosa's chroma (CQT or STFT), in numpy, without a gradient.
* :class:`ChromaSTFT`: librosa's ``chroma_stft`` in torch, with a gradient, for guidance toward a chromagram.
* :func:`log_mel`: a dB log-mel spectrogram of one clip, for pictures.

Nothing here prints.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import auraloss
import librosa
import numpy as np
import torch
import torchaudio
import torchaudio.transforms as T

from .audio import SAMPLE_RATE
from .errors import InputError

# ----------------------------------------------------------------------------------------------- mel distances


class MelDistance(torch.nn.Module):
    """MR: multi-resolution log-mel L1 distance (auraloss ``MultiResolutionSTFTLoss`` on a mel scale,
    log-magnitude term only, so silence in the target does not blow up a spectral-convergence ratio).

    ``forward(x, y)`` with waveforms ``(B, C, T)`` returns per-example distances ``(B,)``.
    """

    def __init__(
        self, sample_rate: int = SAMPLE_RATE, fft_sizes: Sequence[int] = (4096, 2048, 1024, 512), n_mels: int = 64
    ):
        super().__init__()

        with warnings.catch_warnings():  # librosa warns about empty mel filters at the smallest FFT size
            warnings.simplefilter("ignore")
            self.losses = torch.nn.ModuleList(
                auraloss.freq.STFTLoss(
                    fft_size=n,
                    hop_size=n // 4,
                    win_length=n,
                    w_sc=0.0,
                    w_log_mag=1.0,
                    sample_rate=sample_rate,
                    scale="mel",
                    n_bins=n_mels,
                    reduction="none",
                )
                for n in fft_sizes
            )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"mel distance needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
        b = x.shape[0]
        total = x.new_zeros(b)
        for loss in self.losses:
            per_bin = loss(x.float(), y.float())  # (B·C, mels, frames)
            total = total + per_bin.reshape(b, -1).mean(-1)
        return total / len(self.losses)

    def against(self, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x -> forward(x, y)`` for a fixed ``y`` ``(B, C, T)``, whose mel spectra are computed once here: guidance
        compares a new x with the same measurement at every step. It uses auraloss's own STFT, mel bank and
        log-magnitude L1, so it equals ``forward`` (tested)."""
        rows = y.float().reshape(-1, y.shape[-1])
        for loss in self.losses:  # auraloss keeps the window as a plain attribute and moves it in forward()
            loss.window = loss.window.to(y.device)
        with torch.no_grad():
            y_mels = [loss.fb @ loss.stft(rows)[0] for loss in self.losses]

        def distance(x: torch.Tensor) -> torch.Tensor:
            if x.shape != y.shape:
                raise ValueError(f"mel distance needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
            x_rows = x.float().reshape(-1, x.shape[-1])
            total = x.new_zeros(x.shape[0])
            for loss, y_mel in zip(self.losses, y_mels):
                per_bin = loss.logstft(loss.fb @ loss.stft(x_rows)[0], y_mel)  # (B·C, mels, frames)
                total = total + per_bin.reshape(x.shape[0], -1).mean(-1)
            return total / len(self.losses)

        return distance


def mel_distance(x: torch.Tensor, y: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Per-example MR distance ``(B,)`` between waveforms ``(B, C, T)``."""
    return MelDistance(sample_rate).to(x.device)(x, y)


LOG10_MEL_SCALES = ((512, 32), (1024, 64), (2048, 128), (4096, 128))  # (n_fft, n_mels) of Log10MelL1


class Log10MelL1(torch.nn.Module):
    """The VAE evaluation's reconstruction metric: the mean over ``scales`` (n_fft, n_mels) of the L1 distance between
    log10 mel magnitudes, floored at 1e-5 (−100 dB). torchaudio's mel bank (HTK scale, unnormalised), hop n_fft / 4.

    ``forward(ref, est)`` with waveforms ``(B, C, T)`` returns per-example distances ``(B,)``. Not
    :class:`MelDistance`: a different log base, filter bank and set of resolutions give other values.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, scales: Sequence[tuple[int, int]] = LOG10_MEL_SCALES):
        super().__init__()

        self.mels = torch.nn.ModuleList(
            T.MelSpectrogram(sample_rate, n_fft=n, hop_length=n // 4, n_mels=m, power=1.0) for n, m in scales
        )

    def forward(self, ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
        out = 0.0
        for mel in self.mels:
            a, b = torch.log10(mel(ref).clamp(min=1e-5)), torch.log10(mel(est).clamp(min=1e-5))
            out = out + (a - b).abs().flatten(1).mean(1)
        return out / len(self.mels)


# ----------------------------------------------------------------------------------------------- chroma


def chromagram(
    audio: torch.Tensor, sample_rate: int = SAMPLE_RATE, *, kind: str = "cqt", hop_length: int = 512
) -> np.ndarray:
    """librosa's chroma ``(12, frames)`` of the mid channel of ``audio`` ``(C, T)``: ``chroma_cqt`` or
    ``chroma_stft``, a frame every ``hop_length`` samples (librosa's default)."""
    if kind not in ("cqt", "stft"):
        raise InputError(f"unknown chroma kind {kind!r}; choose 'cqt' or 'stft'")
    chroma = librosa.feature.chroma_cqt if kind == "cqt" else librosa.feature.chroma_stft
    # tuning=0: POP909 renders are at A440, and estimating it per clip would add noise and time
    return chroma(y=audio.float().mean(0).cpu().numpy(), sr=sample_rate, hop_length=hop_length, tuning=0.0)


def chroma_correlation(
    a: torch.Tensor, b: torch.Tensor, sample_rate: int = SAMPLE_RATE, *, kind: str = "cqt"
) -> torch.Tensor:
    """Pearson correlation of the librosa chroma (12 × frames) of ``a`` and ``b`` ``(B, C, T)``, per clip ``(B,)``.

    ``kind="cqt"`` (default) uses ``chroma_cqt``, ``"stft"`` uses ``chroma_stft``. CQT chroma is the
    less timbre-sensitive one. We measured this on 8 test-split windows of 5.94 s, with each window
    rendered in piano and in strings (the notes are identical): CQT gives 0.78 and STFT gives 0.47.
    Windows from different songs give about 0.09 and −0.02.
    """
    out = []
    for x, y in zip(a, b):
        cx, cy = chromagram(x, sample_rate, kind=kind), chromagram(y, sample_rate, kind=kind)
        n = min(cx.shape[1], cy.shape[1])
        out.append(float(np.corrcoef(cx[:, :n].ravel(), cy[:, :n].ravel())[0, 1]))
    return torch.tensor(out)


class ChromaSTFT(torch.nn.Module):
    """librosa's ``chroma_stft(n_fft, hop_length = n_fft / 4, tuning=0)`` of the mid channel, written in torch so that
    it has a gradient: ``(B, C, T)`` → ``(B, 12, frames)``. A power spectrogram through librosa's chroma filter bank,
    each frame divided by its largest bin. ``n_fft`` defaults to librosa's 2048 (hop 512)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, *, n_fft: int = 2048):
        super().__init__()

        self.n_fft, self.hop = n_fft, n_fft // 4
        filters = torch.from_numpy(librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0)).float()
        self.register_buffer("filters", filters, persistent=False)  # (12, n_fft / 2 + 1)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            audio.float().mean(1),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        chroma = torch.einsum("cf,bfn->bcn", self.filters, spec.real.square() + spec.imag.square())
        return chroma / chroma.amax(1, keepdim=True).clamp_min(1e-10)


# ----------------------------------------------------------------------------------------------- pictures


def log_mel(audio: torch.Tensor, sample_rate: int, n_mels: int = 96) -> np.ndarray:
    """``(channels, T)`` → dB log-mel of the channel mean, ``(n_mels, frames)``; hop ≈ 5.8 ms at any rate."""
    n_fft = 1 << max(8, int(np.ceil(np.log2(sample_rate * 0.046))))  # ≈ 46 ms windows (2048 at 44.1 kHz)
    hop = max(1, n_fft // 8)
    mono = audio.float().mean(0)
    if mono.numel() < n_fft:  # very short clips: pad so one frame exists
        mono = torch.nn.functional.pad(mono, (0, n_fft - mono.numel()))
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate, n_fft=n_fft, hop_length=hop, n_mels=min(n_mels, n_fft // 4), f_max=sample_rate / 2
    )(mono)
    return (10.0 * torch.log10(mel.clamp(min=1e-10))).numpy()
