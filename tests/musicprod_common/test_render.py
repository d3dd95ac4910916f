from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprod_common.errors import InputError
from musicprod_common.pop909 import Note
from musicprod_common.render import SAMPLE_RATE, render_song, render_tracks
from musicprod_common.styles import Track


def _peak(x: torch.Tensor) -> float:
    return float(x.abs().max())


def test_stems_sum_to_mix(song_001):
    out = render_song(song_001, "band", start=20.0, end=21.5)
    assert out.sample_rate == SAMPLE_RATE
    assert set(out.stems) == {"MELODY", "BRIDGE", "PIANO", "BASS", "DRUMS"}
    n = round(1.5 * SAMPLE_RATE)
    assert out.mix.shape == (2, n) and out.mix.dtype == torch.float32
    assert all(s.shape == (2, n) and s.dtype == torch.float32 for s in out.stems.values())
    assert torch.allclose(torch.stack(list(out.stems.values())).sum(0), out.mix, atol=1e-6, rtol=0)
    assert all(_peak(s) > 0 for s in out.stems.values())


def test_deterministic(song_001):
    a = render_song(song_001, "jazz", start=30.0, end=31.0, transpose=2)
    render_song(song_001, "organ", start=50.0, end=50.7)  # another render in between must not leak state
    b = render_song(song_001, "jazz", start=30.0, end=31.0, transpose=2)
    assert torch.equal(a.mix, b.mix)
    assert all(torch.equal(a.stems[k], b.stems[k]) for k in a.stems)


def test_each_track_lands_in_its_own_stem():
    note = (Note(60, 100, 0.0, 0.5),)
    tracks = [Track(n, p, False, note if i == 1 else ()) for i, (n, p) in enumerate([("A", 0), ("B", 40), ("C", 73)])]
    out = render_tracks(tracks, start=0.0, end=1.0)
    assert _peak(out.stems["B"]) > 1e-2
    assert _peak(out.stems["A"]) < 1e-6 and _peak(out.stems["C"]) < 1e-6


def test_window_starts_notes_crossing_t0():
    t0 = 2.0
    long_note = Track("X", 0, False, (Note(60, 100, 0.5, 3.5), Note(64, 90, 3.0, 3.4)))
    window = render_tracks([long_note], start=t0, end=t0 + 1.0)
    # The same note content, shifted so that the crossing note begins at 0: must give identical samples.
    shifted = Track("X", 0, False, (Note(60, 100, 0.0, 1.5), Note(64, 90, 1.0, 1.4)))
    reference = render_tracks([shifted], start=0.0, end=1.0)
    assert torch.equal(window.mix, reference.mix)
    assert _peak(window.mix[:, : SAMPLE_RATE // 20]) > 1e-2  # it sounds from the window's first 50 ms
    ended = Track("X", 0, False, (Note(60, 100, 0.0, 0.5),))
    assert _peak(render_tracks([ended], start=t0, end=t0 + 0.5).mix) < 1e-6  # notes over before t0 are not rendered


def _dominant_hz(x: torch.Tensor) -> float:
    mono = x.mean(0).numpy()
    spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.fft.rfftfreq(len(mono), 1 / SAMPLE_RATE)[spec.argmax()])


def test_transposition_shifts_pitch():
    from musicprod_common.pop909 import Song

    song = Song("sine", {"MELODY": (Note(69, 100, 0.0, 1.0),)})
    base = render_song(song, "woodwinds", start=0.2, end=0.9)  # flute: a strong fundamental
    octave = render_song(song, "woodwinds", start=0.2, end=0.9, transpose=12)
    assert abs(_dominant_hz(base.mix) - 440) < 10
    assert abs(_dominant_hz(octave.mix) - 880) < 20


def test_loud_input_is_turned_down_together():
    chord = tuple(Note(p, 127, 0.0, 0.5) for p in range(36, 96))
    out = render_tracks([Track("A", 0, False, chord), Track("B", 48, False, chord)], start=0.0, end=0.5)
    assert _peak(out.mix) <= 0.99 + 1e-6
    assert torch.allclose(out.stems["A"] + out.stems["B"], out.mix, atol=1e-6, rtol=0)


def test_full_song_renders_to_the_end_plus_tail(song_001):
    from musicprod_common.pop909 import Song

    short = Song("s", {"PIANO": (Note(60, 100, 0.1, 0.4),)})
    out = render_song(short, "piano", tail=0.5)
    assert out.mix.shape[1] == round(0.9 * SAMPLE_RATE)


def test_bad_inputs(song_001, tmp_path):
    with pytest.raises(InputError, match="missing.sf2"):
        render_song(song_001, "piano", start=0, end=1, soundfont=tmp_path / "missing.sf2")
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF0000junk")
    with pytest.raises(InputError, match="bad.sf2"):
        render_song(song_001, "piano", start=0, end=1, soundfont=bad)
    with pytest.raises(InputError, match="polka"):
        render_song(song_001, "polka", start=0, end=1)
    with pytest.raises(InputError):
        render_song(song_001, "piano", start=5, end=5)
