"""Pictures of edits: before/after log-mel spectrograms with the edited regions marked (``musicprod ... --plot out.png``,
``vae.evaluate --plot``) and chromagrams (``guidance.style_transfer --plot``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from musicprod_common.files import atomic_path


def log_mel(audio: torch.Tensor, sample_rate: int, n_mels: int = 96) -> np.ndarray:
    """``(channels, T)`` → dB log-mel of the channel mean, ``(n_mels, frames)``; hop ≈ 5.8 ms at any rate."""
    import torchaudio

    n_fft = 1 << max(8, int(np.ceil(np.log2(sample_rate * 0.046))))  # ≈ 46 ms windows (2048 at 44.1 kHz)
    hop = max(1, n_fft // 8)
    mono = audio.float().mean(0)
    if mono.numel() < n_fft:  # very short clips: pad so one frame exists
        mono = torch.nn.functional.pad(mono, (0, n_fft - mono.numel()))
    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=hop,
                                               n_mels=min(n_mels, n_fft // 4), f_max=sample_rate / 2)(mono)
    return (10.0 * torch.log10(mel.clamp(min=1e-10))).numpy()


def plot_before_after(
    path: str | os.PathLike,
    before: torch.Tensor,
    after: torch.Tensor,
    sample_rate: int,
    regions: list[tuple[float, float]],
    *,
    title: str = "",
    context: float = 3.0,
    labels: tuple[str, str] = ("before", "after"),
) -> Path:
    """Write a PNG of ``before`` over ``after`` (both ``(channels, T)``), zoomed to the regions ± ``context`` s
    (the whole signal without regions).

    Each region (seconds) is shaded; the colour scale is shared so a level change shows as a change in colour.
    """
    plt = _pyplot()
    duration = before.shape[-1] / sample_rate
    lo = max(0.0, min(a for a, _ in regions) - context) if regions else 0.0
    hi = min(duration, max(b for _, b in regions) + context) if regions else duration
    i0, i1 = int(lo * sample_rate), max(int(lo * sample_rate) + 1, int(np.ceil(hi * sample_rate)))
    mels = [log_mel(x[..., i0:i1], sample_rate) for x in (before, after[..., : before.shape[-1]])]
    vmax = max(m.max() for m in mels)
    vmin = vmax - 80.0
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, constrained_layout=True)
    for ax, mel, label in zip(axes, mels, labels):
        im = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                       extent=(lo, lo + (i1 - i0) / sample_rate, 0, mel.shape[0]))
        for a, b in regions:
            ax.axvspan(a, b, facecolor="none", edgecolor="cyan", linewidth=1.5, linestyle="--")
        ax.set_ylabel(f"{label}\nmel bin")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes, label="dB", shrink=0.8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_chromagrams(path: str | os.PathLike, clips: dict[str, torch.Tensor], sample_rate: int, *, title: str = "") -> Path:
    """Write a PNG of the CQT chromagram (librosa, as ``chroma_correlation`` scores it) of each labelled clip
    ``(channels, T)``, one above the other: whether the notes survive an edit is easier to see than to read."""
    from .audio import chromagram

    plt = _pyplot()
    fig, axes = plt.subplots(len(clips), 1, figsize=(10, 1.6 + 1.5 * len(clips)), sharex=True, squeeze=False,
                             constrained_layout=True)
    for ax, (label, audio) in zip(axes[:, 0], clips.items()):
        chroma = chromagram(audio, sample_rate)
        ax.imshow(chroma, origin="lower", aspect="auto", cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest",
                  extent=(0.0, audio.shape[-1] / sample_rate, -0.5, 11.5))
        ax.set_yticks(range(12), ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"], fontsize=7)
        ax.set_ylabel(label)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` whole or not at all (its suffix picks the format), and free it."""
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return path
