"""The recipe layer: load the shipped models by name, run a guidance task on audio of any length and format.

Sampling, windowing, the tasks and audio I/O all live elsewhere (``guidance``, ``musicprod_common.audio``);
this module only wires them together for whole files:

    models = load_models("latent")                       # checkpoints/{vae,dit}/ or checkpoints/unet/
    out = inpaint(models, audio, sr, start=30.0, end=32.0, seed=0)  # sampler=sampler_preset("latent").but(steps=100)

``audio`` is ``(channels, T)`` at any sample rate; the result has the same shape, rate and dtype, and is
bit-identical to the input outside the region and its crossfade margins (the window is processed at
44.1 kHz stereo and only the edited span is converted back and blended in). Nothing here prints.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from guidance import tasks
from guidance.config import SamplerConfig, sampler_preset
from guidance.style_transfer import CHROMA_WEIGHT, CLASSIFIER_WEIGHT
from guidance.style_transfer import restyle as restyle_task
from guidance.tasks import RECONSTRUCTION_WEIGHT, EditModel, latent_edit_model, waveform_edit_model
from guidance.terms import CroppedAudioMel
from guidance.windowing import paste_known, window_plan
from latent_diffusion import DiT
from musicprod_common.audio import SAMPLE_RATE, to_stereo_44k
from musicprod_common.errors import InputError
from musicprod_common.passages import MIN_REFERENCE_S, Match, features, find_chain, find_passages
from musicprod_common.passages import THRESHOLD as MATCH_THRESHOLD
from musicprod_common.resources import shipped
from musicprod_common.splice import SplicePlan, plan_fill, render
from vae import SpectrogramVAE
from waveform_diffusion import WaveformUNet

MODEL_KINDS = ("latent", "waveform")

Progress = Callable[[int], None]  # called with the number of sampling steps just completed


def default_checkpoints() -> Path:
    """``$MUSICPROD_CHECKPOINTS`` or the shipped ``checkpoints/`` folder (``musicprod_common.resources.shipped``)."""
    return Path(os.environ.get("MUSICPROD_CHECKPOINTS") or shipped("checkpoints"))


@dataclass
class Models:
    """One model family, ready to sample: ``net`` is a DiT (with ``vae``) or a waveform U-Net (``vae is None``)."""

    kind: str
    net: torch.nn.Module
    vae: torch.nn.Module | None = None

    @property
    def window_samples(self) -> int:
        """Samples at 44.1 kHz the network sees at once."""
        if self.kind == "latent":
            return self.net.config.window_samples
        return self.net.config.window


def _checkpoint_folder(root: Path, name: str) -> Path:
    folder = root / name
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{folder}: no checkpoint there (config.json + model.safetensors); pass --checkpoints DIR holding "
            f"vae/, dit/ and unet/, or set MUSICPROD_CHECKPOINTS"
        )
    return folder


def load_models(kind: str = "latent", checkpoints: str | os.PathLike | None = None) -> Models:
    """Load ``kind`` ∈ {"latent", "waveform"} from ``checkpoints/{vae,dit}`` or ``checkpoints/unet``, in eval mode."""
    if kind not in MODEL_KINDS:
        raise InputError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    root = Path(checkpoints) if checkpoints is not None else default_checkpoints()
    if kind == "latent":
        vae = SpectrogramVAE.from_pretrained(_checkpoint_folder(root, "vae"))
        dit = DiT.from_pretrained(_checkpoint_folder(root, "dit"))
        if (dit.config.in_channels, dit.config.hop_samples) != (vae.config.latent_channels, vae.latent_hop):
            raise InputError(
                f"{root}: the DiT expects {dit.config.in_channels}-channel latents every {dit.config.hop_samples} "
                f"samples but the VAE makes {vae.config.latent_channels} every {vae.latent_hop}; "
                "ship checkpoints trained together"
            )
        return Models("latent", dit.eval().requires_grad_(False), vae.eval().requires_grad_(False))

    unet = WaveformUNet.from_pretrained(_checkpoint_folder(root, "unet"))
    return Models("waveform", unet.eval().requires_grad_(False))


# ----------------------------------------------------------------------------------------------- model → task


def edit_model(models: Models) -> EditModel:
    """The guidance tasks' view of ``models`` (denoiser, codec, window, sampler preset), built by guidance itself."""

    if models.kind == "latent":
        return latent_edit_model(models.net, models.vae)
    return waveform_edit_model(models.net)


