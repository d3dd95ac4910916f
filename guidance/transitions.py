"""Transitions between two songs: stem by stem.

:func:`transition_stems` hands song A over to song B one stem at a time, each through the regenerated crossfade of
:func:`guidance.tasks.transition` (Levy et al. 2023, §4).
"""

from __future__ import annotations

import torch

from musicprod_common.errors import InputError

from .config import SamplerConfig
from .tasks import DEFAULT_MARGIN, EditModel, Progress, transition

# Stems that hand over first come first: the accompaniment swaps early and the melody last, so the old
# tune is heard over the new harmony before it gives way (the order a DJ crossfading stems would use).
STEM_ORDER = ("PIANO", "BRIDGE", "DRUMS", "BASS", "MELODY")


def stem_schedule(names: list[str], at: float, length: float, fade: float) -> dict[str, float]:
    """Centre (seconds, output timeline) of each stem's crossfade inside [at, at + length]: evenly spread in
    :data:`STEM_ORDER` order (unknown names between the accompaniment and the melody, alphabetically)."""
    rank = {name: i for i, name in enumerate(STEM_ORDER)}
    melody = rank["MELODY"]
    ordered = sorted(names, key=lambda n: (rank.get(n.upper(), melody - 0.5), n))
    if len(ordered) == 1:
        return {ordered[0]: at + length / 2}
    first, last = at + fade / 2, at + length - fade / 2
    return {n: first + i * (last - first) / (len(ordered) - 1) for i, n in enumerate(ordered)}


def transition_stems(
    model: EditModel,
    stems_a: dict[str, torch.Tensor],
    stems_b: dict[str, torch.Tensor],
    sample_rate: int,
    *,
    at: float,
    length: float,
    b_start: float = 0.0,
    fade: float = 2.5,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Hand song A over to song B stem by stem; stems are ``name -> (channels, T)`` at ``sample_rate``.

    The output plays A until ``at`` s and B (from its ``b_start`` s) after ``at + length`` s. In between, each
    stem crossfades on its own schedule (:func:`stem_schedule`) through a ``fade``-second region that the model
    regenerates with the transition task (``sampler``; stem i with seed ``seed + i``), blended over ``margin`` s each
    side. A stem missing from one song is silence there (it fades in or out).
    Returns the output stems, all ``(channels, at + len(B) − b_start)``, and each stem's crossfade centre.
    """
    if not stems_a or not stems_b:
        raise InputError("transition-stems needs at least one stem in each song")
    fade = min(fade, length)
    if not length > 0 or not fade > 0:
        raise InputError(f"--length {length:g} must be positive")
    len_a = max(x.shape[1] for x in stems_a.values())
    len_b = max(x.shape[1] for x in stems_b.values())
    channels = max(x.shape[0] for x in (*stems_a.values(), *stems_b.values()))
    at_n, b0_n = int(round(at * sample_rate)), int(round(b_start * sample_rate))
    if at + length > len_a / sample_rate + 1e-9:
        raise InputError(
            f"--at {at:g} + --length {length:g} s runs past the end of song A ({len_a / sample_rate:.2f} s); pass an "
            "earlier --at"
        )
    if b_start + length > len_b / sample_rate + 1e-9:
        raise InputError(
            f"--b-start {b_start:g} + --length {length:g} s runs past the end of song B ({len_b / sample_rate:.2f} s)"
        )
    total = at_n + len_b - b0_n

    def fit(x: torch.Tensor | None, n: int) -> torch.Tensor:
        if x is None:
            return torch.zeros(channels, n)
        x = x.expand(channels, -1) if x.shape[0] == 1 else x
        return torch.nn.functional.pad(x, (0, max(0, n - x.shape[1])))[:, :n]

    names = sorted(set(stems_a) | set(stems_b))
    centres = stem_schedule(names, at, length, fade)
    out = {}
    for i, name in enumerate(names):
        a, b = fit(stems_a.get(name), len_a), fit(stems_b.get(name), len_b)
        c = centres[name]
        a_end = int(round((c + fade / 2) * sample_rate))  # A plays up to the end of this stem's fade ...
        b_from = int(round((c - fade / 2) * sample_rate)) - at_n + b0_n  # ... B from its start
        joined = transition(
            model,
            a[:, :a_end],
            b[:, b_from:],
            sample_rate,
            fade=fade,
            sampler=sampler,
            seed=seed + i,
            margin=margin,
            progress=progress,
        )
        out[name] = fit(joined, total)
    return out, centres
