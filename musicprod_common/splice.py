"""Put a found passage into a gap at full quality: the copied samples themselves, aligned to the sample, at the
song's level, joined where the joins are least audible.

A :class:`SplicePlan` says which source plays where: the song up to the first seam, then one or more copied
pieces, then the song again. Each seam is a short fade whose gains keep the power of the sum constant for the
correlation the two signals actually have there (equal-power for unrelated audio, equal-gain for identical
audio), so a join between two copies of the same bar neither dips nor swells. Outside the seams every sample is a
source sample times its piece's gain: a copy of an exact repeat comes back bit for bit.

Nothing here prints or needs a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .errors import InputError
from .passages import ALIGN_S, Match

FADE_S = 0.02  # seconds of a seam's fade: long enough not to click, short enough to fall between two onsets
MAX_GAIN_DB = 12.0  # a copy is never turned up or down by more than this to meet the song's level
UNITY_DB = 0.05  # level differences below this are left alone, so an exact repeat is copied untouched


@dataclass(frozen=True)
class Piece:
    """Song samples t in this piece's span play ``sources[source][:, t + shift] * gain``."""

    source: int
    shift: int
    gain: float = 1.0


@dataclass(frozen=True)
class Seam:
    """A fade over song samples [at, at + length) from one layer to the next."""

    at: int
    length: int

    @property
    def end(self) -> int:
        return self.at + self.length


@dataclass
class SplicePlan:
    """Layers in time order, ``song → pieces → song``, and the seams between consecutive layers.

    A region at the song's start (or end) has no song layer before (after) it, and no seam there: the first
    (last) piece then starts (ends) the output. There is one seam between each two consecutive layers.
    """

    region: tuple[int, int]
    pieces: list[Piece]
    seams: list[Seam]
    sample_rate: int
    song_before: bool = True
    song_after: bool = True

    def layers(self) -> list[Piece]:
        song = Piece(0, 0, 1.0)
        return ([song] if self.song_before else []) + self.pieces + ([song] if self.song_after else [])


# ----------------------------------------------------------------------------------------------- fades and levels


def fade_gains(length: int, correlation: float) -> tuple[np.ndarray, np.ndarray]:
    """Gains ``(out, in)`` of a ``length``-sample fade between signals of normalised correlation ``correlation``.

    With a raised-cosine ramp u, the gains u/N and (1 − u)/N use N = √(u² + (1 − u)² + 2ρu(1 − u)), which keeps the
    expected power of the sum constant for correlation ρ ∈ [0, 1]: at ρ = 0 the fade is equal-power, at ρ = 1 it is
    equal-gain (the two gains sum to 1, so identical signals pass through unchanged).
    """
    rho = float(np.clip(correlation if math.isfinite(correlation) else 0.0, 0.0, 1.0))
    u = np.sin(0.5 * np.pi * (np.arange(length) + 0.5) / length) ** 2
    norm = np.sqrt(u**2 + (1 - u) ** 2 + 2 * rho * u * (1 - u))
    return (1 - u) / norm, u / norm


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 0 else 0.0


def level_gain(song: torch.Tensor, source: torch.Tensor, spans: Sequence[tuple[int, int]], shift: int) -> float:
    """The gain that gives the source, on ``spans`` of song samples (shifted by ``shift``), the song's RMS there;
    1 within :data:`UNITY_DB`, never more than :data:`MAX_GAIN_DB` either way, 1 where either side is silent."""
    e_song = sum(float((song[:, a:b].double() ** 2).sum()) for a, b in spans)
    e_src = sum(float((source[:, a + shift : b + shift].double() ** 2).sum()) for a, b in spans)
    if e_song <= 0 or e_src <= 0:
        return 1.0
    db = 10.0 * math.log10(e_song / e_src)
    if abs(db) < UNITY_DB:
        return 1.0
    return 10.0 ** (float(np.clip(db, -MAX_GAIN_DB, MAX_GAIN_DB)) / 20.0)


# ----------------------------------------------------------------------------------------------- seams


def _layer_mono(sources: Sequence[torch.Tensor], piece: Piece, lo: int, hi: int) -> np.ndarray:
    src = sources[piece.source]
    return src[:, lo + piece.shift : hi + piece.shift].double().mean(0).numpy() * piece.gain


def best_seam(
    sources: Sequence[torch.Tensor], before: Piece, after: Piece, lo: int, hi: int, fade: int, prefer: str
) -> Seam:
    """The ``fade``-sample seam inside song samples [lo, hi) where the two layers differ least: the normalised
    mismatch Σ(a − b)² / Σ(a² + b²) over the fade. Where two copies of the same music agree, a join is inaudible;
    an onset that only one of them has makes them disagree, so the seam also falls between onsets. Ties go to the
    position nearest the ``prefer`` end ("start" or "end") of [lo, hi)."""
    if fade <= 0:
        return Seam(hi if prefer == "end" else lo, 0)  # no room for a fade: a cut at the region's edge
    if hi - lo <= fade:
        return Seam(lo, max(0, hi - lo))
    a, b = _layer_mono(sources, before, lo, hi), _layer_mono(sources, after, lo, hi)
    csum = lambda v: np.concatenate([[0.0], np.cumsum(v)])  # noqa: E731
    diff, power = csum((a - b) ** 2), csum(a**2 + b**2)
    mismatch = (diff[fade:] - diff[:-fade]) / np.maximum(power[fade:] - power[:-fade], 1e-12)
    idx = np.arange(len(mismatch))
    order = np.lexsort((idx if prefer == "start" else -idx, np.round(mismatch, 6)))
    return Seam(lo + int(order[0]), fade)


