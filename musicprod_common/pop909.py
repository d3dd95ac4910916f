"""POP909 songs: notes in seconds, beats, downbeats, chords and key, and the one fixed data split.

POP909 (Wang et al., ISMIR 2020) ships each song as a folder ``NNN/`` holding ``NNN.mid`` (tracks MELODY,
BRIDGE, PIANO) plus annotation text files. The MIDI files' own tempo maps and time signatures are unreliable
(beats drift by up to ±0.5 s, placeholder 1/4 signatures), so only note times in seconds are taken from the
MIDI; beats come from ``beat_midi.txt`` and chords from ``chord_midi.txt``, both in seconds.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import InputError

TRACKS: tuple[str, ...] = ("MELODY", "BRIDGE", "PIANO")
SPLIT_FILE = Path(__file__).parent / "data" / "pop909_split.json"
BAR_SHIFT_FILE = Path(__file__).parent / "data" / "pop909_bar_shifts.json"

# Pitch classes of Harte root names (C = 0).
_NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True)
class Note:
    """One note: MIDI pitch 0..127, velocity 1..127, start/end in seconds."""

    pitch: int
    velocity: int
    start: float
    end: float


@dataclass(frozen=True)
class Chord:
    """A chord span from ``chord_midi.txt``. ``root`` is a pitch class 0..11, or -1 for ``N`` (no chord)."""

    start: float
    end: float
    label: str
    root: int
    quality: str


@dataclass(frozen=True)
class Song:
    """A POP909 song (or any MIDI file read the same way).

    ``tracks`` maps track name -> notes sorted by start; ``beats`` (N,) seconds; ``downbeats`` (M,) seconds;
    ``beats_per_bar`` is 3 for triple meter, else 4. Annotations are empty for a bare ``.mid``.
    """

    song_id: str
    tracks: dict[str, tuple[Note, ...]]
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0))
    downbeats: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beats_per_bar: int = 4
    chords: tuple[Chord, ...] = ()
    key: str | None = None

    @property
    def end_time(self) -> float:
        """Time (s) at which the last note ends."""
        return max((n.end for notes in self.tracks.values() for n in notes), default=0.0)

    @property
    def num_notes(self) -> int:
        return sum(len(notes) for notes in self.tracks.values())


def parse_chord_label(label: str) -> tuple[int, str]:
    """Split a Harte label like ``B:maj``, ``Db:min7/5`` or ``N`` into (root pitch class, quality).

    The bass inversion after ``/`` is dropped; a bare root means ``maj`` (Harte, ISMIR 2005).
    """
    label = label.strip()
    if label in ("N", "X", ""):
        return -1, "N"
    root_name, _, quality = label.partition(":")
    quality = (quality or "maj").split("/")[0] or "maj"
    if not root_name or root_name[0] not in _NATURALS:
        raise ValueError(f"not a Harte chord label: {label!r}")
    pc = _NATURALS[root_name[0]]
    for accidental in root_name[1:]:
        if accidental == "#":
            pc += 1
        elif accidental == "b":
            pc -= 1
        else:
            raise ValueError(f"not a Harte chord label: {label!r}")
    return pc % 12, quality


def _read_rows(path: Path, min_cols: int) -> list[list[str]]:
    if not path.is_file():
        raise InputError(
            f"{path}: file is missing; use a complete POP909 song folder (NNN.mid + beat_midi.txt, chord_midi.txt, "
            "key_audio.txt)"
        )
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read it ({err}); restore it from the POP909 release") from err
    if not rows or any(len(r) < min_cols for r in rows):
        raise InputError(
            f"{path}: expected at least {min_cols} columns on every line; restore it from the POP909 release"
        )
    return rows


def read_beats(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Read ``beat_midi.txt``: (beats (N,), downbeats (M,), beats_per_bar).

    Column 2 flags the first beat of each 2- or 3-beat group, column 3 of each 4- or 6-beat group; a song is
    in triple meter when column 2's flags come every 3 beats (29 of the 909 songs).
    """
    rows = _read_rows(path, 3)
    try:
        table = np.array([[float(x) for x in r[:3]] for r in rows])
    except ValueError as err:
        raise InputError(f"{path}: non-numeric beat entry ({err}); restore it from the POP909 release") from err
    beats = table[:, 0]
    short = np.nonzero(table[:, 1] > 0.5)[0]
    gaps = np.diff(short)
    triple = len(gaps) > 0 and int(np.median(gaps)) == 3
    column = 1 if triple else 2
    return beats, beats[table[:, column] > 0.5], 3 if triple else 4


