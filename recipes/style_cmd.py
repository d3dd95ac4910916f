"""``musicprod style SONG --start S --end E (--reference REF | --to STYLE) -o OUT``: re-create a region in another
style.

The region is regenerated as by ``musicprod regenerate``, from the original noised to ``--strength`` (0.4 by
default, with deterministic DDIM unless ``--eta`` says otherwise), while guidance gradients, applied to the denoised
estimate at every step (``--guidance-step x0``, ξ = 1e-2), pull the decoded audio toward the PaSST embedding of a
reference clip (``--reference``), toward one of the style
classifier's classes (``--to``), or both (Levy et al. 2023, §3.3), and a third pull keeps the region's own notes
(``--chroma-weight``: the chromagram of the result against the original's). The style is measured on the region alone.
Everything beyond the crossfade margins stays the input's own samples, as with ``musicprod inpaint``. These defaults
kept the most notes among the settings that moved at least 70 % of valid-split clips to the target style
(BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from guidance.config import sampler_preset
from guidance.passt import PaSST, from_pretrained
from guidance.style_guidance import style_target
from guidance.style_transfer import CHROMA_WEIGHT, CLASSIFIER_WEIGHT, restyle
from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.errors import InputError

from .cli_common import add_strength_arg, check_output_file, non_negative_float, read_audio, sampler_from_args
from .inpaint_cmd import add_region_parser, run_region
from .models import default_checkpoints


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_region_parser(
        subparsers,
        "style",
        "re-create a region of a song in the style of a reference clip or a named style",
        __doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="a clip in the target style (wav, flac, ogg, mp3; any rate and length)",
    )
    p.add_argument(
        "--to",
        metavar="STYLE",
        default=None,
        help="a style the classifier knows, e.g. strings (a wrong name lists them)",
    )
    p.add_argument(
        "--weight",
        type=non_negative_float,
        default=1.0,
        help="weight of the pull toward the reference clip (default 1)",
    )
    p.add_argument(
        "--classifier-weight",
        type=non_negative_float,
        default=CLASSIFIER_WEIGHT,
        help=f"weight of the pull toward --to STYLE (default {CLASSIFIER_WEIGHT:g}, chosen on valid-split clips)",
    )
    p.add_argument(
        "--chroma-weight",
        type=non_negative_float,
        default=CHROMA_WEIGHT,
        help=f"weight of the pull toward the region's own notes, its chromagram (default {CHROMA_WEIGHT:g}, chosen on "
        "valid-split clips); 0 lets the style take them too",
    )
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="the PaSST style classifier's folder (default: classifier/ in --checkpoints or the shipped checkpoints)",
    )
    style = sampler_preset("latent", "style")
    p.add_argument(
        "--guidance-step",
        choices=["x0", "eps"],
        default=style.guidance_step,
        help=f"what the pulls move: x0, the denoised estimate, to the last step (default; MPGD, He et al. 2024; "
        f"--guidance defaults to {style.xi:g} with it), or eps, the paper's noise estimate (fades as the noise does; "
        "--guidance then defaults to the paper's ξ)",
    )
    add_strength_arg(p, "style")
    p.set_defaults(func=run)


def load_classifier(folder: Path) -> PaSST:
    """The style classifier, checked to take the models' 44.1 kHz audio."""
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{folder}: no style classifier there (config.json + model.safetensors); pass --classifier DIR"
        )
    classifier = from_pretrained(folder)
    if classifier.cfg.input_sample_rate != SAMPLE_RATE:
        raise InputError(
            f"{folder}: this classifier takes {classifier.cfg.input_sample_rate} Hz audio, the models make "
            f"{SAMPLE_RATE} Hz; "
            "pass a classifier trained with musicprod (guidance.train_classifier)"
        )
    return classifier.eval().requires_grad_(False)


def run(args: argparse.Namespace) -> None:
    classifier = load_classifier(args.classifier or (args.checkpoints or default_checkpoints()) / "classifier")
    styles = ", ".join(classifier.cfg.class_names)
    if args.guidance == 0:
        raise InputError(
            "--guidance 0 turns every guidance pull off, the style's too; leave it out or pass a positive ξ"
        )
    if args.reference is None and args.to is None:
        raise InputError(f"say which style: --reference CLIP (audio in that style) or --to STYLE (one of {styles})")
    target = None if args.to is None else style_target(classifier, args.to)
    if (args.reference is None or args.weight == 0) and (target is None or args.classifier_weight == 0):
        raise InputError(
            "every style pull has weight 0; raise --weight (with --reference) or --classifier-weight (with --to)"
        )
    reference, reference_rate = None, SAMPLE_RATE
    if args.reference is not None:
        reference, reference_rate = read_audio(args.reference)
        if reference.shape[-1] * SAMPLE_RATE / reference_rate < classifier.min_samples:
            raise InputError(
                f"{args.reference}: {reference.shape[-1] / reference_rate:.3f} s is too short to have a style; "
                f"pass at least {classifier.min_samples / SAMPLE_RATE:.2f} s"
            )
        check_output_file(args.output, args.song, args.reference)
    task = partial(
        restyle,
        embedder=classifier,
        reference=reference,
        reference_rate=reference_rate,
        target_class=target,
        weight=args.weight,
        classifier_weight=args.classifier_weight,
        chroma_weight=args.chroma_weight,
    )
    xi = args.guidance
    if xi is None and args.guidance_step == "eps":  # the paper's ε̂ step at the paper's ξ
        xi = sampler_preset(args.model).xi
    sampler = sampler_from_args(args, "style", strength=args.strength, guidance_step=args.guidance_step, xi=xi)
    run_region(args, task, "restyle", "restyled", sampler)
