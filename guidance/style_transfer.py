"""Style transfer by embedding guidance, and its evaluation on held-out POP909 songs.

Recipe (Levy et al. 2023, §4.4 "style transfer"): regenerate a whole window starting from the source
(x_T = k z + (1 − k) x̄, k = 0.85, x̄ = the source) while an :class:`EmbeddingGuidance` term pulls the
decoded x̂0 toward the PaSST embedding of a reference clip in the target style. :func:`restyle` does the same
for one region of a longer piece (measuring the style on that region only), and either can guide toward a
class of the classifier instead of, or beside, a reference clip (``musicprod style``).

    python -m guidance.style_transfer --pop909 DIR --classifier runs/classifier/final \
        [--checkpoints checkpoints] --style-a piano --style-b strings --n 16 --out style_transfer.json

Evaluation: the source is a test-split segment rendered in style A; the reference is a *different*
test-split segment rendered in style B. Reported: the fraction of results the classifier calls B (the
target) and A (the source style), the CQT-chroma correlation between result and source (how much of
the notes survive), and the mel distance to the oracle (the source segment re-rendered in style B, i.e. perfect
transfer: how close the result comes to the real thing). For context the same numbers are given for the source
itself, for the oracle, and for the codec ceiling (the source encoded and decoded by the model's codec alone: how
much of the notes the latent space keeps without help; chroma guidance, ``--chroma-weight``, can go past it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from musicprod_common.audio import chroma_correlation
from musicprod_common.errors import InputError

from .passt import PaSST
from .metrics import mel_distance
from .style_guidance import CHROMA_N_FFT, ChromaGuidance, ClassifierGuidance, EmbeddingGuidance, style_target
from .terms import OnSpan

# The classifier's BCE has small gradients next to the embedding distance. At ξ = 3e-2 and strength 0.5, weights
# 100, 300 and 1000 moved 7, 8 and 8 of 8 valid-split piano windows to strings (BENCHMARKS.md, "Style transfer")
CLASSIFIER_WEIGHT = 300.0
# The chroma term's distance is at most 2 per clip, so it needs a weight in the thousands beside the reference's 1. At
# strength 0.5, chroma weights 0 / 30 / 300 / 3000 / 10000 / 30000 gave results a CQT chroma of 0.26 / 0.29 / 0.32 /
# 0.51 / 0.61 / 0.58 with their 16 valid-split sources, and 50-88% went to strings (BENCHMARKS.md, session 19)
CHROMA_WEIGHT = 1e4
# With that chroma weight, on 32 valid-split windows (BENCHMARKS.md, session 20): strength 0.5 with the latent model's
# η = 1 kept a CQT chroma of 0.57 (27 of 32 to strings); 0.4 kept 0.60 but only 22 went. η = 0 (deterministic DDIM,
# whose step keeps all of the guided ε̂) kept 0.60 at 0.5, 0.45 and 0.4, with 28, 28 and 25 to strings. The rule set
# in advance, the highest chroma with ≥ 70% to strings, chose 0.4 (0.606 against 0.602 for 0.45: within the noise)
STYLE_STRENGTH = 0.4
STYLE_ETA = 0.0
# Then stepping x̂0 itself (MPGD, guidance.terms.Guidance) instead of ε̂: at ξ = 3e-3 and 1e-2, chroma 0.603 and 0.618 with
# 22 and 28 of those 32 to strings. The same rule chose 1e-2; on test it kept 0.606 with 30 of 32 (BENCHMARKS.md, session 20)
STYLE_GUIDANCE_STEP = "x0"
STYLE_XI = 1e-2


def style_terms(
    embedder: PaSST, *, reference: torch.Tensor | None = None, target_class: int | None = None, weight: float = 1.0,
    classifier_weight: float = CLASSIFIER_WEIGHT, span: tuple[int, int] | None = None, window: int | None = None,
    source: torch.Tensor | None = None, chroma_weight: float = 0.0,
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
    strength: float = 1.0,
    steps: int = 50,
    xi: float | None = None,
    eta: float | None = None,
    guidance_step: str = "eps",
    generator: torch.Generator | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> torch.Tensor:
    """Re-render ``source`` ``(B, 2, window)`` in the style of ``reference`` ``(1 or B, 2, T)``; ``(B, 2, window)``.

    ``model`` is a :class:`guidance.tasks.EditModel`. ``weight`` scales the pull toward the reference's embedding,
    ``classifier_weight`` the pull toward ``target_class`` (classifier guidance with the same PaSST); with both at
    0 the sampler runs unguided from the same start, the baseline. ``chroma_weight`` adds a pull toward the
    source's chromagram (:class:`ChromaGuidance`), to keep its notes; it needs one of the other two. ``strength`` < 1
    starts from the source noised to that level instead of the paper's x_T (``guidance.tasks.solve``), keeping more of
    its notes; ``eta`` (default the model's) is the sampler's η, and 0 (``STYLE_ETA``) keeps all of each step's pull;
    ``guidance_step`` as in ``guidance.tasks.solve``.
    """
    from .tasks import regenerate_problem, solve

    if source.ndim != 3 or source.shape[1] != 2 or source.shape[-1] != model.window:
        raise InputError(f"source must be (B, 2, {model.window}) (one model window), got {tuple(source.shape)}")
    if not 0.0 < k <= 1.0:
        raise InputError(f"k = {k}: the noise share of the start must be in (0, 1]; 0.85 is the paper's")
    if classifier_weight and target_class is None:
        raise InputError("classifier guidance needs target_class")
    terms, weights = [], []  # every weight 0: the unguided baseline from the same start
    if weight or classifier_weight or chroma_weight:  # the notes alone are no style edit: style_terms refuses that
        terms, weights = style_terms(embedder, reference=reference, target_class=target_class, weight=weight,
                                     classifier_weight=classifier_weight, source=source, chroma_weight=chroma_weight)
    problem = regenerate_problem(source, 0, source.shape[-1], k)  # nothing known: the source is only the prior
    return solve(problem, model, steps=steps, xi=xi, eta=eta, guidance_step=guidance_step, strength=strength,
                 extra_terms=terms, extra_weights=weights, generator=generator, callback=callback)


def restyle(
    model: Any, audio: torch.Tensor, start_s: float, end_s: float, *, embedder: PaSST, reference: torch.Tensor | None = None,
    target_class: int | None = None, weight: float = 1.0, classifier_weight: float = CLASSIFIER_WEIGHT, chroma_weight: float = 0.0,
    **kw: Any,
) -> torch.Tensor:
    """Re-create [start_s, end_s) of ``audio`` ``(B, 2, N)`` in another style, keeping its context; ``(B, 2, N)``.

    The regeneration task (``guidance.tasks.regenerate``, which takes ``strength``, ``k``, ``margin_s`` and the
    sampler's arguments) with the style terms of :func:`style_terms` measured on the region only; ``chroma_weight``
    pulls the region toward its own original notes.
    """
    from .tasks import regenerate

    def terms(window: torch.Tensor, a: int, b: int) -> tuple[list[Any], list[float]]:
        return style_terms(embedder, reference=reference, target_class=target_class, weight=weight,
                           classifier_weight=classifier_weight, span=(a, b), window=model.window,
                           source=window, chroma_weight=chroma_weight)

    return regenerate(model, audio, start_s, end_s, region_terms=terms, **kw)


def _segments(pop909: Path, n: int, seconds: float, seed: int, split: str = "test") -> list[tuple[str, float]]:
    """``n`` (song, start) pairs from ``split`` songs, seeded, away from the songs' first and last seconds."""
    from musicprod_common.pop909 import load_song, split_song_ids

    rng = np.random.default_rng(seed)
    ids = list(rng.permutation(split_song_ids(pop909, split)))
    picks = []
    for song_id in ids:
        song = load_song(pop909 / song_id)
        if song.end_time < seconds + 10:
            continue
        picks.append((song_id, float(rng.uniform(5.0, song.end_time - seconds - 5.0))))
        if len(picks) == n:
            break
    if len(picks) < n:
        raise InputError(f"{pop909}: only {len(picks)} {split} songs long enough; ask for fewer clips")
    return picks


def _render(pop909: Path, song_id: str, style: str, start: float, samples: int) -> torch.Tensor:
    from musicprod_common.pop909 import load_song
    from musicprod_common.render import render_song

    mix = render_song(load_song(pop909 / song_id), style, start=start, end=start + samples / 44100 + 0.01).mix
    return torch.nn.functional.pad(mix, (0, max(0, samples - mix.shape[-1])))[:, :samples]


@torch.no_grad()
def _predictions(classifier: PaSST, audio: torch.Tensor) -> list[int]:
    return classifier.classify(audio).argmax(-1).tolist()


def evaluate_style_transfer(
    model: Any, classifier: PaSST, pop909: str | Path, *, style_a: str, style_b: str, n: int = 8, seed: int = 0,
    weight: float = 1.0, classifier_weight: float = 0.0, chroma_weight: float = 0.0, steps: int = 50, xi: float | None = None,
    eta: float | None = None, guidance_step: str = "eps", k: float = 0.85, strength: float = 1.0, split: str = "test",
    progress: Callable[[int], None] | None = None, plot: str | Path | None = None,
) -> dict[str, Any]:
    """Transfer ``n`` clips of ``split`` songs (test by default) from ``style_a`` to ``style_b``; accuracies and
    chroma correlations.

    ``weight`` pulls toward the reference clip's embedding, ``classifier_weight`` toward the class ``style_b``;
    ``plot`` is a PNG path for the chromagrams of the first clip's source, result and oracle."""
    pop909 = Path(pop909)
    a_idx, b_idx = style_target(classifier, style_a), style_target(classifier, style_b)
    window = model.window
    segments = _segments(pop909, n + 1, window / 44100, seed, split)  # segment i+1 is the reference for segment i
    source = torch.stack([_render(pop909, s, style_a, t, window) for s, t in segments[:n]])
    reference = torch.stack([_render(pop909, s, style_b, t, window) for s, t in segments[1:]])
    oracle = torch.stack([_render(pop909, s, style_b, t, window) for s, t in segments[:n]])
    results = []
    for i in range(n):
        gen = torch.Generator().manual_seed(seed * 1000 + i)
        results.append(transfer_style(model, classifier, source[i : i + 1], reference[i : i + 1], weight=weight,
                                      classifier_weight=classifier_weight, target_class=b_idx, chroma_weight=chroma_weight, steps=steps,
                                      xi=xi, eta=eta, guidance_step=guidance_step, k=k, strength=strength,
                                      generator=gen))
        if progress is not None:
            progress(i + 1)
    result = torch.cat(results)

    def scores(audio: torch.Tensor) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """The summary over clips, and each clip's row (so two models on the same clips and seeds compare clip by clip)."""
        pred, chroma = _predictions(classifier, audio), chroma_correlation(audio, source)
        with torch.no_grad():
            to_oracle = mel_distance(audio, oracle)
        summary = {"to_b": float(np.mean([p == b_idx for p in pred])), "still_a": float(np.mean([p == a_idx for p in pred])),
                   "chroma_corr": float(chroma.mean()), "mel_to_oracle": float(to_oracle.mean())}
        return summary, [{"to_b": p == b_idx, "chroma_corr": round(float(c), 4), "mel_to_oracle": round(float(m), 4)}
                         for p, c, m in zip(pred, chroma, to_oracle)]

    with torch.no_grad():  # the source through the codec alone: how much of the notes the latent space keeps by itself
        codec_ceiling = model.codec.decode(model.codec.encode(source), window)
    result_summary, per_clip = scores(result)
    if plot:
        from musicprod_common.plot import plot_chromagrams

        plot_chromagrams(plot, {f"source ({style_a})": source[0], "result": result[0], f"oracle ({style_b})": oracle[0]}, 44100,
                         title=f"{segments[0][0]} at {segments[0][1]:.1f} s: chroma with the source {per_clip[0]['chroma_corr']:.2f} "
                               f"(chroma weight {chroma_weight:g})")
    return {"n": n, "split": split, "style_a": style_a, "style_b": style_b, "weight": weight, "classifier_weight": classifier_weight,
            "chroma_weight": chroma_weight,
            "steps": steps, "eta": model.eta if eta is None else eta, "guidance_step": guidance_step, "k": k, "strength": strength,
            "result": result_summary, "source": scores(source)[0], "oracle": scores(oracle)[0],
            "codec_ceiling": scores(codec_ceiling)[0], "per_clip": per_clip,
            "segments": [{"song": s, "start": round(t, 3)} for s, t in segments[:n]]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m guidance.style_transfer", description=__doc__.split("\n\n")[0])
    p.add_argument("--pop909", required=True)
    p.add_argument("--classifier", required=True, help="trained PaSST folder, e.g. runs/classifier/final")
    p.add_argument("--checkpoints", help="folder with vae/ and dit/ (default: the repo's checkpoints/)")
    p.add_argument("--model", default="latent", choices=["latent", "waveform"])
    p.add_argument("--style-a", default="piano")
    p.add_argument("--style-b", default="strings")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--weight", type=float, default=1.0, help="weight of the embedding-guidance term (toward the reference clip)")
    p.add_argument("--classifier-weight", type=float, default=0.0, help="weight of the classifier-guidance term (toward style B)")
    p.add_argument("--chroma-weight", type=float, default=0.0, help="weight of the chroma term that keeps the source's notes "
                   f"(default 0, the paper's recipe; {CHROMA_WEIGHT:g} was chosen on valid clips)")
    p.add_argument("--xi", type=float)
    p.add_argument("--eta", type=float, help="sampler η (0 = deterministic DDIM; default: the model's)")
    p.add_argument("--guidance-step", choices=["eps", "x0"], default="eps",
                   help="what the guidance moves: eps (the paper's, fades with the noise) or x0 (MPGD, He et al. 2024)")
    p.add_argument("--k", type=float, default=0.85, help="noise share of the start, x_T = k z + (1 - k) source; "
                   "lower keeps more of the source's notes")
    p.add_argument("--strength", type=float, default=1.0, help="start from the source noised to this level (SDEdit) instead "
                   "of the paper's x_T; lower keeps more of the source")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"],
                   help="songs to draw the clips from: choose settings on valid, report on test")
    p.add_argument("--out", help="write the results JSON here")
    p.add_argument("--plot", help="write the chromagrams of the first clip's source, result and oracle to this PNG")
    args = p.parse_args(argv)
    from recipes.pipeline import edit_model, load_models

    from .passt import from_pretrained

    try:
        model = edit_model(load_models(args.model, args.checkpoints))
        classifier = from_pretrained(args.classifier)
        if classifier.cfg.input_sample_rate != 44100:
            raise InputError(f"{args.classifier}: classifier expects {classifier.cfg.input_sample_rate} Hz input; the models make 44100 Hz")
        from tqdm.auto import tqdm

        with tqdm(total=args.n, desc=f"{args.style_a} → {args.style_b}", unit="clip") as bar:
            report = evaluate_style_transfer(model, classifier, args.pop909, style_a=args.style_a, style_b=args.style_b,
                                             n=args.n, seed=args.seed, weight=args.weight, classifier_weight=args.classifier_weight,
                                             chroma_weight=args.chroma_weight,
                                             steps=args.steps, xi=args.xi, eta=args.eta, guidance_step=args.guidance_step, k=args.k,
                                             strength=args.strength, split=args.split, plot=args.plot,
                                             progress=lambda done: bar.update(done - bar.n))
    except InputError as err:
        sys.stderr.write(f"style_transfer: error: {err}\n")
        return 2
    if args.out:
        from musicprod_common.files import write_json

        write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