@lru_cache(maxsize=1)
def bar_shifts() -> dict[str, int]:
    """Per song id, how many beats the true barlines fall after ``beat_midi.txt``'s downbeats, from Dai, Zhang &
    Dannenberg's (2020) hand-aligned bars (``scripts/pop909_bar_shifts.py``). Songs not listed: as annotated."""
    return {sid: int(k) for sid, k in json.loads(BAR_SHIFT_FILE.read_text())["shifts"].items()}


def shift_bars(beats: np.ndarray, downbeats: np.ndarray, shift: int, per_bar: int) -> np.ndarray:
    """``downbeats`` (each one of ``beats``) moved ``shift`` beats later, with the bar that now starts before the first
    of them where the beats reach back that far."""
    if shift == 0 or len(downbeats) == 0:
        return downbeats
    index = np.abs(beats[None, :] - downbeats[:, None]).argmin(axis=1) + shift
    if index[0] >= per_bar:
        index = np.concatenate([[index[0] - per_bar], index])
    return beats[index[index < len(beats)]]


def read_chords(path: Path) -> tuple[Chord, ...]:
    """Read ``chord_midi.txt`` (start s, end s, Harte label)."""
    chords = []
    for row in _read_rows(path, 3):
        try:
            root, quality = parse_chord_label(row[2])
            chords.append(Chord(float(row[0]), float(row[1]), row[2], root, quality))
        except ValueError as err:
            raise InputError(f"{path}: bad line {' '.join(row)!r} ({err}); restore it from the POP909 release") from err
    return tuple(chords)


def read_key(path: Path) -> str:
    """Read ``key_audio.txt``: the first key label (e.g. ``Gb:maj``)."""
    return _read_rows(path, 3)[0][2]


def read_midi_notes(path: str | os.PathLike) -> dict[str, tuple[Note, ...]]:
    """Notes per track name from a MIDI file, in seconds (pretty_midi). Unnamed tracks get ``TRACK<i>``."""
    import pretty_midi  # loads libfluidsynth: only MIDI reading pays it

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: MIDI file is missing; pass a POP909 song folder or an existing .mid file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # pretty_midi/mido raise many types on corrupt files
        raise InputError(f"{path}: not a readable MIDI file ({type(err).__name__}: {err}); pass a valid .mid") from err
    tracks: dict[str, tuple[Note, ...]] = {}
    for i, inst in enumerate(midi.instruments):
        if inst.is_drum:
            continue  # drums are generated per style, never taken from the file
        name = (inst.name or "").strip().upper() or f"TRACK{i}"
        notes = [
            Note(int(n.pitch), int(max(1, min(127, n.velocity))), float(n.start), float(n.end))
            for n in inst.notes
            if n.end > n.start
        ]
        merged = list(tracks.get(name, ())) + notes
        tracks[name] = tuple(sorted(merged, key=lambda n: (n.start, n.pitch)))
    if not any(tracks.values()):
        raise InputError(f"{path}: the MIDI file has no notes; pass a MIDI file with at least one note")
    return tracks


def load_song(path: str | os.PathLike) -> Song:
    """Load a POP909 song folder ``NNN/`` (with annotations) or a bare ``.mid`` (notes only).

    Raises InputError naming the file when a file is missing or corrupt.
    """
    path = Path(path)
    if path.is_dir():
        midi = path / f"{path.name}.mid"
        if not midi.is_file():
            mids = sorted(path.glob("*.mid"))
            if len(mids) != 1:
                raise InputError(
                    f"{midi}: file is missing; pass a POP909 song folder (NNN/ with NNN.mid) or a .mid file"
                )
            midi = mids[0]
        tracks = read_midi_notes(midi)
        beats, downbeats, per_bar = read_beats(path / "beat_midi.txt")
        chords = read_chords(path / "chord_midi.txt")
        key = read_key(path / "key_audio.txt")
        return Song(path.name, tracks, beats, downbeats, per_bar, chords, key)
    if path.suffix.lower() in (".mid", ".midi") or path.is_file():
        return Song(path.stem, read_midi_notes(path))
    raise InputError(f"{path}: no such file or folder; pass a POP909 song folder or a .mid file")


def is_triple_meter(song: Song) -> bool:
    """True for songs in 3/4 (or 6/8) according to ``beat_midi.txt``."""
    return song.beats_per_bar == 3


