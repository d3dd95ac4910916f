"""POP909 → 4-bar roll slices: shapes and contents checked against the raw songs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprod_common.errors import InputError
from musicprod_common.pop909 import load_song, sixteenth_grid
from symbolic import data as D
from symbolic.chords import parse_harte


@pytest.fixture(scope="module")
def data_file(pop909_root, tmp_path_factory):
    path = tmp_path_factory.mktemp("sym") / "data.safetensors"
    counts = D.build_dataset_file(pop909_root, path, limit=3)  # songs 001 (train), 002 (valid), 003 (test)
    assert counts["songs"] == 3
    return path


def test_file_is_compact_and_split(data_file):
    assert data_file.stat().st_size < 200_000
    for split in ("train", "valid", "test"):
        ds = D.PianoRollDataset(data_file, split)
        assert [s.song_id for s in ds.songs] == [{"train": 1, "valid": 2, "test": 3}[split]]
    assert len(D.PianoRollDataset(data_file, "train")) == 12 * len(
        D.PianoRollDataset(data_file, "train", transpose=False)
    )
    assert len(D.PianoRollDataset(data_file, "test")) == len(D.PianoRollDataset(data_file, "test", transpose=False))


def test_shapes(data_file):
    item = D.PianoRollDataset(data_file, "train")[0]
    assert item["x0"].shape == (2, 64, 64) and item["melody"].shape == (2, 64, 64)
    assert item["chord"].shape == (1, 64, 64) and item["rhythm"].shape == (2, 64, 64)
    assert item["allowed"].shape == (64, 64) and item["chroma"].shape == (64, 12)
    assert set(item["x0"].unique().tolist()) <= {0.0, 1.0}
    assert not bool((item["x0"][0] * item["x0"][1]).any())  # a cell is an onset or a sustain, not both


def test_onsets_match_the_midi(data_file, pop909_root):
    ds = D.PianoRollDataset(data_file, "train", transpose=False)
    song = load_song(pop909_root / "001")
    grid = sixteenth_grid(song)
    for slice_i in (0, len(ds.index) // 2):
        _, start = ds.index[slice_i]
        item = ds[slice_i]
        want = set()
        for n in song.tracks["PIANO"]:
            step = int(np.argmin(np.abs(grid - n.start)))
            if start <= step < start + 64 and 33 <= n.pitch <= 96:
                want.add((step - start, n.pitch - 33))
        got = {tuple(c) for c in torch.nonzero(item["x0"][0]).tolist()}
        assert got == want


def test_conditions(data_file, pop909_root):
    ds = D.PianoRollDataset(data_file, "train", transpose=False)
    song = load_song(pop909_root / "001")
    grid = sixteenth_grid(song)
    _, start = ds.index[3]
    item = ds[3]
    # chord chroma: the chord sounding at the slice's middle step, at MIDI 48-59 and 60-71 only
    mid = start + 32
    label = next(c.label for c in song.chords if c.start <= grid[mid] + 1e-3 < c.end)
    chroma = torch.tensor([(parse_harte(label).chroma_mask >> pc) & 1 for pc in range(12)], dtype=torch.float32)
    chord = item["chord"][0]
    assert torch.equal(chord[32, 48 - 33 : 60 - 33], chroma) and torch.equal(chord[32, 60 - 33 : 72 - 33], chroma)
    assert chord[:, : 48 - 33].sum() == 0 and chord[:, 72 - 33 :].sum() == 0
    n_onsets = item["x0"][0].sum(1)  # (T,)
    assert torch.equal(item["rhythm"][0], chord * n_onsets[:, None])
    held_only = (n_onsets == 0) & (item["x0"][1].sum(1) > 0)
    assert torch.equal(item["rhythm"][1], chord * held_only[:, None])
    assert item["melody"].sum() > 0 or item["x0"].sum() > 0


def test_transposition_shifts_pitch(data_file):
    ds = D.PianoRollDataset(data_file, "train")
    base = ds[12 * 2 + D.TRANSPOSITIONS.index(0)]
    up = ds[12 * 2 + D.TRANSPOSITIONS.index(3)]
    assert torch.equal(up["x0"][:, :, 3:], base["x0"][:, :, :-3])
    assert torch.equal(up["chroma"], torch.roll(base["chroma"], 3, 1))
    assert torch.equal(up["allowed"][:, 3:], base["allowed"][:, :-3])


def test_triple_meter_is_skipped(pop909_root):
    assert D.extract_song(load_song(pop909_root / "034")) is None  # 034 is in 3/4
    assert D.extract_song(load_song(pop909_root / "001")) is not None


def test_bad_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        D.PianoRollDataset(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a valid"):
        D.PianoRollDataset(bad)
