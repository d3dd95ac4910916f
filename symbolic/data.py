"""POP909 → 4-bar piano-roll slices on a 16th grid, and the compact file the GPU trains from.

Two stages, so training never needs the POP909 folder, pretty_midi or FluidSynth:

1. ``python -m symbolic.data --pop909 DIR --out data.safetensors`` reads every 4/4 song once (beats from
   ``beat_midi.txt``, chords from ``chord_midi.txt``, via :mod:`musicprod_common.pop909`), snaps notes to
   a 16th grid built from the beats and stores note lists, chord spans and downbeats as a few MB of
   integer arrays, with each song's split from the shared split file.
2. :class:`PianoRollDataset` expands one split of that file into dense per-song rolls in memory and
   serves 4-bar slices (64 16th steps × 64 pitches, MIDI 33–96), transposed by −5…+6 semitones in
   training only. Transposition is part of the index (``len = slices × 12``), so it needs no RNG.

Tensor layout everywhere: ``(channels, T, P)`` with T = 16th steps and P = pitch − 33.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from torch.utils.data import Dataset

from musicprod_common.errors import InputError
from musicprod_common.files import atomic_path
from musicprod_common.pop909 import is_triple_meter, load_song, load_split, sixteenth_grid, song_ids

from .chords import parse_harte

LOW_PITCH = 33  # MIDI 33..96: the 64 pitches of the roll
NUM_PITCHES = 64
STEPS_PER_BEAT = 4
BAR_STEPS = 16
SLICE_BARS = 4
SLICE_STEPS = SLICE_BARS * BAR_STEPS  # 64
CHORD_OCTAVES = (48, 60)  # the chord chroma is written at MIDI 48–59 and 60–71
TRANSPOSITIONS = tuple(range(-5, 7))  # −5…+6: each key once
TRACK_IDS = {"MELODY": 0, "PIANO": 2}  # BRIDGE (secondary melody) is neither target nor condition
SPLIT_IDS = {"train": 0, "valid": 1, "test": 2}
# Dense rolls keep a margin of pitches so transposed slices can be cut from them: 21..108 (88 keys).
DENSE_LOW, DENSE_PITCHES = 21, 88


def nearest_index(grid: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the grid point nearest each time."""
    idx = np.clip(np.searchsorted(grid, times), 1, len(grid) - 1)
    left = grid[idx - 1]
    return np.where(np.abs(times - left) <= np.abs(grid[idx] - times), idx - 1, idx)


def extract_song(song) -> dict[str, np.ndarray] | None:
    """One :class:`musicprod_common.pop909.Song` → integer arrays on its 16th grid; None if triple meter.

    Returns ``notes`` (N, 4) int32 rows (track, pitch, start step, end step exclusive), ``chords`` (K, 5)
    int32 rows (start, end, chroma mask, scale mask, root or −1 | minor flag << 4), ``downbeats`` (D,)
    step indices and ``steps`` (the grid length).
    """
    if is_triple_meter(song):
        return None
    grid = sixteenth_grid(song)
    steps = len(grid)
    rows = []
    for name, track_id in TRACK_IDS.items():
        notes = song.tracks.get(name, ())
        if not notes:
            continue
        starts = nearest_index(grid, np.array([n.start for n in notes]))
        ends = nearest_index(grid, np.array([n.end for n in notes]))
        ends = np.maximum(ends, starts + 1)  # every note keeps at least one step
        pitches = np.array([n.pitch for n in notes])
        rows.append(np.stack([np.full_like(pitches, track_id), pitches, starts, ends], 1))
    notes = np.concatenate(rows).astype(np.int32) if rows else np.zeros((0, 4), np.int32)
    chord_rows = []
    for c in song.chords:
        chord = parse_harte(c.label)
        start, end = nearest_index(grid, np.array([c.start, c.end]))
        if end <= start:
            continue
        root = -1 if chord.root is None else chord.root
        chord_rows.append((start, end, chord.chroma_mask, chord.scale_mask, (root & 0xF) | (int(chord.is_minor) << 4)))
    chords = np.array(chord_rows, np.int32).reshape(-1, 5)
    beat_index = nearest_index(np.asarray(song.beats), np.asarray(song.downbeats))
    downbeats = np.unique(beat_index * STEPS_PER_BEAT).astype(np.int32)
    return {"notes": notes, "chords": chords, "downbeats": downbeats, "steps": np.array(steps)}


