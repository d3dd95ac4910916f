from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from musicprod_common.datasets import STEM_NAMES, AudioFolderSegments, FMASegments, Pop909Segments, training_styles
from musicprod_common.errors import InputError
from musicprod_common.styles import STYLE_NAMES, VAE_HELDOUT_STYLE

SR = 44100


def test_pop909_segments_shapes_and_determinism(examples_root):
    ds = Pop909Segments(examples_root, "all", 0.5, seed=3, with_stems=True, items_per_song=4)
    assert len(ds) == 8
    item = ds[1]
    assert item["audio"].shape == (2, SR // 2) and item["audio"].dtype == torch.float32
    assert item["stems"].shape == (len(STEM_NAMES), 2, SR // 2) and item["stems"].dtype == torch.float32
    assert item["style"].dtype == torch.long and item["style"].dim() == 0
    assert STYLE_NAMES[int(item["style"])] in training_styles()
    assert VAE_HELDOUT_STYLE not in training_styles()
    assert torch.allclose(item["stems"].sum(0), item["audio"], atol=1e-6, rtol=0)
    assert float(item["audio"].abs().max()) > 1e-3  # silent windows are redrawn
    again = Pop909Segments(examples_root, "all", 0.5, seed=3, items_per_song=4)[1]
    assert torch.equal(again["audio"], item["audio"])
    draws = {json.dumps(Pop909Segments(examples_root, "all", 0.5, seed=s).draw(1)) for s in range(6)}
    assert len(draws) > 1  # the seed changes the window / style / transposition
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_pop909_segments_respects_styles_and_transpose(examples_root):
    ds = Pop909Segments(examples_root, "all", 0.5, styles=["organ"], transpose=0, seed=0)
    draws = [ds.draw(i) for i in range(6)]
    assert {d["style"] for d in draws} == {"organ"} and {d["transpose"] for d in draws} == {0}
    assert {d["song"] for d in draws} == {"001", "034"}
    with pytest.raises(InputError, match="polka"):
        Pop909Segments(examples_root, "all", 0.5, styles=["polka"])


def _write(path, channels, sr, seconds, freq=330.0):
    t = np.arange(int(sr * seconds)) / sr
    data = np.stack([0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr)


def test_audio_folder_segments(tmp_path):
    _write(tmp_path / "a.wav", 1, 22050, 2.5)
    _write(tmp_path / "sub" / "b.flac", 2, 48000, 1.0)
    _write(tmp_path / "c.ogg", 2, 44100, 0.6)  # shorter than a segment: zero-padded
    (tmp_path / "notes.txt").write_text("not audio")
    ds = AudioFolderSegments(tmp_path, 1.0, seed=0)
    assert len(ds) == 2 + 1 + 1
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"audio"}
        assert item["audio"].shape == (2, SR) and item["audio"].dtype == torch.float32
    first = ds[0]["audio"]
    assert torch.equal(first[0], first[1])  # mono duplicated
    assert torch.equal(AudioFolderSegments(tmp_path, 1.0, seed=0)[1]["audio"], ds[1]["audio"])
    with pytest.raises(InputError):
        AudioFolderSegments(tmp_path / "nope", 1.0)


def test_audio_folder_manifest_labels(tmp_path):
    for name in ("x.flac", "y.flac"):
        _write(tmp_path / name, 2, SR, 1.0)
    _write(tmp_path / "unlisted.flac", 2, SR, 1.0)
    rows = [{"file": "x.flac", "style": "jazz"}, {"file": "y.flac", "style": "organ"}]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = AudioFolderSegments(tmp_path, 1.0)
    assert len(ds) == 2
    assert [STYLE_NAMES[int(ds[i]["style"])] for i in range(2)] == ["jazz", "organ"]
    (tmp_path / "manifest.jsonl").write_text('{"file": "x.flac", "style": "polka"}\n')
    with pytest.raises(InputError, match="manifest"):
        AudioFolderSegments(tmp_path, 1.0)


def _fma_fixture(root):
    """A tiny FMA tree: tracks.csv with its 3-row header and three 1.2 s mp3s (one without a top genre)."""
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    with open(meta / "tracks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "album", "artist", "track", "track"])
        w.writerow(["", "title", "name", "genre_top", "title"])
        w.writerow(["track_id", "", "", "", ""])
        w.writerow([2, "A", "B", "Hip-Hop", "Food"])
        w.writerow([5, "A", "B", "Rock", "This World"])
        w.writerow([10, "A", "B", "", "No genre"])
    for tid, freq in ((2, 220.0), (5, 440.0), (10, 880.0)):
        _write(root / "fma_small" / f"{tid // 1000:03d}" / f"{tid:06d}.mp3", 2, SR, 1.2, freq)


def test_fma_segments(tmp_path):
    _fma_fixture(tmp_path)
    ds = FMASegments(tmp_path, 1.0, seed=0)
    assert ds.genres == ["Hip-Hop", "Rock"]
    assert len(ds) == 2
    labels = {ds.files[k].stem: int(ds[i]["genre"]) for i, (k, _) in enumerate(ds.entries)}
    assert labels == {"000002": 0, "000005": 1}
    item = ds[0]
    assert item["audio"].shape == (2, SR) and item["audio"].dtype == torch.float32 and item["genre"].dtype == torch.long
    with pytest.raises(InputError, match="tracks.csv"):
        FMASegments(tmp_path / "fma_small", 1.0)
