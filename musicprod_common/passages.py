"""Find the passage of a song that belongs in a gap: the song's own material, matched on the music around the gap.

Music repeats. A bar that dropped out, a cough over a chorus or a bad edit usually has a twin elsewhere in the
same song (or in another take of it), and copying that twin back restores the original at full quality, which
no generative model can. The search follows the exemplar-based inpainting of Martin et al. (ISMIR 2011) and
Perraudin et al. (IEEE/ACM TASLP 2018): describe every frame of the song, take the frames just before and just
after the gap as a template, and slide it over the song (and any reference recordings). A candidate scores the
mean, over all template frames, of the per-frame cosine similarity, so a match has to persist through the whole
context; one good frame counts for little.

Frames are 93 ms windows every 23 ms of the mid channel resampled to 11 025 Hz: a log-mel envelope (timbre,
loudness, rhythm) and a chroma (harmony), each centred on its source's mean and normalised per frame, so a
stationary texture matches nothing in particular while a real repeat stands out. Offsets are then refined to
the sample by cross-correlating the context audio (:func:`align`).

    matches = find_passages(audio, 44100, (61.3, 63.3))      # audio (channels, T); region in seconds
    best = matches[0]     # best.source 0 is the song itself; best.offset: where its copy of the region starts

Nothing here prints or needs a model.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import soxr  # librosa's resampler, called directly: importing librosa would cost seconds on the first call
import torch
import torchaudio

from .errors import InputError

ANALYSIS_RATE = 11025  # Hz: enough for chroma and a coarse mel envelope, and 4x less to transform than 44.1 kHz
N_FFT = 1024  # 93 ms: resolves semitones down to about 200 Hz for the chroma
HOP = 256  # 23 ms per frame
N_MELS = 48
F_MIN, F_MAX = 40.0, 5000.0
CHROMA_WEIGHT = 0.5  # share of the chroma in the per-frame similarity; the log-mel envelope has the rest
CONTEXT_S = 2.0  # seconds of song matched on each side of a gap
MIN_CONTEXT_S = 0.25  # a side with less than this (the song's start or end) is not matched
MIN_REFERENCE_S = CONTEXT_S  # a reference recording must hold at least one context's worth of audio
SILENCE_DB = -60.0  # frames this far below the source's loudest frame carry no features
ALIGN_S = 0.5  # seconds of context audio each side that fix a match to the sample
# Match.score = P(the copy is closer to the truth than the latent model's fill), a logistic function of the context
# similarity, fitted by maximum likelihood on 170 two-second gaps of POP909 valid-split songs, rendered as written
# and as a person might play them (benchmarks/song_inpaint.py --calibrate; BENCHMARKS.md, "Song-aware inpainting").
CALIBRATION = (10.0, -3.5)  # (slope, intercept): a score of 0.5 at similarity 0.35
THRESHOLD = 0.5  # auto copies at or above this score, where a copy is the likelier of the two to be closer


@dataclass(frozen=True)
class Features:
    """Per-frame descriptors of one source: ``frames`` ``(D, N)``, zero for silent frames and unit length otherwise;
    frame k is centred on sample ``k * hop`` of a ``length``-sample source."""

    frames: torch.Tensor
    hop: float  # source samples per frame
    length: int


@dataclass(frozen=True)
class Match:
    """A passage that can fill ``region`` (song samples [start, end)): source ``source`` (0 = the song itself, i = the
    i-th reference) played from sample ``offset`` onwards lands on the region's first sample.

    ``score`` is the calibrated confidence (:data:`CALIBRATION`), ``similarity`` the raw context similarity
    (mean per-frame cosine over both sides, in [-1, 1]), ``left``/``right`` each side's similarity (None: that side
    was not matched), ``correlation`` the normalised cross-correlation of the aligned context audio.
    """

    source: int
    offset: int
    region: tuple[int, int]
    score: float
    similarity: float
    left: float | None
    right: float | None
    correlation: float
    sample_rate: int

    @property
    def shift(self) -> int:
        """Source sample minus song sample: the copy of song sample t is source sample t + shift."""
        return self.offset - self.region[0]

    @property
    def start_s(self) -> float:
        """Where the copy starts in its source, in seconds."""
        return self.offset / self.sample_rate


def calibrated(similarity: float) -> float:
    """:data:`CALIBRATION` applied to a raw context similarity."""
    slope, intercept = CALIBRATION
    return 1.0 / (1.0 + math.exp(-(slope * similarity + intercept)))


# ----------------------------------------------------------------------------------------------- features


def _mono(audio: torch.Tensor) -> torch.Tensor:
    if audio.dim() != 2:
        raise InputError(f"expected (channels, samples) audio, got shape {tuple(audio.shape)}")
    return audio.float().mean(0)


@functools.lru_cache(maxsize=8)
def _filters(n_freqs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mel ``(N_MELS, F)`` and chroma ``(12, F)`` weights over the FFT bins at :data:`ANALYSIS_RATE`."""
    mel = torchaudio.functional.melscale_fbanks(n_freqs, F_MIN, F_MAX, N_MELS, ANALYSIS_RATE, norm="slaney").T
    freqs = torch.arange(n_freqs, dtype=torch.float64) * ANALYSIS_RATE / N_FFT
    chroma = torch.zeros(12, n_freqs, dtype=torch.float64)
    audible = (freqs >= 60.0) & (freqs <= 4000.0)
    midi = 69.0 + 12.0 * torch.log2(freqs[audible] / 440.0)
    # Each bin votes for its nearest pitch classes with a Gaussian of a third of a semitone: a bin between two
    # semitones is shared rather than rounded, which keeps the chroma steady under slight detuning.
    for pc in range(12):
        d = torch.remainder(midi - pc + 6.0, 12.0) - 6.0
        chroma[pc, audible] = torch.exp(-0.5 * (d / 0.33) ** 2)
    return mel.float(), chroma.float()


