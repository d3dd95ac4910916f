"""Chord symbols → chroma, and chord → allowed scale (the table behind the fine-grained correction).

Two spellings are read: POP909's Harte-style labels (``B:maj``, ``Bb:min7/b7``, ``N``) and the short
symbols a user types on the command line (``C G Am F``, ``F#m7``, ``Bbmaj7``, ``G7``, ``N``).

Zhu et al. 2024 ("Efficient Fine-Grained Guidance for Diffusion Model Based Symbolic Music
Generation") forbid, at each 16th step, the pitch classes outside a scale implied by the chord:

================  ==========================
chord             allowed pitch classes
================  ==========================
major-type        major scale (ionian)
minor triad       natural ∪ harmonic minor
dominant 7        mixolydian
m7                aeolian
dim / aug         chord tones
no chord (N)      all twelve
================  ==========================

Qualities the table does not name are mapped to the nearest row, and the allowed set always contains
the chord tones and the bass, so a chord's own notes are never "out of key".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from musicprod_common.errors import InputError

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ALL_PITCH_CLASSES = 0xFFF

# Scales as semitone sets above the root.
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "natural_minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic_minor": (0, 2, 3, 5, 7, 9, 11),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}

# Harte quality → (chord intervals, scale family). The family names the row of the table above.
QUALITIES: dict[str, tuple[tuple[int, ...], str]] = {
    "maj": ((0, 4, 7), "major"),
    "min": ((0, 3, 7), "minor"),
    "7": ((0, 4, 7, 10), "dominant"),
    "maj7": ((0, 4, 7, 11), "major"),
    "min7": ((0, 3, 7, 10), "m7"),
    "maj6": ((0, 4, 7, 9), "major"),
    "min6": ((0, 3, 7, 9), "min6"),
    "dim": ((0, 3, 6), "chord_tones"),
    "dim7": ((0, 3, 6, 9), "chord_tones"),
    "hdim7": ((0, 3, 6, 10), "chord_tones"),
    "aug": ((0, 4, 8), "chord_tones"),
    "sus2": ((0, 2, 7), "major"),
    "sus4": ((0, 5, 7), "major"),
    "sus4(b7)": ((0, 5, 7, 10), "dominant"),
    "minmaj7": ((0, 3, 7, 11), "minor"),
    "9": ((0, 4, 7, 10, 2), "dominant"),
    "maj9": ((0, 4, 7, 11, 2), "major"),
    "min9": ((0, 3, 7, 10, 2), "m7"),
    "add9": ((0, 4, 7, 2), "major"),
}

# Scale family → semitone sets above the root whose union is allowed.
FAMILY_SCALES: dict[str, tuple[str, ...]] = {
    "major": ("major",),
    "minor": ("natural_minor", "harmonic_minor"),
    "dominant": ("mixolydian",),
    "m7": ("aeolian",),
    "min6": ("dorian",),  # the major sixth of m6 is not in aeolian; dorian is the usual choice
    "chord_tones": (),
}

# Short symbols typed by users → Harte qualities. Longest suffix first when matching.
_SHORT_SUFFIX = {
    "": "maj",
    "maj": "maj",
    "M": "maj",
    "m": "min",
    "min": "min",
    "-": "min",
    "7": "7",
    "dom7": "7",
    "maj7": "maj7",
    "M7": "maj7",
    "m7": "min7",
    "min7": "min7",
    "-7": "min7",
    "6": "maj6",
    "m6": "min6",
    "dim": "dim",
    "o": "dim",
    "dim7": "dim7",
    "o7": "dim7",
    "m7b5": "hdim7",
    "ø": "hdim7",
    "aug": "aug",
    "+": "aug",
    "sus2": "sus2",
    "sus4": "sus4",
    "sus": "sus4",
    "7sus4": "sus4(b7)",
    "mmaj7": "minmaj7",
    "mM7": "minmaj7",
    "9": "9",
    "maj9": "maj9",
    "m9": "min9",
    "add9": "add9",
}


def mask_from_pcs(pcs: "set[int] | tuple[int, ...] | list[int]") -> int:
    """A 12-bit pitch-class mask (bit k = pitch class k, C = 0)."""
    m = 0
    for pc in pcs:
        m |= 1 << (pc % 12)
    return m


def pcs_from_mask(mask: int) -> list[int]:
    return [pc for pc in range(12) if mask >> pc & 1]


def rotate_mask(mask: int, semitones: int) -> int:
    """Transpose a 12-bit pitch-class mask by ``semitones``."""
    s = semitones % 12
    return ((mask << s) | (mask >> (12 - s))) & ALL_PITCH_CLASSES


@dataclass(frozen=True)
class Chord:
    """A parsed chord. ``root`` is None for no chord (N)."""

    root: int | None
    quality: str
    bass: int | None = None

    @property
    def chroma_mask(self) -> int:
        """Chord tones as a 12-bit mask (the bass of an inversion is a chord tone already)."""
        if self.root is None:
            return 0
        intervals = QUALITIES[self.quality][0]
        m = mask_from_pcs([self.root + i for i in intervals])
        return m | (mask_from_pcs([self.bass]) if self.bass is not None else 0)

    @property
    def scale_mask(self) -> int:
        """Allowed pitch classes (Zhu et al. 2024 table), always ⊇ chord tones and bass."""
        if self.root is None:
            return ALL_PITCH_CLASSES
        family = QUALITIES[self.quality][1]
        m = self.chroma_mask
        for name in FAMILY_SCALES[family]:
            m |= mask_from_pcs([self.root + i for i in SCALES[name]])
        return m

    @property
    def is_minor(self) -> bool:
        """Minor third above the root: what chord accuracy's maj/min recognition compares."""
        return self.root is not None and 3 in QUALITIES[self.quality][0]


