"""Levy et al. 2023's set metrics between a folder of generated audio and a folder of reference audio.

    python -m guidance.evaluate_audio --classifier checkpoints/classifier --reference REF_DIR --generated GEN_DIR \
        [--baseline BASE_DIR] [--seconds 5.94] [--out metrics.json]

Every audio file in a folder (searched recursively, sorted by path) gives one clip: its first ``--seconds``,
stereo at 44.1 kHz, zero-padded when shorter. The PaSST classifier embeds and classifies every clip, and
:mod:`guidance.metrics` compares the sets:

* ``fad``: the Fréchet audio distance of the generated embeddings from the reference ones, and ``fad_inf``, its
  extrapolation to infinitely many generated clips (when there are enough of them);
* ``kld``: the KL divergence between the classifier's label distributions of paired clips (files with the same
  relative path in both folders), both ways;
* ``realism``: the mean realism score of the generated clips against the reference set, and with ``--baseline``
  (e.g. crossfades of the same clips) that score divided by the baseline's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from musicprod_common.audio import AUDIO_SUFFIXES, SAMPLE_RATE, load_stereo_44k
from musicprod_common.errors import InputError
from musicprod_common.files import write_json

from .metrics import class_probs, embed_audio, fad, fad_inf, kld, normalised_realism, realism_scores
from .passt import from_pretrained


def read_clips(folder: str | Path, seconds: float) -> tuple[list[str], torch.Tensor]:
    """The relative paths of a folder's audio files and their first ``seconds``: ``(N, 2, T)`` at 44.1 kHz."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; pass a folder of audio files")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if len(files) < 2:
        raise InputError(f"{folder}: needs at least 2 audio files ({', '.join(AUDIO_SUFFIXES)}), found {len(files)}")
    n = int(round(seconds * SAMPLE_RATE))
    clips = []
    for path in files:
        audio = load_stereo_44k(path)[:, :n]
        clips.append(torch.nn.functional.pad(audio, (0, n - audio.shape[-1])))
    return [str(p.relative_to(folder)) for p in files], torch.stack(clips)


def evaluate_sets(
    classifier: torch.nn.Module,
    reference: str | Path,
    generated: str | Path,
    *,
    baseline: str | Path | None = None,
    seconds: float = 5.94,
) -> dict:
    """The set metrics of the clips in ``generated`` against those in ``reference`` (and ``baseline``)."""
    ref_names, ref = read_clips(reference, seconds)
    gen_names, gen = read_clips(generated, seconds)
    ref_emb, gen_emb = embed_audio(classifier.embed, ref), embed_audio(classifier.embed, gen)
    out: dict = {"reference": len(ref_names), "generated": len(gen_names), "seconds": seconds}
    out["fad"] = fad(ref_emb, gen_emb).fad
    try:
        out["fad_inf"] = fad_inf(ref_emb, gen_emb).fad_inf
    except ValueError:  # too few generated clips for two subset sizes
        out["fad_inf"] = None
    shared = sorted(set(ref_names) & set(gen_names))
    if shared:
        ref_probs, gen_probs = class_probs(classifier.classify, ref), class_probs(classifier.classify, gen)
        pick = lambda names, probs: probs[[names.index(s) for s in shared]]  # noqa: E731
        out["kld"] = kld(pick(gen_names, gen_probs), pick(ref_names, ref_probs))
    else:
        out["kld"] = None
    if baseline is not None:
        out["realism"] = normalised_realism(
            ref_emb, gen_emb, embed_audio(classifier.embed, read_clips(baseline, seconds)[1])
        )
    else:
        out["realism"] = {"realism": float(realism_scores(ref_emb, gen_emb).mean())}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m guidance.evaluate_audio", description=__doc__.split("\n\n")[0])
    p.add_argument("--classifier", required=True, help="PaSST classifier folder, e.g. checkpoints/classifier")
    p.add_argument("--reference", required=True, help="folder of reference (real) audio")
    p.add_argument("--generated", required=True, help="folder of generated audio")
    p.add_argument("--baseline", help="folder of baseline outputs (e.g. crossfades) to normalise the realism score by")
    p.add_argument("--seconds", type=float, default=5.94, help="seconds of each file to use (default 5.94)")
    p.add_argument("--out", help="also write the metrics JSON here")
    args = p.parse_args(argv)

    try:
        classifier = from_pretrained(args.classifier).eval()
        metrics = evaluate_sets(
            classifier, args.reference, args.generated, baseline=args.baseline, seconds=args.seconds
        )
    except InputError as err:
        sys.stderr.write(f"evaluate_audio: error: {err}\n")
        return 2
    if args.out:
        write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
