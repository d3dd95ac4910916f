"""The symbolic tasks behind ``musicprod accompany``, ``harmonize`` and ``infill-midi``, as plain functions.

Each takes user-level input (chord text, MIDI paths), returns named tracks of 16th-step notes and writes
nothing; :func:`write_outputs` writes the MIDI and, optionally, renders audio through the foundation's
FluidSynth renderer (:mod:`musicprod_common.render`) so symbolic output can feed the audio models.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from musicprod_common.audio import save_audio
from musicprod_common.errors import InputError
from musicprod_common.pop909 import read_midi_notes
from musicprod_common.render import render_song
from musicprod_common.resources import shipped

from .binomial import ACCOMPANIMENT, MELODY, load_binomial, sample_binomial, sample_binomial_long
from .chords import parse_progression, parse_scale
from .data import BAR_STEPS, nearest_index
from .fgg import load_fgg
from .generate import SamplingConfig, chord_track, generate_long, window_starts
from .roll import NoteTuple, notes_to_roll, read_melody, roll_to_notes, song_from_tracks, write_midi

CHECKPOINTS = shipped("checkpoints")
Tracks = dict[str, list[NoteTuple]]


def default_checkpoint(name: str) -> Path:
    """``checkpoints/<name>`` in the repository, or ``$MUSICPROD_CHECKPOINTS/<name>``."""
    root = Path(os.environ.get("MUSICPROD_CHECKPOINTS", CHECKPOINTS))
    return root / name


def _load(loader, path: str | os.PathLike | None, name: str, train_cmd: str):
    folder = Path(path) if path is not None else default_checkpoint(name)
    if path is None and not (folder / "model.safetensors").is_file():
        raise InputError(
            f"{folder}: no trained {name} checkpoint there; train one with `{train_cmd}` and pass --checkpoint "
            "OUT/final"
        )
    return loader(str(folder))


def load_fgg_checkpoint(path=None):
    return _load(
        load_fgg, path, "fgg", "python -m symbolic.train_fgg --preset small --data data.safetensors --out runs/fgg"
    )


def load_binomial_checkpoint(path=None):
    return _load(
        load_binomial,
        path,
        "binomial",
        "python -m symbolic.train_binomial --preset small --data data.safetensors --out runs/binomial",
    )


def melody_bars(notes: list[NoteTuple]) -> int:
    """Bars needed to hold a melody, rounded up to a valid long-form length (≥ 4, multiple of 2)."""
    end = max(e for _, _, e in notes)
    bars = max(4, -(-end // BAR_STEPS))
    return bars + bars % 2


def accompany(
    chords: str,
    *,
    bars: int = 8,
    chords_per_bar: int = 1,
    melody_path: str | os.PathLike | None = None,
    scale: str | None = None,
    sampling: SamplingConfig = SamplingConfig(),
    checkpoint=None,
    seed: int = 0,
    progress=None,
) -> tuple[Tracks, int, float | None]:
    """FGG accompaniment for a chord progression (cycled to ``bars`` bars), optionally under a melody.

    Returns (tracks {"PIANO": notes, ["MELODY": notes]}, steps, the melody file's tempo or None).
    ``scale`` (e.g. ``'D:dorian'``) replaces the chord-implied scales of the correction by one user scale.
    """
    track = chord_track(parse_progression(chords), bars, chords_per_bar)
    window_starts(bars)  # validates the length before any model is loaded
    user_scale = parse_scale(scale) if scale else None
    melody_notes, bpm = read_melody(melody_path, max_steps=track.steps) if melody_path else (None, None)
    model = load_fgg_checkpoint(checkpoint)
    if user_scale is not None:
        track.scale[:] = user_scale
    melody = notes_to_roll(melody_notes, track.steps) if melody_notes else None
    roll = generate_long(
        model, track, melody=melody, sampling=sampling, generator=torch.Generator().manual_seed(seed), progress=progress
    )
    tracks: Tracks = {"PIANO": roll_to_notes(roll)}
    if melody_notes:
        tracks["MELODY"] = melody_notes
    return tracks, track.steps, bpm


def harmonize(
    melody_path: str | os.PathLike, *, bars: int | None = None, checkpoint=None, seed: int = 0, progress=None
) -> tuple[Tracks, int, float]:
    """Binomial-diffusion accompaniment under a melody (Atassi's harmonisation task), any length."""
    notes, bpm = read_melody(melody_path)
    bars = bars or melody_bars(notes)
    window_starts(bars)
    steps = bars * BAR_STEPS
    notes = [(p, s, min(e, steps)) for p, s, e in notes if s < steps]
    model = load_binomial_checkpoint(checkpoint)
    known = torch.zeros(4, steps, model.cfg.pitches)
    known[list(MELODY)] = notes_to_roll(notes, steps)
    mask = torch.zeros_like(known, dtype=torch.bool)
    mask[list(MELODY)] = True
    out = sample_binomial_long(model, known, mask, generator=torch.Generator().manual_seed(seed), progress=progress)
    return {"PIANO": roll_to_notes(out[list(ACCOMPANIMENT)]), "MELODY": notes}, steps, bpm


def read_midi_tracks(path: str | os.PathLike) -> tuple[Tracks, float]:
    """A MIDI file → {"MELODY", "PIANO"} step-grid notes: a MELODY track if named so, everything else is PIANO."""
    import pretty_midi  # loads libfluidsynth: only MIDI reading pays it

    tracks = read_midi_notes(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        midi = pretty_midi.PrettyMIDI(str(path))
    tempi = midi.get_tempo_changes()[1]
    bpm = float(tempi[0]) if len(tempi) else 120.0
    beats = midi.get_beats()
    if len(beats) < 2:
        beats = np.arange(0, midi.get_end_time() + 1, 60.0 / bpm)
    ext = np.append(beats, beats[-1] + (beats[-1] - beats[-2]))
    grid = (ext[:-1, None] + np.diff(ext)[:, None] * np.arange(4)[None] / 4).reshape(-1)
    out: Tracks = {"MELODY": [], "PIANO": []}
    for name, notes in tracks.items():
        if not notes:
            continue
        starts = nearest_index(grid, np.array([n.start for n in notes]))
        ends = np.maximum(nearest_index(grid, np.array([n.end for n in notes])), starts + 1)
        key = "MELODY" if name == "MELODY" else "PIANO"
        out[key] += [(n.pitch, int(s), int(e)) for n, s, e in zip(notes, starts, ends)]
    return out, bpm


def infill_midi(
    path: str | os.PathLike,
    start_bar: int,
    end_bar: int,
    *,
    checkpoint=None,
    seed: int = 0,
) -> tuple[Tracks, int, float]:
    """Regenerate bars [start_bar, end_bar) of a MIDI file with binomial diffusion (Atassi's infill task).

    The 4-bar window around the gap is the model's context; the gap may be 1 to 3 bars. Notes outside the gap
    are kept as they are (on the 16th grid of the file's tempo map).
    """
    tracks, bpm = read_midi_tracks(path)
    end_step = max(e for notes in tracks.values() for _, _, e in notes)
    total_bars = max(4, -(-end_step // BAR_STEPS))
    if not 0 <= start_bar < end_bar <= total_bars:
        raise InputError(
            f"--start-bar {start_bar} / --end-bar {end_bar}: need 0 <= start < end <= {total_bars} (bars in {path})"
        )
    if end_bar - start_bar > 3:
        raise InputError(
            f"gap of {end_bar - start_bar} bars: the model sees 4 bars at a time, so infill at most 3 bars per call"
        )
    steps = max(total_bars, 4) * BAR_STEPS
    model = load_binomial_checkpoint(checkpoint)
    first = min(max(0, start_bar - (4 - (end_bar - start_bar)) // 2), total_bars - 4)
    a, b = first * BAR_STEPS, first * BAR_STEPS + 4 * BAR_STEPS
    full = torch.zeros(4, steps, model.cfg.pitches)
    full[list(ACCOMPANIMENT)] = notes_to_roll(tracks["PIANO"], steps)
    full[list(MELODY)] = notes_to_roll(tracks["MELODY"], steps)
    mask = torch.ones(1, 4, 4 * BAR_STEPS, model.cfg.pitches, dtype=torch.bool)
    g0, g1 = start_bar * BAR_STEPS - a, end_bar * BAR_STEPS - a
    mask[:, :, g0:g1] = False

    window = sample_binomial(
        model, known=full[None, :, a:b], known_mask=mask, generator=torch.Generator().manual_seed(seed)
    )[0]
    gap = torch.zeros_like(window)
    gap[:, g0:g1] = window[:, g0:g1]
    lo, hi = start_bar * BAR_STEPS, end_bar * BAR_STEPS

    def merged(original: list[NoteTuple], channels) -> list[NoteTuple]:
        kept = [(p, s, min(e, lo) if s < lo else e) for p, s, e in original if not lo <= s < hi]
        new = [(p, s + a, e + a) for p, s, e in roll_to_notes(gap[list(channels)]) if g0 <= s < g1]
        return sorted(kept + new, key=lambda n: (n[1], n[0]))

    out = {"PIANO": merged(tracks["PIANO"], ACCOMPANIMENT)}
    if tracks["MELODY"]:
        out["MELODY"] = merged(tracks["MELODY"], MELODY)
    return out, steps, bpm


def write_outputs(
    tracks: Tracks,
    steps: int,
    midi_path: str | os.PathLike,
    *,
    bpm: float = 100.0,
    audio_path: str | os.PathLike | None = None,
    style: str = "piano",
    soundfont=None,
) -> list[Path]:
    """Write the MIDI and, with ``audio_path``, a FluidSynth render (mix) of it; returns the written paths.

    The audio is rendered before anything is written, and the MIDI is removed again if writing the audio
    fails, so a failure leaves no partial output.
    """
    rendering = None
    if audio_path is not None:
        if not any(tracks.values()):
            raise InputError(
                f"{midi_path}: the generated piece has no notes, so there is nothing to render; try another --seed"
            )
        rendering = render_song(
            song_from_tracks({k: v for k, v in tracks.items() if v}, steps, bpm=bpm), style, soundfont=soundfont
        )
    written = [write_midi(midi_path, tracks, bpm=bpm)]
    if rendering is not None:
        try:
            written.append(save_audio(audio_path, rendering.mix, rendering.sample_rate))
        except BaseException:
            written[0].unlink(missing_ok=True)
            raise
    return written
