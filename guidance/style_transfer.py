"""Style transfer by embedding guidance, and the tuned defaults of ``musicprod style``.

Recipe (Levy et al. 2023, §4.4 "style transfer"): regenerate a whole window starting from the source
(x_T = k z + (1 − k) x̄, k = 0.85, x̄ = the source) while an :class:`EmbeddingGuidance` term pulls the
decoded x̂0 toward the PaSST embedding of a reference clip in the target style. :func:`restyle` does the same
for one region of a longer piece (measuring the style on that region only), and either can guide toward a
class of the classifier instead of, or beside, a reference clip (``musicprod style``). ``benchmarks/style_transfer.py``
measures it on held-out POP909 songs.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.errors import InputError

from .config import EDITS, SamplerConfig
from .passt import PaSST
from .style_guidance import CHROMA_N_FFT, ChromaGuidance, ClassifierGuidance, EmbeddingGuidance
from .tasks import DEFAULT_MARGIN, EditModel, Progress, regenerate, regenerate_problem, solve, to_model_audio
from .terms import OnSpan

# The classifier's BCE has small gradients next to the embedding distance. At ξ = 3e-2 and strength 0.5, weights
# 100, 300 and 1000 moved 7, 8 and 8 of 8 valid-split piano windows to strings (BENCHMARKS.md, "Style transfer")
CLASSIFIER_WEIGHT = 300.0
# The chroma term's distance is at most 2 per clip, so it needs a weight in the thousands beside the reference's 1. At
# strength 0.5, chroma weights 0 / 30 / 300 / 3000 / 10000 / 30000 gave results a CQT chroma of 0.26 / 0.29 / 0.32 /
# 0.51 / 0.61 / 0.58 with their 16 valid-split sources, and 50-88% went to strings (BENCHMARKS.md, "Style transfer")
CHROMA_WEIGHT = 1e4


def style_terms(
    embedder: PaSST,
    *,
    reference: torch.Tensor | None = None,
    target_class: int | None = None,
    weight: float = 1.0,
    classifier_weight: float = CLASSIFIER_WEIGHT,
    span: tuple[int, int] | None = None,
    window: int | None = None,
    source: torch.Tensor | None = None,
    chroma_weight: float = 0.0,
) -> tuple[list[Any], list[float]]:
    """The guidance terms of a style edit and their weights: the embedding distance to ``reference`` audio
    ``(1 or B, 2, T)`` and/or the classifier's BCE toward ``target_class``, and optionally ``chroma_weight`` ×
    the chroma distance to the ``source`` audio ``(B, 2, window)``, the original being restyled (its notes).

    ``span`` = (start, stop) samples of a ``window``-sample model window limits them to the audio being
    restyled, widened around its centre to the shortest input of the classifier (or of the chromagram) where the
    region is shorter; the widened part is known context, which the projection keeps anyway.
    """
    terms: list[Any] = []
    weights: list[float] = []
    if reference is not None and weight:
        terms.append(EmbeddingGuidance.from_audio(embedder, reference))
        weights.append(weight)
    if target_class is not None and classifier_weight:
        terms.append(ClassifierGuidance(embedder, target_class))
        weights.append(classifier_weight)
    if not terms:
        raise InputError("a style edit needs a reference clip or a target style with a non-zero weight")
    if span is not None:
        terms = [OnSpan(t, *_widened(span, embedder.min_samples, window)) for t in terms]
    if chroma_weight:
        if source is None:
            raise InputError("keeping the notes (chroma_weight) needs the source audio")
        if span is None:
            terms.append(ChromaGuidance(source))
        else:
            start, stop = _widened(span, CHROMA_N_FFT, window)
            terms.append(OnSpan(ChromaGuidance(source[..., start:stop]), start, stop))
        weights.append(chroma_weight)
    return terms, weights


def _widened(span: tuple[int, int], need: int, window: int | None) -> tuple[int, int]:
    """``span`` widened around its centre to at least ``need`` samples, kept inside a ``window``-sample window."""
    need = max(span[1] - span[0], need)
    start = max(0, (span[0] + span[1]) // 2 - need // 2)
    if window is not None:
        start = min(start, max(0, window - need))
    return start, start + need


def transfer_style(
    model: Any,
    embedder: PaSST,
    source: torch.Tensor,
    reference: torch.Tensor,
    *,
    weight: float = 1.0,
    classifier_weight: float = 0.0,
    target_class: int | None = None,
    chroma_weight: float = 0.0,
    k: float = 0.85,
    sampler: SamplerConfig | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> torch.Tensor:
    """Re-render ``source`` ``(B, 2, window)`` in the style of ``reference`` ``(1 or B, 2, T)``; ``(B, 2, window)``.

    ``model`` is a :class:`guidance.tasks.EditModel`, sampled with ``sampler`` (default its own). ``weight`` scales
    the pull toward the reference's embedding, ``classifier_weight`` the pull toward ``target_class`` (classifier
    guidance with the same PaSST); with both at 0 the sampler runs unguided from the same start, the baseline.
    ``chroma_weight`` adds a pull toward the source's chromagram (:class:`ChromaGuidance`), to keep its notes; it
    needs one of the other two. A ``strength`` below 1 starts from the source noised to that level instead of the
    paper's x_T (``guidance.tasks.solve``), keeping more of its notes.
    """
    if source.ndim != 3 or source.shape[1] != 2 or source.shape[-1] != model.window:
        raise InputError(f"source must be (B, 2, {model.window}) (one model window), got {tuple(source.shape)}")
    if not 0.0 < k <= 1.0:
        raise InputError(f"k = {k}: the noise share of the start must be in (0, 1]; 0.85 is the paper's")
    if classifier_weight and target_class is None:
        raise InputError("classifier guidance needs target_class")
    terms, weights = [], []  # every weight 0: the unguided baseline from the same start
    if weight or classifier_weight or chroma_weight:  # the notes alone are no style edit: style_terms refuses that
        terms, weights = style_terms(
            embedder,
            reference=reference,
            target_class=target_class,
            weight=weight,
            classifier_weight=classifier_weight,
            source=source,
            chroma_weight=chroma_weight,
        )
    problem = regenerate_problem(source, 0, source.shape[-1], k)  # nothing known: the source is only the prior
    return solve(
        problem, model, sampler, extra_terms=terms, extra_weights=weights, generator=generator, callback=callback
    )


def restyle(
    model: EditModel,
    audio: torch.Tensor,
    sample_rate: int,
    start: float,
    end: float,
    *,
    embedder: PaSST,
    reference: torch.Tensor | None = None,
    reference_rate: int = SAMPLE_RATE,
    target_class: int | None = None,
    weight: float = 1.0,
    classifier_weight: float = CLASSIFIER_WEIGHT,
    chroma_weight: float = CHROMA_WEIGHT,
    sampler: SamplerConfig | None = None,
    margin: float = DEFAULT_MARGIN,
    seed: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Re-create [start, end) s of ``audio`` ``(channels, T)`` at ``sample_rate`` in the style of ``reference``
    ``(channels, Tr)`` at ``reference_rate`` and/or toward the ``embedder``'s class ``target_class``, keeping its
    context; ``(channels, T)``, with :func:`guidance.tasks.regenerate`'s guarantees.

    The regeneration task with the style terms of :func:`style_terms` measured on the region only. ``chroma_weight``
    (0 turns it off) pulls the region toward its own original notes (:class:`ChromaGuidance`). ``sampler`` defaults to
    the model's settings with the ``"style"`` edit's changes (:data:`guidance.config.EDITS`).
    """
    ref = None if reference is None else to_model_audio(model, reference, reference_rate)

    def terms(window: torch.Tensor, a: int, b: int) -> tuple[list[Any], list[float]]:
        return style_terms(
            embedder,
            reference=ref,
            target_class=target_class,
            weight=weight,
            classifier_weight=classifier_weight,
            span=(a, b),
            window=model.window,
            source=window,
            chroma_weight=chroma_weight,
        )

    sampler = sampler or model.sampler.but(**EDITS["style"])
    run = dict(sampler=sampler, margin=margin, region_terms=terms, seed=seed, progress=progress)
    return regenerate(model, audio, sample_rate, start, end, **run)
