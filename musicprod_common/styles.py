"""Instrumentation styles: which General MIDI programs play POP909's MELODY, BRIDGE and PIANO tracks.

POP909 sets every track to program 0 (piano). A style re-orchestrates a song for data variety, and its name
is the label that the style classifier and style-transfer work use. Optional extras per style:

- a bass split: PIANO notes below ``bass_split`` move to a ``BASS`` track with program ``bass``;
- a GM drum track (``DRUMS``) generated from the song's beats (kick / snare / hi-hat pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .pop909 import TRACKS, Note, Song

# General MIDI percussion keys (GM 1 Level 1 Percussion Key Map).
KICK, SNARE, CLOSED_HAT = 36, 38, 42


@dataclass(frozen=True)
class Style:
    """GM programs (0-based) for each POP909 track, plus an optional bass split and drums."""

    name: str
    melody: int
    bridge: int
    piano: int
    bass: int | None = None  # GM program of the BASS track, or None for no bass split
    bass_split: int = 48  # PIANO notes with pitch < this go to BASS (48 = C3)
    drums: bool = False

    def program(self, track: str) -> int:
        """GM program for a track name (MELODY, BRIDGE, PIANO, BASS); other names play as PIANO."""
        return {"MELODY": self.melody, "BRIDGE": self.bridge, "PIANO": self.piano}.get(
            track, self.bass if track == "BASS" and self.bass is not None else self.piano
        )


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("piano", melody=0, bridge=0, piano=0),  # the original POP909 sound
        Style(
            "band", melody=65, bridge=27, piano=4, bass=33, drums=True
        ),  # alto sax, clean guitar, e-piano, finger bass
        Style("strings", melody=40, bridge=41, piano=48, bass=43),  # violin, viola, string ensemble, contrabass
        Style("organ", melody=16, bridge=19, piano=17, bass=32),  # drawbar / church / percussive organ, acoustic bass
        Style(
            "synth-pop", melody=80, bridge=81, piano=89, bass=38, drums=True
        ),  # square & saw leads, warm pad, synth bass
        Style("jazz", melody=66, bridge=56, piano=0, bass=32, drums=True),  # tenor sax, trumpet, piano, upright bass
        Style("guitar", melody=24, bridge=25, piano=25, bass=33),  # nylon lead, steel accompaniment, finger bass
        Style("chiptune", melody=80, bridge=80, piano=81, bass=38, drums=True),  # square / saw leads, synth bass
        Style("woodwinds", melody=73, bridge=71, piano=70, bass=58),  # flute, clarinet, bassoon, tuba
        Style("mallets", melody=11, bridge=12, piano=8, bass=32),  # vibraphone, marimba, celesta, acoustic bass
    )
}

# Never used to train the audio models (VAE, diffusion); kept to evaluate how they handle an unseen timbre.
VAE_HELDOUT_STYLE = "mallets"

STYLE_NAMES: tuple[str, ...] = tuple(STYLES)


def get_style(name: str) -> Style:
    """The style called ``name``; an unknown name raises InputError listing the valid ones."""
    try:
        return STYLES[name]
    except KeyError:
        raise InputError(f"unknown style {name!r}; valid styles: {', '.join(STYLE_NAMES)}") from None


def style_index(name: str) -> int:
    """Position of a style in :data:`STYLE_NAMES` (the integer class label)."""
    get_style(name)
    return STYLE_NAMES.index(name)


def parse_style_list(text: str | None) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (validated); None/empty -> []."""
    names = [s.strip() for s in (text or "").split(",") if s.strip()]
    for name in names:
        get_style(name)
    return names


def drum_pattern(beats: np.ndarray, downbeats: np.ndarray, beats_per_bar: int) -> tuple[Note, ...]:
    """A plain rock pattern from beat times (s): kick on beat 1 (and 3 in 4/4), snare on the backbeats,
    closed hi-hat on every eighth note. Beats before the first downbeat count as the end of a bar."""
    beats = np.asarray(beats, dtype=np.float64)
    if len(beats) < 2:
        return ()
    starts = set(np.round(np.asarray(downbeats, dtype=np.float64), 6).tolist())
    first = next((i for i, b in enumerate(beats) if round(float(b), 6) in starts), 0)
    ext = np.append(beats, beats[-1] + (beats[-1] - beats[-2]))
    notes: list[Note] = []
    for i, t in enumerate(beats):
        pos = (i - first) % beats_per_bar
        dt = float(ext[i + 1] - t)
        hit = min(0.1, dt / 2)
        if pos == 0 or (beats_per_bar == 4 and pos == 2):
            notes.append(Note(KICK, 100, float(t), float(t) + hit))
        if (beats_per_bar == 4 and pos in (1, 3)) or (beats_per_bar == 3 and pos in (1, 2)):
            notes.append(Note(SNARE, 90 if beats_per_bar == 4 else 70, float(t), float(t) + hit))
        for half in (0.0, 0.5):
            notes.append(
                Note(CLOSED_HAT, 70 if half == 0 else 55, float(t) + half * dt, float(t) + half * dt + hit / 2)
            )
    return tuple(sorted(notes, key=lambda n: (n.start, n.pitch)))


@dataclass(frozen=True)
class Track:
    """A track ready to render: name, GM program, whether it is a drum track, notes in seconds."""

    name: str
    program: int
    is_drum: bool
    notes: tuple[Note, ...]


def arrange(song: Song, style: Style | str) -> list[Track]:
    """The song's tracks with the style's programs, bass split and drums applied (empty tracks kept out,
    except that POP909's MELODY/BRIDGE/PIANO are always present so stems line up across songs)."""
    style = get_style(style) if isinstance(style, str) else style
    tracks: list[Track] = []
    bass_notes: tuple[Note, ...] = ()
    for name, notes in song.tracks.items():
        if name == "PIANO" and style.bass is not None:
            bass_notes = tuple(n for n in notes if n.pitch < style.bass_split)
            notes = tuple(n for n in notes if n.pitch >= style.bass_split)
        if notes or name in TRACKS:
            tracks.append(Track(name, style.program(name), False, notes))
    if style.bass is not None:
        tracks.append(Track("BASS", style.bass, False, bass_notes))
    if style.drums and len(song.beats) >= 2:
        tracks.append(Track("DRUMS", 0, True, drum_pattern(song.beats, song.downbeats, song.beats_per_bar)))
    return tracks