NO_CHORD = Chord(None, "N")


def _parse_root(text: str) -> tuple[int, str]:
    if not text or text[0].upper() not in _LETTER:
        raise ValueError(text)
    pc = _LETTER[text[0].upper()]
    rest = text[1:]
    while rest[:1] in ("#", "b", "♯", "♭"):
        pc += 1 if rest[0] in "#♯" else -1
        rest = rest[1:]
    return pc % 12, rest


_DEGREE = {"1": 0, "2": 2, "3": 4, "4": 5, "5": 7, "6": 9, "7": 11, "9": 2, "11": 5, "13": 9}


def _degree(text: str) -> int:
    shift = 0
    while text[:1] in ("b", "#"):
        shift += -1 if text[0] == "b" else 1
        text = text[1:]
    return _DEGREE[text] + shift


def parse_harte(label: str) -> Chord:
    """POP909 ``chord_midi.txt`` labels: ``B:maj``, ``Bb:min7/b7``, ``C:sus4(b7)``, ``N``.

    An unknown quality keeps its root and falls back to its triad (minor if it starts with ``min``).
    """
    label = label.strip()
    if label in ("N", "X", ""):
        return NO_CHORD
    root_text, _, rest = label.partition(":")
    root, _ = _parse_root(root_text)
    quality, _, bass_text = (rest or "maj").partition("/")
    if quality not in QUALITIES:
        quality = "min" if quality.startswith("min") else "maj"
    bass = None
    if bass_text:
        try:
            bass = (root + _degree(bass_text)) % 12
        except (KeyError, ValueError):
            bass = None
    return Chord(root, quality, bass)


def parse_symbol(symbol: str) -> Chord:
    """User chord symbols: ``C``, ``Am``, ``F#m7``, ``Bbmaj7``, ``G7``, ``Bdim``, ``C/E``, ``N``; Harte works too."""
    text = symbol.strip()
    if text in ("N", "NC", "N.C.", "-"):
        return NO_CHORD
    try:
        if ":" in text:
            return parse_harte(text)
        root, rest = _parse_root(text)
        suffix, _, bass_text = rest.partition("/")
        if suffix not in _SHORT_SUFFIX:
            raise ValueError(suffix)
        bass = _parse_root(bass_text)[0] if bass_text else None
        return Chord(root, _SHORT_SUFFIX[suffix], bass)
    except (ValueError, KeyError, IndexError):
        raise InputError(
            f"chord {symbol!r}: not a chord symbol I can read; use e.g. 'C', 'Am', 'F#m7', 'Bbmaj7', 'G7', 'Bdim', "
            "'C/E' or 'N'"
        ) from None


def parse_progression(text: str) -> list[Chord]:
    """``'C G Am F'`` (spaces, commas or ``|``) → chords; an empty progression is an InputError."""
    tokens = [t for t in re.split(r"[\s,|]+", text) if t]
    if not tokens:
        raise InputError("--chords is empty; give chords like 'C G Am F' (one per bar by default)")
    return [parse_symbol(t) for t in tokens]


def chord_name(chord: Chord) -> str:
    if chord.root is None:
        return "N"
    return f"{NOTE_NAMES[chord.root]}:{chord.quality}"


def scale_mask(name: str, tonic: int) -> int:
    """A user-chosen scale (e.g. ``'dorian'``, ``'minor_pentatonic'``) on ``tonic`` as a 12-bit mask."""
    if name not in SCALES:
        raise InputError(f"unknown scale {name!r}; choose one of: {', '.join(sorted(SCALES))}")
    return mask_from_pcs([tonic + i for i in SCALES[name]])


def parse_scale(text: str) -> int:
    """``'D:dorian'`` or ``'A minor_pentatonic'`` → 12-bit mask."""
    root_text, _, name = text.replace(" ", ":").partition(":")
    try:
        tonic, rest = _parse_root(root_text)
        if rest:
            raise ValueError(rest)
    except ValueError:
        raise InputError(f"scale {text!r}: write it as TONIC:NAME, e.g. 'D:dorian' or 'A:minor_pentatonic'") from None
    return scale_mask(name or "major", tonic)
