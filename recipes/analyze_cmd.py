"""``musicprod analyze FILE [--json]``: the tempo, beats, downbeats, meter and key of an audio file.

Prints one line to read and one with the counts; ``--json`` prints :meth:`Analysis.to_dict` with the file name instead,
every time in seconds. Audio with no steady beat (speech, ambience) says so and still reports its key.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musicprod_common.analysis import Analysis, analyze

from .cli_common import read_audio


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="tempo, beats, downbeats, meter and key of an audio file",
        description="Find the tempo, beats, downbeats (bar starts), meter (3/4 or 4/4) and key of an audio file, with "
        "a confidence in [0, 1] for each. Reads wav, flac, ogg or mp3 at any rate; writes nothing.",
    )
    p.add_argument("input", type=Path, help="audio file (wav, flac, ogg or mp3)")
    p.add_argument("--json", action="store_true", help="print the full analysis as JSON (beat and downbeat times too)")
    p.set_defaults(func=run)


def describe(name: str, a: Analysis) -> str:
    """The two lines ``musicprod analyze`` prints for ``a``."""
    key = f"key {a.key} (confidence {a.key_confidence:.2f})"
    if not a.has_beat:
        return f"{name}: no steady beat found (beat confidence {a.beat_confidence:.2f}); {key}"
    first = f"first downbeat {a.downbeats[0]:.2f} s, " if len(a.downbeats) else ""
    return (
        f"{name}: {a.tempo:.1f} BPM (confidence {a.tempo_confidence:.2f}), {a.beats_per_bar}/4, {first}"
        f"{len(a.downbeats)} bars; {key}\n"
        f"{len(a.beats)} beats (confidence {a.beat_confidence:.2f}) and {len(a.downbeats)} downbeats "
        f"(confidence {a.downbeat_confidence:.2f}) in {a.duration:.1f} s"
    )


def run(args: argparse.Namespace) -> None:
    audio, sample_rate = read_audio(args.input)
    result = analyze(audio, sample_rate)
    if args.json:
        print(json.dumps({"file": str(args.input), **result.to_dict()}))
    else:
        print(describe(str(args.input), result))
