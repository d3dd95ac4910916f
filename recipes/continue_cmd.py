"""``musicprod continue SONG -o OUT``: extend a song by one model window, continuing its last seconds.

Where the song's closing bars occurred before, what followed them there is copied on (``--source``, as in
``musicprod inpaint``). Otherwise the last ``--context`` seconds (Levy et al. 2023 use 2.4 s) are the model's
measurement and it generates the rest of its window after them. The output is the whole input followed by the
new audio, in the input's rate, channels and format.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from guidance.song import continue_song
from musicprod_common.audio import save_audio
from musicprod_common.errors import InputError

from .cli_common import (
    add_model_args,
    check_output_file,
    models_from_args,
    non_negative_float,
    read_audio,
    sampler_from_args,
)
from .inpaint_cmd import add_source_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "continue",
        help="extend a song past its end by one model window",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("song", type=Path, help="input audio file (wav, flac, ogg, mp3)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file; its suffix picks the format")
    p.add_argument(
        "--context", type=non_negative_float, default=2.4, help="seconds of the song's end the model sees (default 2.4)"
    )
    add_model_args(p)
    add_source_args(p, references=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    audio, sr = read_audio(args.song)
    if not args.context > 0:
        raise InputError(f"--context {args.context:g} must be positive")
    check_output_file(args.output, args.song)
    models = models_from_args(args)
    window = models.window / models.sample_rate
    if args.context >= window:
        raise InputError(
            f"--context {args.context:g} s must be shorter than the {args.model} model's {window:.2f} s window"
        )
    sampler = sampler_from_args(args)
    with tqdm(
        total=sampler.steps, desc=f"continue {args.song.name}", unit="step", file=sys.stderr, leave=False, delay=0.5
    ) as bar:
        result = continue_song(
            models,
            audio,
            sr,
            context=args.context,
            source=args.source,
            refine=args.refine,
            sampler=sampler,
            seed=args.seed,
            progress=bar.update,
        )
    save_audio(args.output, result.audio, sr, like=args.song)
    added = (result.audio.shape[-1] - audio.shape[-1]) / sr
    plan = result.plans[0]
    how = (
        plan.describe(["the song"], args.model, args.refine)
        if plan.copied
        else (f"from its last {args.context:g} s with the {args.model} model ({sampler.steps} steps, seed {args.seed})")
    )
    print(f"continued {args.song} by {added:.2f} s -> {args.output}\n  {how}")
