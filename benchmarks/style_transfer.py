"""Style transfer (``guidance.style_transfer``) measured on held-out POP909 songs.

    python benchmarks/style_transfer.py --pop909 DIR --classifier checkpoints/classifier \
        [--checkpoints checkpoints] --style-a piano --style-b strings --n 16 --out style_transfer.json

The source is a test-split segment rendered in style A; the reference is a *different* test-split segment
rendered in style B. Reported: the fraction of results the classifier calls B (the target) and A (the source
style), the CQT-chroma correlation between result and source (how much of the notes survive), and the mel
distance to the oracle (the source segment re-rendered in style B, i.e. perfect transfer: how close the result
comes to the real thing). For context the same numbers are given for the source itself, for the oracle, and for
the codec ceiling (the source encoded and decoded by the model's codec alone: how much of the notes the latent
space keeps without help; chroma guidance, ``--chroma-weight``, can go past it). Choose settings with
``--split valid``; report on test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guidance.config import SamplerConfig  # noqa: E402
from guidance.passt import PaSST, from_pretrained  # noqa: E402
from guidance.style_guidance import style_target  # noqa: E402
from guidance.style_transfer import CHROMA_WEIGHT, transfer_style  # noqa: E402
from musicprod_common.errors import InputError  # noqa: E402
from musicprod_common.features import chroma_correlation, mel_distance  # noqa: E402
from musicprod_common.files import write_json  # noqa: E402
from musicprod_common.plot import plot_chromagrams  # noqa: E402
from musicprod_common.pop909 import load_song, split_song_ids  # noqa: E402
from musicprod_common.render import render_song  # noqa: E402
from recipes.models import load_models  # noqa: E402


def _segments(pop909: Path, n: int, seconds: float, seed: int, split: str = "test") -> list[tuple[str, float]]:
    """``n`` (song, start) pairs from ``split`` songs, seeded, away from the songs' first and last seconds."""
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
    mix = render_song(load_song(pop909 / song_id), style, start=start, end=start + samples / 44100 + 0.01).mix
    return torch.nn.functional.pad(mix, (0, max(0, samples - mix.shape[-1])))[:, :samples]


@torch.no_grad()
def _predictions(classifier: PaSST, audio: torch.Tensor) -> list[int]:
    return classifier.classify(audio).argmax(-1).tolist()


