"""Beat, downbeat and key analysis (``musicprod_common.analysis``) on POP909 songs rendered to audio.

    python benchmarks/analysis.py --split valid --songs 40 [--skip 0] [--styles band,strings,mallets:TimGM6mb] \
        [--seconds 90] [--humanize] [--workers 2] [--out runs/analysis/valid.jsonl] \
        [--set PRIOR_BPM=90 --set KEY_PROFILES=kk ...]

Each song's first ``--seconds`` are rendered once per style (cached as 16-bit FLAC under ``build/analysis/``);
``--humanize`` plays them as people do first (``musicprod_common.pop909.humanize``: the tempo drifting ±2 %, the notes
a few ms off the grid, the annotations moved with them), since POP909's MIDI holds one tempo for minutes.
A style is ``NAME`` (FluidR3_GM) or ``NAME:SOUNDFONT`` (a soundfont under ``/usr/share/sounds/sf2``); the default set
has drums (``band``), none (``strings``) and a timbre the rest of the project never trains on (``mallets`` through
TimGM6mb). Scores, with ``mir_eval`` against the POP909 annotations inside the window:

* beat F-measure (``mir_eval.beat.f_measure``, ±70 ms, both sides trimmed of their first 5 s as in MIREX) against
  ``beat_midi.txt``;
* downbeat F-measure: the same function on the bar starts (``beat_midi.txt``'s bar column, triple meter included);
* the same on the bars as Dai, Zhang & Dannenberg (2020) aligned them by hand (``pop909.bar_shifts``): POP909's bar
  column starts one to three beats early in about one song in five (``scripts/pop909_bar_shifts.py``);
* weighted MIREX key score (``mir_eval.key.weighted_score``) against ``key_audio.txt``. Its key may change within a
  song (18 of 99 songs in 001-099 have several lines); the reference is the key that lasts longest inside the
  window, which is the first one unless the song modulates early.

Audio without a detected beat scores 0 on beats and downbeats. ``--set NAME=VALUE`` overrides a setting of
``musicprod_common.analysis`` for the run. Settings are chosen on ``--split valid``; the test split is scored once with
the shipped ones. Prints a table per style (and the rates behind the scores: tempo within 4 % of the annotation's
median, meter, songs where no beat was found, analysis speed per process).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from musicprod_common import analysis  # noqa: E402
from musicprod_common.errors import InputError  # noqa: E402
from musicprod_common.pop909 import (  # noqa: E402
    bar_shifts,
    humanize,
    load_song,
    read_beats,
    shift_bars,
    split_song_ids,
)

SOUNDFONTS = Path("/usr/share/sounds/sf2")
DEFAULT_STYLES = "band,strings,mallets:TimGM6mb"


@dataclass(frozen=True)
class Item:
    """A rendered song window and its reference annotations (times in seconds inside the window)."""

    song: str
    style: str
    path: Path
    beats: np.ndarray
    downbeats: np.ndarray
    aligned_downbeats: np.ndarray  # the bars as aligned by hand (Dai et al. 2020)
    beats_per_bar: int
    key: str  # mir_eval format


def parse_styles(text: str) -> list[tuple[str, Path]]:
    """``"band,mallets:TimGM6mb"`` -> ``[("band", FluidR3_GM.sf2), ("mallets", TimGM6mb.sf2)]``."""
    out = []
    for entry in text.split(","):
        name, _, font = entry.strip().partition(":")
        sf2 = SOUNDFONTS / f"{font or 'FluidR3_GM'}.sf2"
        if not sf2.is_file():
            raise InputError(
                f"{sf2}: soundfont not found; pick one of {', '.join(p.stem for p in SOUNDFONTS.glob('*.sf2'))}"
            )
        out.append((name, sf2))
    return out


def harte_to_mir_eval(label: str) -> str:
    """POP909's ``Gb:maj`` / ``C#:min`` -> mir_eval's ``Gb major`` / ``C# minor``."""
    tonic, _, mode = label.partition(":")
    return f"{tonic} {'minor' if mode.startswith('min') else 'major'}"


def reference_key(path: Path, seconds: float) -> str:
    """The key of ``key_audio.txt`` that lasts longest inside [0, seconds) (the first one on a tie)."""
    spans: dict[str, float] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        start, end, label = line.split()[:3]
        spans[label] = spans.get(label, 0.0) + max(0.0, min(float(end), seconds) - max(float(start), 0.0))
    return harte_to_mir_eval(max(spans, key=lambda k: (spans[k], -list(spans).index(k))))


