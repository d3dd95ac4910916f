"""``musicprod inpaint-batch (FOLDER | jobs.csv) -o OUT/``: inpaint many files with one model load and one progress bar.

Each region is filled as ``musicprod inpaint`` fills it: from the file's own matching passage where one matches
(``--source``), with the model otherwise. The model is loaded only if some job needs it.

* a folder: every audio file in it (not recursive) gets the same ``--start``/``--end``; outputs keep their
  names and formats under ``OUT/``;
* a CSV with the header ``file,start,end,output``: one job per row; relative ``file`` paths are read from the
  CSV's folder, relative ``output`` paths are written under ``OUT/`` (or the CSV's folder without ``-o``).

Every job is checked (file readable, region inside it, output writable, no output overwriting an input)
before the first model call, so a bad row fails the batch at once instead of after an hour.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from guidance.song import inpaint_regions, model_windows, needs_model, plan_inpaint
from guidance.tasks import DEFAULT_MARGIN
from musicprod_common.audio import AUDIO_SUFFIXES, save_audio
from musicprod_common.errors import InputError

from .cli_common import (
    add_model_args,
    check_writable_dir,
    models_from_args,
    non_negative_float,
    read_audio,
    sampler_from_args,
)
from .inpaint_cmd import add_source_args

CSV_COLUMNS = ("file", "start", "end", "output")


@dataclass
class Job:
    file: Path
    start: float
    end: float
    output: Path
    duration: float = 0.0  # seconds, filled in by check_jobs


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inpaint-batch",
        help="inpaint a folder of files, or a CSV of jobs (file,start,end,output)",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("jobs", type=Path, help="a folder of audio files, or a .csv with columns file,start,end,output")
    p.add_argument("--start", type=non_negative_float, default=None, help="region start in seconds (folder input)")
    p.add_argument("--end", type=non_negative_float, default=None, help="region end in seconds (folder input)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output folder (created if missing; required for a folder input)",
    )
    add_model_args(p)
    p.add_argument(
        "--margin", type=non_negative_float, default=DEFAULT_MARGIN, help="crossfade each side of a region, s"
    )
    add_source_args(p, references=False)
    p.set_defaults(func=run)


def _float(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {what} {text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise InputError(f"{where}: {what} {text!r} must be a finite number >= 0")
    return value


def read_jobs_csv(path: Path, out_dir: Path | None) -> list[Job]:
    """Parse ``file,start,end,output`` rows (header required, extra columns ignored)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(
            f"{path}: cannot read the job list ({err}); pass a UTF-8 CSV with columns {','.join(CSV_COLUMNS)}"
        ) from err
    missing = [c for c in CSV_COLUMNS if c not in header]
    if not rows or missing:
        raise InputError(
            f"{path}: needs a header row {','.join(CSV_COLUMNS)} and at least one job (missing: "
            f"{', '.join(missing) or 'rows'})"
        )
    base, out_base = path.parent, out_dir if out_dir is not None else path.parent
    jobs = []
    for i, row in enumerate(rows, start=2):  # line numbers as an editor shows them (header is line 1)
        where = f"{path}:{i}"
        if not row["file"] or not row["output"]:
            raise InputError(f"{where}: empty file or output column")
        jobs.append(
            Job(
                base / row["file"],
                _float(row["start"], "start", where),
                _float(row["end"], "end", where),
                out_base / row["output"],
            )
        )
    return jobs


def folder_jobs(folder: Path, start: float | None, end: float | None, out_dir: Path | None) -> list[Job]:
    if start is None or end is None or out_dir is None:
        raise InputError(f"{folder}: a folder batch needs --start, --end and -o OUT_FOLDER")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
    return [Job(f, start, end, out_dir / f.name) for f in files]


def _check_samples(path: Path) -> None:
    """NaN/inf anywhere in a file fails the batch before any model runs (read in blocks: memory stays flat)."""
    for block in sf.blocks(str(path), blocksize=1 << 20, dtype="float32", always_2d=True):
        if not np.isfinite(block).all():
            raise InputError(f"{path}: contains NaN or infinite samples; repair or re-export the file")


