"""Guidance terms: small differentiable losses on x̂0, summed with weights (Levy et al. 2023, §3).

A term is any callable ``term(x0_model_space, audio) -> scalar`` where ``audio`` is the decoded x̂0
``(B, 2, T)`` (``None`` when the guidance has no decoder or no term asks for audio). Its ``space`` attribute
("latent" or "audio") tells :class:`Guidance` whether the decoder must run; decoding happens once per step
however many audio terms there are.

Distances are *sums* over elements (an L1 norm), not means: the paper's step sizes ξ = 3e-2 (latent) and
3e-3 (waveform) act on per-sample gradients of size O(1), which a mean would shrink by the element count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.features import MelDistance

Space = Literal["latent", "audio"]


@dataclass
class L1Distance:
    """d(y, A(x̂0)) = ‖m ⊙ (y − x)‖₁ with A = masking (after decoding when ``space == "audio"``).

    ``target`` and ``mask`` broadcast against the space they live in: latents ``(B, C, L)``/``(B, 1, L)``,
    audio ``(B, 2, T)``/``(B, 1, T)``. ``mask`` is 1 where the measurement is known.
    """

    target: torch.Tensor
    mask: torch.Tensor
    space: Space = "latent"

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        x = audio if self.space == "audio" else x0
        return (self.mask * (x - self.target)).abs().sum()


@dataclass
class CroppedAudioL1:
    """d = ‖m ⊙ (y − D(x̂0))‖₁ in audio space, decoding only the latent frames that ``m`` needs.

    ``target`` ``(B, 2, T)``, ``mask`` ``(B, 1, T)`` (1 = measured). Runs of measured frames are decoded as crops
    ``x̂0[..., f0:f1]`` with ``context`` extra frames each side (the decoder's receptive field; the crop edges
    are never measured), so a mask limited to a band around a gap costs a fraction of a full decode. With a
    full mask it is one crop of the whole window, i.e. exactly the paper's A = mask ∘ decoder.
    """

    target: torch.Tensor
    mask: torch.Tensor
    decode: Callable[[torch.Tensor, int], torch.Tensor]  # (B, C, l) latent crop, samples -> (B, 2, samples)
    hop: int
    context: int = 8
    space: Space = "latent"  # it decodes by itself, so Guidance passes model-space x̂0
    crops: list[tuple[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        frames = -(-self.mask.shape[-1] // self.hop)
        padded = torch.nn.functional.pad(self.mask.amax(dim=(0, 1)), (0, frames * self.hop - self.mask.shape[-1]))
        measured = (padded.reshape(frames, self.hop) > 0).any(dim=1).tolist()
        self.crops = []
        for f, m in enumerate(measured):
            if not m:
                continue
            f0, f1 = max(0, f - self.context), min(frames, f + 1 + self.context)
            if self.crops and f0 <= self.crops[-1][1]:
                f0 = self.crops.pop()[0]
            self.crops.append((f0, f1))

    def crop_samples(self) -> list[tuple[int, int]]:
        """The ``[s0, s1)`` audio samples each crop decodes to."""
        length = self.target.shape[-1]
        return [(f0 * self.hop, min(f1 * self.hop, length)) for f0, f1 in self.crops]

    def decoded_crops(self, x0: torch.Tensor) -> list[torch.Tensor]:
        """Each crop of x̂0 decoded, ``(B, 2, s1 - s0)``."""
        return [self.decode(x0[..., f0:f1], s1 - s0) for (f0, f1), (s0, s1) in zip(self.crops, self.crop_samples())]

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        total = x0.new_zeros(())
        for decoded, (s0, s1) in zip(self.decoded_crops(x0), self.crop_samples()):
            total = total + (self.mask[..., s0:s1] * (decoded - self.target[..., s0:s1])).abs().sum()
        return total


def measured_runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """The ``[start, stop)`` runs where a 1-D mask ``(n,)`` is nonzero."""
    edges = torch.diff(torch.nn.functional.pad((mask > 0).to(torch.int8), (1, 1)))
    starts = torch.nonzero(edges == 1).flatten().tolist()
    stops = torch.nonzero(edges == -1).flatten().tolist()
    return list(zip(starts, stops))


@dataclass
class CroppedAudioMel(CroppedAudioL1):
    """d = Σ over each measured run of the multi-resolution log-mel distance
    (:class:`musicprod_common.features.MelDistance`).

    Phase-blind, unlike the waveform L1: a codec that keeps the magnitude but not the waveform's phase (this VAE's
    SI-SDR is about −35 dB) decodes the known audio with a phase of its own, so the L1 mostly measures phase and
    its gradient pushes the fill off the data (``BENCHMARKS.md``, infill). Each run of measured samples (one per
    side of a gap) is scored as a whole, per example; runs shorter than ``min_run`` samples (below the largest
    STFT) are skipped. The distance is a mean over mel bins and frames, so it is O(1) per run whatever its length.
    It compares the mid channel (L + R)/2 only, which halves its STFTs: with both channels, guided infill took 2.9×
    the unguided time against the 2.5× target (``benchmarks/guidance_cost.py``; ``solve`` also measures a narrower
    band with this term). The measurement's spectra are computed once, here, not at every step.
    """

    sample_rate: int = SAMPLE_RATE
    min_run: int = 4096
    # runs of one length, as (crop, example, start, stop) with the samples relative to the crop, and their distance
    # (the runs of one length go through the STFTs as one batch)
    groups: list[tuple[list[tuple[int, int, int, int]], Callable[[torch.Tensor], torch.Tensor]]] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        by_length: dict[int, list[tuple[int, int, int, int]]] = {}
        for crop, (s0, s1) in enumerate(self.crop_samples()):
            for b in range(self.mask.shape[0]):
                for start, stop in measured_runs(self.mask[b, :, s0:s1].amax(dim=0)):
                    if stop - start >= self.min_run:
                        by_length.setdefault(stop - start, []).append((crop, b, start, stop))
        mel = MelDistance(self.sample_rate).to(self.target.device)
        targets = [self.target[..., s0:s1] for s0, s1 in self.crop_samples()]
        self.groups = [(runs, mel.against(mid_runs(targets, runs))) for runs in by_length.values()]

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        total = x0.new_zeros(())
        if not self.groups:
            return total
        decoded = self.decoded_crops(x0)
        for runs, distance in self.groups:
            total = total + distance(mid_runs(decoded, runs)).sum()
        return total


def mid_runs(crops: list[torch.Tensor], runs: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """The mid channel of each run ``(crop, example, start, stop)`` of per-crop audio ``(B, 2, n)``: ``(runs, 1, stop −
    start)``."""
    return torch.stack([crops[c][b, :, a:z].mean(0, keepdim=True) for c, b, a, z in runs])


@dataclass
class OnSpan:
    """An audio term measured on samples [start, stop) of the decoded window only, e.g. a style loss on the
    regenerated region and not on the known context around it, which the projection keeps anyway."""

    term: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    start: int
    stop: int
    space: Space = "audio"

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        return self.term(x0, None if audio is None else audio[..., self.start : self.stop])


@dataclass
class Guidance:
    """Σ_i w_i d_i(x̂0), scaled by ξ in the sampler (Levy et al. 2023, Alg. 2, line 3).

    ``step="eps"`` (the paper's) moves ε̂ by −ξ σ_t ∇_{x_t}, a pull that fades with the noise level;
    ``step="x0"`` moves x̂0 itself by −ξ ∇_{x̂0} with the network held constant, at every step including the last
    (manifold-preserving guidance, He et al. 2024, Alg. 1), so the pull lasts until the end.

    ``decode`` maps model-space x̂0 ``(B, C, L)`` to audio ``(B, 2, T)`` for audio-space terms (the VAE decoder
    for the latent model, identity for the waveform model). ``through_net=True`` back-propagates through the
    network (∇_{x_t} exactly as in the paper); ``False`` holds the network output constant, so only the
    prediction-type algebra and the decoder are differentiated — much cheaper, see benchmarks/guidance_cost.py.
    """

    terms: Sequence[Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]]
    weights: Sequence[float] | None = None
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None
    # the sampler's settings (guidance.config.SamplerConfig), passed on by guidance.tasks.solve: no defaults here
    xi: float = field(kw_only=True)
    through_net: bool = field(kw_only=True)
    step: Literal["eps", "x0"] = field(kw_only=True)
    _weights: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.terms:
            raise ValueError("Guidance needs at least one term; pass guidance=None for unguided sampling")
        self._weights = [1.0] * len(self.terms) if self.weights is None else list(self.weights)
        if len(self._weights) != len(self.terms):
            raise ValueError(f"{len(self.terms)} guidance terms but {len(self._weights)} weights")
        if self.step not in ("eps", "x0"):
            raise ValueError(f"Guidance step {self.step!r}: choose 'eps' (the paper's) or 'x0' (MPGD)")
        if self.decode is None and any(getattr(t, "space", "latent") == "audio" for t in self.terms):
            raise ValueError("an audio-space guidance term needs Guidance(decode=...)")

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        """The weighted sum of all terms for x̂0 ``(B, ...)``: a scalar."""
        needs_audio = any(getattr(t, "space", "latent") == "audio" for t in self.terms)
        audio = self.decode(x0) if needs_audio and self.decode is not None else None
        return sum(w * term(x0, audio) for w, term in zip(self._weights, self.terms))