# ----------------------------------------------------------------------------------------------- plans


def plan_copy(
    song: torch.Tensor,
    sources: Sequence[torch.Tensor],
    match: Match,
    margin: int,
    *,
    sample_rate: int,
    right: tuple[int, int] | None = None,
    fade: int | None = None,
) -> SplicePlan:
    """Copy ``match``'s passage over its region, with a seam in the ``margin`` samples of song before and after the
    region (none on a side where the region touches the song's start or end).

    With ``right = (source, shift)`` the region is covered by two pieces instead: ``match``'s, aligned on the left
    context, then this one, aligned on the right context, joined by a seam inside the region where the two agree
    best (two passages chained over a gap longer than any repeat). Each piece is brought to the song's level on the
    context it is aligned to.
    """
    start, end = match.region
    length = song.shape[-1]
    fade = min(int(round(FADE_S * sample_rate)) if fade is None else fade, margin)
    n = int(round(ALIGN_S * sample_rate))
    before, after = start > 0, end < length
    left_span = [(max(0, start - n), start)] if before else []
    right_span = [(end, min(length, end + n))] if after else []

    def piece(source: int, shift: int, spans: list[tuple[int, int]]) -> Piece:
        src = sources[source]
        spans = [(a, b) for a, b in spans if a + shift >= 0 and b + shift <= src.shape[-1]]
        return Piece(source, shift, level_gain(song, src, spans, shift))

    if right is None:
        pieces = [piece(match.source, match.shift, left_span + right_span)]
    else:
        pieces = [piece(match.source, match.shift, left_span or right_span), piece(*right, right_span or left_span)]
    song_layer = Piece(0, 0, 1.0)
    seams = []
    if before:
        lo = max(0, start - margin, -pieces[0].shift)
        seams.append(best_seam(sources, song_layer, pieces[0], lo, start, min(fade, start - lo), prefer="end"))
    if right is not None:
        # both pieces must exist over the whole search span; leave a fade's room at each end of the region
        lo = max(start + fade, -pieces[1].shift)
        hi = min(end - fade, sources[pieces[0].source].shape[-1] - pieces[0].shift)
        if hi - lo < fade:
            raise InputError(
                f"two copied pieces cannot be joined inside samples {start}-{end}: their sources are too short"
            )
        seams.append(best_seam(sources, pieces[0], pieces[1], lo, hi, fade, prefer="start"))
    if after:
        hi = min(length, end + margin, sources[pieces[-1].source].shape[-1] - pieces[-1].shift)
        seams.append(best_seam(sources, pieces[-1], song_layer, end, hi, min(fade, hi - end), prefer="start"))
    return SplicePlan((start, end), pieces, seams, sample_rate, before, after)


def plan_fill(
    song: torch.Tensor,
    sources: Sequence[torch.Tensor],
    match: Match,
    margin: int,
    *,
    sample_rate: int,
    right: Match | None = None,
) -> SplicePlan:
    """:func:`plan_copy` of ``match``, or of the chain ``match`` then ``right`` (:func:`passages.find_chain`)."""
    return plan_copy(
        song,
        sources,
        match,
        margin,
        sample_rate=sample_rate,
        right=None if right is None else (right.source, right.shift),
    )


def render(song: torch.Tensor, sources: Sequence[torch.Tensor], plan: SplicePlan) -> torch.Tensor:
    """The song ``(channels, T)`` with ``plan`` applied; bit-identical outside its seams and the pieces between them."""
    layers = plan.layers()
    if len(layers) != len(plan.seams) + 1:
        raise InputError(
            f"a splice plan needs one seam between each two layers ({len(layers)} layers, {len(plan.seams)} seams)"
        )
    length = song.shape[-1]
    out = song.clone()
    bounds = [0] + [x for s in plan.seams for x in (s.at, s.end)] + [length]
    for i, layer in enumerate(layers):  # each layer alone between the seams
        lo, hi = bounds[2 * i], bounds[2 * i + 1]
        if layer.source == 0 and layer.shift == 0 and layer.gain == 1.0:
            continue
        out[:, lo:hi] = _take(sources[layer.source], layer, lo, hi, song)
    for seam, a, b in zip(plan.seams, layers[:-1], layers[1:]):
        if seam.length == 0:
            continue
        xa, xb = (
            _take(sources[a.source], a, seam.at, seam.end, song),
            _take(sources[b.source], b, seam.at, seam.end, song),
        )
        g_out, g_in = fade_gains(seam.length, _correlation(xa.double().mean(0).numpy(), xb.double().mean(0).numpy()))
        out[:, seam.at : seam.end] = (xa.double() * torch.from_numpy(g_out) + xb.double() * torch.from_numpy(g_in)).to(
            song.dtype
        )
    return out


def _take(source: torch.Tensor, piece: Piece, lo: int, hi: int, like: torch.Tensor) -> torch.Tensor:
    """``source`` at song samples [lo, hi) of ``piece`` in ``like``'s channels and dtype (mono ↔ stereo by
    mean/copy)."""
    x = source[:, lo + piece.shift : hi + piece.shift]
    if x.shape[-1] != hi - lo:
        raise InputError(
            f"a copied piece runs off its source (samples {lo + piece.shift}-{hi + piece.shift} of {source.shape[-1]})"
        )
    if x.shape[0] != like.shape[0]:
        x = x.mean(0, keepdim=True) if like.shape[0] == 1 else x.expand(like.shape[0], -1)
    return x if piece.gain == 1.0 else (x.double() * piece.gain).to(like.dtype)
