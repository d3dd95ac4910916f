"""``musicprod render``: a POP909 song folder or a MIDI file -> ``OUT/mix.wav`` + ``OUT/stems/<TRACK>.wav``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from musicprod_common.audio import save_audio
from musicprod_common.errors import InputError
from musicprod_common.pop909 import load_song
from musicprod_common.render import render_song
from musicprod_common.styles import STYLE_NAMES

LONG_RENDER_S = 30.0  # show a progress bar for windows longer than this


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render a POP909 song or MIDI file to a stereo mix plus stems",
        description="Render a POP909 song folder (NNN/) or a .mid file with FluidSynth into "
        "OUT/mix.wav and OUT/stems/<TRACK>.wav (44.1 kHz stereo); the stems sum to the mix.",
    )
    p.add_argument("input", type=Path, help="POP909 song folder (NNN/ with NNN.mid and its .txt files) or a .mid file")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--style", default="piano", choices=STYLE_NAMES, help="instrumentation style (default: piano)")
    p.add_argument("--start", type=float, default=0.0, help="window start in seconds (default 0)")
    p.add_argument(
        "--end", type=float, default=None, help="window end in seconds (default: the song's end plus a decay tail)"
    )
    p.add_argument("--transpose", type=int, default=0, help="semitones to transpose (drums stay put)")
    p.add_argument(
        "--soundfont", type=Path, default=None, help="SoundFont .sf2 (default: $MUSICPROD_SOUNDFONT or FluidR3_GM)"
    )
    p.add_argument(
        "--format", choices=["float", "24"], default="float", help="wav sample format: 32-bit float or 24-bit PCM"
    )
    p.set_defaults(func=run)


def render_to_folder(
    input_path: Path,
    output: Path,
    *,
    style: str,
    start: float = 0.0,
    end: float | None = None,
    transpose: int = 0,
    soundfont: Path | None = None,
    subtype: str = "FLOAT",
    progress=None,
) -> tuple[Path, list[Path]]:
    """Render and write ``output/mix.wav`` and ``output/stems/*.wav`` all-or-nothing; returns (mix, stems)."""
    existing = next(p for p in (output, *output.parents) if p.exists() or p == Path(p.anchor))
    if existing.exists() and not existing.is_dir():
        raise InputError(f"{output}: {existing} is a file, not a folder; pass an output folder")
    if input_path.resolve() == output.resolve():
        raise InputError(f"{output}: the output would overwrite the input; choose another output folder")
    song = load_song(input_path)
    rendering = render_song(
        song, style, start=start, end=end, transpose=transpose, soundfont=soundfont, progress=progress
    )
    # Stage everything in a temporary folder beside the output, then move the files into place, so a failure
    # leaves no partial output.
    parent = output if output.is_dir() else output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".musicprod-render-", dir=parent))
    except OSError as err:
        raise InputError(f"{output}: cannot write there ({err.strerror}); pick a writable output folder") from err
    moved: list[Path] = []
    created_output = not output.exists()
    try:
        (stage / "stems").mkdir()
        save_audio(stage / "mix.wav", rendering.mix, rendering.sample_rate, subtype=subtype)
        for name, audio in rendering.stems.items():
            save_audio(stage / "stems" / f"{name}.wav", audio, rendering.sample_rate, subtype=subtype)
        (output / "stems").mkdir(parents=True, exist_ok=True)
        for src in [stage / "mix.wav", *sorted((stage / "stems").iterdir())]:
            dst = output / src.relative_to(stage)
            os.replace(src, dst)
            moved.append(dst)
    except BaseException as err:
        for path in moved:
            path.unlink(missing_ok=True)
        if created_output:
            shutil.rmtree(output, ignore_errors=True)
        if isinstance(err, OSError):
            raise InputError(f"{output}: cannot write there ({err.strerror}); pick a writable output folder") from err
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return moved[0], moved[1:]


def run(args: argparse.Namespace) -> None:
    if args.end is not None and args.end <= args.start:
        raise InputError(f"--end {args.end} must be after --start {args.start}")
    bar = None

    def progress(fraction: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=100, unit="%", desc="rendering", file=sys.stderr, leave=False)
        bar.n = int(100 * fraction)
        bar.refresh()

    long = args.end is None or args.end - args.start > LONG_RENDER_S
    try:
        mix, stems = render_to_folder(
            args.input,
            args.output,
            style=args.style,
            start=args.start,
            end=args.end,
            transpose=args.transpose,
            soundfont=args.soundfont,
            subtype="FLOAT" if args.format == "float" else "PCM_24",
            progress=progress if long and sys.stderr.isatty() else None,
        )
    finally:
        if bar is not None:
            bar.close()
    print(
        f"rendered {args.input} in style {args.style} -> {mix} and {len(stems)} stems in {mix.parent / 'stems'} "
        f"({', '.join(p.stem for p in stems)})"
    )
