"""``musicprod accompany``: a chord progression (and optionally a melody) → piano accompaniment MIDI (FGG)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from musicprod_common.audio import AUDIO_SUFFIXES
from musicprod_common.errors import InputError
from musicprod_common.styles import STYLE_NAMES
from symbolic.generate import SamplingConfig
from symbolic.pipeline import accompany, write_outputs

from .cli_common import check_input_file, check_output_file, non_negative_float, positive_int

MIDI_SUFFIXES = (".mid", ".midi")


def add_symbolic_output_args(p: argparse.ArgumentParser) -> None:
    """``-o``, ``--audio``, ``--style``, ``--seed``, ``--checkpoint``, shared by the symbolic commands."""
    p.add_argument("-o", "--output", type=Path, required=True, help="output MIDI file (.mid)")
    p.add_argument("--audio", type=Path, default=None, help="also render the result with FluidSynth to this audio file")
    p.add_argument("--style", default="piano", choices=STYLE_NAMES, help="instrumentation for --audio (default: piano)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output on the CPU)")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="trained model folder (default: the shipped one in checkpoints/)"
    )


def check_outputs(args: argparse.Namespace, *inputs: Path) -> None:
    """Validate output paths before loading any model, so bad input fails at once."""
    check_output_file(args.output, *inputs, suffixes=MIDI_SUFFIXES, kind="MIDI")
    if args.audio is not None:
        check_output_file(args.audio, *inputs, suffixes=AUDIO_SUFFIXES)
        if args.audio.resolve() == args.output.resolve():
            raise InputError(f"{args.audio}: --audio and -o are the same file; pick two paths")


def progress_bar(total_label: str):
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=total_label, unit="window", file=sys.stderr)
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "accompany",
        help="generate a piano accompaniment for chords (and a melody) as MIDI",
        description="Chord-conditioned piano-roll diffusion with fine-grained correction (Zhu et al. 2024): "
        "no generated note falls outside the scale implied by each chord.",
    )
    p.add_argument("--chords", required=True, help="chord symbols, one per bar by default, cycled: e.g. 'C G Am F'")
    p.add_argument("--chords-per-bar", type=int, default=1, choices=[1, 2, 4])
    p.add_argument("--melody", type=Path, default=None, help="a melody MIDI file to accompany (its tempo is used)")
    p.add_argument("--bars", type=positive_int, default=8, help="length in bars: 4, 6, 8, ... (default 8)")
    p.add_argument("--bpm", type=float, default=100.0, help="tempo of the output without --melody (default 100)")
    p.add_argument("--steps", type=positive_int, default=25, help="DDIM steps, 10-50 (default 25)")
    p.add_argument(
        "--guidance-scale",
        type=non_negative_float,
        default=None,
        help="classifier-free guidance scale on the melody (default: symbolic.generate.SamplingConfig's, 1 = no CFG, "
        "as good as 7.5 for the shipped checkpoint at half the cost; the FGG paper uses 7.5)",
    )
    p.add_argument("--rescale", type=non_negative_float, default=0.7, help="CFG rescale (default 0.7)")
    p.add_argument("--no-correction", action="store_true", help="turn the fine-grained correction off")
    p.add_argument(
        "--strength", type=non_negative_float, default=1.0, help="correction strength λ in [0, 1]; 1 = hard (default)"
    )
    p.add_argument(
        "--scale",
        default=None,
        help="allow only this scale instead of the chord-implied ones, e.g. 'D:dorian', 'A:minor_pentatonic'",
    )
    p.add_argument("--top-k-onsets", type=positive_int, default=None, help="at most K note onsets per 16th step")
    add_symbolic_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    inputs = [check_input_file(args.melody)] if args.melody is not None else []
    check_outputs(args, *inputs)
    if args.strength > 1:
        raise InputError(f"--strength {args.strength}: must be between 0 and 1")
    if not 20 <= args.bpm <= 400:
        raise InputError(f"--bpm {args.bpm}: use a tempo between 20 and 400")
    cfg_scale = SamplingConfig.guidance_scale if args.guidance_scale is None else args.guidance_scale
    sampling = SamplingConfig(
        steps=args.steps,
        guidance_scale=cfg_scale,
        rescale=args.rescale,
        correction=not args.no_correction,
        strength=args.strength,
        top_k_onsets=args.top_k_onsets,
    )
    tracks, steps, melody_bpm = accompany(
        args.chords,
        bars=args.bars,
        chords_per_bar=args.chords_per_bar,
        melody_path=args.melody,
        scale=args.scale,
        sampling=sampling,
        checkpoint=args.checkpoint,
        seed=args.seed,
        progress=progress_bar("accompany"),
    )
    written = write_outputs(
        tracks, steps, args.output, bpm=melody_bpm or args.bpm, audio_path=args.audio, style=args.style
    )
    print(f"wrote {', '.join(map(str, written))} ({len(tracks['PIANO'])} accompaniment notes, {args.bars} bars)")
