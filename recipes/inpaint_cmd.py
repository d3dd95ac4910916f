"""``musicprod inpaint SONG --start S --end E -o OUT``: regenerate one region of a song of any length.

Only a window around the region goes through the model; the result is blended back, so everything beyond
the crossfade margins is the input's own samples. The output keeps the input's rate, channels, length and
file format. ``musicprod regenerate`` (recipes/regenerate_cmd.py) shares this command's arguments.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from .cli_common import PLOT_SUFFIXES, add_model_args, check_output_file, models_from_args, non_negative_float, parse_region, read_audio
from .pipeline import DEFAULT_MARGIN, LEVEL_BAND_S, inpaint, windows_needed


def add_region_parser(subparsers: argparse._SubParsersAction, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """The arguments of every command that edits one region of one file."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("song", type=Path, help="input audio file (wav, flac, ogg, mp3), any rate, mono or stereo")
    p.add_argument("--start", type=non_negative_float, required=True, help="region start in seconds")
    p.add_argument("--end", type=non_negative_float, required=True, help="region end in seconds")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file; its suffix picks the format")
    add_model_args(p)
    p.add_argument("--margin", type=non_negative_float, default=DEFAULT_MARGIN,
                   help=f"crossfade on each side of the region, seconds (default {DEFAULT_MARGIN})")
    p.add_argument("--plot", type=Path, default=None, help="also write a before/after spectrogram (png/pdf/svg)")
    p.add_argument("--match-level", action="store_true",
                   help=f"undo the codec's level error, measured on the {LEVEL_BAND_S:g} s of original audio each side of the region "
                        "(the shipped VAE decodes 6-8 dB quiet); off by default because the benchmark's mel distance is worse with it")
    return p


def run_region(args: argparse.Namespace, task: Callable, verb: str, done: str) -> None:
    """Check everything, load the model, edit [start, end) with ``task`` (a pipeline function), write, report."""
    from tqdm import tqdm

    from musicprod_common.audio import save_audio

    audio, sr = read_audio(args.song)
    parse_region(args.start, args.end, audio.shape[-1] / sr, args.song)
    check_output_file(args.output, args.song)
    if args.plot is not None:
        check_output_file(args.plot, args.song, args.output, suffixes=PLOT_SUFFIXES, kind="plot")
    models = models_from_args(args)
    windows = windows_needed(models, args.start, args.end, audio.shape[-1] / sr, args.margin) if task is inpaint else 1
    with tqdm(total=args.steps * windows, desc=f"{verb} {args.song.name}", unit="step", file=sys.stderr, leave=False, delay=0.5) as bar:
        out = task(models, audio, sr, args.start, args.end, steps=args.steps, seed=args.seed, xi=args.guidance,
                   margin=args.margin, level_band=LEVEL_BAND_S if args.match_level else None, progress=bar.update)
    save_audio(args.output, out, sr, like=args.song)
    print(f"{done} {args.start:g}-{args.end:g} s of {args.song} ({audio.shape[-1] / sr:.1f} s, {audio.shape[0]} ch, "
          f"{sr} Hz) with the {args.model} model, {args.steps} steps, seed {args.seed} -> {args.output}")
    if args.plot is not None:
        from musicprod_common.plot import plot_before_after

        plot_before_after(args.plot, audio, out, sr, [(args.start, args.end)],
                          title=f"{args.song.name}: {args.start:g}-{args.end:g} s {done} ({args.model} model)")
        print(f"spectrogram -> {args.plot}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_region_parser(subparsers, "inpaint", "regenerate a region of a song (any length) from its surroundings",
                          __doc__.splitlines()[0].replace("``", ""))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    run_region(args, inpaint, "inpaint", "inpainted")
