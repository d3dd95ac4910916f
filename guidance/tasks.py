"""Continuation, infill, regeneration and transitions (Levy et al. 2023, §4) on top of the one sampler.

A task only builds an :class:`EditProblem` (measurement y, known-mask, optional prior x̄); :func:`solve` turns
any problem into x_T, guidance terms and a projection for any model (latent: VAE codec; waveform: identity
codec) and runs :func:`guidance.sampler.sample`. Inside, audio is ``(B, 2, T)`` at the model's rate and masks
``(B, 1, T)`` with 1 = known. The verbs (:func:`infill`, :func:`regenerate`, :func:`continuation`,
:func:`transition`, and ``guidance.style_transfer.restyle``) take audio of any length, rate and channel count,
``(channels, T)``, and return it in the same format.

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

from musicprod_common.audio import SAMPLE_RATE, match_format, to_stereo
from musicprod_common.errors import InputError

from .codec import Codec, IdentityCodec, VAECodec, latent_mask
from .config import XI_LATENT, SamplerConfig, sampler_preset
from .denoiser import CosineSchedule, Denoiser
from .sampler import Callback, DenoiserLike, renoise, sample
from .schedule import resampling_timesteps
from .terms import CroppedAudioL1, CroppedAudioMel, Guidance, L1Distance
from .windowing import distance_to_unknown, edit_long, level_correction, paste_known, window_plan

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
    name: str = "model"  # the family ("latent", "waveform"), as messages and presets name it


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
        name="latent",
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
        name="waveform",
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


# ----------------------------------------------------------------------------------------------- model windows
# The tasks on audio in the model's own format, (B, 2, N) at model.sample_rate; the verbs below wrap them.


def _samples(model: EditModel, seconds: float) -> int:
    return int(round(seconds * model.sample_rate))


RegionTerms = Callable[[torch.Tensor, int, int], tuple[list[Any], list[float]]]  # (window audio, region start, stop)


def _region_terms(region_terms: RegionTerms | None, chunk: torch.Tensor, a: int, b: int) -> dict[str, Any]:
    if region_terms is None:
        return {}
    terms, weights = region_terms(chunk, a, b)
    return {"extra_terms": terms, "extra_weights": weights}


def _infill_windows(
    model: EditModel,
    audio: torch.Tensor,
    start: int,
    end: int,
    *,
    sampler: SamplerConfig,
    margin: int,
    region_terms: RegionTerms | None,
    generator: torch.Generator,
    callback: Callback | None,
) -> torch.Tensor:
    """Generate samples [start, end) of ``audio`` ``(B, 2, N)`` from their surroundings, window after window when
    the region is longer than one (``guidance.windowing.edit_long``)."""

    def edit(chunk: torch.Tensor, a: int, b: int) -> torch.Tensor:
        extra = _region_terms(region_terms, chunk, a, b)
        return solve(
            infill_problem(chunk, a, b), model, sampler, margin=margin, generator=generator, callback=callback, **extra
        )

    return edit_long(audio, start, end, model.window, margin, edit, chunked=True)


def _regenerate_window(
    model: EditModel,
    audio: torch.Tensor,
    start: int,
    end: int,
    *,
    sampler: SamplerConfig,
    k: float,
    margin: int,
    region_terms: RegionTerms | None,
    generator: torch.Generator,
    callback: Callback | None,
) -> torch.Tensor:
    """Re-create samples [start, end) of ``audio`` ``(B, 2, N)`` in the one window around them."""

    def edit(chunk: torch.Tensor, a: int, b: int) -> torch.Tensor:
        extra = _region_terms(region_terms, chunk, a, b)
        problem = regenerate_problem(chunk, a, b, k)
        return solve(problem, model, sampler, margin=margin, generator=generator, callback=callback, **extra)

    return edit_long(audio, start, end, model.window, margin, edit)


# ----------------------------------------------------------------------------------------------- the verbs
# Audio of any length, rate and channel count, ``(channels, T)``: only the model windows around an edit are
# converted to the model's format, and the edit is converted back and blended in, so every sample farther than
# ``margin`` seconds from it is the input's own, bit for bit, whatever the format.

DEFAULT_MARGIN = 0.05  # seconds of crossfade on each side of an edited region
Progress = Callable[[int], None]  # called with the number of sampling steps just completed


def _run(seed: int, progress: Progress | None) -> dict[str, Any]:
    """The random generator and step callback of one run: a CPU generator, so the same seed gives the same output."""
    callback = (lambda info: progress(1)) if progress is not None else None
    return {"generator": torch.Generator().manual_seed(seed), "callback": callback}


def to_model_audio(model: EditModel, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Any ``(channels, T)`` at any rate → ``(1, 2, T')`` float32 at the model's rate (mono duplicated)."""
    return to_stereo(audio, sample_rate, model.sample_rate).unsqueeze(0)


