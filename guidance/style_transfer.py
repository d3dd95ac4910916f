"""Style transfer by embedding guidance, and its evaluation on held-out POP909 songs.

Recipe (Levy et al. 2023, §4.4 "style transfer"): regenerate a whole window starting from the source
(x_T = k z + (1 − k) x̄, k = 0.85, x̄ = the source) while an :class:`EmbeddingGuidance` term pulls the
decoded x̂0 toward the PaSST embedding of a reference clip in the target style.

    python -m guidance.style_transfer --pop909 DIR --classifier runs/classifier/final \
        [--checkpoints checkpoints] --style-a piano --style-b strings --n 16 --out style_transfer.json

Evaluation: the source is a test-split segment rendered in style A; the reference is a *different*
test-split segment rendered in style B. Reported: the fraction of results the classifier calls B (the
target) and A (the source style), and the CQT-chroma correlation between result and source (how much of
the notes survive). For context the same numbers are given for the source itself and for an oracle (the
source segment re-rendered in style B, i.e. perfect transfer), and for the codec ceiling (the source
encoded and decoded by the model's codec alone: no latent model can keep more of the notes than that).
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
from .style_guidance import ClassifierGuidance, EmbeddingGuidance, style_target


def transfer_style(
    model: Any,
    embedder: PaSST,
    source: torch.Tensor,
    reference: torch.Tensor,
    *,
    weight: float = 1.0,
    classifier_weight: float = 0.0,
    target_class: int | None = None,
    k: float = 0.85,
    strength: float = 1.0,
    steps: int = 50,
    xi: float | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> torch.Tensor:
    """Re-render ``source`` ``(B, 2, window)`` in the style of ``reference`` ``(1 or B, 2, T)``; ``(B, 2, window)``.

    ``model`` is a :class:`guidance.tasks.EditModel`. ``classifier_weight > 0`` adds classifier guidance
    toward ``target_class`` with the same PaSST. ``strength`` < 1 starts from the source noised to that level
    instead of the paper's x_T (``guidance.tasks.solve``), keeping more of its notes.
    """
    from .tasks import regenerate_problem, solve

    if source.ndim != 3 or source.shape[1] != 2 or source.shape[-1] != model.window:
        raise InputError(f"source must be (B, 2, {model.window}) (one model window), got {tuple(source.shape)}")
    if not 0.0 < k <= 1.0:
        raise InputError(f"k = {k}: the noise share of the start must be in (0, 1]; 0.85 is the paper's")
    terms, weights = [EmbeddingGuidance.from_audio(embedder, reference)], [weight]
    if classifier_weight:
        if target_class is None:
            raise InputError("classifier guidance needs target_class")
        terms.append(ClassifierGuidance(embedder, target_class))
        weights.append(classifier_weight)
    problem = regenerate_problem(source, 0, source.shape[-1], k)  # nothing known: the source is only the prior
    return solve(problem, model, steps=steps, xi=xi, strength=strength, extra_terms=terms, extra_weights=weights,
                 generator=generator, callback=callback)


def _segments(pop909: Path, n: int, seconds: float, seed: int) -> list[tuple[str, float]]:
    """``n`` (song, start) pairs from test-split songs, seeded, away from the songs' first and last seconds."""
    from musicprod_common.pop909 import load_song, split_song_ids

    rng = np.random.default_rng(seed)
    ids = list(rng.permutation(split_song_ids(pop909, "test")))
    picks = []
    for song_id in ids:
        song = load_song(pop909 / song_id)
        if song.end_time < seconds + 10:
            continue
        picks.append((song_id, float(rng.uniform(5.0, song.end_time - seconds - 5.0))))
        if len(picks) == n:
            break
    if len(picks) < n:
        raise InputError(f"{pop909}: only {len(picks)} test songs long enough; ask for fewer clips")
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
    weight: float = 1.0, steps: int = 50, xi: float | None = None, k: float = 0.85, strength: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Transfer ``n`` test-split clips from ``style_a`` to ``style_b``; accuracies and chroma correlations."""
    pop909 = Path(pop909)
    a_idx, b_idx = style_target(classifier, style_a), style_target(classifier, style_b)
    window = model.window
    segments = _segments(pop909, n + 1, window / 44100, seed)  # segment i+1 is the reference for segment i
    source = torch.stack([_render(pop909, s, style_a, t, window) for s, t in segments[:n]])
    reference = torch.stack([_render(pop909, s, style_b, t, window) for s, t in segments[1:]])
    oracle = torch.stack([_render(pop909, s, style_b, t, window) for s, t in segments[:n]])
    results = []
    for i in range(n):
        gen = torch.Generator().manual_seed(seed * 1000 + i)
        results.append(transfer_style(model, classifier, source[i : i + 1], reference[i : i + 1], weight=weight, steps=steps,
                                      xi=xi, k=k, strength=strength, generator=gen))
        if progress is not None:
            progress(i + 1)
    result = torch.cat(results)

    def summary(audio: torch.Tensor) -> dict[str, float]:
        pred = _predictions(classifier, audio)
        return {"to_b": float(np.mean([p == b_idx for p in pred])), "still_a": float(np.mean([p == a_idx for p in pred])),
                "chroma_corr": float(chroma_correlation(audio, source).mean())}

    with torch.no_grad():  # the source through the codec alone: the chroma a model keeping every note could reach
        codec_ceiling = model.codec.decode(model.codec.encode(source), window)
    return {"n": n, "style_a": style_a, "style_b": style_b, "weight": weight, "steps": steps, "k": k, "strength": strength,
            "result": summary(result), "source": summary(source), "oracle": summary(oracle),
            "codec_ceiling": summary(codec_ceiling),
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
    p.add_argument("--weight", type=float, default=1.0, help="weight of the embedding-guidance term")
    p.add_argument("--xi", type=float)
    p.add_argument("--k", type=float, default=0.85, help="noise share of the start, x_T = k z + (1 - k) source; "
                   "lower keeps more of the source's notes")
    p.add_argument("--strength", type=float, default=1.0, help="start from the source noised to this level (SDEdit) instead "
                   "of the paper's x_T; lower keeps more of the source")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the results JSON here")
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
                                             n=args.n, seed=args.seed, weight=args.weight, steps=args.steps, xi=args.xi, k=args.k,
                                             strength=args.strength,
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
