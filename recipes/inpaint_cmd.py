"""``musicprod inpaint SONG --start S --end E -o OUT``: fill regions of a song of any length.

Each region is filled from the song itself where it can be: the passage elsewhere in the song (or in a
``--reference`` recording) whose surroundings match the region's is copied in, aligned to the sample, with short
fades placed where they are least audible. Where nothing matches well enough, the model generates the region
from its surroundings. Everything beyond the crossfade margins is the input's own samples. The output keeps the
input's rate, channels, length and file format. ``musicprod regenerate`` and ``style`` share the region arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tqdm import tqdm

from guidance.config import LEVEL_BAND_S, SamplerConfig
from guidance.song import (
    DEFAULT_REFINE,
    INPAINT_SOURCES,
    REFINEMENTS,
    inpaint_regions,
    model_windows,
    needs_model,
    plan_inpaint,
    prepare_references,
)
from guidance.tasks import DEFAULT_MARGIN
from musicprod_common.audio import save_audio
from musicprod_common.errors import InputError
from musicprod_common.plot import CopyMark, plot_before_after

from .cli_common import (
    PLOT_SUFFIXES,
    add_model_args,
    check_output_file,
    models_from_args,
    non_negative_float,
    parse_region,
    read_audio,
    sampler_from_args,
)

if TYPE_CHECKING:
    from guidance.song import RegionPlan


def add_region_parser(
    subparsers: argparse._SubParsersAction, name: str, help: str, description: str, *, several: bool = False
) -> argparse.ArgumentParser:
    """The arguments of every command that edits a region of one file (``several``: one or more regions)."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("song", type=Path, help="input audio file (wav, flac, ogg, mp3), any rate, mono or stereo")
    nargs = dict(nargs="+", metavar="S") if several else {}
    p.add_argument(
        "--start",
        type=non_negative_float,
        required=True,
        help="region start in seconds" + (" (several regions: --start 10 42 --end 12 44)" if several else ""),
        **nargs,
    )
    p.add_argument("--end", type=non_negative_float, required=True, help="region end in seconds", **nargs)
    p.add_argument("-o", "--output", type=Path, required=True, help="output file; its suffix picks the format")
    add_model_args(p)
    p.add_argument(
        "--margin",
        type=non_negative_float,
        default=DEFAULT_MARGIN,
        help=f"crossfade on each side of the region, seconds (default {DEFAULT_MARGIN})",
    )
    p.add_argument("--plot", type=Path, default=None, help="also write a before/after spectrogram (png/pdf/svg)")
    p.add_argument(
        "--match-level",
        action="store_true",
        help=f"undo the codec's level error, measured on the {LEVEL_BAND_S:g} s of original audio each side of the "
        "region "
        "(the shipped VAE decodes 6-8 dB quiet); off by default because the benchmark's mel distance is worse with it",
    )
    return p


def check_plot_arg(args: argparse.Namespace) -> None:
    if args.plot is not None:
        check_output_file(
            args.plot,
            args.song,
            args.output,
            *getattr(args, "reference", None) or (),
            suffixes=PLOT_SUFFIXES,
            kind="plot",
        )


def run_region(args: argparse.Namespace, task: Callable, verb: str, done: str, sampler: SamplerConfig) -> None:
    """Check everything, load the model, edit [start, end) with ``task`` (a verb of the task layer) and ``sampler``,
    write, report."""
    audio, sr = read_audio(args.song)
    parse_region(args.start, args.end, audio.shape[-1] / sr, args.song)
    check_output_file(args.output, args.song)
    check_plot_arg(args)
    models = models_from_args(args)
    sampler = sampler.but(level_band_s=LEVEL_BAND_S if args.match_level else None)
    with tqdm(
        total=sampler.steps, desc=f"{verb} {args.song.name}", unit="step", file=sys.stderr, leave=False, delay=0.5
    ) as bar:
        out = task(
            models,
            audio,
            sr,
            args.start,
            args.end,
            sampler=sampler,
            seed=args.seed,
            margin=args.margin,
            progress=bar.update,
        )
    save_audio(args.output, out, sr, like=args.song)
    print(
        f"{done} {args.start:g}-{args.end:g} s of {args.song} ({audio.shape[-1] / sr:.1f} s, {audio.shape[0]} ch, "
        f"{sr} Hz) with the {args.model} model, {sampler.steps} steps, seed {args.seed} -> {args.output}"
    )
    if args.plot is not None:
        plot_before_after(
            args.plot,
            audio,
            out,
            sr,
            [(args.start, args.end)],
            title=f"{args.song.name}: {args.start:g}-{args.end:g} s {done} ({args.model} model)",
        )
        print(f"spectrogram -> {args.plot}")


