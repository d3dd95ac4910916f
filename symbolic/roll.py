"""Piano roll ↔ notes ↔ MIDI / POP909-style ``Song`` (so the audio pipeline can render generated rolls).

A roll is ``(2, T, P)`` onset / sustain on a 16th grid, P = 64 pitches from MIDI 33. A note starts at an
onset cell and lasts while the sustain cells that follow it are on. A sustain cell without an onset
before it starts a note too (a model may drop an onset; the sound is still meant to be there).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from musicprod_common.errors import InputError
from musicprod_common.files import atomic_path
from musicprod_common.pop909 import Note, Song, read_midi_notes

from .data import LOW_PITCH, NUM_PITCHES, STEPS_PER_BEAT, nearest_index

# pretty_midi is imported inside the two functions that use it: it loads libfluidsynth on import, which
# `musicprod --help` (via the accompany command) must not need.

NoteTuple = tuple[int, int, int]  # (pitch, start step, end step exclusive)


def roll_to_notes(
    roll: torch.Tensor | np.ndarray, threshold: float = 0.5, low_pitch: int = LOW_PITCH
) -> list[NoteTuple]:
    """``(2, T, P)`` roll (values or bits) → notes (pitch, start, end) sorted by start, pitch."""
    r = np.asarray(roll.detach().cpu() if torch.is_tensor(roll) else roll) > threshold
    onset, sustain = r[0], r[1]
    steps, pitches = onset.shape
    notes = []
    for p in range(pitches):
        start = None
        for t in range(steps):
            if onset[t, p]:
                if start is not None:
                    notes.append((p + low_pitch, start, t))
                start = t
            elif sustain[t, p]:
                if start is None:
                    start = t
            elif start is not None:
                notes.append((p + low_pitch, start, t))
                start = None
        if start is not None:
            notes.append((p + low_pitch, start, steps))
    return sorted(notes, key=lambda n: (n[1], n[0]))


def notes_to_roll(
    notes: list[NoteTuple], steps: int, low_pitch: int = LOW_PITCH, pitches: int = NUM_PITCHES
) -> torch.Tensor:
    """Notes (pitch, start, end) → ``(2, T, P)`` float roll; pitches outside the range move by octaves into it."""
    roll = torch.zeros(2, steps, pitches)
    for pitch, start, end in notes:
        while pitch < low_pitch:
            pitch += 12
        while pitch >= low_pitch + pitches:
            pitch -= 12
        if not 0 <= start < steps:
            continue
        p = pitch - low_pitch
        roll[1, start + 1 : min(end, steps), p] = torch.maximum(
            roll[1, start + 1 : min(end, steps), p], torch.tensor(1.0)
        )
        roll[0, start, p] = 1.0
        roll[1, start, p] = 0.0
    roll[1] = roll[1] * (roll[0] == 0)
    return roll


def step_seconds(bpm: float) -> float:
    return 60.0 / bpm / STEPS_PER_BEAT


def write_midi(
    path: str | os.PathLike, tracks: dict[str, list[NoteTuple]], *, bpm: float = 100.0, velocity: int = 80
) -> Path:
    """Write named tracks of step-grid notes to a MIDI file at ``bpm`` (atomically)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    dt = step_seconds(bpm)
    for name, notes in tracks.items():
        inst = pretty_midi.Instrument(program=0, name=name)
        for pitch, start, end in notes:
            inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=int(pitch), start=start * dt, end=end * dt))
        midi.instruments.append(inst)
    path = Path(path)
    with atomic_path(path) as tmp:
        midi.write(str(tmp))
    return path


def song_from_tracks(
    tracks: dict[str, list[NoteTuple]],
    steps: int,
    *,
    bpm: float = 100.0,
    velocity: int = 80,
    song_id: str = "generated",
):
    """Step-grid tracks → :class:`musicprod_common.pop909.Song` (notes in seconds, 4/4 beats) for rendering."""
    dt = step_seconds(bpm)
    beats = np.arange(0, steps, STEPS_PER_BEAT) * dt
    return Song(
        song_id,
        {name: tuple(Note(int(p), velocity, s * dt, e * dt) for p, s, e in notes) for name, notes in tracks.items()},
        beats=beats,
        downbeats=beats[::4],
        beats_per_bar=4,
    )


def read_melody(path: str | os.PathLike, max_steps: int | None = None) -> tuple[list[NoteTuple], float]:
    """A melody MIDI file → notes on its own 16th grid (from the file's tempo map), and its first tempo.

    Takes the track named MELODY if there is one, else every non-drum note. Polyphony is reduced to the
    highest note at each onset so the condition looks like POP909's monophonic MELODY track.
    """
    import pretty_midi

    tracks = read_midi_notes(path)  # InputError for missing / corrupt / empty files
    notes = list(tracks.get("MELODY") or [n for ns in tracks.values() for n in ns])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        midi = pretty_midi.PrettyMIDI(str(path))
    beats = midi.get_beats()
    tempi = midi.get_tempo_changes()[1]
    bpm = float(tempi[0]) if len(tempi) else 120.0
    if len(beats) < 2:
        beats = np.arange(0, midi.get_end_time() + 1, 60.0 / bpm)
    ext = np.append(beats, beats[-1] + (beats[-1] - beats[-2]))
    grid = (ext[:-1, None] + np.diff(ext)[:, None] * np.arange(4)[None] / 4).reshape(-1)

    starts = nearest_index(grid, np.array([n.start for n in notes]))
    ends = np.maximum(nearest_index(grid, np.array([n.end for n in notes])), starts + 1)
    best: dict[int, tuple[int, int]] = {}
    for n, s, e in zip(notes, starts, ends):
        if s not in best or n.pitch > best[s][0]:
            best[int(s)] = (n.pitch, int(e))
    out = []
    onsets = sorted(best)
    for i, s in enumerate(onsets):
        pitch, e = best[s]
        if i + 1 < len(onsets):
            e = min(e, onsets[i + 1])  # monophonic: a note ends where the next begins
        if max_steps is None or s < max_steps:
            out.append((pitch, s, e if max_steps is None else min(e, max_steps)))
    if not out:
        raise InputError(f"{path}: no melody notes found; pass a MIDI file with a melody track")
    return out, bpm