def check_jobs(jobs: list[Job]) -> None:
    """Everything that can be checked without running a model, for every job."""
    inputs = {j.file.resolve() for j in jobs}
    outputs: set[Path] = set()
    scanned: set[Path] = set()
    for j in jobs:
        if not j.file.is_file():
            raise InputError(
                f"{j.file}: {'is a directory' if j.file.is_dir() else 'file not found'}; pass an audio file"
            )
        try:
            info = sf.info(str(j.file))
        except Exception as err:
            raise InputError(f"{j.file}: not a readable audio file ({err}); pass a valid wav/flac/ogg/mp3") from err
        if info.frames == 0:
            raise InputError(f"{j.file}: the audio has zero length; pass a file with sound in it")
        if info.channels > 2:
            raise InputError(
                f"{j.file}: has {info.channels} channels; only mono and stereo are supported, downmix it first"
            )
        duration = j.duration = info.frames / info.samplerate
        if j.file.resolve() not in scanned:
            _check_samples(j.file)
            scanned.add(j.file.resolve())
        if not j.start < j.end:
            raise InputError(f"{j.file}: start {j.start:g} must be before end {j.end:g}")
        if j.end > duration + 1e-9:
            raise InputError(f"{j.file}: region {j.start:g}-{j.end:g} s ends after the file ({duration:.2f} s)")
        if j.output.suffix.lower() not in AUDIO_SUFFIXES:
            raise InputError(
                f"{j.output}: unknown audio format {j.output.suffix or '(no suffix)'}; use one of "
                f"{', '.join(AUDIO_SUFFIXES)}"
            )
        out = j.output.resolve()
        if out in inputs:
            raise InputError(f"{j.output}: the output would overwrite an input; choose another output folder")
        if out in outputs:
            raise InputError(f"{j.output}: two jobs write the same output; give each job its own output")
        outputs.add(out)


def run(args: argparse.Namespace) -> None:
    src: Path = args.jobs
    if not src.exists():
        raise InputError(f"{src}: not found; pass a folder of audio files or a .csv job list")
    if src.is_dir():
        jobs = folder_jobs(src, args.start, args.end, args.output)
    elif src.suffix.lower() == ".csv":
        jobs = read_jobs_csv(src, args.output)
    else:
        raise InputError(
            f"{src}: expected a folder of audio files or a .csv job list (for one file use `musicprod inpaint`)"
        )
    check_jobs(jobs)
    created: list[Path] = []
    try:
        for folder in sorted({j.output.parent for j in jobs}):
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            check_writable_dir(folder, create=True)
            created += missing
        plans = []
        for j in jobs:  # the search needs no model: plan every job first, so the model loads only if one needs it
            audio, sr = read_audio(j.file)
            plans.append(plan_inpaint(audio, sr, [(j.start, j.end)], source=args.source, margin=args.margin))
        del audio
        models = models_from_args(args) if any(needs_model(p, args.refine) for p in plans) else None
        sampler = sampler_from_args(args)
        windows = sum(model_windows(models, p, j.duration, args.refine, args.margin) for j, p in zip(jobs, plans))
        total = sampler.steps * windows if models else 0
        with tqdm(
            total=total, desc=f"inpaint {len(jobs)} files", unit="step", file=sys.stderr, delay=0.5, disable=total == 0
        ) as bar:
            for j, plan in zip(jobs, plans):
                bar.set_postfix_str(j.file.name)
                audio, sr = read_audio(j.file)
                out = inpaint_regions(
                    models,
                    audio,
                    sr,
                    plan,
                    refine=args.refine,
                    sampler=sampler,
                    seed=args.seed,
                    margin=args.margin,
                    progress=bar.update,
                ).audio
                save_audio(j.output, out, sr, like=j.file)
    except BaseException:
        for folder in sorted(created, key=lambda f: len(f.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):  # only folders this run made, left empty
                folder.rmdir()
        raise
    model_note = (
        f" with the {args.model} model ({sampler.steps} steps, seed {args.seed}) where needed"
        if models is not None
        else ""
    )
    print(f"inpainted {len(jobs)} files{model_note}:")
    for j, plan in zip(jobs, plans):
        print(f"  {j.file} -> {j.output}: {plan[0].describe(model=args.model, refine=args.refine)}")