def build_dataset_file(
    pop909_root: str | os.PathLike, out: str | os.PathLike, *, limit: int | None = None
) -> dict[str, int]:
    """Extract every 4/4 POP909 song under ``pop909_root`` into one safetensors file at ``out``.

    Returns counts: songs kept, triple-meter songs skipped, notes.
    """
    split_of = {sid: SPLIT_IDS[name] for name, ids in load_split().items() for sid in ids}
    ids = song_ids(pop909_root)[:limit]
    kept_ids, splits, note_parts, chord_parts, downbeat_parts, steps = [], [], [], [], [], []
    skipped = 0
    for sid in ids:
        if sid not in split_of:
            continue
        song = extract_song(load_song(Path(pop909_root) / sid))
        if song is None:
            skipped += 1
            continue
        kept_ids.append(int(sid))
        splits.append(split_of[sid])
        note_parts.append(song["notes"])
        chord_parts.append(song["chords"])
        downbeat_parts.append(song["downbeats"])
        steps.append(int(song["steps"]))
    if not kept_ids:
        raise InputError(f"{pop909_root}: no 4/4 POP909 songs found; pass the POP909 release folder")

    def offsets(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)

    notes = np.concatenate(note_parts)
    chords = np.concatenate(chord_parts)
    if max(steps) >= 2**15:
        raise InputError(f"{pop909_root}: a song longer than 32767 16th steps; this file format stores steps as int16")
    arrays = {
        "song_id": np.array(kept_ids, np.int16),
        "song_split": np.array(splits, np.uint8),
        "song_steps": np.array(steps, np.int32),
        "note_offset": offsets(note_parts),
        "note_track": notes[:, 0].astype(np.uint8),
        "note_pitch": notes[:, 1].astype(np.uint8),
        "note_start": notes[:, 2].astype(np.int16),
        "note_length": np.minimum(notes[:, 3] - notes[:, 2], 255).astype(np.uint8),  # 16 bars at most
        "chord_offset": offsets(chord_parts),
        "chord_start": chords[:, 0].astype(np.int16),
        "chord_end": chords[:, 1].astype(np.int16),
        "chord_chroma": chords[:, 2].astype(np.int16),
        "chord_scale": chords[:, 3].astype(np.int16),
        "chord_root_minor": chords[:, 4].astype(np.uint8),
        "downbeat_offset": offsets(downbeat_parts),
        "downbeat_step": np.concatenate(downbeat_parts).astype(np.int16),
    }
    with atomic_path(out) as tmp:
        save_file(
            arrays, str(tmp), metadata={"format": "musicprod.symbolic.pop909/1", "grid": "16th from beat_midi.txt"}
        )
    return {"songs": len(kept_ids), "skipped_triple": skipped, "notes": len(notes)}


@dataclass
class DenseSong:
    """One song as dense per-step arrays (pitches DENSE_LOW..DENSE_LOW+87).

    Roll states: 0 off, 1 sustained, 2 onset. ``chroma`` / ``scale`` / ``root`` / ``minor`` are per step.
    """

    song_id: int
    piano: np.ndarray  # (T, 88) uint8
    melody: np.ndarray  # (T, 88) uint8
    chroma: np.ndarray  # (T,) int16 mask
    scale: np.ndarray  # (T,) int16 mask
    root: np.ndarray  # (T,) int8, −1 = no chord
    minor: np.ndarray  # (T,) bool
    downbeats: np.ndarray  # (D,) steps


def _dense_roll(rows: np.ndarray, steps: int) -> np.ndarray:
    roll = np.zeros((steps, DENSE_PITCHES), np.uint8)
    for pitch, start, end in rows:
        p = pitch - DENSE_LOW
        if not 0 <= p < DENSE_PITCHES or start >= steps:
            continue
        seg = roll[start + 1 : min(end, steps), p]
        np.maximum(seg, 1, out=seg)
        roll[start, p] = 2
    return roll


