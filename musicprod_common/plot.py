"""Pictures of edits: before/after log-mel spectrograms with the edited regions marked (``musicprod ... --plot
out.png``, ``vae.evaluate --plot``), transitions with both songs' beat grids, and chromagrams
(``benchmarks/style_transfer.py --plot``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from musicprod_common.features import chromagram, log_mel
from musicprod_common.files import atomic_path

MAX_REGION_COLUMNS = 4  # regions shown side by side under the whole-song strip


@dataclass(frozen=True)
class CopyMark:
    """Where one edited region's audio came from, for :func:`plot_before_after`: a label, and the span of the song
    that was copied (seconds; None when the fill was generated or copied from another recording)."""

    region: tuple[float, float]
    label: str
    source: tuple[float, float] | None = None


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
    copies: Sequence[CopyMark] = (),
) -> Path:
    """Write a PNG of ``before`` over ``after`` (both ``(channels, T)``), zoomed to the regions ± ``context`` s
    (the whole signal without regions).

    Each region (seconds) is shaded; the colour scale is shared so a level change shows as a change in colour.
    With ``copies``, a strip above shows the whole song's loudness with every region and the passage it was
    copied from, joined by an arrow and labelled with the match score.
    """
    plt = _pyplot()
    if copies:
        return _plot_with_sources(plt, path, before, after, sample_rate, regions, title, context, labels, copies)
    duration = before.shape[-1] / sample_rate
    lo = max(0.0, min(a for a, _ in regions) - context) if regions else 0.0
    hi = min(duration, max(b for _, b in regions) + context) if regions else duration
    i0, i1 = int(lo * sample_rate), max(int(lo * sample_rate) + 1, int(np.ceil(hi * sample_rate)))
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, constrained_layout=True)
    _spectrograms(fig, axes, before, after, sample_rate, regions, labels, lo, i0, i1)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _spectrograms(fig, axes, before, after, sample_rate, regions, labels, lo, i0, i1, colorbar: bool = True) -> None:
    """``before`` and ``after`` samples [i0, i1) as log-mel images on two axes, regions outlined, one colour scale."""
    mels = [log_mel(x[..., i0:i1], sample_rate) for x in (before, after[..., : before.shape[-1]])]
    vmax = max(m.max() for m in mels)
    vmin = vmax - 80.0
    for ax, mel, label in zip(axes, mels, labels):
        im = ax.imshow(
            mel,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            extent=(lo, lo + (i1 - i0) / sample_rate, 0, mel.shape[0]),
        )
        for a, b in regions:
            ax.axvspan(a, b, facecolor="none", edgecolor="cyan", linewidth=1.5, linestyle="--")
        ax.set_ylabel(f"{label}\nmel bin" if label else "")
    axes[-1].set_xlabel("time (s)")
    if colorbar:
        fig.colorbar(im, ax=list(axes), label="dB", shrink=0.8)


def _plot_with_sources(plt, path, before, after, sample_rate, regions, title, context, labels, copies) -> Path:
    """:func:`plot_before_after` with a whole-song strip on top showing where each region's fill came from, and one
    column of before/after spectrograms per region (at most :data:`MAX_REGION_COLUMNS`, the first ones)."""
    duration = before.shape[-1] / sample_rate
    shown = sorted(regions)[:MAX_REGION_COLUMNS]
    fig = plt.figure(figsize=(max(10, 4.2 * len(shown)), 7.5), constrained_layout=True)
    grid = fig.add_gridspec(3, len(shown), height_ratios=(1.0, 1.6, 1.6))
    strip = fig.add_subplot(grid[0, :])
    hop = max(1, int(0.05 * sample_rate))
    n = max(1, before.shape[-1] // hop)
    x = torch.nn.functional.pad(before.float(), (0, max(0, n * hop - before.shape[-1])))[..., : n * hop]
    db = (20 * torch.log10(x.pow(2).mean(0).reshape(n, hop).mean(1).sqrt().clamp(min=1e-5))).numpy()
    floor, top = float(db.min()), float(db.max())
    strip.fill_between(np.arange(n) * hop / sample_rate, floor, db, color="0.6", linewidth=0)
    strip.set_xlim(0, duration)
    strip.set_ylabel("level (dB)")
    strip.set_xlabel("song time (s)")
    for i, mark in enumerate(copies):
        a, b = mark.region
        strip.axvspan(a, b, color="tab:red", alpha=0.6)
        if mark.source is not None:
            strip.axvspan(*mark.source, color="tab:green", alpha=0.6)
            strip.annotate(
                "",
                xy=((a + b) / 2, top),
                xytext=(sum(mark.source) / 2, top),
                arrowprops=dict(arrowstyle="->", color="tab:green", connectionstyle="arc3,rad=-0.3"),
            )
        strip.text(
            (a + b) / 2,
            floor + (top - floor) * (0.05 + 0.18 * (i % 3)),
            mark.label,
            fontsize=7,
            ha="center",
            va="bottom",
            bbox=dict(facecolor="white", alpha=0.8, linewidth=0),
        )
    strip.set_title("red: edited regions; green: the passages copied into them", fontsize=8)
    for col, (a, b) in enumerate(shown):
        lo, hi = max(0.0, a - context / 2), min(duration, b + context / 2)
        i0, i1 = int(lo * sample_rate), max(int(lo * sample_rate) + 1, int(np.ceil(hi * sample_rate)))
        top_ax = fig.add_subplot(grid[1, col])
        axes = [top_ax, fig.add_subplot(grid[2, col], sharex=top_ax)]
        _spectrograms(
            fig,
            axes,
            before,
            after,
            sample_rate,
            [(a, b)],
            labels if col == 0 else ("", ""),
            lo,
            i0,
            i1,
            colorbar=col == len(shown) - 1,
        )
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_chromagrams(
    path: str | os.PathLike, clips: dict[str, torch.Tensor], sample_rate: int, *, title: str = ""
) -> Path:
    """Write a PNG of the CQT chromagram (librosa, as ``chroma_correlation`` scores it) of each labelled clip
    ``(channels, T)``, one above the other: whether the notes survive an edit is easier to see than to read."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(clips), 1, figsize=(10, 1.6 + 1.5 * len(clips)), sharex=True, squeeze=False, constrained_layout=True
    )
    for ax, (label, audio) in zip(axes[:, 0], clips.items()):
        chroma = chromagram(audio, sample_rate)
        ax.imshow(
            chroma,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
            extent=(0.0, audio.shape[-1] / sample_rate, -0.5, 11.5),
        )
        ax.set_yticks(range(12), ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"], fontsize=7)
        ax.set_ylabel(label)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_transition(
    path: str | os.PathLike,
    audio: torch.Tensor,
    sample_rate: int,
    overlap: tuple[float, float],
    a_beats: np.ndarray,
    b_beats: np.ndarray,
    *,
    swap: float | None = None,
    title: str = "",
    context: float = 4.0,
) -> Path:
    """Write a picture of a transition: the output's log-mel spectrogram over the ``overlap`` (seconds) ±
    ``context`` s, with song A's beats (``a_beats``) and song B's (``b_beats``), both in output seconds, drawn as two
    rows of ticks above it, so a beat grid that drifts apart shows as ticks that stop lining up."""
    plt = _pyplot()
    duration = audio.shape[-1] / sample_rate
    lo, hi = max(0.0, overlap[0] - context), min(duration, overlap[1] + context)
    i0, i1 = int(lo * sample_rate), max(int(lo * sample_rate) + 1, int(np.ceil(hi * sample_rate)))
    fig, (grid, spec) = plt.subplots(
        2, 1, figsize=(10, 5), sharex=True, constrained_layout=True, gridspec_kw={"height_ratios": [1, 4]}
    )
    for row, (beats, label, colour) in enumerate(((a_beats, "A", "tab:blue"), (b_beats, "B", "tab:orange"))):
        shown = beats[(beats >= lo) & (beats <= hi)]
        grid.vlines(shown, 1 - row - 0.4, 1 - row + 0.4, color=colour, linewidth=1.2, label=f"{label}'s beats")
    grid.set_yticks([1, 0], ["A", "B"])
    grid.set_ylim(-0.6, 1.6)
    grid.axvspan(*overlap, color="0.9", zorder=-1)
    mel = log_mel(audio[..., i0:i1], sample_rate)
    spec.imshow(
        mel,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=mel.max() - 80.0,
        vmax=mel.max(),
        extent=(lo, lo + (i1 - i0) / sample_rate, 0, mel.shape[0]),
    )
    spec.axvspan(*overlap, facecolor="none", edgecolor="cyan", linewidth=1.5, linestyle="--")
    if swap is not None:
        for ax in (grid, spec):
            ax.axvline(swap, color="white" if ax is spec else "black", linewidth=1, linestyle=":")
    spec.set_ylabel("mel bin")
    spec.set_xlabel("time in the output (s); dashed: the overlap, dotted: the bass swap")
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
