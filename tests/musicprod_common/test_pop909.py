from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from musicprod_common.errors import InputError
from musicprod_common.pop909 import (
    SPLIT_FILE,
    TRACKS,
    bar_shifts,
    humanize,
    is_triple_meter,
    load_song,
    load_split,
    make_split,
    parse_chord_label,
    read_beats,
    shift_bars,
    sixteenth_grid,
    split_song_ids,
    transpose_song,
)


def test_song_folder_has_notes_beats_chords_key(song_001):
    assert set(TRACKS) <= set(song_001.tracks)
    assert all(len(song_001.tracks[t]) > 0 for t in TRACKS)
    for notes in song_001.tracks.values():
        starts = [n.start for n in notes]
        assert starts == sorted(starts)
        assert all(n.end > n.start and 0 <= n.pitch <= 127 for n in notes)
    assert np.all(np.diff(song_001.beats) > 0)
    assert set(np.round(song_001.downbeats, 6)) <= set(np.round(song_001.beats, 6))
    assert len(song_001.chords) > 0 and song_001.chords[0].end > song_001.chords[0].start
    assert song_001.key == "Gb:maj"


def test_meter(song_001, song_034):
    assert not is_triple_meter(song_001)
    assert is_triple_meter(song_034)
    # downbeats every beats_per_bar beats
    for song in (song_001, song_034):
        idx = np.searchsorted(song.beats, song.downbeats)
        assert np.median(np.diff(idx)) == song.beats_per_bar


def test_sixteenth_grid_matches_onsets(song_001):
    grid = sixteenth_grid(song_001)
    assert len(grid) == 4 * len(song_001.beats)
    assert np.all(np.diff(grid) > 0)
    onsets = np.array([n.start for notes in song_001.tracks.values() for n in notes])
    step = np.median(np.diff(grid))
    dist = np.abs(onsets[:, None] - grid[None, :]).min(1)
    # Onsets sit on the beat-file grid far more often than chance (chance: a quarter of a step on average).
    assert np.mean(dist < step / 4) > 0.5


@pytest.mark.parametrize(
    "label,root,quality",
    [
        ("B:maj", 11, "maj"),
        ("Db:min7", 1, "min7"),
        ("C#:7/3", 1, "7"),
        ("N", -1, "N"),
        ("Cb:maj", 11, "maj"),
        ("G", 7, "maj"),
    ],
)
def test_parse_chord_label(label, root, quality):
    assert parse_chord_label(label) == (root, quality)


def test_transpose_drops_out_of_range(song_001):
    up = transpose_song(song_001, 3)
    assert [n.pitch for n in up.tracks["MELODY"]] == [n.pitch + 3 for n in song_001.tracks["MELODY"]]
    assert transpose_song(song_001, 0) is song_001


def test_humanize_drifts_the_tempo_and_moves_the_beats_with_the_notes(song_001):
    played = humanize(song_001, seed=1, drift=0.02, period=30.0, jitter=0.008)
    assert humanize(song_001, seed=1).beats.tolist() == played.beats.tolist()  # the seed fixes it
    # The beat intervals speed up and slow down by up to the drift, and no further.
    ratio = np.diff(played.beats) / np.diff(song_001.beats)
    assert 0.975 < ratio.min() < 0.99 and 1.01 < ratio.max() < 1.025
    assert set(np.round(played.downbeats, 9)) <= set(np.round(played.beats, 9))
    # Each note moves with the drift plus a jitter of at most 2.5 × its scale; pitches and the note count stay.
    before, after = song_001.tracks["MELODY"], played.tracks["MELODY"]
    assert sorted(n.pitch for n in after) == sorted(n.pitch for n in before)
    # Sorted onsets against sorted warped onsets: sorting moves no value by more than the largest shift.
    starts = np.array([n.start for n in before])
    inside = (starts > song_001.beats[0]) & (starts < song_001.beats[-1])
    warped = np.interp(starts, song_001.beats, played.beats)  # the drift, between beats nearly linear
    moved = np.sort([n.start for n in after])[inside[np.argsort(starts)]] - np.sort(warped[inside])
    assert np.abs(moved).max() <= 0.021 and np.abs(moved).std() > 0.004
    assert all(1 <= n.velocity <= 127 for n in after)