def load_dataset_file(path: str | os.PathLike, split: str | None) -> list[DenseSong]:
    """Read the file written by :func:`build_dataset_file`; keep one split (or all with None)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: dataset file not found; create it with `python -m symbolic.data --pop909 DIR --out {path}`"
        )
    try:
        a = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(
            f"{path}: not a valid dataset file ({err}); recreate it with `python -m symbolic.data`"
        ) from err
    if split is not None and split not in SPLIT_IDS:
        raise InputError(f"unknown split {split!r}; valid: {', '.join(SPLIT_IDS)}")
    songs = []
    for i in range(len(a["song_id"])):
        if split is not None and a["song_split"][i] != SPLIT_IDS[split]:
            continue
        steps = int(a["song_steps"][i])
        n0, n1 = a["note_offset"][i], a["note_offset"][i + 1]
        track = a["note_track"][n0:n1]
        cols = np.stack(
            [
                a["note_pitch"][n0:n1].astype(np.int64),
                a["note_start"][n0:n1].astype(np.int64),
                a["note_start"][n0:n1].astype(np.int64) + a["note_length"][n0:n1],
            ],
            1,
        )
        chroma = np.zeros(steps, np.int16)
        scale = np.full(steps, 0xFFF, np.int16)  # no chord annotated: every pitch class allowed
        root = np.full(steps, -1, np.int8)
        minor = np.zeros(steps, bool)
        c0, c1 = a["chord_offset"][i], a["chord_offset"][i + 1]
        for s, e, ch, sc, rm in zip(
            a["chord_start"][c0:c1],
            a["chord_end"][c0:c1],
            a["chord_chroma"][c0:c1],
            a["chord_scale"][c0:c1],
            a["chord_root_minor"][c0:c1],
        ):
            chroma[s:e], scale[s:e] = ch, sc
            r = int(rm) & 0xF
            root[s:e] = -1 if r == 0xF else r
            minor[s:e] = bool(int(rm) >> 4)
        d0, d1 = a["downbeat_offset"][i], a["downbeat_offset"][i + 1]
        songs.append(
            DenseSong(
                int(a["song_id"][i]),
                _dense_roll(cols[track == TRACK_IDS["PIANO"]], steps),
                _dense_roll(cols[track == TRACK_IDS["MELODY"]], steps),
                chroma,
                scale,
                root,
                minor,
                a["downbeat_step"][d0:d1].astype(np.int64),
            )
        )
    if not songs:
        raise InputError(f"{path}: no songs of split {split!r} in it; rebuild it from the full POP909 folder")
    return songs


def mask_to_chroma(masks: np.ndarray) -> np.ndarray:
    """12-bit masks (T,) → (T, 12) float32 0/1."""
    return ((masks.astype(np.int64)[:, None] >> np.arange(12)[None, :]) & 1).astype(np.float32)


def pitch_classes() -> np.ndarray:
    """Pitch class of each of the 64 roll pitches (P,)."""
    return (np.arange(NUM_PITCHES) + LOW_PITCH) % 12


def chroma_to_pitch_mask(chroma: np.ndarray) -> np.ndarray:
    """(T, 12) → (T, 64): each pitch gets its pitch class's value (every octave)."""
    return chroma[:, pitch_classes()]


def chord_channel(chroma: np.ndarray) -> np.ndarray:
    """(T, 12) chord chroma → (T, 64) written at the two octaves of ``CHORD_OCTAVES`` only."""
    out = np.zeros((chroma.shape[0], NUM_PITCHES), np.float32)
    for base in CHORD_OCTAVES:
        out[:, base - LOW_PITCH : base - LOW_PITCH + 12] = chroma
    return out


def rhythm_channels(chord: np.ndarray, onset: np.ndarray, sustain: np.ndarray) -> np.ndarray:
    """The rhythm condition (2, T, 64) from the chord channel (T, 64) and the accompaniment roll.

    Onset channel: chord channel × number of accompaniment onsets at the step. Sustain channel: the
    chord channel at steps with sound but no onset. This hands the model the rhythm but not the voicing.
    """
    n_onsets = onset.sum(1, keepdims=True)
    held_only = (n_onsets == 0) & (sustain.sum(1, keepdims=True) > 0)
    return np.stack([chord * n_onsets, chord * held_only]).astype(np.float32)


def roll_channels(state: np.ndarray) -> np.ndarray:
    """Dense states (T, 64) (0 off, 1 held, 2 onset) → (2, T, 64) onset / sustain channels."""
    return np.stack([state == 2, state == 1]).astype(np.float32)