def sixteenth_grid(song: Song) -> np.ndarray:
    """Times (s) of a 16th-note grid: each beat interval split in 4, extrapolated one beat past the end.

    Returns (4 * N,) for N beats. Needs beats (a POP909 folder, not a bare .mid).
    """
    beats = np.asarray(song.beats, dtype=np.float64)
    if len(beats) < 2:
        raise InputError(
            f"song {song.song_id}: no beat annotations; a 16th grid needs a POP909 folder with beat_midi.txt"
        )
    ext = np.append(beats, beats[-1] + (beats[-1] - beats[-2]))
    frac = np.arange(4) / 4.0
    return (ext[:-1, None] + np.diff(ext)[:, None] * frac[None, :]).reshape(-1)


def transpose_song(song: Song, semitones: int) -> Song:
    """Shift every note by ``semitones``; notes leaving 0..127 are dropped."""
    if semitones == 0:
        return song
    tracks = {
        name: tuple(replace(n, pitch=n.pitch + semitones) for n in notes if 0 <= n.pitch + semitones <= 127)
        for name, notes in song.tracks.items()
    }
    return replace(song, tracks=tracks)


def humanize(song: Song, seed: int, drift: float = 0.02, period: float = 30.0, jitter: float = 0.008) -> Song:
    """The song as a person might play it: each onset moved by about ``jitter`` seconds (clipped at 2.5×), each
    velocity by about 6 steps, and the tempo drifting by ±``drift`` with a ``period``-second cycle; the annotated
    beats and downbeats move with the drift. POP909's MIDI keeps one tempo for minutes, which no band does."""
    rng = np.random.default_rng(seed)
    amp, phase = drift * period / (2 * math.pi), rng.uniform(0, 2 * math.pi)

    def warp(t: float) -> float:  # its derivative, the speed, is 1 + drift * cos(...)
        return t + amp * (math.sin(2 * math.pi * t / period + phase) - math.sin(phase))

    tracks = {}
    for name, notes in song.tracks.items():
        moved = []
        for n in notes:
            shift = float(np.clip(rng.normal(0, jitter), -2.5 * jitter, 2.5 * jitter))
            start = max(0.0, warp(n.start) + shift)
            end = max(start + 0.01, warp(n.end) + shift)
            moved.append(Note(n.pitch, int(np.clip(n.velocity + rng.normal(0, 6), 1, 127)), start, end))
        tracks[name] = tuple(sorted(moved, key=lambda n: n.start))
    beats = np.array([warp(b) for b in song.beats])
    downbeats = np.array([warp(b) for b in song.downbeats])
    return replace(song, tracks=tracks, beats=beats, downbeats=downbeats)


def song_ids(root: str | os.PathLike) -> list[str]:
    """Sorted song folder names (``001`` ...) under a POP909 root."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; pass the POP909 folder that holds 001/ ... 909/")
    ids = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not ids:
        raise InputError(f"{root}: no song folders (001/ ... 909/) found; pass the POP909 release folder")
    return ids


@lru_cache(maxsize=1)
def load_split() -> dict[str, tuple[str, ...]]:
    """The fixed train/valid/test split of the 909 song ids (``musicprod_common/data/pop909_split.json``)."""
    data = json.loads(SPLIT_FILE.read_text())
    return {name: tuple(data[name]) for name in ("train", "valid", "test")}


def split_song_ids(root: str | os.PathLike, split: str) -> list[str]:
    """Song ids of ``split`` that exist under ``root``."""
    splits = load_split()
    if split not in splits and split != "all":
        raise InputError(f"unknown split {split!r}; valid: train, valid, test, all")
    present = set(song_ids(root))
    wanted = sorted(present) if split == "all" else [s for s in splits[split] if s in present]
    if not wanted:
        raise InputError(f"{root}: none of the {split} songs are there; pass the POP909 release folder")
    return wanted


def make_split(ids: list[str], seed: int = 909, fractions: tuple[float, float] = (0.8, 0.1)) -> dict[str, list[str]]:
    """A seeded shuffle of ``ids`` cut into train/valid/test (used once to write the split file)."""
    order = list(np.random.default_rng(seed).permutation(sorted(ids)))
    n_train = round(fractions[0] * len(order))
    n_valid = round(fractions[1] * len(order))
    return {
        "train": sorted(order[:n_train]),
        "valid": sorted(order[n_train : n_train + n_valid]),
        "test": sorted(order[n_train + n_valid :]),
    }
