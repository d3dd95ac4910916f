"""Song-aware inpainting: a gap is filled with the song's own matching passage where one exists, and with the model
where none does.

Music repeats. :func:`plan_inpaint` looks for a passage of the song (or of reference recordings) whose context
matches the gap's (``musicprod_common.passages``) and decides per region whether to copy it or to generate;
:func:`inpaint_regions` splices the copies at full quality (``musicprod_common.splice``), optionally refined by the
model, and generates the rest with :func:`guidance.tasks.infill`. :func:`continue_song` carries a song on with what
followed its closing bars where they occurred before. Audio is ``(channels, T)`` at any rate, as for the tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from musicprod_common.audio import match_format
from musicprod_common.errors import InputError
from musicprod_common.passages import MIN_REFERENCE_S, Match, features, find_chain, find_passages
from musicprod_common.passages import THRESHOLD as MATCH_THRESHOLD
from musicprod_common.splice import SplicePlan, plan_fill, render

from .config import SamplerConfig
from .tasks import (
    DEFAULT_MARGIN,
    RECONSTRUCTION_WEIGHT,
    EditModel,
    Progress,
    RegionTerms,
    continuation,
    continuation_length,
    infill,
    max_region,
    regenerate,
    windows_needed,
)
from .terms import CroppedAudioMel

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


def _refine_spans(plan: RegionPlan, refine: str, model: EditModel, margin: float) -> list[tuple[float, float]]:
    """The spans (seconds) the model regenerates to refine a copied region, one model window each."""
    if refine == "none":
        return []
    a, b = plan.start, plan.end
    fits = b - a <= max_region(model, margin) + 1e-9
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
    model: EditModel,
    plans: Sequence[RegionPlan],
    duration: float,
    refine: str = DEFAULT_REFINE,
    margin: float = DEFAULT_MARGIN,
) -> int:
    """How many model windows :func:`inpaint_regions` runs: the progress bar's total is ``steps`` times this."""
    return sum(
        windows_needed(model, p.start, p.end, duration, margin)
        if p.splice is None
        else len(_refine_spans(p, refine, model, margin))
        for p in plans
    )


def needs_model(plans: Sequence[RegionPlan], refine: str = DEFAULT_REFINE) -> bool:
    """Whether carrying out ``plans`` runs the model (a fill it generates, or a copy it refines)."""
    return any(p.splice is None or refine != "none" for p in plans)


def inpaint_regions(
    model: EditModel | None,
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
    are. Region i is sampled with ``sampler`` (default: the model's own) and seed ``seed + i``. Every
    sample farther than ``margin`` s from a region is the input's own. ``model`` may be None when
    :func:`needs_model` says so.
    """
    if refine not in REFINEMENTS:
        raise InputError(f"unknown refinement {refine!r}; choose one of {', '.join(REFINEMENTS)}")
    if model is None and needs_model(plans, refine):
        raise InputError("these fills need the model, but none was given")
    sources = [audio, *references]
    out = audio
    for i, plan in enumerate(plans):
        run = dict(seed=seed + i, margin=margin, progress=progress)
        if plan.splice is None:
            out = infill(model, out, sample_rate, plan.start, plan.end, sampler=sampler, **run)
            continue
        out = render(out, sources, plan.splice)
        if refine == "target" and _refine_spans(plan, refine, model, margin):
            toward = _toward_copy(model, sampler or model.sampler)
            out = infill(model, out, sample_rate, plan.start, plan.end, sampler=sampler, region_terms=toward, **run)
        elif refine != "target":
            from_copy = (sampler or model.sampler).but(strength=REFINE_STRENGTH)
            for a, b in _refine_spans(plan, refine, model, margin):
                out = regenerate(model, out, sample_rate, a, b, sampler=from_copy, **run)
    return InpaintResult(out, list(plans))


def _toward_copy(model: EditModel, sampler: SamplerConfig) -> RegionTerms:
    """Guidance terms for an infill whose region holds a copied passage: the copy's log-mel spectrum as a
    reconstruction target inside the region at :data:`TARGET_WEIGHT` of the context's weight (after SimDPS, which
    puts retrieved candidates into diffusion posterior sampling), so the fill is drawn toward the copy but stays free
    to make the joins agree with the context."""

    def toward(window: torch.Tensor, a: int, b: int) -> tuple[list, list[float]]:
        inside = torch.zeros_like(window[:, :1])
        inside[..., a:b] = 1.0
        term = CroppedAudioMel(window, inside, model.codec.decode, model.codec.hop, sample_rate=model.sample_rate)
        return [term], [TARGET_WEIGHT * RECONSTRUCTION_WEIGHT[sampler.distance]]

    return toward


def inpaint(
    model: EditModel | None,
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
        model,
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


def continue_song(
    model: EditModel,
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
    ``sampler`` (default the model's own; :func:`guidance.tasks.continuation`). ``refine`` as in
    :func:`inpaint_regions`.
    The input is kept bit for bit except its last ``margin`` seconds, where it crossfades into the new audio.
    """
    total = audio.shape[-1]
    if min(total, int(round(context * sample_rate))) < 1:
        raise InputError(f"--context {context:g} s is shorter than one sample")
    added = continuation_length(model, audio, sample_rate, context)
    if added < 1:
        raise InputError(
            f"--context {context:g} s leaves nothing to add in the {model.name} model's window; pass a shorter "
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
            return inpaint_regions(model, padded, sample_rate, [plan], **run)
        if source == "song":
            found = (
                f"the best, at {plan.best.start_s:.2f} s, scores {plan.best.score:.2f} (threshold {threshold:.2f})"
                if plan.best is not None
                else "the song is too short to hold a repeat"
            )
            raise InputError(f"no earlier passage of the song continues its end: {found}; use --source auto or model")
    run = dict(context=context, sampler=sampler, margin=margin, seed=seed, progress=progress)
    return InpaintResult(continuation(model, audio, sample_rate, **run), [plan])
