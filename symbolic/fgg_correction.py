"""Fine-grained correction of x̂0 at every sampling step (Zhu et al. 2024, "Efficient Fine-Grained
Guidance for Diffusion Model Based Symbolic Music Generation").

At each step the sampler (``guidance.sampler.sample``) computes x̂0, hands it to the edit below through its
``edit_denoised`` hook, then recomputes ε̂ = (x_t − α_t x̂0)/σ_t from the edited x̂0 and steps on. The last
step lands on t = 0 and returns the edited x̂0 itself, so the hard edit guarantees the output: a note is
a cell above 0.5, and no disallowed cell is ever above 0.5.

Edits, on piano rolls ``(B, 2, T, P)`` (onset, sustain) with an allowed mask ``(B, T, P)``:
1. pitch edit: disallowed cells above the threshold are clamped down to it, in both channels;
   the soft variant moves them a fraction λ of the way (λ = 1 is the hard clamp, λ = 0 no edit);
2. rhythm edit (optional): per 16th step keep only the k largest onset cells above the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import LOW_PITCH, NUM_PITCHES

THRESHOLD = 0.5


def allowed_from_masks(masks: torch.Tensor, pitches: int = NUM_PITCHES, low_pitch: int = LOW_PITCH) -> torch.Tensor:
    """Per-step 12-bit pitch-class masks ``(B, T)`` (int) → allowed cells ``(B, T, P)`` bool."""
    pcs = (torch.arange(pitches, device=masks.device) + low_pitch) % 12  # (P,)
    return ((masks.long()[..., None] >> pcs) & 1).bool()


def allowed_from_chroma(chroma: torch.Tensor, pitches: int = NUM_PITCHES, low_pitch: int = LOW_PITCH) -> torch.Tensor:
    """Per-step pitch-class sets ``(B, T, 12)`` (0/1) → allowed cells ``(B, T, P)`` bool."""
    pcs = (torch.arange(pitches, device=chroma.device) + low_pitch) % 12
    return chroma[..., pcs] > 0.5


def pitch_edit(
    x0: torch.Tensor, allowed: torch.Tensor, *, strength: float = 1.0, threshold: float = THRESHOLD
) -> torch.Tensor:
    """Clamp disallowed cells of x̂0 ``(B, 2, T, P)`` above ``threshold`` toward it; ``allowed`` ``(B, T, P)``.

    x' = x + λ (min(x, thr) − x) on disallowed cells: λ = 1 (Zhu et al. 2024) clamps them to exactly thr,
    which is not a note (notes are cells strictly above thr); λ < 1 only weakens them (our soft variant).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    forbidden = ~allowed.bool()[:, None]  # (B, 1, T, P), same for onset and sustain
    clamped = torch.minimum(x0, torch.full_like(x0, threshold))
    target = x0 + strength * (clamped - x0) if strength < 1.0 else clamped
    return torch.where(forbidden, target, x0)


def rhythm_edit(x0: torch.Tensor, k: int | torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """Keep at most ``k`` onsets (the largest onset cells above ``threshold``) per 16th step.

    ``k`` is an int or a per-step count ``(B, T)`` (e.g. the rhythm condition's onset count). The other
    onset cells above the threshold are clamped to it.
    """
    onset = x0[:, 0]  # (B, T, P)
    if isinstance(k, int):
        k = torch.full(onset.shape[:2], k, device=x0.device)
    rank = onset.argsort(-1, descending=True).argsort(-1)  # rank of each cell within its step, 0 = largest
    keep = rank < k.to(x0.device).long()[..., None]
    new_onset = torch.where(keep, onset, torch.minimum(onset, torch.full_like(onset, threshold)))
    return torch.stack([new_onset, x0[:, 1]], 1)


@dataclass
class FineGrainedCorrection:
    """The ``edit_denoised(x̂0, t)`` hook: pitch edit (hard or soft), then the optional rhythm edit.

    ``allowed`` ``(B, T, P)`` bool; ``onsets_per_step`` ``(B, T)`` or int for the rhythm edit, None to skip it.
    """

    allowed: torch.Tensor
    strength: float = 1.0
    onsets_per_step: int | torch.Tensor | None = None
    threshold: float = THRESHOLD

    def __call__(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0 = pitch_edit(x0, self.allowed.to(x0.device), strength=self.strength, threshold=self.threshold)
        if self.onsets_per_step is not None:
            x0 = rhythm_edit(x0, self.onsets_per_step, threshold=self.threshold)
        return x0


def notes_from_roll(x0: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """Binary roll: cells above the threshold ``(B, 2, T, P)`` → bool."""
    return x0 > threshold


def scale_allowed(mask12: int, steps: int, batch: int = 1) -> torch.Tensor:
    """A user scale mask (12-bit int, see :func:`symbolic.chords.scale_mask`) for every step → ``(B, T, P)``."""
    return allowed_from_masks(torch.full((batch, steps), int(mask12), dtype=torch.long))