def add_source_args(p: argparse.ArgumentParser, *, references: bool = True) -> None:
    """``--source``, ``--reference``, ``--refine``: where fills come from (inpaint, inpaint-batch, continue)."""
    p.add_argument(
        "--source",
        choices=INPAINT_SOURCES,
        default="auto",
        help="auto: copy the song's own matching passage where one matches well, generate otherwise (default); "
        "song: copy, or fail if nothing matches well enough; model: always generate",
    )
    if references:
        p.add_argument(
            "--reference",
            type=Path,
            action="append",
            default=None,
            metavar="FILE",
            help="another recording to copy from as well (another take, a live version, the stems' mix); repeatable",
        )
    p.add_argument(
        "--refine",
        choices=REFINEMENTS,
        default=DEFAULT_REFINE,
        help="send copies through the model too: seams (regenerate the copy next to each seam), sdedit "
        "(regenerate the whole copy from itself), target (generate toward the copy); "
        f"none keeps the copied samples (default {DEFAULT_REFINE})",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_region_parser(
        subparsers,
        "inpaint",
        "fill regions of a song from its own matching passages or with the model",
        __doc__.splitlines()[0].replace("``", ""),
        several=True,
    )
    add_source_args(p)
    p.set_defaults(func=run)


def read_references(paths: list[Path] | None, sample_rate: int, channels: int, song: Path) -> tuple[list, list[str]]:
    """The ``--reference`` files in the song's rate and channels, and their names; bad ones fail in one line."""
    paths = paths or []
    for path in paths:
        if path.resolve() == song.resolve():
            raise InputError(
                f"{path}: is the song itself; a reference is another recording (the song is always searched)"
            )
    loaded = [read_audio(p) for p in paths]
    return prepare_references(loaded, sample_rate, channels, [str(p) for p in paths]), [p.name for p in paths]


def run(args: argparse.Namespace) -> None:
    audio, sr = read_audio(args.song)
    duration = audio.shape[-1] / sr
    if len(args.start) != len(args.end):
        raise InputError(f"{len(args.start)} --start but {len(args.end)} --end values; give one end per start")
    regions = [parse_region(a, b, duration, args.song) for a, b in zip(args.start, args.end)]
    check_output_file(args.output, args.song, *(args.reference or ()))
    check_plot_arg(args)
    references, names = read_references(args.reference, sr, audio.shape[0], args.song)
    plans = plan_inpaint(
        audio, sr, regions, source=args.source, references=references, margin=args.margin, reference_names=names
    )
    models = models_from_args(args) if needs_model(plans, args.refine) else None
    sampler = sampler_from_args(args, level_band_s=LEVEL_BAND_S if args.match_level else None)
    total = sampler.steps * model_windows(models, plans, duration, args.refine, args.margin) if models else 0
    with tqdm(
        total=total,
        desc=f"inpaint {args.song.name}",
        unit="step",
        file=sys.stderr,
        leave=False,
        delay=0.5,
        disable=total == 0,
    ) as bar:
        result = inpaint_regions(
            models,
            audio,
            sr,
            plans,
            references=references,
            refine=args.refine,
            sampler=sampler,
            seed=args.seed,
            margin=args.margin,
            progress=bar.update,
        )
    save_audio(args.output, result.audio, sr, like=args.song)
    sources = ["the song", *names]
    model_note = f" with the {args.model} model ({sampler.steps} steps, seed {args.seed})" if models else ""
    print(
        f"inpainted {len(plans)} region{'s' * (len(plans) > 1)} of {args.song} ({duration:.1f} s, {audio.shape[0]} ch, "
        f"{sr} Hz){model_note} -> {args.output}"
    )
    for plan in result.plans:
        print(f"  {plan.describe(sources, args.model, args.refine)}")
    if args.plot is not None:
        plot_before_after(
            args.plot,
            audio,
            result.audio,
            sr,
            regions,
            title=f"{args.song.name}: inpainted",
            copies=[copy_marks(p, sources) for p in result.plans],
        )
        print(f"plot -> {args.plot}")


def copy_marks(plan: "RegionPlan", sources: list[str]) -> CopyMark:
    """What the plot marks for one region: where its copy came from (a span of the song when the song is the source)."""
    if plan.splice is None:
        score = f" (best match {plan.best.score:.2f})" if plan.best is not None else ""
        return CopyMark((plan.start, plan.end), f"generated{score}")
    sr, piece = plan.splice.sample_rate, plan.splice.pieces[0]
    start = (plan.splice.region[0] + piece.shift) / sr
    label = f"copied from {start:.1f} s of {sources[piece.source]} (match {plan.best.score:.2f})"
    return CopyMark(
        (plan.start, plan.end), label, (start, start + plan.end - plan.start) if piece.source == 0 else None
    )
