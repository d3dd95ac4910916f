"""Random known-frame masks for training a DiT with ``known_conditioning``: the edits it will be asked to do.

Each draw is one of three kinds, chosen by its key like the rest of its randomness:
* nothing known (the unconditional model, kept for generation and for regeneration of a whole window);
* a known prefix (continuation: the paper continues 2.4 s of context, about 100 of 256 frames);
* one gap anywhere, everything around it known (infill, regeneration, a transition's crossfade region).
"""

from __future__ import annotations

import torch

from musicprod_common.training import example_rand

P_NOTHING_KNOWN = 0.2
P_PREFIX = 0.2
GAP_FRACTION = (1 / 32, 3 / 4)  # gap lengths as a fraction of the window: 0.19-4.5 s of a 5.94 s window


def random_known_mask(keys: torch.Tensor, frames: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """Masks ``(B, 1, frames)``, 1 = known frame, one per draw key in ``keys`` ``(B,)``."""
    u = example_rand(keys, (3,), salt=0x3A5, device=device)  # (B, 3): kind, length, position
    pos = torch.arange(frames, device=device)[None, :]
    lo, hi = GAP_FRACTION
    gap = (frames * (lo + (hi - lo) * u[:, 1:2])).round().clamp(1, frames - 1)  # (B, 1)
    start = ((frames - gap + 1) * u[:, 2:3]).floor().clamp(max=frames - gap)
    infill = (pos < start) | (pos >= start + gap)
    prefix = pos < frames - gap  # the gap runs to the end
    kind = u[:, :1]
    known = torch.where(
        kind < P_NOTHING_KNOWN, torch.zeros_like(infill), torch.where(kind < P_NOTHING_KNOWN + P_PREFIX, prefix, infill)
    )
    return known.float()[:, None, :]