def rendered(args: argparse.Namespace) -> list[Item]:
    """Every (song, style) of the run, rendering what the cache lacks with ``--workers`` processes."""
    import soundfile as sf

    ids = split_song_ids(args.pop909, args.split)[args.skip : args.skip + args.songs]
    references = {}  # per song, shared by its styles: (beats, downbeats, aligned downbeats, beats per bar, key)
    for sid in ids:
        folder = Path(args.pop909) / sid
        beats, downbeats, per_bar = read_beats(folder / "beat_midi.txt")
        if args.humanize:
            song = humanize(load_song(folder), int(sid))
            beats, downbeats = song.beats, song.downbeats
        key = reference_key(folder / "key_audio.txt", args.seconds)
        aligned = shift_bars(beats, downbeats, bar_shifts().get(sid, 0), per_bar)
        inside = [x[x < args.seconds] for x in (beats, downbeats, aligned)]
        references[sid] = (*inside, per_bar, key)
    items, jobs = [], []
    for style, sf2 in parse_styles(args.styles):
        tag = f"{args.split}-{style}-{sf2.stem}-{args.seconds:g}s{'-human' if args.humanize else ''}"
        cache = REPO / "build" / "analysis" / tag
        cache.mkdir(parents=True, exist_ok=True)
        name = style if sf2.stem == "FluidR3_GM" else f"{style}:{sf2.stem}"
        for sid in ids:
            path = cache / f"{sid}.flac"
            if not path.exists():
                jobs.append((str(args.pop909), sid, style, str(sf2), float(args.seconds), args.humanize, str(path)))
            items.append(Item(sid, name, path, *references[sid]))
    if jobs:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for done, (path, audio) in enumerate(pool.imap_unordered(_render_job, jobs), 1):
                sf.write(path, audio, 44100, subtype="PCM_16")
                print(f"\rrendered {done}/{len(jobs)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    return items


def _render_job(job: tuple[str, str, str, str, float, bool, str]) -> tuple[str, np.ndarray]:
    pop909, sid, style, soundfont, seconds, human, path = job
    import torch

    from musicprod_common.render import render_song

    torch.set_num_threads(1)
    song = load_song(Path(pop909) / sid)
    if human:
        song = humanize(song, int(sid))
    end = min(song.end_time + 1.5, seconds)
    mix = render_song(song, style, start=0.0, end=end, soundfont=soundfont).mix
    return path, mix.clamp(-1, 1).numpy().T


def _init_worker(settings: dict[str, object]) -> None:
    import torch

    torch.set_num_threads(1)
    for name, value in settings.items():
        setattr(analysis, name, value)


def _score_job(item: Item) -> dict:
    import mir_eval
    import soundfile as sf

    audio, sr = sf.read(str(item.path), dtype="float32", always_2d=True)
    start = time.perf_counter()
    result = analysis.analyze(audio.T, sr)
    seconds = time.perf_counter() - start
    trim = mir_eval.beat.trim_beats
    beat_f = mir_eval.beat.f_measure(trim(item.beats), trim(result.beats)) if result.has_beat else 0.0
    downbeat_f, aligned_f = (
        mir_eval.beat.f_measure(trim(reference), trim(result.downbeats)) if result.has_beat else 0.0
        for reference in (item.downbeats, item.aligned_downbeats)
    )
    ref_bpm = 60.0 / float(np.median(np.diff(item.beats)))
    return {
        "song": item.song,
        "style": item.style,
        "beat_f": round(float(beat_f), 4),
        "downbeat_f": round(float(downbeat_f), 4),
        "aligned_downbeat_f": round(float(aligned_f), 4),
        "key_score": float(mir_eval.key.weighted_score(item.key, result.key)),
        "tempo": None if result.tempo is None else round(result.tempo, 2),
        "ref_tempo": round(ref_bpm, 2),
        "tempo_ok": result.tempo is not None and abs(result.tempo / ref_bpm - 1) < 0.04,
        "beats_per_bar": result.beats_per_bar,
        "ref_beats_per_bar": item.beats_per_bar,
        "key": result.key,
        "ref_key": item.key,
        "confidences": {k: round(getattr(result, f"{k}_confidence"), 3) for k in ("tempo", "beat", "downbeat", "key")},
        "seconds": round(seconds, 3),
        "audio_seconds": round(result.duration, 2),
    }


def parse_settings(pairs: list[str]) -> dict[str, object]:
    """``["PRIOR_BPM=80", "KEY_PROFILES=temperley"]`` -> module constants to override (values as Python literals)."""
    import ast

    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not hasattr(analysis, name) or not name.isupper():
            raise InputError(f"--set {pair}: expected NAME=VALUE with NAME a setting of musicprod_common.analysis")
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """One row per style plus ``all``: mean beat F, downbeat F, weighted key score and the rates behind them."""
    styles = list(dict.fromkeys(r["style"] for r in rows))
    out = []
    for style in [*styles, "all"]:
        sel = [r for r in rows if style in ("all", r["style"])]
        out.append(
            {
                "style": style,
                "n": len(sel),
                "beat_f": float(np.mean([r["beat_f"] for r in sel])),
                "downbeat_f": float(np.mean([r["downbeat_f"] for r in sel])),
                "aligned_downbeat_f": float(np.mean([r["aligned_downbeat_f"] for r in sel])),
                "key_weighted": float(np.mean([r["key_score"] for r in sel])),
                "key_exact": float(np.mean([r["key_score"] == 1.0 for r in sel])),
                "tempo_acc": float(np.mean([r["tempo_ok"] for r in sel])),
                "meter_acc": float(np.mean([r["beats_per_bar"] == r["ref_beats_per_bar"] for r in sel])),
                "no_beat": int(sum(r["tempo"] is None for r in sel)),
                "x_realtime": float(sum(r["audio_seconds"] for r in sel) / sum(r["seconds"] for r in sel)),
            }
        )
    return out


def run(args: argparse.Namespace) -> list[dict]:
    from tqdm import tqdm

    settings = parse_settings(args.set or [])
    items = rendered(args)
    rows = []
    out = None
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out = open(args.out, "w")
    try:
        with mp.get_context("spawn").Pool(args.workers, _init_worker, (settings,)) as pool:
            for row in tqdm(pool.imap(_score_job, items), total=len(items), desc="analysing", unit="song"):
                rows.append(row)
                if out is not None:
                    out.write(json.dumps(row) + "\n")
    finally:
        if out is not None:
            out.close()
    summary = summarize(rows)
    print(
        f"{args.split}, {len(items) // max(1, len(parse_styles(args.styles)))} songs"
        + (f" after the first {args.skip}" if args.skip else "")
        + f", first {args.seconds:g} s"
        + (", humanized" if args.humanize else "")
        + (f", settings {settings}" if settings else "")
    )
    print(
        "| style | songs | beat F | downbeat F | downbeat F, bars aligned | key (weighted) | key exact | "
        "tempo within 4% | meter | no beat | × real time per process |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in summary:
        print(
            f"| {r['style']} | {r['n']} | {r['beat_f']:.3f} | {r['downbeat_f']:.3f} | {r['aligned_downbeat_f']:.3f} | "
            f"{r['key_weighted']:.3f} | "
            f"{r['key_exact']:.2f} | {r['tempo_acc']:.2f} | {r['meter_acc']:.2f} | {r['no_beat']} | "
            f"{r['x_realtime']:.0f}× |"
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--songs", type=int, default=48, help="the first N songs of the split (after --skip)")
    p.add_argument("--skip", type=int, default=0, help="leave out the split's first N songs (songs scored before)")
    p.add_argument(
        "--styles", default=DEFAULT_STYLES, help=f"comma-separated STYLE[:SOUNDFONT] (default {DEFAULT_STYLES})"
    )
    p.add_argument("--seconds", type=float, default=90.0, help="how much of each song to render and analyse")
    p.add_argument("--workers", type=int, default=2, help="processes rendering and analysing")
    p.add_argument("--pop909", default=str(REPO.parent / "shared" / "data" / "pop909"))
    p.add_argument(
        "--humanize",
        action="store_true",
        help="play each song as people do: the tempo drifting ±2 %% over 30 s and every note a few ms off the grid",
    )
    p.add_argument("--out", help="also write one JSON line per song and style here")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a setting of musicprod_common.analysis (to choose settings on valid); repeatable",
    )
    args = p.parse_args(argv)
    try:
        run(args)
    except InputError as err:
        print(f"analysis benchmark: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
