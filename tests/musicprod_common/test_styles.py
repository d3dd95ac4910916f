from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from musicprod_common.errors import InputError
from musicprod_common.styles import (
    CLOSED_HAT,
    KICK,
    SNARE,
    STYLE_NAMES,
    STYLES,
    VAE_HELDOUT_STYLE,
    arrange,
    drum_pattern,
    get_style,
    parse_style_list,
    style_index,
)


def test_table():
    assert len(STYLES) >= 8
    assert VAE_HELDOUT_STYLE in STYLES
    assert len({(s.melody, s.bridge, s.piano, s.bass, s.drums) for s in STYLES.values()}) == len(STYLES)
    for name, style in STYLES.items():
        assert style.name == name
        for program in (style.melody, style.bridge, style.piano, style.bass):
            assert program is None or 0 <= program < 128
        with pytest.raises(dataclasses.FrozenInstanceError):
            style.melody = 1  # type: ignore[misc]
    assert [style_index(n) for n in STYLE_NAMES] == list(range(len(STYLE_NAMES)))


def test_unknown_style_lists_valid_ones():
    with pytest.raises(InputError) as err:
        get_style("polka")
    assert all(name in str(err.value) for name in STYLE_NAMES)
    with pytest.raises(InputError):
        parse_style_list("band,polka")
    assert parse_style_list(" band, jazz ") == ["band", "jazz"]


def test_arrange_bass_split_and_drums(song_001):
    style = get_style("band")
    tracks = {t.name: t for t in arrange(song_001, style)}
    assert set(tracks) == {"MELODY", "BRIDGE", "PIANO", "BASS", "DRUMS"}
    piano = song_001.tracks["PIANO"]
    assert all(n.pitch < style.bass_split for n in tracks["BASS"].notes)
    assert all(n.pitch >= style.bass_split for n in tracks["PIANO"].notes)
    assert len(tracks["BASS"].notes) + len(tracks["PIANO"].notes) == len(piano)
    assert tracks["DRUMS"].is_drum and tracks["BASS"].program == style.bass
    assert tracks["MELODY"].program == style.melody
    plain = {t.name for t in arrange(song_001, "piano")}
    assert plain == {"MELODY", "BRIDGE", "PIANO"}


@pytest.mark.parametrize("per_bar", [3, 4])
def test_drum_pattern_follows_beats(per_bar):
    beats = np.arange(4 * per_bar) * 0.5
    downbeats = beats[::per_bar]
    notes = drum_pattern(beats, downbeats, per_bar)
    kicks = sorted(n.start for n in notes if n.pitch == KICK)
    snares = sorted(n.start for n in notes if n.pitch == SNARE)
    hats = [n for n in notes if n.pitch == CLOSED_HAT]
    assert set(downbeats.tolist()) <= set(kicks)  # a kick on every downbeat
    assert not set(snares) & set(downbeats.tolist())  # never a snare on a downbeat
    assert len(hats) == 2 * len(beats)  # eighth notes
    assert all(n.end > n.start for n in notes)