def features(audio: torch.Tensor, sample_rate: int) -> Features:
    """:class:`Features` of ``audio`` ``(channels, T)`` at ``sample_rate``: cost is about linear in T (a 10-minute
    song takes well under a second on two cores)."""
    mono = _mono(audio)
    length = mono.shape[-1]
    y = mono.numpy()
    if sample_rate != ANALYSIS_RATE:
        y = soxr.resample(y, sample_rate, ANALYSIS_RATE, quality="HQ")
    y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    if y.numel() < N_FFT:
        y = torch.nn.functional.pad(y, (0, N_FFT - y.numel()))
    spec = torch.stft(y, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, return_complex=True)
    power = spec.real**2 + spec.imag**2  # (F, N)
    mel_w, chroma_w = _filters(power.shape[0])
    mel_db = 10.0 * torch.log10(mel_w @ power + 1e-10)  # (M, N)
    energy_db = 10.0 * torch.log10(power.sum(0) + 1e-10)
    silent = energy_db < energy_db.max() + SILENCE_DB
    chroma = chroma_w @ power
    chroma = chroma / chroma.amax(0, keepdim=True).clamp(min=1e-10)  # librosa's per-frame max normalisation
    parts = []
    for block, weight in ((mel_db, 1.0 - CHROMA_WEIGHT), (chroma, CHROMA_WEIGHT)):
        loud = ~silent
        mean = block[:, loud].mean(1, keepdim=True) if loud.any() else block.mean(1, keepdim=True)
        centred = block - mean
        norm = centred.norm(dim=0, keepdim=True).clamp(min=1e-8)
        parts.append(math.sqrt(weight) * centred / norm)
    frames = torch.cat(parts).masked_fill(silent, 0.0)
    return Features(frames.contiguous(), HOP * sample_rate / ANALYSIS_RATE, length)


# ----------------------------------------------------------------------------------------------- search


Span = tuple[int, int]  # samples [start, end)


def _template_frames(feat: Features, lo: int, hi: int) -> tuple[int, int] | None:
    """Frames ``[k0, k1)`` whose whole analysis window lies inside samples [lo, hi), or None if fewer than
    :data:`MIN_CONTEXT_S` worth."""
    half = N_FFT / 2 * feat.hop / HOP  # half an analysis window, in source samples
    k0 = math.ceil((lo + half) / feat.hop)
    k1 = math.floor((hi - half) / feat.hop) + 1
    min_frames = max(1, int(MIN_CONTEXT_S * ANALYSIS_RATE / HOP))
    return (k0, k1) if k1 - k0 >= min_frames else None