def _sampler(models: Models, sampler: SamplerConfig | None, edit: str = "infill") -> SamplerConfig:
    """``sampler``, or the preset for this model family and ``edit`` (:func:`guidance.config.sampler_preset`)."""
    return sampler if sampler is not None else sampler_preset(models.kind, edit)


def _run(seed: int, progress: Progress | None) -> dict:
    """The random generator and step callback of one run: a CPU generator, so the same seed gives the same output."""
    callback = (lambda info: progress(1)) if progress is not None else None
    return {"generator": torch.Generator().manual_seed(seed), "callback": callback}


# ----------------------------------------------------------------------------------------------- formats


def to_model_audio(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Any ``(channels, T)`` at any rate → ``(1, 2, T')`` float32 at 44.1 kHz (mono duplicated, others resampled)."""

    return to_stereo_44k(audio, sample_rate).unsqueeze(0)


def from_model_audio(audio: torch.Tensor, sample_rate: int, channels: int, length: int) -> torch.Tensor:
    """``(1, 2, T')`` at 44.1 kHz → ``(channels, length)`` at ``sample_rate``: the inverse of :func:`to_model_audio`.

    Mono takes the channel mean, so a duplicated mono signal comes back exactly.
    """
    x = match_format(audio[0].float(), SAMPLE_RATE, sample_rate, channels)
    if x.shape[-1] < length:
        x = torch.nn.functional.pad(x, (0, length - x.shape[-1]))
    return x[..., :length]


def max_region(models: Models, margin: float = 0.05) -> float:
    """The longest region (seconds) one model window can regenerate with ``margin`` seconds of blend each side."""
    return (models.window_samples - 2 * int(round(margin * SAMPLE_RATE))) / SAMPLE_RATE


def _segment_bounds(start: int, end: int, total: int, reach: int) -> tuple[int, int]:
    """The slice of the file the model can touch when editing [start, end): the region ± one window."""
    return max(0, start - reach), min(total, end + reach)


def _edit_region(
    models: Models,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    margin: float,
    task: Callable[..., torch.Tensor],
    kwargs: dict,
    chunked: bool = False,
) -> torch.Tensor:
    """Run a region task (infill/regenerate) on ``audio`` ``(channels, T)`` and return ``(channels, T)``; only a
    ``chunked`` task (infill) takes a region longer than one window minus the margins.

    Only a segment of one model window either side of the region is converted to 44.1 kHz stereo, so a
    10-minute song costs no more than a short one. The edited segment is converted back to the input's rate
    and channels and pasted with the windowing's own crossfade, so samples farther than ``margin`` seconds
    from the region are the input's, bit for bit, whatever the input format.
    """

    channels, total = audio.shape
    s0, e0 = int(round(start * sample_rate)), int(round(end * sample_rate))
    if not 0 <= s0 < e0 <= total:
        raise InputError(
            f"region {start:g}-{end:g} s is empty or outside the audio (0-{total / sample_rate:.2f} s); pass 0 <= "
            "start < end <= length"
        )
    if margin * SAMPLE_RATE * 4 > models.window_samples:  # window_plan keeps half a window of context: 2 margins fit
        raise InputError(
            f"--margin {margin:g} s is too wide for the {models.kind} model's "
            f"{models.window_samples / SAMPLE_RATE:.2f} s "
            f"window; use at most {models.window_samples / SAMPLE_RATE / 4:.2f} s"
        )
    longest = max_region(models, margin)
    if end - start > longest + 1e-9 and not chunked:
        raise InputError(
            f"region {start:g}-{end:g} s is {end - start:.2f} s long, but the {models.kind} model regenerates at most "
            f"{longest:.2f} s at once (its {models.window_samples / SAMPLE_RATE:.2f} s window minus the margins); "
            "edit it in shorter pieces"
        )
    reach = int(-(-models.window_samples * sample_rate // SAMPLE_RATE)) + 1  # one window, in input samples
    lo, hi = _segment_bounds(s0, e0, total, reach)
    segment = audio[:, lo:hi]
    model_in = to_model_audio(segment, sample_rate)
    em = edit_model(models)
    rel = lambda t: t - lo / sample_rate  # noqa: E731 - seconds relative to the segment
    edited = task(em, model_in, rel(start), rel(end), margin_s=margin, **kwargs)
    back = from_model_audio(edited, sample_rate, channels, hi - lo).to(audio.dtype)
    mask = torch.ones(1, 1, hi - lo)
    mask[..., s0 - lo : e0 - lo] = 0.0
    margin_in = int(round(margin * sample_rate))
    pasted = paste_known(segment.unsqueeze(0), back.unsqueeze(0), mask, margin_in)[0]
    out = audio.clone()
    out[:, lo:hi] = pasted
    return out


# ----------------------------------------------------------------------------------------------- tasks on whole files

DEFAULT_MARGIN = 0.05  # seconds of crossfade on each side of an edited region
LEVEL_BAND_S = 1.0  # seconds of original audio each side of a region on which --match-level measures the codec's level


def generate(
    models: Models,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    *,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Generate [start, end) s of ``audio`` ``(channels, T)`` at ``sample_rate`` from its surroundings with the model.

    Returns ``(channels, T)``; identical to the input beyond ``margin`` s from the region. ``sampler`` defaults to
    the model family's preset; ``progress(n)`` is called after every sampling step (``steps`` calls per window).
    """

    run = {"sampler": _sampler(models, sampler), **_run(seed, progress)}
    return _edit_region(models, audio, sample_rate, start, end, margin, tasks.infill, run, chunked=True)


def windows_needed(models: Models, start: float, end: float, duration: float, margin: float = DEFAULT_MARGIN) -> int:
    """How many model windows (each ``steps`` sampling steps) :func:`inpaint` runs for [start, end) s of a
    ``duration``-second file: the progress bar's total is ``steps`` times this."""
    if end - start <= max_region(models, margin) + 1e-9:
        return 1

    s, e, m, n = (int(round(x * SAMPLE_RATE)) for x in (start, end, margin, duration))
    return len(window_plan(s, e, n, models.window_samples, m))


def regenerate(
    models: Models,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    *,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Re-create [start, end) s of ``audio`` ``(channels, T)`` starting from the original there; ``(channels, T)``.
    A ``sampler.strength`` below 1 keeps more of the original (``guidance.tasks.solve``); otherwise as
    :func:`generate`."""

    run = {"sampler": _sampler(models, sampler), **_run(seed, progress)}
    return _edit_region(models, audio, sample_rate, start, end, margin, tasks.regenerate, run)


# ----------------------------------------------------------------------------------------------- song-aware inpainting

INPAINT_SOURCES = ("auto", "song", "model")
REFINEMENTS = ("none", "seams", "sdedit", "target")
# How a copied passage goes through the model, if at all. "none" sends the copied samples out untouched; the
# others were measured against it on valid songs (BENCHMARKS.md, "Song-aware inpainting"), which chose this default.
DEFAULT_REFINE = "none"
SEAM_WINDOW_S = 0.25  # "seams": seconds of the copy next to each seam that the model regenerates
REFINE_STRENGTH = 0.5  # "seams" and "sdedit": the noise level the sampler starts the copy from
TARGET_WEIGHT = 0.3  # "target": the copy's pull inside the gap, relative to the known context's
CHAIN_MIN_S = 4.0  # regions at least this long that no single passage fills may chain two (passages.find_chain)


@dataclass
class RegionPlan:
    """What :func:`inpaint_regions` does with one region [start, end) s: copy ``splice`` (a plan over the song and
    its references) or, when ``splice`` is None, generate it with the model. ``best`` is the best passage found
    (None when the song was not searched, or when too little audio surrounds the region to match)."""

    start: float
    end: float
    best: Match | None = None
    splice: SplicePlan | None = None
    threshold: float = MATCH_THRESHOLD

    @property
    def copied(self) -> bool:
        return self.splice is not None

    def describe(self, sources: Sequence[str] = ("the song",), model: str = "latent", refine: str = "none") -> str:
        """One line on what was done, e.g. ``copied 61.3-63.3 s from 121.8 s of the song (match 0.83)``; ``sources``
        names the song and each reference."""
        region = f"{self.start:.2f}-{self.end:.2f} s"
        if self.splice is not None:
            how = {
                "none": "",
                "seams": f", seams refined by the {model} model",
                "sdedit": f", regenerated from the copy by the {model} model",
                "target": f", generated toward the copy by the {model} model",
            }[refine]
            return f"copied {region} from {_pieces_text(self.splice, sources)} (match {self.best.score:.2f}){how}"
        if self.best is None:
            return (
                f"generated {region} with the {model} model (too little audio around the region to look for a passage)"
            )
        return (
            f"generated {region} with the {model} model: no passage matched (best {self.best.score:.2f} < "
            f"{self.threshold:.2f}, at {self.best.start_s:.2f} s of {sources[self.best.source]})"
        )


def _pieces_text(splice: SplicePlan, sources: Sequence[str]) -> str:
    """Where a copy came from: ``12.30 s of the song``, with the second passage of a chain and level changes."""
    sr, pieces = splice.sample_rate, splice.pieces
    first = pieces[0]
    text = f"{(splice.region[0] + first.shift) / sr:.2f} s of {sources[first.source]}"
    if len(pieces) == 2:
        second, at = pieces[1], splice.seams[int(splice.song_before)].at
        text += f", then from {at / sr:.2f} s on, {(at + second.shift) / sr:.2f} s of {sources[second.source]}"
    gains = [p.gain for p in pieces if p.gain != 1.0]
    if gains:
        text += f", level {' and '.join(f'{20 * math.log10(g):+.1f} dB' for g in gains)}"
    return text


@dataclass
class InpaintResult:
    """The edited audio ``(channels, T)`` and, per region, what was done."""

    audio: torch.Tensor
    plans: list[RegionPlan]


def check_regions(regions: Sequence[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Regions (seconds) sorted by start, each inside [0, ``duration``] and none overlapping another."""
    out = sorted((float(a), float(b)) for a, b in regions)
    if not out:
        raise InputError("no region to inpaint; pass --start and --end")
    for a, b in out:
        if not 0 <= a < b <= duration + 1e-9:
            raise InputError(
                f"region {a:g}-{b:g} s is empty or outside the audio (0-{duration:.2f} s); pass 0 <= start < end <= "
                "length"
            )
    for (a0, b0), (a1, b1) in zip(out, out[1:]):
        if a1 < b0:
            raise InputError(f"regions {a0:g}-{b0:g} s and {a1:g}-{b1:g} s overlap; merge them into one")
    return out


def prepare_references(
    references: Sequence[tuple[torch.Tensor, int]], sample_rate: int, channels: int, names: Sequence[str] | None = None
) -> list[torch.Tensor]:
    """Reference recordings ``(audio (c, T), rate)`` checked (one line each) and brought to the song's rate and
    channel count."""
    out = []
    for i, (ref, rate) in enumerate(references):
        name = names[i] if names is not None else f"reference {i + 1}"
        if ref.dim() != 2 or ref.shape[0] not in (1, 2):
            raise InputError(
                f"{name}: has {ref.shape[0] if ref.dim() == 2 else 'no'} channels; only mono and stereo are "
                "supported, downmix it first"
            )
        if not torch.isfinite(ref).all():
            raise InputError(f"{name}: contains NaN or infinite samples; repair or re-export the file")
        ref = match_format(ref.float(), rate, sample_rate, channels)
        if ref.shape[-1] < MIN_REFERENCE_S * sample_rate:
            raise InputError(
                f"{name}: {ref.shape[-1] / sample_rate:.2f} s is shorter than the {MIN_REFERENCE_S:g} s a passage "
                "and its context need; pass a longer recording"
            )
        out.append(ref)
    return out


def plan_inpaint(
    audio: torch.Tensor,
    sample_rate: int,
    regions: Sequence[tuple[float, float]],
    *,
    source: str = "auto",
    references: Sequence[torch.Tensor] = (),
    margin: float = DEFAULT_MARGIN,
    threshold: float = MATCH_THRESHOLD,
    reference_names: Sequence[str] | None = None,
) -> list[RegionPlan]:
    """Decide, for each region (seconds) of ``audio`` ``(channels, T)``, whether to copy a passage of the song or of
    ``references`` (in the song's rate and channels: :func:`prepare_references`) or to generate it.

    ``source="auto"`` copies the best passage when its calibrated score reaches ``threshold`` and generates
    otherwise; ``"song"`` copies or fails (an :class:`InputError` gives the best score and the threshold);
    ``"model"`` always generates. Every region is excluded from every search, so no copy comes from a part
    that is itself being repaired. Needs no model: a few tenths of a second for a 10-minute song.
    """
    if source not in INPAINT_SOURCES:
        raise InputError(f"unknown source {source!r}; choose one of {', '.join(INPAINT_SOURCES)}")
    regions = check_regions(regions, audio.shape[-1] / sample_rate)
    if source == "model":
        return [RegionPlan(a, b, threshold=threshold) for a, b in regions]
    names = ["the song", *(reference_names or [f"reference {i + 1}" for i in range(len(references))])]
    song_features = features(audio, sample_rate)
    ref_features = [features(r, sample_rate) for r in references]
    plans = []
    for a, b in regions:
        others = [r for r in regions if r != (a, b)]
        search = dict(
            references=references, exclude=others, song_features=song_features, reference_features=ref_features
        )
        matches = find_passages(audio, sample_rate, (a, b), top=1, **search)
        best, right = (matches[0] if matches else None), None
        if b - a >= CHAIN_MIN_S and (best is None or best.score < threshold):
            chain = find_chain(audio, sample_rate, (a, b), **search)
            if chain is not None and (best is None or chain[0].score > best.score):
                best, right = chain
        if best is not None and best.score >= threshold:
            splice = plan_fill(
                audio,
                [audio, *references],
                best,
                int(round(margin * sample_rate)),
                sample_rate=sample_rate,
                right=right,
            )
            plans.append(RegionPlan(a, b, best, splice, threshold))
        elif source == "song":
            found = (
                f"the best, at {best.start_s:.2f} s of {names[best.source]}, scores {best.score:.2f} (threshold "
                f"{threshold:.2f})"
                if best is not None
                else "too little audio surrounds it to match"
            )
            raise InputError(
                f"no passage can fill {a:g}-{b:g} s: {found}; use --source auto or model, or add a --reference"
            )
        else:
            plans.append(RegionPlan(a, b, best, None, threshold))
    return plans


def _refine_spans(plan: RegionPlan, refine: str, models: Models, margin: float) -> list[tuple[float, float]]:
    """The spans (seconds) the model regenerates to refine a copied region, one model window each."""
    if refine == "none":
        return []
    a, b = plan.start, plan.end
    fits = b - a <= max_region(models, margin) + 1e-9
    if refine != "seams" or b - a <= 2 * SEAM_WINDOW_S:
        return [(a, b)] if fits else []  # sdedit and target need the whole region in one window
    sr, splice = plan.splice.sample_rate, plan.splice
    inner = splice.seams[int(splice.song_before) : len(splice.seams) - int(splice.song_after)]
    w = SEAM_WINDOW_S
    return (
        ([(a, a + w)] if splice.song_before else [])
        + [(s.at / sr - w / 2, s.at / sr + w / 2) for s in inner]
        + ([(b - w, b)] if splice.song_after else [])
    )


def model_windows(
    models: Models,
    plans: Sequence[RegionPlan],
    duration: float,
    refine: str = DEFAULT_REFINE,
    margin: float = DEFAULT_MARGIN,
) -> int:
    """How many model windows :func:`inpaint_regions` runs: the progress bar's total is ``steps`` times this."""
    return sum(
        windows_needed(models, p.start, p.end, duration, margin)
        if p.splice is None
        else len(_refine_spans(p, refine, models, margin))
        for p in plans
    )


def needs_model(plans: Sequence[RegionPlan], refine: str = DEFAULT_REFINE) -> bool:
    """Whether carrying out ``plans`` runs the model (a fill it generates, or a copy it refines)."""
    return any(p.splice is None or refine != "none" for p in plans)


def inpaint_regions(
    models: Models | None,
    audio: torch.Tensor,
    sample_rate: int,
    plans: Sequence[RegionPlan],
    *,
    references: Sequence[torch.Tensor] = (),
    refine: str = DEFAULT_REFINE,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> InpaintResult:
    """Carry out :func:`plan_inpaint`'s ``plans`` on ``audio`` ``(channels, T)``: splice the copies, generate the rest.

    ``refine`` also sends the copies through the model: "seams" regenerates :data:`SEAM_WINDOW_S` of the copy next
    to each seam, "sdedit" regenerates the whole copy from itself noised to :data:`REFINE_STRENGTH`, "target"
    generates the region with the copy as a second reconstruction target; "none" keeps the copied samples as they
    are. Region i is sampled with ``sampler`` (default: the model family's preset) and seed ``seed + i``. Every
    sample farther than ``margin`` s from a region is the input's own. ``models`` may be None when
    :func:`needs_model` says so.
    """
    if refine not in REFINEMENTS:
        raise InputError(f"unknown refinement {refine!r}; choose one of {', '.join(REFINEMENTS)}")
    if models is None and needs_model(plans, refine):
        raise InputError("these fills need the model, but none was given")
    sources = [audio, *references]
    out = audio
    for i, plan in enumerate(plans):
        run = dict(seed=seed + i, margin=margin, progress=progress)
        if plan.splice is None:
            out = generate(models, out, sample_rate, plan.start, plan.end, sampler=sampler, **run)
            continue
        out = render(out, sources, plan.splice)
        if refine == "target" and _refine_spans(plan, refine, models, margin):
            task_run = {"sampler": _sampler(models, sampler), **_run(seed + i, progress)}
            out = _edit_region(models, out, sample_rate, plan.start, plan.end, margin, _infill_toward_copy, task_run)
        elif refine != "target":
            from_copy = _sampler(models, sampler).but(strength=REFINE_STRENGTH)
            for a, b in _refine_spans(plan, refine, models, margin):
                out = regenerate(models, out, sample_rate, a, b, sampler=from_copy, **run)
    return InpaintResult(out, list(plans))


def _infill_toward_copy(
    em: EditModel, audio: torch.Tensor, start_s: float, end_s: float, **task: object
) -> torch.Tensor:
    """Infill [start_s, end_s) of ``audio`` ``(1, 2, N)``, whose region holds a copied passage, with the copy's log-mel
    spectrum as a reconstruction target inside the region at :data:`TARGET_WEIGHT` of the context's weight (after
    SimDPS, which puts retrieved candidates into diffusion posterior sampling): the fill is drawn toward the copy but
    stays free to make the joins agree with the context."""

    def toward(window: torch.Tensor, a: int, b: int) -> tuple[list, list[float]]:
        inside = torch.zeros_like(window[:, :1])
        inside[..., a:b] = 1.0
        term = CroppedAudioMel(window, inside, em.codec.decode, em.codec.hop, sample_rate=em.sample_rate)
        return [term], [TARGET_WEIGHT * RECONSTRUCTION_WEIGHT[task["sampler"].distance]]

    return tasks.infill(em, audio, start_s, end_s, region_terms=toward, **task)


def inpaint(
    models: Models | None,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    *,
    source: str = "auto",
    references: Sequence[tuple[torch.Tensor, int]] = (),
    refine: str = DEFAULT_REFINE,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Fill [start, end) s of ``audio`` ``(channels, T)`` at ``sample_rate``: with the song's own matching passage
    (or one of ``references``, each ``(audio, rate)``) where one scores high enough, with the model otherwise
    (``source``: "auto", "song" or "model"; see :func:`plan_inpaint` and :func:`inpaint_regions`).

    Returns ``(channels, T)``, identical to the input beyond ``margin`` s from the region.
    """
    refs = prepare_references(references, sample_rate, audio.shape[0])
    plans = plan_inpaint(audio, sample_rate, [(start, end)], source=source, references=refs, margin=margin)
    return inpaint_regions(
        models,
        audio,
        sample_rate,
        plans,
        references=refs,
        refine=refine,
        sampler=sampler,
        seed=seed,
        margin=margin,
        progress=progress,
    ).audio


def restyle(
    models: Models,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    *,
    embedder: torch.nn.Module,
    reference: torch.Tensor | None = None,
    reference_rate: int = SAMPLE_RATE,
    target_class: int | None = None,
    weight: float = 1.0,
    classifier_weight: float = CLASSIFIER_WEIGHT,
    chroma_weight: float = CHROMA_WEIGHT,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Re-create [start, end) s of ``audio`` ``(channels, T)`` in the style of ``reference`` ``(channels, Tr)`` at
    ``reference_rate`` and/or toward the ``embedder``'s class ``target_class``; ``(channels, T)``.

    ``embedder`` is the PaSST classifier (``guidance.passt``); ``chroma_weight`` (0 turns it off) pulls the region
    toward its own original notes (``guidance.style_guidance.ChromaGuidance``). ``sampler`` defaults to the model
    family's ``"style"`` preset (:func:`guidance.config.sampler_preset`); the guarantees are :func:`regenerate`'s.
    The style is measured on the region only (``guidance.style_transfer.restyle``).
    """

    task = {
        "embedder": embedder,
        "reference": None if reference is None else to_model_audio(reference, reference_rate),
        "target_class": target_class,
        "weight": weight,
        "classifier_weight": classifier_weight,
        "chroma_weight": chroma_weight,
        "sampler": _sampler(models, sampler, "style"),
        **_run(seed, progress),
    }
    return _edit_region(models, audio, sample_rate, start, end, margin, restyle_task, task)


def continue_song(
    models: Models,
    audio: torch.Tensor,
    sample_rate: int,
    *,
    context: float = 2.4,
    source: str = "auto",
    refine: str = DEFAULT_REFINE,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    threshold: float = MATCH_THRESHOLD,
    progress: Progress | None = None,
) -> InpaintResult:
    """``audio`` ``(channels, T)`` followed by one model window minus ``context`` seconds of new audio, same format.

    Music repeats: where the song's last bars occurred before (a left-context match of :data:`CONTEXT_S`), what
    followed them there is copied on (``source`` "auto" and "song" when its score reaches ``threshold``; "song" fails
    otherwise, "model" never copies); otherwise the model continues the song's last ``context`` seconds, sampled with
    ``sampler`` (default the family's preset). ``refine`` as in :func:`inpaint_regions`.
    The input is kept bit for bit except its last ``margin`` seconds, where it crossfades into the new audio.
    """
    channels, total = audio.shape
    ctx = min(total, int(round(context * sample_rate)))
    if ctx < 1:
        raise InputError(f"--context {context:g} s is shorter than one sample")
    tail_len = to_model_audio(audio[:, total - ctx :], sample_rate).shape[-1]  # as the model will see it
    added = int(round((models.window_samples - tail_len) * sample_rate / SAMPLE_RATE))
    if added < 1:
        raise InputError(
            f"--context {context:g} s leaves nothing to add in the {models.kind} model's window; pass a shorter "
            "--context"
        )
    region = (total / sample_rate, (total + added) / sample_rate)
    plan = RegionPlan(*region, threshold=threshold)
    if source not in INPAINT_SOURCES:
        raise InputError(f"unknown source {source!r}; choose one of {', '.join(INPAINT_SOURCES)}")
    if source != "model":
        matches = find_passages(audio, sample_rate, region, top=1)
        plan.best = matches[0] if matches else None
        if plan.best is not None and plan.best.score >= threshold:
            padded = torch.nn.functional.pad(audio, (0, added))
            plan.splice = plan_fill(
                padded, [padded], plan.best, int(round(margin * sample_rate)), sample_rate=sample_rate
            )
            run = dict(refine=refine, sampler=sampler, seed=seed, margin=margin, progress=progress)
            return inpaint_regions(models, padded, sample_rate, [plan], **run)
        if source == "song":
            found = (
                f"the best, at {plan.best.start_s:.2f} s, scores {plan.best.score:.2f} (threshold {threshold:.2f})"
                if plan.best is not None
                else "the song is too short to hold a repeat"
            )
            raise InputError(f"no earlier passage of the song continues its end: {found}; use --source auto or model")
    run = dict(sampler=_sampler(models, sampler), margin=margin, **_run(seed, progress))
    return InpaintResult(_continue_with_model(models, audio, sample_rate, ctx, **run), [plan])


def _continue_with_model(
    models: Models,
    audio: torch.Tensor,
    sample_rate: int,
    ctx: int,
    *,
    sampler: SamplerConfig,
    margin: float,
    generator: torch.Generator,
    callback: Callable | None,
) -> torch.Tensor:
    """The model's continuation of the last ``ctx`` samples of ``audio`` ``(channels, T)``, appended to it."""

    channels, total = audio.shape
    tail_in = audio[:, total - ctx :]
    tail = to_model_audio(tail_in, sample_rate)
    context_s = tail.shape[-1] / SAMPLE_RATE
    out = tasks.continuation(
        edit_model(models),
        tail,
        sampler=sampler,
        context_s=context_s,
        margin_s=margin,
        generator=generator,
        callback=callback,
    )
    new_len = ctx + int(round((out.shape[-1] - tail.shape[-1]) * sample_rate / SAMPLE_RATE))
    back = from_model_audio(out, sample_rate, channels, new_len).to(audio.dtype)
    mask = torch.zeros(1, 1, new_len)
    mask[..., :ctx] = 1.0
    known = torch.nn.functional.pad(tail_in, (0, new_len - ctx))
    pasted = paste_known(known.unsqueeze(0), back.unsqueeze(0), mask, int(round(margin * sample_rate)))[0]
    return torch.cat([audio[:, : total - ctx], pasted], dim=-1)


def continue_audio(models: Models, audio: torch.Tensor, sample_rate: int, **kwargs) -> torch.Tensor:
    """:func:`continue_song`'s audio alone."""
    return continue_song(models, audio, sample_rate, **kwargs).audio


def transition(
    models: Models,
    a: torch.Tensor,
    b: torch.Tensor,
    sample_rate: int,
    *,
    fade: float = 2.5,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Track ``a`` then ``b`` (both ``(channels, T)`` at ``sample_rate``) joined by a regenerated ``fade``-second
    crossfade; returns ``(channels, Ta + Tb − fade)``. At 44.1 kHz, A and B are untouched farther than ``margin``
    seconds from the crossfade; at other rates the model window is resampled, so only outside the window.
    ``sampler`` defaults to the family's preset (a ``strength`` below 1 keeps more of the plain crossfade)."""

    em = edit_model(models)
    channels = a.shape[0]
    fade_n = int(round(fade * sample_rate))
    win = int(-(-models.window_samples * sample_rate // SAMPLE_RATE)) + 1
    if not 0 < fade_n <= min(a.shape[1], b.shape[1]):
        raise InputError(
            f"a {fade:g} s transition needs both tracks at least that long "
            f"(got {a.shape[1] / sample_rate:.2f} s and {b.shape[1] / sample_rate:.2f} s)"
        )
    a_tail, b_head = a[:, max(0, a.shape[1] - win) :], b[:, :win]
    # Tracks shorter than a window are padded with silence for the model and cropped back afterwards.
    pad_a, pad_b = win - a_tail.shape[1], win - b_head.shape[1]
    a_in = torch.nn.functional.pad(a_tail, (pad_a, 0))
    b_in = torch.nn.functional.pad(b_head, (0, pad_b))
    joined = tasks.transition(
        em,
        to_model_audio(a_in, sample_rate),
        to_model_audio(b_in, sample_rate),
        sampler=_sampler(models, sampler),
        fade_s=fade,
        margin_s=margin,
        **_run(seed, progress),
    )
    middle = from_model_audio(joined, sample_rate, channels, 2 * win - fade_n).to(a.dtype)
    middle = middle[:, pad_a : middle.shape[1] - pad_b]
    return torch.cat([a[:, : a.shape[1] - a_tail.shape[1]], middle, b[:, b_head.shape[1] :]], dim=-1)


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
    models: Models,
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
            models,
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


def match_format(audio: torch.Tensor, sample_rate: int, target_rate: int, channels: int) -> torch.Tensor:
    """``(c, T)`` at ``sample_rate`` → ``(channels, T')`` at ``target_rate`` (mono ↔ stereo by mean/duplicate)."""
    if audio.shape[0] != channels:
        audio = audio.mean(0, keepdim=True) if channels == 1 else audio.expand(channels, -1)
    if sample_rate != target_rate:
        import torchaudio

        audio = torchaudio.functional.resample(audio.float(), sample_rate, target_rate)
    return audio.contiguous()