def from_model_audio(
    model: EditModel, audio: torch.Tensor, sample_rate: int, channels: int, length: int
) -> torch.Tensor:
    """``(1, 2, T')`` at the model's rate → ``(channels, length)`` at ``sample_rate``: the inverse of
    :func:`to_model_audio`. Mono takes the channel mean, so a duplicated mono signal comes back exactly."""
    x = match_format(audio[0].float(), model.sample_rate, sample_rate, channels)
    if x.shape[-1] < length:
        x = torch.nn.functional.pad(x, (0, length - x.shape[-1]))
    return x[..., :length]


def _window_in(model: EditModel, sample_rate: int) -> int:
    """One model window in samples at ``sample_rate``, rounded up."""
    return int(-(-model.window * sample_rate // model.sample_rate)) + 1


def max_region(model: EditModel, margin: float = DEFAULT_MARGIN) -> float:
    """The longest region (seconds) one model window can regenerate with ``margin`` seconds of blend each side."""
    return (model.window - 2 * _samples(model, margin)) / model.sample_rate


def windows_needed(model: EditModel, start: float, end: float, duration: float, margin: float = DEFAULT_MARGIN) -> int:
    """How many model windows :func:`infill` runs for [start, end) s of a ``duration``-second file: a progress
    bar's total is ``steps`` times this."""
    if end - start <= max_region(model, margin) + 1e-9:
        return 1
    s, e, m, n = (_samples(model, x) for x in (start, end, margin, duration))
    return len(window_plan(s, e, n, model.window, m))


def _edit_region(
    model: EditModel,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    margin: float,
    edit: Callable[[torch.Tensor, int, int], torch.Tensor],
    chunked: bool = False,
) -> torch.Tensor:
    """Run ``edit(model_audio (1, 2, N), start, end) -> (1, 2, N)`` on the segment of ``audio`` ``(channels, T)``
    that reaches one model window either side of [start, end) s, and paste it back; returns ``(channels, T)``. Only a
    ``chunked`` edit (infill) takes a region longer than one window minus the margins.

    So a 10-minute song costs no more than a short one. The edited segment is converted back to the input's rate
    and channels and pasted with the windowing's own crossfade, so samples farther than ``margin`` seconds from the
    region are the input's, bit for bit.
    """
    channels, total = audio.shape
    s0, e0 = int(round(start * sample_rate)), int(round(end * sample_rate))
    seconds = model.window / model.sample_rate
    if not 0 <= s0 < e0 <= total:
        raise InputError(
            f"region {start:g}-{end:g} s is empty or outside the audio (0-{total / sample_rate:.2f} s); pass 0 <= "
            "start < end <= length"
        )
    if _samples(model, margin) * 4 > model.window:  # window_plan keeps half a window of context: 2 margins fit
        raise InputError(
            f"--margin {margin:g} s is too wide for the {model.name} model's {seconds:.2f} s window; use at most "
            f"{seconds / 4:.2f} s"
        )
    longest = max_region(model, margin)
    if end - start > longest + 1e-9 and not chunked:
        raise InputError(
            f"region {start:g}-{end:g} s is {end - start:.2f} s long, but the {model.name} model regenerates at most "
            f"{longest:.2f} s at once (its {seconds:.2f} s window minus the margins); edit it in shorter pieces"
        )
    reach = _window_in(model, sample_rate)
    lo, hi = max(0, s0 - reach), min(total, e0 + reach)
    segment = audio[:, lo:hi]
    model_in = to_model_audio(model, segment, sample_rate)
    rel = lambda t: _samples(model, t - lo / sample_rate)  # noqa: E731 - model samples from the segment's start
    edited = edit(model_in, rel(start), rel(end))
    back = from_model_audio(model, edited, sample_rate, channels, hi - lo).to(audio.dtype)
    mask = torch.ones(1, 1, hi - lo)
    mask[..., s0 - lo : e0 - lo] = 0.0
    pasted = paste_known(segment.unsqueeze(0), back.unsqueeze(0), mask, int(round(margin * sample_rate)))[0]
    out = audio.clone()
    out[:, lo:hi] = pasted
    return out


def infill(
    model: EditModel,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    *,
    sampler: SamplerConfig | None = None,
    margin: float = DEFAULT_MARGIN,
    region_terms: RegionTerms | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Generate [start, end) s of ``audio`` ``(channels, T)`` at ``sample_rate`` from its surroundings; returns
    ``(channels, T)``, the input's own beyond ``margin`` s from the region.

    A region longer than one window is filled window by window (``guidance.windowing.edit_long``). ``sampler``
    defaults to the model's own; ``progress(n)`` is called after every sampling step (``steps`` calls per window,
    :func:`windows_needed`). ``region_terms`` adds guidance terms as in :func:`regenerate` (the region's own
    samples never reach the sampler otherwise: they are unknown to it).
    """
    run = dict(sampler=sampler or model.sampler, margin=_samples(model, margin), region_terms=region_terms)

    def edit(x: torch.Tensor, a: int, b: int) -> torch.Tensor:
        return _infill_windows(model, x, a, b, **run, **_run(seed, progress))

    return _edit_region(model, audio, sample_rate, start, end, margin, edit, chunked=True)


def regenerate(
    model: EditModel,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    *,
    sampler: SamplerConfig | None = None,
    k: float = K_PRIOR,
    margin: float = DEFAULT_MARGIN,
    region_terms: RegionTerms | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Re-create [start, end) s of ``audio`` ``(channels, T)`` starting from the original there, keeping its
    context; ``(channels, T)``. A ``sampler.strength`` below 1 keeps more of the original (:func:`solve`); the
    guarantees are :func:`infill`'s, for a region of at most one window (:func:`max_region`).

    ``region_terms(window, a, b) -> (terms, weights)`` adds guidance terms that need the model window's original
    audio ``(1, 2, window)`` or where the region lies in it (samples [a, b)), such as a style loss on the
    regenerated audio alone, or a pull toward the region's original notes.
    """
    run = dict(sampler=sampler or model.sampler, k=k, margin=_samples(model, margin), region_terms=region_terms)

    def edit(x: torch.Tensor, a: int, b: int) -> torch.Tensor:
        return _regenerate_window(model, x, a, b, **run, **_run(seed, progress))

    return _edit_region(model, audio, sample_rate, start, end, margin, edit)


def continuation(
    model: EditModel,
    audio: torch.Tensor,
    sample_rate: int,
    *,
    context: float = 2.4,
    sampler: SamplerConfig | None = None,
    margin: float = DEFAULT_MARGIN,
    seed: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """``audio`` ``(channels, T)`` followed by what the model continues from its last ``context`` seconds: one
    model window minus the context of new audio, in the input's format. The input is kept bit for bit except its
    last ``margin`` seconds, where it crossfades into the new audio."""
    channels, total = audio.shape
    ctx = min(total, int(round(context * sample_rate)))
    tail_in = audio[:, total - ctx :]
    tail = to_model_audio(model, tail_in, sample_rate)
    if not 0 < tail.shape[-1] < model.window:
        raise InputError(
            f"--context {context:g} s must be longer than one sample and shorter than the {model.name} model's "
            f"{model.window / model.sample_rate:.2f} s window; pass a shorter --context"
        )
    problem = continuation_problem(tail, model.window)
    run = dict(margin=_samples(model, margin), **_run(seed, progress))
    window = solve(problem, model, sampler or model.sampler, **run)
    out = torch.cat([tail, window[..., tail.shape[-1] :]], dim=-1)
    new_len = ctx + int(round((out.shape[-1] - tail.shape[-1]) * sample_rate / model.sample_rate))
    back = from_model_audio(model, out, sample_rate, channels, new_len).to(audio.dtype)
    mask = torch.zeros(1, 1, new_len)
    mask[..., :ctx] = 1.0
    known = torch.nn.functional.pad(tail_in, (0, new_len - ctx))
    pasted = paste_known(known.unsqueeze(0), back.unsqueeze(0), mask, int(round(margin * sample_rate)))[0]
    return torch.cat([audio[:, : total - ctx], pasted], dim=-1)


def continuation_length(model: EditModel, audio: torch.Tensor, sample_rate: int, context: float) -> int:
    """How many samples :func:`continuation` adds to ``audio`` ``(channels, T)`` with ``context`` seconds."""
    ctx = min(audio.shape[-1], int(round(context * sample_rate)))
    tail_len = to_model_audio(model, audio[:, audio.shape[-1] - ctx :], sample_rate).shape[-1]
    return int(round((model.window - tail_len) * sample_rate / model.sample_rate))


def transition(
    model: EditModel,
    a: torch.Tensor,
    b: torch.Tensor,
    sample_rate: int,
    *,
    fade: float = 2.5,
    sampler: SamplerConfig | None = None,
    k: float = K_PRIOR,
    margin: float = DEFAULT_MARGIN,
    seed: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Track ``a`` then ``b`` (both ``(channels, T)`` at ``sample_rate``) joined by a regenerated ``fade``-second
    crossfade in the middle of one model window (Levy et al. 2023, §4); returns ``(channels, Ta + Tb − fade)``.

    The fade starts from the two tracks' constant-power crossfade with weight 1 − ``k`` against fresh noise; a
    ``sampler.strength`` below 1 keeps more of it. When the model runs at ``sample_rate``, A and B are untouched
    farther than ``margin`` s from the fade; at other rates, outside the model window.
    """
    channels = a.shape[0]
    fade_n = int(round(fade * sample_rate))
    win = _window_in(model, sample_rate)
    if not 0 < fade_n <= min(a.shape[1], b.shape[1]):
        raise InputError(
            f"a {fade:g} s transition needs both tracks at least that long "
            f"(got {a.shape[1] / sample_rate:.2f} s and {b.shape[1] / sample_rate:.2f} s)"
        )
    a_tail, b_head = a[:, max(0, a.shape[1] - win) :], b[:, :win]
    # Tracks shorter than a window are padded with silence for the model and cropped back afterwards.
    pad_a, pad_b = win - a_tail.shape[1], win - b_head.shape[1]
    a_in = to_model_audio(model, torch.nn.functional.pad(a_tail, (pad_a, 0)), sample_rate)
    b_in = to_model_audio(model, torch.nn.functional.pad(b_head, (0, pad_b)), sample_rate)
    fade_m, n = _samples(model, fade), model.window
    start = (n - fade_m) // 2
    end = start + fade_m
    if not 0 < fade_m < n or a_in.shape[-1] < end or b_in.shape[-1] < n - start:
        raise InputError(
            f"a {fade:g} s transition needs a fade shorter than the {model.name} model's "
            f"{n / model.sample_rate:.2f} s window"
        )
    problem = transition_problem(a_in[..., -end:], b_in[..., : n - start], n, k)
    run = dict(margin=_samples(model, margin), **_run(seed, progress))
    window = solve(problem, model, sampler or model.sampler, **run)
    joined = torch.cat([a_in[..., : a_in.shape[-1] - end], window, b_in[..., n - start :]], dim=-1)
    middle = from_model_audio(model, joined, sample_rate, channels, 2 * win - fade_n).to(a.dtype)
    middle = middle[:, pad_a : middle.shape[1] - pad_b]
    return torch.cat([a[:, : a.shape[1] - a_tail.shape[1]], middle, b[:, b_head.shape[1] :]], dim=-1)