def _slide(frames: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Mean over the template's K frames of the per-frame dot product, at every start j: ``(N − K + 1,)``."""
    if frames.shape[1] < template.shape[1]:
        return frames.new_zeros(0)
    out = torch.nn.functional.conv1d(frames[None], template[None])[0, 0]
    return out / template.shape[1]


@dataclass(frozen=True)
class _Context:
    """The song's context around a region: which sides are matched, their template frames and sample spans."""

    left: tuple[int, int] | None  # template frames
    right: tuple[int, int] | None
    span: Span  # samples the region plus its matched contexts cover


def _region_context(
    feat: Features, region: Span, context: float, sample_rate: int, sides: tuple[bool, bool] = (True, True)
) -> _Context:
    """The template frames of ``context`` seconds each side of ``region`` (samples), on the ``sides`` asked for."""
    start, end = region
    c = int(round(context * sample_rate))
    left = _template_frames(feat, max(0, start - c), start) if sides[0] else None
    right = _template_frames(feat, end, min(feat.length, end + c)) if sides[1] else None
    lo = max(0, start - c) if left else start
    hi = min(feat.length, end + c) if right else end
    return _Context(left, right, (lo, hi))


def _similarity_curve(
    song: Features, source: Features, ctx: _Context
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every frame shift δ of ``source`` against the song (index i ↔ δ = i − first), the similarity of both
    matched sides, and each side's alone (NaN where a side is unmatched or runs off the source).

    Returns ``(shifts (S,), left (S,), right (S,))``: shifts in frames."""
    k_first = min(r[0] for r in (ctx.left, ctx.right) if r)
    k_last = max(r[1] for r in (ctx.left, ctx.right) if r)
    n = source.frames.shape[1]
    shifts = torch.arange(-k_first, n - k_last + 1)  # the whole template stays inside the source
    sides = []
    for frames in (ctx.left, ctx.right):
        if frames is None or shifts.numel() == 0:
            sides.append(torch.full((shifts.numel(),), float("nan")))
            continue
        curve = _slide(source.frames, song.frames[:, frames[0] : frames[1]])  # start j ↔ δ = j − frames[0]
        sides.append(curve[shifts + frames[0]])
    return shifts, sides[0], sides[1]


def _combine(left: torch.Tensor, right: torch.Tensor, ctx: _Context) -> torch.Tensor:
    """Both sides' similarities weighted by their frame counts (persistence), NaN-free where a side is missing."""
    parts = [(side, r[1] - r[0]) for side, r in ((left, ctx.left), (right, ctx.right)) if r is not None]
    total = sum(k for _, k in parts)
    return sum(side * (k / total) for side, k in parts)


def find_passages(
    audio: torch.Tensor,
    sample_rate: int,
    region: tuple[float, float],
    *,
    references: Sequence[torch.Tensor] = (),
    exclude: Sequence[tuple[float, float]] = (),
    context: float | None = None,
    sides: tuple[bool, bool] = (True, True),
    top: int = 5,
    song_features: Features | None = None,
    reference_features: Sequence[Features] | None = None,
) -> list[Match]:
    """The passages of the song ``audio`` ``(channels, T)`` and of ``references`` (each ``(channels, Tr)`` at the same
    ``sample_rate``) whose surroundings best match the ``context`` seconds (default :data:`CONTEXT_S`) around ``region``
    (seconds), best first.
    A region that runs past the song's end asks what could follow the song: only its left side is matched.

    A candidate from the song never overlaps the region, its context or any ``exclude`` span (seconds), nor do its
    own context frames. ``sides`` (left, right) limits the match to one side of the region (a side with less than
    :data:`MIN_CONTEXT_S` of audio is dropped anyway); with no side left there is nothing to match and the result is
    empty. Candidates closer than a context length to a better one of the same source are left out, so the ``top``
    matches are distinct passages. Precomputed :func:`features` may be passed to save time on repeated calls.
    """
    context = CONTEXT_S if context is None else context
    start, end = (int(round(t * sample_rate)) for t in region)
    length = audio.shape[-1]
    if not 0 <= start < end or start > length:
        raise InputError(
            f"region {region[0]:g}-{region[1]:g} s is empty or outside the audio (0-{length / sample_rate:.2f} s)"
        )
    song = song_features if song_features is not None else features(audio, sample_rate)
    refs = (
        list(reference_features) if reference_features is not None else [features(r, sample_rate) for r in references]
    )
    ctx = _region_context(song, (start, end), context, sample_rate, sides)
    if ctx.left is None and ctx.right is None:
        return []
    banned = [ctx.span] + [(int(round(a * sample_rate)), int(round(b * sample_rate))) for a, b in exclude]
    gap = end - start
    candidates: list[tuple[float, int, int, float, float]] = []  # (similarity, source, sample shift, left, right)
    for index, source in enumerate([song, *refs]):
        shifts, left, right = _similarity_curve(song, source, ctx)
        if shifts.numel() == 0:
            continue
        total = _combine(left, right, ctx)
        sample_shift = torch.round(shifts.double() * source.hop).long()
        lo, hi = ctx.span[0] + sample_shift, ctx.span[1] + sample_shift
        ok = (start + sample_shift >= 0) & (start + sample_shift + gap <= source.length)
        if index == 0:
            for b0, b1 in banned:
                ok &= (hi <= b0) | (lo >= b1)
        total = torch.where(ok, total, torch.full_like(total, -math.inf))
        order = torch.argsort(total, descending=True)
        kept: list[int] = []
        spacing = max(1.0, context * sample_rate / source.hop)
        for i in order.tolist():
            if total[i] == -math.inf or len(kept) == top:
                break
            if all(abs(int(shifts[i]) - int(shifts[j])) >= spacing for j in kept):
                kept.append(i)
        for i in kept:
            candidates.append((float(total[i]), index, int(sample_shift[i]), float(left[i]), float(right[i])))
    candidates.sort(key=lambda c: -c[0])
    sources = [audio, *references]
    matches = []
    for sim, index, shift, left_sim, right_sim in candidates[:top]:
        refined, corr = align(
            audio,
            sources[index],
            (start, end),
            shift,
            sample_rate=sample_rate,
            sides=(ctx.left is not None, ctx.right is not None),
            reach=int(math.ceil(source_hop(sample_rate))),
        )
        matches.append(
            Match(
                index,
                start + refined,
                (start, end),
                calibrated(sim),
                sim,
                None if ctx.left is None else left_sim,
                None if ctx.right is None else right_sim,
                corr,
                sample_rate,
            )
        )
    return matches


def source_hop(sample_rate: int) -> float:
    """One analysis frame in samples at ``sample_rate``."""
    return HOP * sample_rate / ANALYSIS_RATE


# ----------------------------------------------------------------------------------------------- sample alignment


def _xcorr(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Numerator Σ x[i] y[i + l] and window energies Σ y[i + l]² for l = 0 .. len(y) − len(x), plus Σ x²."""
    n, m = len(x), len(y)
    size = 1 << (m + n - 1).bit_length()  # a circular correlation this long wraps nothing into the lags kept
    num = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)[: m - n + 1]
    c = np.concatenate([[0.0], np.cumsum(y.astype(np.float64) ** 2)])
    energy = c[n:] - c[: len(c) - n]
    return num, energy, float(np.dot(x, x))


def align(
    song: torch.Tensor,
    source: torch.Tensor,
    region: Span,
    shift: int,
    *,
    sample_rate: int,
    sides: tuple[bool, bool] = (True, True),
    reach: int,
) -> tuple[int, float]:
    """Refine a sample ``shift`` (source − song) to the lag within ±``reach`` samples that maximises the normalised
    cross-correlation of the song's :data:`ALIGN_S` seconds of context audio next to ``region`` with the source's,
    on the ``sides`` (left, right) given. Returns the refined shift and its correlation in [-1, 1] (NaN, with the
    shift unchanged, when the source has no audio there).
    """
    start, end = region
    n = int(round(ALIGN_S * sample_rate))
    parts = []
    if sides[0] and start > 0:
        parts.append((max(0, start - n), start))
    if sides[1] and end < song.shape[-1]:
        parts.append((end, min(song.shape[-1], end + n)))
    num_total, energy_total, ex_total = 0.0, 0.0, 0.0
    for lo, hi in parts:
        y0, y1 = lo + shift - reach, hi + shift + reach
        if y0 < 0 or y1 > source.shape[-1]:
            return shift, float("nan")
        x, y = (_mono(t).double().numpy() for t in (song[:, lo:hi], source[:, y0:y1]))
        num, energy, ex = _xcorr(x, y)
        num_total, energy_total, ex_total = num_total + num, energy_total + energy, ex_total + ex
    if not parts:
        return shift, float("nan")
    ncc = num_total / np.sqrt(np.maximum(ex_total * energy_total, 1e-20))
    best = int(np.argmax(ncc))
    return shift + best - reach, float(ncc[best])


# ----------------------------------------------------------------------------------------------- two anchors


def find_chain(
    audio: torch.Tensor,
    sample_rate: int,
    region: tuple[float, float],
    *,
    references: Sequence[torch.Tensor] = (),
    exclude: Sequence[tuple[float, float]] = (),
    context: float | None = None,
    song_features: Features | None = None,
    reference_features: Sequence[Features] | None = None,
) -> tuple[Match, Match] | None:
    """Two passages for a gap that no single repeat spans: the one whose past matches the left context (it plays on
    after it as the song did there) and the one whose future matches the right context. Returns ``(left, right)``
    with the left match's ``similarity`` and ``score`` replaced by the chain's: the smaller of the two sides' mean
    (weighted by frames) and the agreement of the two passages where they meet best (the mean per-frame
    similarity over :data:`CONTEXT_S` around the frame where they agree most). None when a side cannot be matched.
    """
    context = CONTEXT_S if context is None else context
    song = song_features if song_features is not None else features(audio, sample_rate)
    refs = (
        list(reference_features) if reference_features is not None else [features(r, sample_rate) for r in references]
    )
    kw = dict(
        references=references, exclude=exclude, context=context, top=1, song_features=song, reference_features=refs
    )
    left = find_passages(audio, sample_rate, region, sides=(True, False), **kw)
    right = find_passages(audio, sample_rate, region, sides=(False, True), **kw)
    if not left or not right or left[0].left is None or right[0].right is None:
        return None
    a, b = left[0], right[0]
    feats = [song, *refs]
    start, end = a.region
    k0, k1 = math.ceil(start / song.hop), math.floor(end / song.hop)
    agreement = _agreement(
        feats[a.source], a.shift, feats[b.source], b.shift, k0, k1, song.hop, int(context / 2 * ANALYSIS_RATE / HOP)
    )
    sides = (a.left * 1.0 + b.right * 1.0) / 2.0
    chain = min(sides, agreement)
    return replace(a, similarity=chain, score=calibrated(chain), right=b.right), b


def _agreement(
    fa: Features, shift_a: int, fb: Features, shift_b: int, k0: int, k1: int, hop: float, half: int
) -> float:
    """The best mean per-frame similarity, over windows of 2·``half`` + 1 song frames inside [k0, k1), of source
    ``fa`` shifted by ``shift_a`` samples and ``fb`` by ``shift_b``."""
    ks = torch.arange(k0, k1)
    ia, ib = ks + round(shift_a / fa.hop), ks + round(shift_b / fb.hop)
    ok = (ia >= 0) & (ia < fa.frames.shape[1]) & (ib >= 0) & (ib < fb.frames.shape[1])
    if not ok.any():
        return -1.0
    per_frame = torch.where(
        ok,
        (fa.frames[:, ia.clamp(0, fa.frames.shape[1] - 1)] * fb.frames[:, ib.clamp(0, fb.frames.shape[1] - 1)]).sum(0),
        torch.zeros(()),
    )
    width = min(2 * half + 1, per_frame.numel())
    smooth = torch.nn.functional.avg_pool1d(per_frame[None, None], width, stride=1)[0, 0]
    return float(smooth.max())
