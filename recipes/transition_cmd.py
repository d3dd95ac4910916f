"""``musicprod transition A B -o OUT``: mix song A into song B on one beat grid, with a regenerated joint.

Both songs are analysed (tempo, downbeats, key). The overlap of ``--bars`` bars starts on a downbeat of A at a phrase
boundary (or at ``--at``, snapped to the nearest downbeat) and B enters on a downbeat (``--b-start``, snapped), time-
stretched by Rubber Band to A's tempo and levelled to A's loudness; ``--match-key`` also shifts B to a compatible
key. Over the overlap the highs crossfade while the bass swaps at the middle downbeat, and the model regenerates
``--fade`` seconds around the swap (Levy et al. 2023, §4). The output is A up to the cue-out, bit for bit, then B
from the cue-in on, in A's format. A song without a steady beat gets a plain regenerated crossfade.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from guidance.transitions import (
    BRIDGE_S,
    PHRASE_BARS,
    TransitionPlan,
    check_fade,
    plan_songs,
    render_transition,
)
from musicprod_common.audio import match_format, save_audio
from musicprod_common.plot import plot_transition

from .cli_common import (
    PLOT_SUFFIXES,
    add_model_args,
    add_strength_arg,
    check_output_file,
    models_from_args,
    non_negative_float,
    positive_int,
    read_audio,
    sampler_from_args,
)


def add_plan_args(p: argparse.ArgumentParser) -> None:
    """``--at``, ``--b-start``, ``--bars``, ``--no-snap``, ``--match-key``, ``--fade``: the plan of a transition."""
    p.add_argument(
        "--at",
        type=non_negative_float,
        default=None,
        help="seconds in A where the transition starts, snapped to the nearest downbeat (default: the last phrase "
        "boundary, a multiple of 8 bars, with room for the transition)",
    )
    p.add_argument(
        "--b-start",
        type=non_negative_float,
        default=None,
        help="seconds in B that enter at the cue-out, snapped to the nearest downbeat (default: B's first downbeat)",
    )
    p.add_argument(
        "--bars",
        type=positive_int,
        default=PHRASE_BARS,
        help=f"length of the transition in A's bars (default {PHRASE_BARS})",
    )
    p.add_argument(
        "--no-snap",
        action="store_true",
        help="take --at and --b-start as given: not snapped to downbeats, and B at one speed, its bars not pinned to "
        "A's nor its attacks lined up with A's",
    )
    p.add_argument(
        "--match-key",
        action="store_true",
        help="shift B by the smallest interval that makes its key compatible with A's (same, relative or a fifth)",
    )
    p.add_argument(
        "--fade",
        type=non_negative_float,
        default=BRIDGE_S,
        help=f"seconds the model regenerates at each joint (default {BRIDGE_S:g}, the paper's transition length; 0 "
        "keeps the beat-matched mix as it is and loads no model); without a beat, the length of the plain crossfade",
    )


def plan_options(args: argparse.Namespace) -> dict:
    """The plan's keyword arguments from :func:`add_plan_args`' flags."""
    return dict(
        at=args.at,
        b_start=args.b_start,
        bars=args.bars,
        snap=not args.no_snap,
        match_key=args.match_key,
        fade=args.fade,
    )


def plan_with_progress(a: torch.Tensor, b: torch.Tensor, sample_rate: int, args: argparse.Namespace) -> TransitionPlan:
    """:func:`plan_songs` under a progress bar on a terminal: the analysis of two long songs takes seconds before the
    model runs."""
    with tqdm(total=2, desc="analysis", unit="song", file=sys.stderr, leave=False, delay=0.5, disable=None) as bar:
        return plan_songs(a, b, sample_rate, progress=bar.update, **plan_options(args))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transition",
        help="mix one song into another on one beat grid, with a regenerated joint",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("a", type=Path, help="first song (audio file)")
    p.add_argument("b", type=Path, help="second song (audio file)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file; its suffix picks the format")
    add_plan_args(p)
    p.add_argument("--plot", type=Path, default=None, help="also draw both beat grids over the joint (png/pdf/svg)")
    add_model_args(p)
    add_strength_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    a, sr = read_audio(args.a)
    b, sr_b = read_audio(args.b)
    check_output_file(args.output, args.a, args.b)
    if args.plot is not None:
        check_output_file(args.plot, args.a, args.b, args.output, suffixes=PLOT_SUFFIXES, kind="plot")
    b = match_format(b, sr_b, sr, a.shape[0])
    models = models_from_args(args) if args.fade > 0 else None
    sampler = sampler_from_args(args, strength=args.strength)
    if models is not None:
        check_fade(models, args.fade)
    plan = plan_with_progress(a, b, sr, args)
    with tqdm(
        total=sampler.steps if models else 0,
        desc="transition",
        unit="step",
        file=sys.stderr,
        leave=False,
        delay=0.5,
        disable=models is None,
    ) as bar:
        options = dict(fade=args.fade, sampler=sampler, seed=args.seed, progress=bar.update)
        out = render_transition(models, a, b, sr, plan, **options)
    save_audio(args.output, out, sr, like=args.a)
    for notice in plan.notices:
        print(f"note: {notice}")
    print(plan.describe())
    model = f"the joint regenerated by the {args.model} model" if models is not None else "no model"
    # Two files of one name (each song's mix.wav) are told apart by their folders.
    names = (args.a.name, args.b.name) if args.a.name != args.b.name else (str(args.a), str(args.b))
    print(f"{names[0]} → {names[1]}: {out.shape[-1] / sr:.1f} s, {model} -> {args.output}")
    if args.plot is not None:
        a_grid, b_grid = plan.grids()
        plot_transition(
            args.plot,
            out,
            sr,
            (plan.cue_out, plan.cue_out + plan.length),
            a_grid,
            b_grid,
            swap=None if plan.swap is None else plan.cue_out + plan.swap,
            title=f"{names[0]} → {names[1]}",
        )
        print(f"plot -> {args.plot}")
