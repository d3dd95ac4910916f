"""``musicprod infill-midi``: regenerate a few bars of a MIDI file from their context (binomial diffusion)."""

from __future__ import annotations

import argparse
from pathlib import Path

from symbolic.pipeline import infill_midi, write_outputs

from .accompany_cmd import add_symbolic_output_args, check_outputs
from .cli_common import check_input_file


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "infill-midi",
        help="regenerate bars of a MIDI file from the bars around them",
        description="Binomial diffusion (Atassi) infilling: bars [--start-bar, --end-bar) are sampled "
        "with the surrounding bars fixed; notes outside the gap are kept.",
    )
    p.add_argument("input", type=Path, help="MIDI file (tracks MELODY and PIANO like POP909, or any piano MIDI)")
    p.add_argument("--start-bar", type=int, required=True, help="first bar to regenerate (0-based)")
    p.add_argument("--end-bar", type=int, required=True, help="bar after the last one to regenerate (gap of 1-3 bars)")
    add_symbolic_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    source = check_input_file(args.input)
    check_outputs(args, source)
    tracks, steps, bpm = infill_midi(source, args.start_bar, args.end_bar, checkpoint=args.checkpoint, seed=args.seed)
    written = write_outputs(tracks, steps, args.output, bpm=bpm, audio_path=args.audio, style=args.style)
    print(f"wrote {', '.join(map(str, written))} (bars {args.start_bar}-{args.end_bar} regenerated)")
