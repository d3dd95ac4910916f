"""Waveform U-Net configuration: a typed dataclass and its named presets (``tiny``, ``small``, ``paper``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.config import pick_preset


@dataclass
class UNetConfig:
    channels: int = 2  # stereo folded into the channel axis: (B, 2, T)
    window: int = 2**16  # training window in samples (1.49 s at 44.1 kHz)
    sample_rate: int = SAMPLE_RATE
    widths: tuple[int, ...] = (32, 64, 128, 160, 160)  # channels per resolution level, finest first
    factors: tuple[int, ...] = (4, 4, 4, 4)  # time downsampling between consecutive levels
    blocks: tuple[int, ...] = (1, 2, 2, 2, 2)  # residual blocks per level on the way down (one more on the way up)
    attention: tuple[bool, ...] = (False, False, False, True, True)  # self-attention after each block, per level
    head_width: int = 64
    time_width: int = 256  # timestep embedding width (FiLM conditioning of every residual block)
    kernel_size: int = 5
    groups: int = 8  # GroupNorm groups

    @property
    def total_factor(self) -> int:
        out = 1
        for f in self.factors:
            out *= f
        return out

    def __post_init__(self) -> None:
        levels = len(self.widths)
        if not (len(self.factors) == levels - 1 and len(self.blocks) == levels and len(self.attention) == levels):
            raise ValueError(
                f"need len(factors) = len(widths) - 1 and len(blocks) = len(attention) = len(widths) = {levels}"
            )
        if any(f % 2 for f in self.factors):
            raise ValueError(f"downsampling factors must be even, got {self.factors}")
        if self.window % self.total_factor:
            raise ValueError(f"window {self.window} must be a multiple of the total downsampling {self.total_factor}")
        if any(w % self.groups for w in self.widths) or self.kernel_size % 2 == 0:
            raise ValueError(f"widths must divide by groups={self.groups} and kernel_size must be odd")


PRESETS: dict[str, UNetConfig] = {
    # Fast enough for CPU unit tests: 4096 samples (0.09 s).
    "tiny": UNetConfig(
        window=2**12,
        widths=(8, 16, 32),
        factors=(4, 4),
        blocks=(1, 1, 1),
        attention=(False, False, True),
        head_width=16,
        time_width=32,
        groups=4,
    ),
    # Trained here and shipped: ≈8.5M parameters (≈17 MB in fp16) over 2^16 samples (1.49 s); 256 positions at
    # the coarsest level (factor 256), where attention is affordable.
    "small": UNetConfig(),
    # Levy et al. 2023's waveform baseline: ≈440M parameters (this one: 452M) over 2^19 samples (11.9 s).
    "paper": UNetConfig(
        window=2**19,
        widths=(128, 256, 512, 1024, 1024, 1024, 1024),
        factors=(4, 4, 4, 4, 2, 2),
        blocks=(2, 2, 2, 2, 2, 2, 2),
        attention=(False, False, False, False, True, True, True),
        time_width=1024,
        groups=32,
    ),
}


def unet_preset(name: str, **overrides) -> UNetConfig:
    """A copy of the named preset with ``overrides`` applied; an unknown name lists the valid ones."""
    return replace(pick_preset(PRESETS, name, "U-Net preset"), **overrides)
