"""``musicprod transition-stems A/ B/ -o OUT/``: hand song A over to song B stem by stem, on one beat grid.

A and B are stem folders, either as ``musicprod render`` writes them (``NAME/mix.wav`` + ``NAME/stems/<TRACK>.wav``)
or plain ``NAME/<stem>.wav``. The plan is ``musicprod transition``'s, made from the two mixes: the overlap of
``--bars`` bars starts on a downbeat of A and B enters on one of its own, every stem of B stretched to A's tempo.
Over the overlap the drums crossfade on the grid, the bass swaps at the middle downbeat, and every other stem
crossfades on its own schedule (accompaniment first, melody last) through a crossfade the model regenerates with the
transition task. Writes ``OUT/mix.wav`` (the sum of the stems) and ``OUT/stems/<stem>.wav``, the layout this command
reads, so transitions can be chained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from guidance.transitions import stem_handovers, transition_stems
from musicprod_common.audio import AUDIO_SUFFIXES, SAMPLE_RATE, save_audio, to_stereo_44k
from musicprod_common.errors import InputError

from .cli_common import (
    add_model_args,
    check_writable_dir,
    models_from_args,
    read_audio,
    sampler_from_args,
)
from .transition_cmd import add_plan_args, plan_with_progress

HEADROOM = 0.99  # peak the written mix and stems may reach before one shared gain turns them down


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transition-stems",
        help="transition between two songs given as stem folders, stem by stem",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("a", type=Path, help="song A: a folder of stems (NAME/stems/*.wav or NAME/*.wav)")
    p.add_argument("b", type=Path, help="song B: a folder of stems")
    add_plan_args(p)
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


def load_stems(folder: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """All stems of a song as ``(2, T)`` at 44.1 kHz, and the first stem's path (its file format is reused)."""
    files = find_stems(folder)
    stems = {}
    for name, path in files.items():
        audio, sr = read_audio(path)
        stems[name] = to_stereo_44k(audio, sr, name=str(path))
    return stems, next(iter(files.values()))


def run(args: argparse.Namespace) -> None:
    stems_a, like = load_stems(args.a)
    stems_b, _ = load_stems(args.b)
    out_dir: Path = args.output
    for src in (args.a, args.b):
        if out_dir.resolve() == src.resolve():
            raise InputError(f"{out_dir}: the output folder is an input song's folder; pick a new output folder")
    existed = out_dir.exists()
    parent = out_dir if existed else out_dir.parent
    check_writable_dir(parent, for_path=out_dir)
    if existed and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder; pick an output folder")

    def mix_of(stems: dict[str, torch.Tensor]) -> torch.Tensor:
        n = max(x.shape[-1] for x in stems.values())
        return sum(torch.nn.functional.pad(x, (0, n - x.shape[-1])) for x in stems.values())

    plan = plan_with_progress(mix_of(stems_a), mix_of(stems_b), SAMPLE_RATE, args)
    names = sorted(set(stems_a) | set(stems_b))
    handovers = stem_handovers(names, plan, args.fade)
    regenerated = sum(h.kind == "regenerated" for h in handovers.values())
    models = models_from_args(args) if regenerated else None
    sampler = sampler_from_args(args)
    with tqdm(
        total=sampler.steps * regenerated,
        desc=f"transition {len(names)} stems",
        unit="step",
        file=sys.stderr,
        leave=False,
        delay=0.5,
        disable=not regenerated,
    ) as bar:
        stems, handovers = transition_stems(
            models,
            stems_a,
            stems_b,
            SAMPLE_RATE,
            plan,
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
    for notice in plan.notices:
        print(f"note: {notice}")
    print(plan.describe())
    model = f"{args.model} model ({sampler.steps} steps, seed {args.seed})" if models is not None else "no model"
    print(f"transition {args.a} -> {args.b}: {len(names)} stems, {model}; each stem hands over:")
    fade = min(args.fade, plan.length)
    for name, how in sorted(handovers.items(), key=lambda kv: kv[1].at):
        where = (
            "both"
            if name in stems_a and name in stems_b
            else ("A only: fades out" if name in stems_a else "B only: fades in")
        )
        what = {
            "crossfade": f"crossfaded over the {plan.length:.1f} s overlap",
            "swap": f"swapped at {how.at:.2f} s",
            "regenerated": f"a {fade:g} s regenerated crossfade at {how.at:.2f} s",
        }[how.kind]
        print(f"  {name:<10} {what}  ({where})")
    print(
        f"mix -> {out_dir / ('mix' + like.suffix)} ({mix.shape[-1] / SAMPLE_RATE:.1f} s); stems -> {out_dir / 'stems'}/"
    )
