"""``musicprod transition-stems A/ B/ --at 30 --length 8 -o OUT/``: hand song A over to song B stem by stem.

A and B are stem folders, either as ``musicprod render`` writes them (``NAME/mix.wav`` + ``NAME/stems/<TRACK>.wav``)
or plain ``NAME/<stem>.wav``. The output plays A until ``--at`` seconds and B (from ``--b-start``) after
``--at + --length``; in between each stem crossfades on its own schedule — accompaniment first, melody last —
and the model regenerates every stem's crossfade with the transition task. Writes ``OUT/mix.wav`` (the sum of
the stems) and ``OUT/stems/<stem>.wav``, the layout this command reads, so transitions can be chained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from guidance.transitions import transition_stems
from musicprod_common.audio import AUDIO_SUFFIXES, SAMPLE_RATE
from musicprod_common.errors import InputError

from .cli_common import (
    add_model_args,
    check_writable_dir,
    models_from_args,
    non_negative_float,
    read_audio,
    sampler_from_args,
)

if TYPE_CHECKING:
    import torch

HEADROOM = 0.99  # peak the written mix and stems may reach before one shared gain turns them down


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transition-stems",
        help="transition between two songs given as stem folders, stem by stem",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("a", type=Path, help="song A: a folder of stems (NAME/stems/*.wav or NAME/*.wav)")
    p.add_argument("b", type=Path, help="song B: a folder of stems")
    p.add_argument(
        "--at", type=non_negative_float, required=True, help="time in A where the transition starts, seconds"
    )
    p.add_argument("--length", type=non_negative_float, default=8.0, help="transition length in seconds (default 8)")
    p.add_argument("--b-start", type=non_negative_float, default=0.0, help="time in B that enters at --at (default 0)")
    p.add_argument(
        "--fade",
        type=non_negative_float,
        default=2.5,
        help="each stem's regenerated crossfade, seconds (default 2.5, the paper's; capped at --length)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (gets mix.wav and stems/)")
    add_model_args(p)
    p.set_defaults(func=run)


def find_stems(folder: Path) -> dict[str, Path]:
    """Stem name → file for a render output (``stems/`` sub-folder) or a plain folder of stems (``mix.*`` skipped)."""
    if not folder.exists():
        raise InputError(f"{folder}: not found; pass a folder of stems (NAME/stems/*.wav or NAME/*.wav)")
    if not folder.is_dir():
        raise InputError(
            f"{folder}: is a file, not a stem folder; pass a folder of stems (NAME/stems/*.wav or NAME/*.wav)"
        )
    source = folder / "stems" if (folder / "stems").is_dir() else folder
    files = sorted(
        p for p in source.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and p.stem.lower() != "mix"
    )
    if not files:
        raise InputError(
            f"{folder}: no stem audio files found (looked for {source}/*{'|*'.join(AUDIO_SUFFIXES)}); "
            "render one with `musicprod render` or put one file per stem there"
        )
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise InputError(f"{folder}: two files for stem {p.stem!r} ({stems[p.stem].name}, {p.name}); keep one")
        stems[p.stem] = p
    return stems


def load_stems(folder: Path) -> tuple[dict[str, "torch.Tensor"], Path]:
    """All stems of a song as ``(2, T)`` at 44.1 kHz, and the first stem's path (its file format is reused)."""
    from musicprod_common.audio import to_stereo_44k

    files = find_stems(folder)
    stems = {}
    for name, path in files.items():
        audio, sr = read_audio(path)
        stems[name] = to_stereo_44k(audio, sr, name=str(path))
    return stems, next(iter(files.values()))


def run(args: argparse.Namespace) -> None:
    import torch
    from tqdm import tqdm

    from musicprod_common.audio import save_audio

    stems_a, like = load_stems(args.a)
    stems_b, _ = load_stems(args.b)
    out_dir: Path = args.output
    for src in (args.a, args.b):
        if out_dir.resolve() == src.resolve():
            raise InputError(f"{out_dir}: the output folder is an input song's folder; pick a new output folder")
    if not args.length > 0:
        raise InputError(f"--length {args.length:g} must be positive")
    len_a = max(x.shape[-1] for x in stems_a.values()) / SAMPLE_RATE
    len_b = max(x.shape[-1] for x in stems_b.values()) / SAMPLE_RATE
    if args.at + args.length > len_a:
        raise InputError(
            f"{args.a}: --at {args.at:g} + --length {args.length:g} s runs past the end of song A ({len_a:.2f} s)"
        )
    if args.b_start + args.length > len_b:
        raise InputError(
            f"{args.b}: --b-start {args.b_start:g} + --length {args.length:g} s runs past the end of song B "
            f"({len_b:.2f} s)"
        )
    existed = out_dir.exists()
    parent = out_dir if existed else out_dir.parent
    check_writable_dir(parent, for_path=out_dir)
    if existed and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder; pick an output folder")

    models = models_from_args(args)
    window = models.window / models.sample_rate
    if min(args.fade, args.length) >= window:
        raise InputError(
            f"--fade {min(args.fade, args.length):g} s must be shorter than the {args.model} model's {window:.2f} s "
            "window"
        )
    names = sorted(set(stems_a) | set(stems_b))
    sampler = sampler_from_args(args)
    with tqdm(
        total=sampler.steps * len(names),
        desc=f"transition {len(names)} stems",
        unit="step",
        file=sys.stderr,
        leave=False,
        delay=0.5,
    ) as bar:
        stems, centres = transition_stems(
            models,
            stems_a,
            stems_b,
            SAMPLE_RATE,
            at=args.at,
            length=args.length,
            b_start=args.b_start,
            fade=args.fade,
            sampler=sampler,
            seed=args.seed,
            progress=bar.update,
        )
    mix = torch.stack(list(stems.values())).sum(0)
    peak = max(float(mix.abs().max()), max(float(x.abs().max()) for x in stems.values()))
    if peak > HEADROOM:  # one gain for the mix and every stem keeps mix == sum(stems)
        stems = {k: v * (HEADROOM / peak) for k, v in stems.items()}
        mix = torch.stack(list(stems.values())).sum(0)

    written: list[Path] = []
    try:
        (out_dir / "stems").mkdir(parents=True, exist_ok=True)
        for name, audio in stems.items():
            written.append(save_audio(out_dir / "stems" / f"{name}{like.suffix}", audio, SAMPLE_RATE, like=like))
        written.append(save_audio(out_dir / f"mix{like.suffix}", mix, SAMPLE_RATE, like=like))
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        if not existed:
            for d in (out_dir / "stems", out_dir):
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        raise
    fade = min(args.fade, args.length)
    print(
        f"transition {args.a} -> {args.b}: {args.length:g} s from {args.at:g} s, {len(names)} stems, "
        f"{args.model} model ({sampler.steps} steps, seed {args.seed}); each stem's {fade:g} s crossfade is centred at:"
    )
    for name, c in sorted(centres.items(), key=lambda kv: kv[1]):
        where = (
            "both"
            if name in stems_a and name in stems_b
            else ("A only: fades out" if name in stems_a else "B only: fades in")
        )
        print(f"  {name:<10} {c:7.2f} s  ({where})")
    print(
        f"mix -> {out_dir / ('mix' + like.suffix)} ({mix.shape[-1] / SAMPLE_RATE:.1f} s); stems -> {out_dir / 'stems'}/"
    )