def evaluate_style_transfer(
    model: Any,
    classifier: PaSST,
    pop909: str | Path,
    *,
    style_a: str,
    style_b: str,
    n: int = 8,
    seed: int = 0,
    weight: float = 1.0,
    classifier_weight: float = 0.0,
    chroma_weight: float = 0.0,
    sampler: SamplerConfig | None = None,
    k: float = 0.85,
    split: str = "test",
    progress: Callable[[int], None] | None = None,
    plot: str | Path | None = None,
) -> dict[str, Any]:
    """Transfer ``n`` clips of ``split`` songs (test by default) from ``style_a`` to ``style_b``; accuracies and
    chroma correlations.

    ``weight`` pulls toward the reference clip's embedding, ``classifier_weight`` toward the class ``style_b``;
    ``sampler`` defaults to the model's own; ``plot`` is a PNG path for the chromagrams of the first clip's source,
    result and oracle."""
    sampler = model.sampler if sampler is None else sampler
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
        results.append(
            transfer_style(
                model,
                classifier,
                source[i : i + 1],
                reference[i : i + 1],
                weight=weight,
                classifier_weight=classifier_weight,
                target_class=b_idx,
                chroma_weight=chroma_weight,
                sampler=sampler,
                k=k,
                generator=gen,
            )
        )
        if progress is not None:
            progress(i + 1)
    result = torch.cat(results)

    def scores(audio: torch.Tensor) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """The summary over clips, and each clip's row (so two models on the same clips and seeds compare clip by
        clip)."""
        pred, chroma = _predictions(classifier, audio), chroma_correlation(audio, source)
        with torch.no_grad():
            to_oracle = mel_distance(audio, oracle)
        summary = {
            "to_b": float(np.mean([p == b_idx for p in pred])),
            "still_a": float(np.mean([p == a_idx for p in pred])),
            "chroma_corr": float(chroma.mean()),
            "mel_to_oracle": float(to_oracle.mean()),
        }
        return summary, [
            {"to_b": p == b_idx, "chroma_corr": round(float(c), 4), "mel_to_oracle": round(float(m), 4)}
            for p, c, m in zip(pred, chroma, to_oracle)
        ]

    with torch.no_grad():  # the source through the codec alone: how much of the notes the latent space keeps by itself
        codec_ceiling = model.codec.decode(model.codec.encode(source), window)
    result_summary, per_clip = scores(result)
    if plot:
        plot_chromagrams(
            plot,
            {f"source ({style_a})": source[0], "result": result[0], f"oracle ({style_b})": oracle[0]},
            44100,
            title=f"{segments[0][0]} at {segments[0][1]:.1f} s: chroma with the source "
            f"{per_clip[0]['chroma_corr']:.2f} (chroma weight {chroma_weight:g})",
        )
    return {
        "n": n,
        "split": split,
        "style_a": style_a,
        "style_b": style_b,
        "weight": weight,
        "classifier_weight": classifier_weight,
        "chroma_weight": chroma_weight,
        "steps": sampler.steps,
        "eta": sampler.eta,
        "xi": sampler.xi,
        "guidance_step": sampler.guidance_step,
        "k": k,
        "strength": sampler.strength,
        "result": result_summary,
        "source": scores(source)[0],
        "oracle": scores(oracle)[0],
        "codec_ceiling": scores(codec_ceiling)[0],
        "per_clip": per_clip,
        "segments": [{"song": s, "start": round(t, 3)} for s, t in segments[:n]],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/style_transfer.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--pop909", required=True)
    p.add_argument("--classifier", required=True, help="trained PaSST folder, e.g. runs/classifier/final")
    p.add_argument("--checkpoints", help="folder with vae/ and dit/ (default: the repo's checkpoints/)")
    p.add_argument("--model", default="latent", choices=["latent", "waveform"])
    p.add_argument("--style-a", default="piano")
    p.add_argument("--style-b", default="strings")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--steps", type=int, help="sampling steps (default: the model's preset)")
    p.add_argument(
        "--weight", type=float, default=1.0, help="weight of the embedding-guidance term (toward the reference clip)"
    )
    p.add_argument(
        "--classifier-weight", type=float, default=0.0, help="weight of the classifier-guidance term (toward style B)"
    )
    p.add_argument(
        "--chroma-weight",
        type=float,
        default=0.0,
        help="weight of the chroma term that keeps the source's notes "
        f"(default 0, the paper's recipe; {CHROMA_WEIGHT:g} was chosen on valid clips)",
    )
    p.add_argument("--xi", type=float)
    p.add_argument("--eta", type=float, help="sampler η (0 = deterministic DDIM; default: the model's)")
    p.add_argument(
        "--guidance-step",
        choices=["eps", "x0"],
        default=None,
        help="what the guidance moves: eps (the paper's and the default, fades with the noise) or x0 (MPGD, "
        "He et al. 2024)",
    )
    p.add_argument(
        "--k",
        type=float,
        default=0.85,
        help="noise share of the start, x_T = k z + (1 - k) source; lower keeps more of the source's notes",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=None,
        help="start from the source noised to this level (SDEdit) instead "
        "of the paper's x_T; lower keeps more of the source",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "valid", "test"],
        help="songs to draw the clips from: choose settings on valid, report on test",
    )
    p.add_argument("--out", help="write the results JSON here")
    p.add_argument("--plot", help="write the chromagrams of the first clip's source, result and oracle to this PNG")
    args = p.parse_args(argv)

    try:
        model = load_models(args.model, args.checkpoints)
        classifier = from_pretrained(args.classifier)
        if classifier.cfg.input_sample_rate != 44100:
            raise InputError(
                f"{args.classifier}: classifier expects {classifier.cfg.input_sample_rate} Hz input; "
                "the models make 44100 Hz"
            )

        with tqdm(total=args.n, desc=f"{args.style_a} → {args.style_b}", unit="clip") as bar:
            report = evaluate_style_transfer(
                model,
                classifier,
                args.pop909,
                style_a=args.style_a,
                style_b=args.style_b,
                n=args.n,
                seed=args.seed,
                weight=args.weight,
                classifier_weight=args.classifier_weight,
                chroma_weight=args.chroma_weight,
                sampler=model.sampler.but(
                    steps=args.steps, xi=args.xi, eta=args.eta, guidance_step=args.guidance_step, strength=args.strength
                ),
                k=args.k,
                split=args.split,
                plot=args.plot,
                progress=lambda done: bar.update(done - bar.n),
            )
    except InputError as err:
        sys.stderr.write(f"style_transfer: error: {err}\n")
        return 2
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
