"""Continuation, infill, regeneration and transitions (Levy et al. 2023, §4) on top of the one sampler.

A task only builds an :class:`EditProblem` (measurement y, known-mask, optional prior x̄); :func:`solve` turns
any problem into x_T, guidance terms and a projection for any model (latent: VAE codec; waveform: identity
codec) and runs :func:`guidance.sampler.sample`. Audio is ``(B, 2, T)``, masks ``(B, 1, T)`` with 1 = known.

x_T (Levy et al. 2023, §3.2):
* continuation, infill:   x_T = Aᵀy + (I − AᵀA) z
* regenerate, transition: x_T = Aᵀy + (I − AᵀA)(k z + (1 − k) x̄),  k = 0.85
* with ``strength`` < 1 (SDEdit, Meng et al. 2022): start at t = strength from x_t = α_t(Aᵀy + (I − AᵀA)x̄) + σ_t z

How the sampler runs is one :class:`guidance.config.SamplerConfig`, the model's own (``EditModel.sampler``) unless a
task is given another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.errors import InputError

from .codec import Codec, IdentityCodec, VAECodec, latent_mask
from .config import XI_LATENT, SamplerConfig, sampler_preset
from .denoiser import CosineSchedule, Denoiser
from .sampler import Callback, DenoiserLike, renoise, sample
from .schedule import resampling_timesteps
from .terms import CroppedAudioL1, CroppedAudioMel, Guidance, L1Distance
from .windowing import distance_to_unknown, edit_long, level_correction, paste_known

K_PRIOR = 0.85  # Levy et al. 2023: weight of fresh noise against the prior x̄ in x_T
# How the reconstruction term d(y, A(x̂0)) compares the decoded known audio with the measurement. The paper's L1
# sums over samples, so ξ = 3e-2 acts on O(1) per-sample gradients; the log-mel distance is a mean, O(1) per run,
# so it carries this weight at the same ξ. Chosen on 32 POP909 valid-split infills (ξ·w = 20 / 100 / 300
# / 1000: gap mel distance 1.130 / 1.116 / 1.111 / 1.147, replacement only 1.147): the smaller of the two best,
# which were within the noise of each other.
RECONSTRUCTION_WEIGHT: dict[str, float] = {"l1": 1.0, "mel": 100.0 / XI_LATENT}


@dataclass
class EditModel:
    """Everything a task needs from a trained model: its denoiser, codec, window and sampler settings."""

    denoiser: DenoiserLike
    codec: Codec
    window: int  # audio samples per model window, e.g. 2^18 for the latent model
    sample_rate: int = SAMPLE_RATE
    sampler: SamplerConfig = field(default_factory=SamplerConfig)  # the tasks' default (the paper's, for a bare model)
    # the network also reads the known frames clean: ``net(x, t, known=y, known_mask=mask)`` (DiT known_conditioning)
    conditions_on_known: bool = False


def latent_edit_model(dit: Any, vae: Any) -> EditModel:
    """The latent model for the tasks: a v-prediction DiT (``dit.config.window_samples``, ``sample_rate``,
    ``normalize_latents``) over a SpectrogramVAE (``encode(audio).mode()``, ``decode(z, length)``), sampled with the
    ``"latent"`` preset (:func:`guidance.config.sampler_preset`)."""
    codec = VAECodec(vae, normalize=dit.normalize_latents, denormalize=dit.denormalize_latents)
    return EditModel(
        Denoiser(dit, CosineSchedule(), "v"),
        codec,
        dit.config.window_samples,
        dit.config.sample_rate,
        sampler_preset("latent"),
        conditions_on_known=getattr(dit.config, "known_conditioning", False),
    )


def waveform_edit_model(unet: Any) -> EditModel:
    """The waveform model for the tasks: a v-prediction U-Net on ``(B, 2, T)`` with ``unet.config.window``, sampled
    with the ``"waveform"`` preset."""
    return EditModel(
        Denoiser(unet, CosineSchedule(), "v"),
        IdentityCodec(),
        unet.config.window,
        unet.config.sample_rate,
        sampler_preset("waveform"),
    )


@dataclass
class EditProblem:
    """A window-sized measurement: ``y`` ``(B, 2, T)`` (zeros where unknown), ``mask`` ``(B, 1, T)``, and for
    regenerate/transition a prior ``x̄`` ``(B, 2, T)`` mixed into x_T with weight 1 − k."""

    y: torch.Tensor
    mask: torch.Tensor
    prior: torch.Tensor | None = None
    k: float = K_PRIOR


class ReplaceProjection:
    """Data consistency (Alg. 2, line 5): the known frames of x_s become the measurement noised to level s.

    ``y`` is the clean measurement in model space ``(B, C, L)``, ``mask`` ``(B, 1, L)`` (1 = known). At s = 0
    (σ = 0, α = 1) the known frames equal ``y`` exactly.
    """

    def __init__(
        self, y: torch.Tensor, mask: torch.Tensor, alpha_sigma: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    ):
        self.y, self.known, self.alpha_sigma = y, mask > 0.5, alpha_sigma

    def __call__(self, x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(s, x)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.where(self.known, alpha * self.y + sigma * noise, x)  # RePaint-style: fresh noise


# ----------------------------------------------------------------------------------------------- problems


def _masked(audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask > 0.5, audio, torch.zeros_like(audio))


def infill_problem(audio: torch.Tensor, start: int, end: int, k: float | None = None) -> EditProblem:
    """Generate samples [start, end) of ``audio`` ``(B, 2, T)`` from everything around them.

    ``k=None`` starts from pure noise in the gap (the paper's infill). A ``k`` in (0, 1] starts the way the paper
    starts a transition, with x̄ = :func:`neighbour_crossfade`. With the shipped models this changes nothing beyond
    the noise (the DiT's first step, at σ = 1, forgets x̄), and ``solve(..., strength < 1)`` from it only
    resynthesises the crossfade (BENCHMARKS.md, "Infill quality"). So the ``infill`` task does not offer it.
    """
    mask = torch.ones_like(audio[:, :1])
    mask[..., start:end] = 0.0
    if k is None:
        return EditProblem(_masked(audio, mask), mask)
    if not 0.0 < k <= 1.0:
        raise InputError(f"the infill prior weight k must be in (0, 1], got {k}; 1 is pure noise")
    return EditProblem(_masked(audio, mask), mask, neighbour_crossfade(audio, start, end), k)


def regenerate_problem(audio: torch.Tensor, start: int, end: int, k: float = K_PRIOR) -> EditProblem:
    """Re-create [start, end) starting from the original there (x̄ = original)."""
    return EditProblem(**{**infill_problem(audio, start, end).__dict__, "prior": audio, "k": k})


def continuation_problem(context: torch.Tensor, length: int) -> EditProblem:
    """Continue ``context`` ``(B, 2, Tc)`` to ``length`` samples: the context is known, the rest generated."""
    y = torch.nn.functional.pad(context, (0, length - context.shape[-1]))
    return infill_problem(y, context.shape[-1], length)


def constant_power_crossfade(a: torch.Tensor, b: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """``a`` before ``start``, ``b`` from ``end``, cos/sin gains in between (g_a² + g_b² = 1); ``(B, 2, T)``."""
    n = a.shape[-1]
    r = ((torch.arange(n, device=a.device, dtype=a.dtype) - start + 0.5) / (end - start)).clamp(0.0, 1.0)
    return torch.cos(0.5 * math.pi * r) * a + torch.sin(0.5 * math.pi * r) * b


def neighbour_crossfade(audio: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """``audio`` ``(B, 2, T)`` with [start, end) filled by a constant-power crossfade from the audio just before
    the gap (fading out) to the audio just after it (fading in); the context is looped if shorter than the gap.
    The no-model infill baseline of Levy et al. 2023."""
    gap = end - start
    ctx = min(gap, start, audio.shape[-1] - end)
    if ctx <= 0:
        raise InputError(
            f"a crossfade fill needs audio on both sides of the gap [{start}, {end}) in {audio.shape[-1]} samples"
        )
    reps = math.ceil(gap / ctx)
    before = audio[..., start - ctx : start].repeat(1, 1, reps)[..., -gap:]
    after = audio[..., end : end + ctx].repeat(1, 1, reps)[..., :gap]
    out = audio.clone()  # only the gap changes: cos(π/2) in float32 is not 0, so a full-length fade would leak
    out[..., start:end] = constant_power_crossfade(before, after, 0, gap)
    return out


def transition_problem(a_part: torch.Tensor, b_part: torch.Tensor, length: int, k: float = K_PRIOR) -> EditProblem:
    """A window of ``length`` samples: track A's last ``Ta`` samples fill [0, Ta), track B's first ``Tb`` fill
    [length − Tb, length); their overlap [length − Tb, Ta) is regenerated from a constant-power crossfade."""
    start, end = length - b_part.shape[-1], a_part.shape[-1]
    if not 0 < start < end < length:
        raise InputError(
            f"transition parts of {a_part.shape[-1]} and {b_part.shape[-1]} samples do not overlap inside a "
            f"{length}-sample window"
        )
    a = torch.nn.functional.pad(a_part, (0, length - end))
    b = torch.nn.functional.pad(b_part, (start, 0))
    mixed = constant_power_crossfade(a, b, start, end)
    return EditProblem(**{**infill_problem(mixed, start, end).__dict__, "prior": mixed, "k": k})


# ----------------------------------------------------------------------------------------------- solving


def initial_noise(
    y: torch.Tensor, mask: torch.Tensor, prior: torch.Tensor | None, k: float, generator: torch.Generator | None
) -> torch.Tensor:
    """x_T = Aᵀy + (I − AᵀA)·(z or k z + (1 − k) x̄) in model space ``(B, C, L)`` (Levy et al. 2023, §3.2)."""
    z = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    fill = z if prior is None else k * z + (1.0 - k) * prior
    return torch.where(mask > 0.5, y, fill)


def prior_start(
    y: torch.Tensor,
    mask: torch.Tensor,
    prior: torch.Tensor,
    t: torch.Tensor,
    alpha_sigma: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    generator: torch.Generator | None,
) -> torch.Tensor:
    """x_t = α_t (Aᵀy + (I − AᵀA) x̄) + σ_t z in model space ``(B, C, L)``: the measurement and the prior noised to
    level ``t`` (B,), the start of a partial walk (SDEdit, Meng et al. 2022, §3)."""
    alpha, sigma = alpha_sigma(t, y)
    clean = torch.where(mask > 0.5, y, prior)
    # the forward process from t = 0 (α = 1, σ = 0): the sampler's own re-noising
    return renoise(clean, torch.ones_like(alpha), torch.zeros_like(sigma), alpha, sigma, generator)


def reconstruction_term(
    problem: EditProblem, codec: Codec, y: torch.Tensor, mask: torch.Tensor, sampler: SamplerConfig, sample_rate: int
) -> Any:
    """d(y, A(x̂0)) as ``sampler`` says: L1 on the encoded measurement (``space="latent"``) or after the decoder
    (``"audio"``), the latter on the known audio within ``band_s`` seconds of the generated region only (all of it
    when None), compared as waveforms (``distance="l1"``) or as log-mel spectrograms (``"mel"``)."""
    if sampler.space == "latent":
        return L1Distance(y, mask, "latent")
    band = None if sampler.band_s is None else int(round(sampler.band_s * sample_rate))
    measured = problem.mask if band is None else problem.mask * (distance_to_unknown(problem.mask) <= band)
    if sampler.distance == "mel":
        return CroppedAudioMel(problem.y, measured, codec.decode, codec.hop, sample_rate=sample_rate)
    return CroppedAudioL1(problem.y, measured, codec.decode, codec.hop)


def solve(
    problem: EditProblem,
    model: EditModel,
    sampler: SamplerConfig | None = None,
    *,
    extra_terms: Sequence[Any] = (),
    extra_weights: Sequence[float] | None = None,
    margin: int = 0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Run any edit problem through the guided sampler with ``sampler`` (default ``model.sampler``); returns audio
    ``(B, 2, T)`` with the known region pasted back (bit-exact beyond ``margin`` samples from the generated region).

    ``xi=0`` samples with the replacement projection alone, building no terms and taking no gradients. A
    ``strength`` below 1 (regenerate and transitions only) walks from t = strength instead of 1, starting from the
    prior noised to that level: the lower, the more of the original survives. ``resample > 1`` walks every ``jump``
    steps that many times (RePaint), at that many times the network evaluations. ``extra_terms`` (any
    ``term(x0, audio) -> scalar`` with a ``space`` attribute, :mod:`guidance.terms`) join the reconstruction term
    with ``extra_weights``. A model that ``conditions_on_known`` is also shown the encoded measurement and its frame
    mask at every step.
    """
    sampler = model.sampler if sampler is None else sampler
    if sampler.strength < 1.0 and problem.prior is None:
        raise InputError(
            "a strength below 1 needs a prior x̄ to start from: use it with regenerate or a transition, not infill or "
            "continuation"
        )
    codec, length = model.codec, problem.y.shape[-1]
    with torch.no_grad():  # measurements are constants: no encoder graph may ride along the sampling loop
        y = codec.encode(problem.y)  # (B, C, L)
        prior = None if problem.prior is None else codec.encode(problem.prior)
    mask = latent_mask(problem.mask, codec.hop, y.shape[-1], getattr(codec, "erode", 0))  # (B, 1, L)
    ts = resampling_timesteps(sampler.steps, sampler.jump, sampler.resample) * sampler.strength
    if sampler.strength < 1.0:
        x_T = prior_start(y, mask, prior, ts[:1].expand(y.shape[0]), model.denoiser.alpha_sigma, generator)
    else:
        x_T = initial_noise(y, mask, prior, problem.k, generator)
    guidance = None  # ξ = 0: replacement-only (RePaint-style), no terms to build and no gradients at all
    if sampler.xi != 0:
        recon = reconstruction_term(problem, codec, y, mask, sampler, model.sample_rate)
        weights = [RECONSTRUCTION_WEIGHT[sampler.distance]] + list(
            extra_weights if extra_weights is not None else [1.0] * len(extra_terms)
        )
        guidance = Guidance(
            [recon, *extra_terms],
            weights,
            decode=lambda x0: codec.decode(x0, length),
            xi=sampler.xi,
            through_net=sampler.through_net,
            step=sampler.guidance_step,
        )
    project = ReplaceProjection(y, mask, model.denoiser.alpha_sigma)
    known = dict(known=y, known_mask=mask) if model.conditions_on_known else None
    x0 = sample(
        model.denoiser,
        x_T,
        ts,
        eta=sampler.eta,
        guidance=guidance,
        project=project,
        callback=callback,
        generator=generator,
        extra_args=known,
    )
    with torch.no_grad():
        audio = codec.decode(x0, length)
    if sampler.level_band_s is not None:
        band = int(round(sampler.level_band_s * model.sample_rate))
        audio = audio * level_correction(problem.y, audio, problem.mask, band)
    return paste_known(problem.y, audio, problem.mask, margin)


# ----------------------------------------------------------------------------------------------- public tasks


def _samples(model: EditModel, seconds: float) -> int:
    return int(round(seconds * model.sample_rate))


def _check_audio(audio: torch.Tensor, name: str = "audio") -> None:
    if audio.ndim != 3 or audio.shape[1] != 2:
        raise InputError(f"{name} must be stereo of shape (B, 2, T), got {tuple(audio.shape)}; load it with 2 channels")


RegionTerms = Callable[[torch.Tensor, int, int], tuple[list[Any], list[float]]]  # (window audio, region start, stop)


def _region_terms(region_terms: RegionTerms | None, chunk: torch.Tensor, a: int, b: int) -> dict[str, Any]:
    if region_terms is None:
        return {}
    terms, weights = region_terms(chunk, a, b)
    return {"extra_terms": terms, "extra_weights": weights}


def infill(
    model: EditModel,
    audio: torch.Tensor,
    start_s: float,
    end_s: float,
    *,
    sampler: SamplerConfig | None = None,
    margin_s: float = 0.05,
    region_terms: RegionTerms | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Generate [start_s, end_s) of ``audio`` ``(B, 2, N)`` (any length) from its surroundings; ``(B, 2, N)``. A
    region longer than one window is filled window by window (``guidance.windowing.edit_long``). ``region_terms``
    adds guidance terms as in :func:`regenerate` (the region's own samples never reach the sampler otherwise: they are
    unknown to it)."""
    _check_audio(audio)
    margin = _samples(model, margin_s)

    def edit(chunk: torch.Tensor, a: int, b: int) -> torch.Tensor:
        extra = _region_terms(region_terms, chunk, a, b)
        return solve(
            infill_problem(chunk, a, b), model, sampler, margin=margin, generator=generator, callback=callback, **extra
        )

    start, end = _samples(model, start_s), _samples(model, end_s)
    return edit_long(audio, start, end, model.window, margin, edit, chunked=True)


def regenerate(
    model: EditModel,
    audio: torch.Tensor,
    start_s: float,
    end_s: float,
    *,
    sampler: SamplerConfig | None = None,
    k: float = K_PRIOR,
    margin_s: float = 0.05,
    region_terms: RegionTerms | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Re-create [start_s, end_s) of ``audio`` ``(B, 2, N)`` keeping its context; ``(B, 2, N)``.

    ``region_terms(window, a, b) -> (terms, weights)`` adds guidance terms that need the model window's original
    audio ``(B, 2, window)`` or where the region lies in it (samples [a, b)), such as a style loss on the
    regenerated audio alone, or a pull toward the region's original notes.
    """
    _check_audio(audio)
    margin = _samples(model, margin_s)

    def edit(chunk: torch.Tensor, a: int, b: int) -> torch.Tensor:
        extra = _region_terms(region_terms, chunk, a, b)
        return solve(
            regenerate_problem(chunk, a, b, k),
            model,
            sampler,
            margin=margin,
            generator=generator,
            callback=callback,
            **extra,
        )

    return edit_long(audio, _samples(model, start_s), _samples(model, end_s), model.window, margin, edit)


def continuation(
    model: EditModel,
    audio: torch.Tensor,
    *,
    sampler: SamplerConfig | None = None,
    context_s: float = 2.4,
    margin_s: float = 0.05,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Continue ``audio`` ``(B, 2, N)`` from its last ``context_s`` seconds to fill one model window; returns
    the input followed by the new audio, ``(B, 2, N + window − context)``."""
    _check_audio(audio)
    ctx = min(_samples(model, context_s), audio.shape[-1])
    if not 0 < ctx < model.window:
        raise InputError(
            f"continuation context of {ctx} samples must be between 1 and the {model.window}-sample window; pass a "
            "shorter --context"
        )
    problem = continuation_problem(audio[..., -ctx:], model.window)
    window = solve(problem, model, sampler, margin=_samples(model, margin_s), generator=generator, callback=callback)
    return torch.cat([audio, window[..., ctx:]], dim=-1)


def transition(
    model: EditModel,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    sampler: SamplerConfig | None = None,
    fade_s: float = 2.5,
    k: float = K_PRIOR,
    margin_s: float = 0.05,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Join track ``a`` ``(B, 2, Na)`` into ``b`` ``(B, 2, Nb)`` through a regenerated ``fade_s`` crossfade in the
    middle of one window; returns ``(B, 2, Na + Nb − fade)`` with A and B untouched outside the window."""
    _check_audio(a, "track A")
    _check_audio(b, "track B")
    fade, n = _samples(model, fade_s), model.window
    start = (n - fade) // 2
    end = start + fade
    if not 0 < fade < n or a.shape[-1] < end or b.shape[-1] < n - start:
        raise InputError(
            f"transition needs a fade shorter than the {n}-sample window and tracks of at least {end} (A) and "
            f"{n - start} (B) samples"
        )
    problem = transition_problem(a[..., -end:], b[..., : n - start], n, k)
    window = solve(problem, model, sampler, margin=_samples(model, margin_s), generator=generator, callback=callback)
    return torch.cat([a[..., : a.shape[-1] - end], window, b[..., n - start :]], dim=-1)
