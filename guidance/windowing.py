"""Editing audio longer than the model window, and blending generated audio back into the original.

Everything outside the edited region and its crossfade margins is copied bit for bit from the input; the
margins are a raised-cosine crossfade from original to generated audio, placed on the *known* side so the
generated region itself is kept whole.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from musicprod_common.errors import InputError


def distance_to_unknown(mask: torch.Tensor) -> torch.Tensor:
    """Mask ``(B, 1, T)`` (1 = known) → samples to the nearest unknown sample ``(B, 1, T)`` (0 on unknown ones,
    more than 2T when there is none)."""
    known = mask > 0.5
    length = mask.shape[-1]
    pos = torch.arange(length, device=mask.device).expand_as(mask)
    big = torch.full_like(pos, 2 * length + 2)
    last_unknown = torch.cummax(torch.where(known, -big, pos), dim=-1).values  # nearest unknown at or before
    next_unknown = -torch.cummax(-torch.where(known, big, pos).flip(-1), dim=-1).values.flip(-1)  # at or after
    return torch.minimum(pos - last_unknown, next_unknown - pos)


def known_weight(mask: torch.Tensor, margin: int) -> torch.Tensor:
    """Mask ``(B, 1, T)`` (1 = known) → weight of the original ``(B, 1, T)``: 0 on unknown samples, rising as
    sin²(π/2 · d/(margin+1)) with the distance d to the nearest unknown sample, exactly 1 beyond ``margin``.
    """
    dist = distance_to_unknown(mask)
    ramp = torch.sin(0.5 * math.pi * (dist.float() / (margin + 1)).clamp(max=1.0)) ** 2
    return torch.where(dist > margin, torch.ones_like(ramp), ramp)


def paste_known(original: torch.Tensor, generated: torch.Tensor, mask: torch.Tensor, margin: int) -> torch.Tensor:
    """Original ``(B, 2, T)`` where ``mask`` ``(B, 1, T)`` is known (bit-exact beyond ``margin`` samples from the
    unknown region), generated audio inside the unknown region, a crossfade in between."""
    w = known_weight(mask, margin)
    blended = w * original + (1.0 - w) * generated
    return torch.where(w >= 1.0, original, blended)


def level_correction(
    original: torch.Tensor,
    decoded: torch.Tensor,
    mask: torch.Tensor,
    band: int,
    floor_db: float = -60.0,
    limit_db: float = 20.0,
) -> torch.Tensor:
    """The gain ``(B, 1, 1)`` that brings ``decoded``'s level to ``original``'s on the known audio within ``band``
    samples of the unknown region (both ``(B, 2, T)``, RMS over both channels).

    Applied to the whole decoded window, it removes the codec's own level error, measured where the truth is
    known, and keeps whatever loudness the model chose for the fill relative to it. Where either side is
    quieter than ``floor_db`` RMS the gain is 1 (nothing to measure), and it never exceeds ±``limit_db``.
    """
    near = ((mask > 0.5) & (distance_to_unknown(mask) <= band)).to(original.dtype)
    count = (near.sum(dim=(1, 2), keepdim=True) * original.shape[1]).clamp(min=1.0)
    rms_true = ((original**2 * near).sum(dim=(1, 2), keepdim=True) / count).sqrt()
    rms_decoded = ((decoded**2 * near).sum(dim=(1, 2), keepdim=True) / count).sqrt()
    floor, limit = 10 ** (floor_db / 20), 10 ** (limit_db / 20)
    measurable = (rms_true > floor) & (rms_decoded > floor)
    gain = (rms_true / rms_decoded.clamp(min=floor)).clamp(1 / limit, limit)
    return torch.where(measurable, gain, torch.ones_like(gain))


def place_window(start: int, end: int, total: int, window: int, margin: int) -> int:
    """Start of a ``window``-sample window centred on region [start, end) plus margins, clamped to the audio."""
    if not 0 <= start < end <= total:
        raise InputError(
            f"edit region [{start}, {end}) samples is empty or outside the audio (0..{total}); pass 0 <= start < end "
            "<= length"
        )
    if end - start + 2 * margin > window:
        raise InputError(
            f"edit region of {end - start} samples plus 2×{margin} margin exceeds the model window of {window} "
            "samples; edit a shorter region"
        )
    centre = (start + end) // 2
    return max(0, min(centre - window // 2, total - window))


def window_plan(start: int, end: int, total: int, window: int, margin: int) -> list[tuple[int, int, int]]:
    """Windows ``(w0, gen_start, gen_stop)`` (samples) that edit [start, end) of ``total`` samples when the region is
    longer than one ``window``.

    Each window keeps half a window of already-final audio on its left as context and generates the rest of
    itself; the last one also sees the original audio after ``end`` (plus ``margin``) on its right. A window that
    reaches the region's last ``margin`` samples without room for the margin after it stops short of them, so the
    last window always holds the end, its margin and the audio after it (which needs ``margin`` ≤ ``window`` / 4).
    """
    context, plan, pos = window // 2, [], start
    while pos < end:
        w0 = max(0, pos - context)
        final = min(end + margin, total) <= w0 + window
        stop = end if final else min(w0 + window, end - margin)
        plan.append((w0, pos, stop))
        pos = stop
    return plan


def edit_long(
    audio: torch.Tensor,
    start: int,
    end: int,
    window: int,
    margin: int,
    edit: Callable[[torch.Tensor, int, int], torch.Tensor],
    *,
    chunked: bool = False,
) -> torch.Tensor:
    """Apply ``edit(window_audio (B, 2, window), rel_start, rel_end) -> (B, 2, window)`` to the window around
    region [start, end) of ``audio`` ``(B, 2, N)`` and blend it back; returns ``(B, 2, N)``.

    Audio shorter than the window is zero-padded for the model and cropped afterwards. A region longer than the
    window minus its margins is refused, or with ``chunked`` edited window after window (:func:`window_plan`): each
    window's edit generates to the window's end, so nothing of the original region leaks in, and returns its window
    already blended with the known audio (``solve(..., margin=...)``); the next window continues from it. Outside
    [start − margin, end + margin) the output is the input, bit for bit.
    """
    total = audio.shape[-1]
    if chunked and end - start + 2 * margin > window:
        out = audio.clone()
        for w0, pos, stop in window_plan(start, end, total, window, margin):
            chunk = torch.nn.functional.pad(out[..., w0 : w0 + window], (0, max(0, w0 + window - total)))
            final = stop == end
            generated = edit(chunk, pos - w0, stop - w0 if final else window)
            lo, hi = max(0, pos - margin), min(total, stop + margin) if final else stop  # the next window blends on
            out[..., lo:hi] = generated[..., lo - w0 : hi - w0]
        return out
    w0 = place_window(start, end, max(total, window), window, margin)
    padded = torch.nn.functional.pad(audio, (0, max(0, window - total)))
    chunk = padded[..., w0 : w0 + window]
    generated = edit(chunk, start - w0, end - w0)
    mask = torch.ones_like(chunk[:, :1])
    mask[..., start - w0 : end - w0] = 0.0
    blended = paste_known(chunk, generated, mask, margin)
    lo, hi = max(0, start - margin), min(total, end + margin)
    out = audio.clone()
    out[..., lo:hi] = blended[..., lo - w0 : hi - w0]
    return out