def make_example(song: DenseSong, start: int, shift: int = 0) -> dict[str, torch.Tensor]:
    """One 4-bar slice from step ``start``, transposed by ``shift`` semitones.

    Keys (all float32): ``x0`` (2, 64, 64) accompaniment onset/sustain; ``melody`` (2, 64, 64);
    ``chord`` (1, 64, 64); ``rhythm`` (2, 64, 64); ``allowed`` (64, 64) 1 where the chord-implied
    scale allows the pitch; ``chroma`` (64, 12); ``root`` (64,) (−1 no chord); ``minor`` (64,).
    """
    sl = slice(start, start + SLICE_STEPS)
    lo = LOW_PITCH - shift - DENSE_LOW  # roll pitch p after transposing ↔ dense column p + lo
    piano = song.piano[sl, lo : lo + NUM_PITCHES]
    melody = song.melody[sl, lo : lo + NUM_PITCHES]
    chroma = np.roll(mask_to_chroma(song.chroma[sl]), shift, axis=1)
    scale = np.roll(mask_to_chroma(song.scale[sl]), shift, axis=1)
    x0 = roll_channels(piano)
    chord = chord_channel(chroma)
    root = song.root[sl].astype(np.int64)
    root = np.where(root < 0, -1, (root + shift) % 12)
    return {
        "x0": torch.from_numpy(x0),
        "melody": torch.from_numpy(roll_channels(melody)),
        "chord": torch.from_numpy(chord[None]),
        "rhythm": torch.from_numpy(rhythm_channels(chord, x0[0], x0[1])),
        "allowed": torch.from_numpy(chroma_to_pitch_mask(scale)),
        "chroma": torch.from_numpy(chroma),
        "root": torch.from_numpy(root),
        "minor": torch.from_numpy(song.minor[sl].astype(np.float32)),
    }


def slice_starts(song: DenseSong, hop_bars: int = 1, min_onsets: int = 4) -> list[int]:
    """Downbeat steps that start a regular 4-bar window (its 4 bars all downbeat-aligned) with notes in it."""
    downbeats = set(song.downbeats.tolist())
    out = []
    last = -(10**9)
    for d in song.downbeats.tolist():
        if d + SLICE_STEPS > len(song.piano) or d - last < hop_bars * BAR_STEPS:
            continue
        if not all(d + k * BAR_STEPS in downbeats for k in range(1, SLICE_BARS)):
            continue
        if int((song.piano[d : d + SLICE_STEPS] == 2).sum()) < min_onsets:
            continue
        out.append(d)
        last = d
    return out


class PianoRollDataset(Dataset):
    """4-bar POP909 slices of one split, from the file of :func:`build_dataset_file`.

    ``transpose=True`` (training) multiplies the length by 12: index → (slice, shift in −5…+6).
    ``hop_bars`` spaces slice starts (1 for training, 4 for non-overlapping evaluation).
    """

    def __init__(
        self, path: str | os.PathLike, split: str = "train", *, transpose: bool | None = None, hop_bars: int = 1
    ):
        self.songs = load_dataset_file(path, split)
        self.transpose = (split == "train") if transpose is None else transpose
        self.shifts = TRANSPOSITIONS if self.transpose else (0,)
        self.index = [(i, s) for i, song in enumerate(self.songs) for s in slice_starts(song, hop_bars)]

    def __len__(self) -> int:
        return len(self.index) * len(self.shifts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        slice_i, shift_i = divmod(int(i), len(self.shifts))
        song_i, start = self.index[slice_i]
        return make_example(self.songs[song_i], start, self.shifts[shift_i])

    def note_density(self, max_slices: int = 2000) -> torch.Tensor:
        """Mean of each channel over (up to ``max_slices`` evenly spaced) untransposed slices: (4,) accompaniment
        onset, sustain, melody onset, sustain — the r of binomial diffusion."""
        picks = self.index[:: max(1, len(self.index) // max_slices)]
        total = torch.zeros(4)
        for song_i, start in picks:
            item = make_example(self.songs[song_i], start)
            total += torch.cat([item["x0"], item["melody"]]).mean((1, 2))
        return total / max(1, len(picks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m symbolic.data", description="Extract POP909 into the compact file symbolic training reads."
    )
    parser.add_argument("--pop909", required=True, help="POP909 folder holding 001/ ... 909/")
    parser.add_argument("--out", required=True, help="output .safetensors file")
    parser.add_argument("--limit", type=int, default=None, help="only the first N song folders (for quick tests)")
    args = parser.parse_args(argv)
    try:
        counts = build_dataset_file(args.pop909, args.out, limit=args.limit)
    except InputError as err:
        print(f"error: {err}")
        return 2
    size = Path(args.out).stat().st_size / 1e6
    print(
        f"wrote {args.out} ({size:.1f} MB): {counts['songs']} songs, {counts['notes']} notes, skipped "
        f"{counts['skipped_triple']} triple-meter songs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
