"""``musicprod transition A B -o OUT``: play A, then B, joined by a regenerated crossfade.

The end of A and the start of B meet in one model window; the ``--fade`` seconds where they overlap are
regenerated starting from their constant-power crossfade (Levy et al. 2023, §4; k = 0.85; ``--strength``
below 1 keeps more of the crossfade). B is converted to A's rate and channels, and the output takes A's format.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guidance.tasks import transition
from musicprod_common.audio import match_format

from .cli_common import (
    add_model_args,
    add_strength_arg,
    check_output_file,
    models_from_args,
    non_negative_float,
    read_audio,
    sampler_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transition",
        help="join two songs through a regenerated crossfade",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("a", type=Path, help="first song (audio file)")
    p.add_argument("b", type=Path, help="second song (audio file)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file; its suffix picks the format")
    p.add_argument(
        "--fade", type=non_negative_float, default=2.5, help="seconds of overlap to regenerate (default 2.5)"
    )
    add_model_args(p)
    add_strength_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from musicprod_common.audio import save_audio
    from musicprod_common.errors import InputError

    a, sr = read_audio(args.a)
    b, sr_b = read_audio(args.b)
    check_output_file(args.output, args.a, args.b)
    if not args.fade > 0:
        raise InputError(f"--fade {args.fade:g} must be positive")
    for name, x, rate in ((args.a, a, sr), (args.b, b, sr_b)):
        if x.shape[-1] / rate < args.fade:
            raise InputError(
                f"{name}: {x.shape[-1] / rate:.2f} s is shorter than the {args.fade:g} s fade; pass a shorter --fade"
            )
    models = models_from_args(args)
    window = models.window / models.sample_rate
    if args.fade >= window:
        raise InputError(f"--fade {args.fade:g} s must be shorter than the {args.model} model's {window:.2f} s window")
    b = match_format(b, sr_b, sr, a.shape[0])
    sampler = sampler_from_args(args, strength=args.strength)
    with tqdm(total=sampler.steps, desc="transition", unit="step", file=sys.stderr, leave=False, delay=0.5) as bar:
        out = transition(
            models,
            a,
            b,
            sr,
            fade=args.fade,
            sampler=sampler,
            seed=args.seed,
            progress=bar.update,
        )
    save_audio(args.output, out, sr, like=args.a)
    print(
        f"joined {args.a} ({a.shape[-1] / sr:.1f} s) into {args.b} ({b.shape[-1] / sr:.1f} s) through a regenerated "
        f"{args.fade:g} s crossfade at {(a.shape[-1] / sr) - args.fade:.2f} s with the {args.model} model -> "
        f"{args.output}"
    )
