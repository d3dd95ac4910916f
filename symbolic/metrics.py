"""Metrics for generated accompaniment rolls ``(B, 2, T, P)`` (onset, sustain; notes = cells > 0.5).

* out-of-key rate: fraction of 16th steps with at least one sounding note outside the chord-implied
  scale (the quantity the fine-grained correction drives to zero, Zhu et al. 2024);
* chord accuracy: per beat, the generated notes' chroma is matched against the 24 major/minor triad
  templates; a beat is right when root and major/minor equal the condition's. Beats without a chord in
  the condition are skipped; beats where the generation is silent count as wrong;
* chord similarity: cosine between a beat's generated chroma and the condition's chord-tone chroma;
* piano-roll IoU against the ground truth (sounding cells).
"""

from __future__ import annotations

import torch

from .data import LOW_PITCH, STEPS_PER_BEAT

_MAJOR = torch.tensor([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0], dtype=torch.float32)
_MINOR = torch.tensor([1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0], dtype=torch.float32)


def triad_templates() -> torch.Tensor:
    """(24, 12): rows 0..11 major triads on C..B, rows 12..23 minor triads."""
    return torch.stack([torch.roll(_MAJOR, r) for r in range(12)] + [torch.roll(_MINOR, r) for r in range(12)])


def sounding(roll: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B, 2, T, P) → (B, T, P) bool: a note starts or is held in the cell."""
    return (roll > threshold).any(1)


def out_of_key_rate(roll: torch.Tensor, allowed: torch.Tensor) -> float:
    """Fraction of 16th steps (over the batch) with a sounding note on a disallowed cell; ``allowed`` (B, T, P)."""
    bad = (sounding(roll) & ~allowed.bool()).any(-1)  # (B, T)
    return float(bad.float().mean())


def beat_chroma(roll: torch.Tensor, low_pitch: int = LOW_PITCH) -> torch.Tensor:
    """(B, 2, T, P) → (B, T/4, 12): per beat, how many sounding cells of each pitch class."""
    b, _, t, p = roll.shape
    cells = sounding(roll).float()  # (B, T, P)
    pcs = (torch.arange(p) + low_pitch) % 12
    per_pc = torch.zeros(b, t, 12).index_add_(2, pcs, cells)
    return per_pc.reshape(b, t // STEPS_PER_BEAT, STEPS_PER_BEAT, 12).sum(2)


def recognize_chords(chroma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best major/minor triad per chroma vector ``(..., 12)``: (root (...), minor (...) bool); root −1 if silent."""
    scores = torch.nn.functional.normalize(chroma.float(), dim=-1) @ triad_templates().T  # (..., 24)
    best = scores.argmax(-1)
    root = torch.where(chroma.sum(-1) > 0, best % 12, torch.full_like(best, -1))
    return root, best >= 12


def beat_labels(root: torch.Tensor, minor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step condition labels (B, T) → per-beat labels (B, T/4), taken at each beat's first step."""
    return root[:, ::STEPS_PER_BEAT], minor[:, ::STEPS_PER_BEAT].bool()


def chord_accuracy(roll: torch.Tensor, root: torch.Tensor, minor: torch.Tensor) -> float:
    """Beat-level root + maj/min accuracy of ``roll`` against the condition (``root`` (B, T), −1 = none)."""
    got_root, got_minor = recognize_chords(beat_chroma(roll))
    want_root, want_minor = beat_labels(root.long(), minor)
    valid = want_root >= 0
    right = (got_root == want_root) & (got_minor == want_minor) & valid
    return float(right.sum()) / max(1, int(valid.sum()))


def chord_similarity(roll: torch.Tensor, chroma: torch.Tensor) -> float:
    """Mean cosine between each beat's generated chroma and the condition's chord chroma ``(B, T, 12)``."""
    gen = beat_chroma(roll)
    want = chroma[:, ::STEPS_PER_BEAT].float()
    valid = want.sum(-1) > 0
    cos = torch.nn.functional.cosine_similarity(gen, want, dim=-1, eps=1e-8)  # 0 for silent beats
    return float(cos[valid].mean()) if bool(valid.any()) else float("nan")


def roll_iou(roll: torch.Tensor, target: torch.Tensor) -> float:
    """Intersection over union of sounding cells of two rolls ``(B, 2, T, P)``."""
    a, b = sounding(roll), sounding(target)
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0
