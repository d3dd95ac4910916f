"""Write ``musicprod_common/data/pop909_bar_shifts.json``: per POP909 song, how many beats its bars start after the
downbeats of ``beat_midi.txt``.

POP909's downbeat column is off the true barlines in a good share of songs. Dai, Zhang & Dannenberg (2020, "Automatic
analysis and influence of hierarchical structure on melody, rhythm and harmony in popular music"; data MIT-licensed,
https://github.com/Dsqvival/hierarchical-structure-analysis) realigned every song's bars by hand and give its melody
quantised to 16th notes from a barline (``POP909/NNN/melody.txt``: MIDI pitch and length in 16ths, pitch 0 a rest).
Each note's place in their bar, against the same note's place in the POP909 MIDI's annotated bar, gives the shift:

    python scripts/pop909_bar_shifts.py --dai PATH_TO_THAT_REPOSITORY [--pop909 ../shared/data/pop909]

A song's shift is the one that puts most of its first NOTES melody notes, matched in order and by pitch, at the same
16th of the bar, where that is at least AGREE of them (a sequence offset of up to ±4 notes is tried for melodies whose
first notes were edited). Songs without such a shift are left out: their bars are taken as annotated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from musicprod_common.pop909 import BAR_SHIFT_FILE, read_beats, read_midi_notes, song_ids  # noqa: E402

NOTES = 12
AGREE = 0.6


def _show(repo: Path, path: str) -> str | None:
    """A file of the repository at HEAD (a checkout or a bare mirror alike)."""
    out = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def _aligned(melody: str, bar16: int) -> list[tuple[int, int]]:
    """(pitch, 16th of the bar) of each note of a ``melody.txt``."""
    notes, t = [], 0
    for line in melody.splitlines():
        if line.strip():
            pitch, length = (int(x) for x in line.split()[:2])
            if pitch > 0:
                notes.append((pitch, t % bar16))
            t += length
    return notes


def _annotated(folder: Path, bar16: int) -> list[tuple[int, int]]:
    """(pitch, 16th of the annotated bar) of each MIDI melody note after the first annotated downbeat."""
    beats, downbeats, _ = read_beats(folder / "beat_midi.txt")
    melody = read_midi_notes(folder / f"{folder.name}.mid")["MELODY"]
    position = np.interp([n.start for n in melody], beats, np.arange(len(beats)))  # in beats
    bar_starts = np.searchsorted(beats, downbeats - 1e-6)
    out = []
    for note, b in zip(melody, position):
        before = bar_starts[bar_starts <= b + 1e-3]
        if len(before):
            out.append((note.pitch, int(round((b - before[-1]) * 4)) % bar16))
    return out


def bar_shift(ours: list[tuple[int, int]], theirs: list[tuple[int, int]], per_bar: int) -> int | None:
    """The shift in beats (0 .. per_bar - 1) that the melodies agree on, or None."""
    n = min(NOTES, len(ours), len(theirs))
    best = (0, None)
    for offset in range(-4, 5):
        for k in range(per_bar):
            votes = sum(
                1
                for i in range(n)
                if 0 <= i + offset < len(ours)
                and ours[i + offset][0] == theirs[i][0]
                and (ours[i + offset][1] - 4 * k - theirs[i][1]) % (4 * per_bar) == 0
            )
            if votes > best[0] or (votes == best[0] and offset == 0):
                best = (votes, k)
    return best[1] if n and best[0] >= AGREE * n else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dai", type=Path, required=True, help="the hierarchical-structure-analysis repository")
    ap.add_argument("--pop909", type=Path, default=REPO.parent / "shared" / "data" / "pop909")
    args = ap.parse_args()
    commit = subprocess.run(["git", "-C", str(args.dai), "rev-parse", "HEAD"], capture_output=True, text=True)
    shifts, left_out = {}, []
    for sid in song_ids(args.pop909):
        melody = _show(args.dai, f"POP909/{sid}/melody.txt")
        per_bar = read_beats(args.pop909 / sid / "beat_midi.txt")[2]
        k = None
        if melody is not None:
            k = bar_shift(_annotated(args.pop909 / sid, 4 * per_bar), _aligned(melody, 4 * per_bar), per_bar)
        if k is None:
            left_out.append(sid)
        else:
            shifts[sid] = k
    table = {
        "source": "Dai, Zhang & Dannenberg 2020, hand-aligned bars (MIT licence, Copyright (c) 2020 Shuqi Dai): "
        f"github.com/Dsqvival/hierarchical-structure-analysis at {commit.stdout.strip()}",
        "method": "scripts/pop909_bar_shifts.py",
        "meaning": "beats from each beat_midi.txt downbeat to the true barline; songs not listed: as annotated",
        "shifts": shifts,
    }
    BAR_SHIFT_FILE.write_text(json.dumps(table, indent=0) + "\n")
    counts = np.bincount(list(shifts.values()), minlength=4)
    print(f"{len(shifts)} songs aligned, shifts 0/1/2/3 beats: {counts.tolist()}; left as annotated: {len(left_out)}")


if __name__ == "__main__":
    main()
