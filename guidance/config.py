"""How the one sampler runs an edit: :class:`SamplerConfig`, and its presets per model family and edit.

Every setting of :func:`guidance.tasks.solve` lives in one frozen dataclass and every default is set once, here:
the fields' defaults are the paper's, :data:`FAMILIES` holds what each model family changes, :data:`EDITS` what each
kind of edit changes on top, and :func:`sampler_preset` composes them. An edit is handed one object, which callers
adjust with :meth:`SamplerConfig.but`::

    config = sampler_preset("latent", "style").but(steps=100)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from musicprod_common.errors import InputError

Distance = Literal["l1", "mel"]
XI_LATENT = 3e-2  # Levy et al. 2023, the guidance step size for the latent model
XI_WAVEFORM = 3e-3  # Levy et al. 2023, the guidance step size for the waveform model


@dataclass(frozen=True)
class SamplerConfig:
    """The settings of one guided sampling run (Levy et al. 2023, Alg. 2, and what this project measured beside it)."""

    steps: int = 50  # network evaluations per pass over the schedule
    eta: float = 0.0  # DDIM's η: 0 deterministic, 1 the DDPM posterior variance (Song et al. 2021, §4.1)
    xi: float = XI_LATENT  # ξ, the guidance step size; 0 samples with the replacement projection alone
    guidance_step: Literal["eps", "x0"] = "eps"  # what ξ moves: ε̂ (Alg. 2, line 3) or x̂0 (MPGD, He et al. 2024)
    distance: Distance = "l1"  # how the reconstruction term compares the decoded known audio with the measurement
    space: Literal["audio", "latent"] = "audio"  # the term's measurement: after the decoder, or the encoded one
    band_s: float | None = None  # seconds of known audio each side of the edit the term measures; None: all of it
    through_net: bool = True  # back-propagate the term through the network (the paper), or hold v_θ constant
    strength: float = 1.0  # < 1: start from the prior noised to this level (SDEdit, Meng et al. 2022)
    resample: int = 1  # RePaint's resampling (Lugmayr et al. 2022): walk every `jump` steps this many times
    jump: int = 10
    level_band_s: float | None = None  # seconds of known audio each side the decoded level is corrected on; None: off

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InputError(f"steps must be at least 1, got {self.steps}")
        if not 0.0 < self.strength <= 1.0:
            raise InputError(f"strength must be in (0, 1], got {self.strength}; 1 regenerates from pure noise")
        if self.guidance_step not in ("eps", "x0"):
            raise InputError(f"guidance step {self.guidance_step!r}: choose 'eps' (the paper's) or 'x0' (MPGD)")
        if self.space not in ("audio", "latent"):
            raise InputError(f"guidance space must be 'audio' or 'latent', got {self.space!r}")
        if self.distance not in ("l1", "mel"):
            raise InputError(f"guidance distance must be 'l1' or 'mel', got {self.distance!r}")
        if self.space == "latent" and self.distance != "l1":
            raise InputError(
                "a latent-space measurement is compared with L1 only; use space='audio' for the mel distance"
            )

    def but(self, **changes: Any) -> SamplerConfig:
        """A copy with ``changes`` applied; a change of None keeps the current value (a command-line flag left out)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# What each model family changes from the paper's defaults.
FAMILIES: dict[str, dict[str, Any]] = {
    # Ancestral sampling (η = 1): on 16 POP909 valid-split 2 s infills the gap mel distance was 1.27 against 1.34-1.35
    # for η = 0. The reconstruction term compares log-mel spectrograms of 0.25 s of known audio each side: this VAE does
    # not keep the waveform's phase, which the paper's L1 measures (BENCHMARKS.md, "Infill quality"; 0.25 s measured
    # as well as 0.5 s at a lower cost).
    # Both families hold v_θ constant in the guidance gradient, the cheapest variant within the 2.5x cost target
    # (benchmarks/guidance_cost.py).
    "latent": dict(eta=1.0, xi=XI_LATENT, distance="mel", band_s=0.25, through_net=False),
    # The paper's L1 on 0.5 s each side; η = 0, since nothing was measured for this model.
    "waveform": dict(eta=0.0, xi=XI_WAVEFORM, distance="l1", band_s=0.5, through_net=False),
}
# What each kind of edit changes on top of its family.
EDITS: dict[str, dict[str, Any]] = {
    "infill": {},  # infill, continuation, regeneration and transitions
    # Style transfer (musicprod style), chosen on 32 valid-split windows by a rule set in advance, the highest chroma
    # with the source among settings that take ≥ 70% to the target style (BENCHMARKS.md, "Style transfer"). Strength 0.5
    # with η = 1 kept a CQT chroma of 0.57 (27 of 32 to strings), 0.4 kept 0.60 but only 22 went; η = 0 (whose step
    # keeps all of the guided ε̂) kept 0.60 at 0.5, 0.45 and 0.4 with 28, 28 and 25: strength 0.4. Then stepping x̂0
    # itself instead of ε̂ (MPGD): ξ = 3e-3 and 1e-2 kept 0.603 and 0.618 with 22 and 28 to strings: ξ = 1e-2.
    "style": dict(eta=0.0, xi=1e-2, guidance_step="x0", strength=0.4),
    # Algorithm 2 verbatim: the waveform L1 on the whole known region, back-propagated through the network.
    "paper": dict(distance="l1", band_s=None, through_net=True),
}


def sampler_preset(family: str = "latent", edit: str = "infill") -> SamplerConfig:
    """The settings for an ``edit`` (:data:`EDITS`) with a model of ``family`` (:data:`FAMILIES`)."""
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    if edit not in EDITS:
        raise InputError(f"unknown edit {edit!r}; choose one of {', '.join(EDITS)}")
    return SamplerConfig(**{**FAMILIES[family], **EDITS[edit]})


# ``musicprod inpaint --match-level``: the seconds of original audio each side of a region on which the codec's level
# error is measured (the ``level_band_s`` it sets)
LEVEL_BAND_S = 1.0