@pytest.mark.parametrize("missing", ["beat_midi.txt", "chord_midi.txt", "key_audio.txt", "001.mid"])
def test_missing_file_names_it(tmp_path, examples_root, missing):
    folder = tmp_path / "001"
    shutil.copytree(examples_root / "001", folder)
    (folder / missing).unlink()
    with pytest.raises(InputError, match=missing.replace(".", r"\.")):
        load_song(folder)


def test_corrupt_files(tmp_path, examples_root):
    folder = tmp_path / "001"
    shutil.copytree(examples_root / "001", folder)
    (folder / "beat_midi.txt").write_text("0.5 x\n")
    with pytest.raises(InputError, match="beat_midi.txt"):
        load_song(folder)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not midi at all")
    with pytest.raises(InputError, match="bad.mid"):
        load_song(bad)


def test_midi_without_notes(tmp_path):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(pretty_midi.Instrument(0, name="PIANO"))
    midi.write(str(tmp_path / "empty.mid"))
    with pytest.raises(InputError, match="no notes"):
        load_song(tmp_path / "empty.mid")


def test_bare_midi_has_notes_but_no_annotations(examples_root):
    song = load_song(examples_root / "001" / "001.mid")
    assert song.num_notes > 0 and len(song.beats) == 0
    with pytest.raises(InputError):
        sixteenth_grid(song)


def test_split_is_fixed_disjoint_and_complete():
    split = load_split()
    ids = [f"{i:03d}" for i in range(1, 910)]
    sets = {k: set(v) for k, v in split.items()}
    assert sets["train"].isdisjoint(sets["valid"]) and sets["train"].isdisjoint(sets["test"])
    assert sets["valid"].isdisjoint(sets["test"])
    assert sets["train"] | sets["valid"] | sets["test"] == set(ids)
    assert len(sets["valid"]) == len(sets["test"]) and len(sets["train"]) > 7 * len(sets["valid"])
    stored = json.loads(SPLIT_FILE.read_text())
    regenerated = make_split(ids, seed=stored["seed"])
    assert {k: list(v) for k, v in split.items()} == regenerated


def test_split_song_ids(examples_root, pop909_root):
    assert split_song_ids(examples_root, "all") == ["001", "034"]
    valid = split_song_ids(pop909_root, "valid")
    assert valid == list(load_split()["valid"])
    with pytest.raises(InputError, match="valid"):
        split_song_ids(examples_root, "nope")


def test_shift_bars_moves_downbeats_along_the_beats():
    beats = np.arange(12.0)
    assert shift_bars(beats, np.array([0.0, 4.0, 8.0]), 1, 4).tolist() == [1.0, 5.0, 9.0]
    assert shift_bars(beats, np.array([4.0, 8.0]), 3, 4).tolist() == [3.0, 7.0, 11.0]  # the bar before comes back
    assert shift_bars(beats, np.array([2.0, 5.0, 8.0, 11.0]), 2, 3).tolist() == [1.0, 4.0, 7.0, 10.0]
    assert shift_bars(beats, np.array([0.0, 4.0]), 0, 4).tolist() == [0.0, 4.0]


def test_hand_aligned_bars_put_the_bass_on_the_strong_beats(pop909_root):
    """Independent of the melodies the shifts come from: in songs whose bars the table moves by an odd number of
    beats, the piano's low notes fall mostly on beats 1 and 3 of the aligned bar, which were beats 2 and 4 of the
    annotated one."""
    shifts = bar_shifts()
    assert len(shifts) > 800 and set(shifts.values()) <= {0, 1, 2, 3}
    odd = [sid for sid, k in sorted(shifts.items()) if k % 2][:20]
    strong = {"annotated": 0, "aligned": 0}
    for sid in odd:
        beats, downbeats, per_bar = read_beats(pop909_root / sid / "beat_midi.txt")
        if per_bar != 4:
            continue
        song = load_song(pop909_root / sid)
        low = [n.start for n in song.tracks["PIANO"] if n.pitch < 50]
        for name, bars in (("annotated", downbeats), ("aligned", shift_bars(beats, downbeats, shifts[sid], per_bar))):
            first = int(np.abs(beats - bars[0]).argmin())
            strong_beats = beats[first % 2 :: 2]  # beats 1 and 3 of every 4/4 bar
            strong[name] += int(sum(np.abs(strong_beats - t).min() < 0.05 for t in low))
    assert strong["aligned"] > 2 * strong["annotated"], strong  # 1724 against 492 as shipped
