"""DiT configuration: a typed dataclass and its named presets (``tiny``, ``small``, ``paper``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.config import pick_preset


@dataclass
class DiTConfig:
    in_channels: int = 16  # latent channels C; train.py takes it from the latent cache, i.e. from the VAE
    frames: int = 256  # latent frames L per window: 5.94 s = 2^18 samples at a hop of 1024 (43 Hz)
    hop_samples: int = 1024  # audio samples per latent frame (from the VAE), so frames·hop is the window
    sample_rate: int = SAMPLE_RATE
    patch_size: int = 2  # latent frames per token: L / patch_size tokens
    width: int = 256  # transformer width d
    depth: int = 10  # transformer blocks
    heads: int = 4  # head width = width / heads
    mlp_ratio: float = 4.0
    cond_width: int = 128  # timestep embedding width feeding each block's adaLN projection
    rope_base: float = 10000.0  # rotary position base (Su et al. 2021)
    # Also read the known frames of an edit (their clean latents and a 0/1 mask) through a second, zero-initialised
    # patch projection, so infill and continuation see the context clean at every noise level instead of only
    # through the sampler's re-noised projection. Off: the paper's unconditional model.
    known_conditioning: bool = False
    # Per-channel statistics of the VAE latents, so the DiT sees ~unit-variance data:
    # x = (z - latent_mean) / latent_std. Empty tuples mean identity (no VAE yet, tests).
    latent_mean: tuple[float, ...] = ()
    latent_std: tuple[float, ...] = ()

    @property
    def window_samples(self) -> int:
        return self.frames * self.hop_samples

    @property
    def tokens(self) -> int:
        return self.frames // self.patch_size

    def __post_init__(self) -> None:
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"width {self.width} must split into {self.heads} heads of even width (rotary pairs)")
        if self.frames % self.patch_size:
            raise ValueError(f"frames {self.frames} must be a multiple of patch_size {self.patch_size}")
        if len(self.latent_mean) != len(self.latent_std) or (
            self.latent_std and len(self.latent_std) != self.in_channels
        ):
            raise ValueError(
                f"latent_mean/latent_std must both be empty or both have in_channels={self.in_channels} entries"
            )


PRESETS: dict[str, DiTConfig] = {
    # Fast enough for CPU unit tests.
    "tiny": DiTConfig(frames=32, width=32, depth=2, heads=2, cond_width=32),
    # Trained here and shipped: ~9.8M parameters (≈20 MB in fp16), 128 tokens for 5.94 s, so 50
    # sampling steps run in seconds on a 2-core CPU and an H100 does thousands of steps in 8 minutes.
    "small": DiTConfig(width=256, depth=10, heads=4, cond_width=128),
    # Levy et al. 2023: 32 layers, width 1536, ≈1B parameters. Head width 64. The adaLN projections read a
    # 256-wide timestep embedding (DiT uses width d there); that lands the total at ≈0.99B.
    "paper": DiTConfig(width=1536, depth=32, heads=24, cond_width=256),
}


def dit_preset(name: str, **overrides) -> DiTConfig:
    """A copy of the named preset with ``overrides`` applied; an unknown name lists the valid ones."""
    return replace(pick_preset(PRESETS, name, "DiT preset"), **overrides)
