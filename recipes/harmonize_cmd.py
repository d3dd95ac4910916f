"""``musicprod harmonize``: a melody MIDI → the melody plus a generated accompaniment (binomial diffusion)."""

from __future__ import annotations

import argparse
from pathlib import Path

from symbolic.pipeline import harmonize, write_outputs

from .accompany_cmd import add_symbolic_output_args, check_outputs, progress_bar
from .cli_common import check_input_file, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "harmonize",
        help="generate an accompaniment under a melody (MIDI in, MIDI out)",
        description="Binomial diffusion (Atassi) harmonisation: the melody bits stay fixed while the "
        "accompaniment is sampled, 4 bars at a time with a 2-bar overlap.",
    )
    p.add_argument("--melody", type=Path, required=True, help="melody MIDI file (a track named MELODY, else all notes)")
    p.add_argument(
        "--bars", type=positive_int, default=None, help="length in bars (default: the melody's, rounded up to even)"
    )
    add_symbolic_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    melody = check_input_file(args.melody)
    check_outputs(args, melody)
    tracks, steps, bpm = harmonize(
        melody, bars=args.bars, checkpoint=args.checkpoint, seed=args.seed, progress=progress_bar("harmonize")
    )
    written = write_outputs(tracks, steps, args.output, bpm=bpm, audio_path=args.audio, style=args.style)
    print(f"wrote {', '.join(map(str, written))} ({len(tracks['PIANO'])} accompaniment notes)")
