"""``musicprod transition-stems`` end to end on two POP909 renders, and its per-stem schedule."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from guidance.tasks import DEFAULT_MARGIN
from guidance.transitions import STEM_ORDER, stem_schedule
from recipes.cli import main
from recipes.render_cmd import render_to_folder

SR = 44100


def test_schedule_accompaniment_first_melody_last():
    names = ["MELODY", "DRUMS", "PIANO", "BASS", "BRIDGE", "pad"]
    centres = stem_schedule(names, at=30.0, length=8.0, fade=2.0)
    order = sorted(centres, key=centres.get)
    assert order[0] == "PIANO" and order[-1] == "MELODY"
    assert order.index("pad") < order.index("MELODY")
    assert min(centres.values()) == pytest.approx(31.0) and max(centres.values()) == pytest.approx(37.0)
    assert set(STEM_ORDER) <= set(names + ["BRIDGE"])


def _read(path: Path) -> np.ndarray:
    return sf.read(str(path), always_2d=True)[0].T  # (2, T)


@pytest.fixture
def two_songs(tmp_path, pop909_root):
    """A: band-style render (render layout, 5 stems); B: piano-style render copied to the plain NAME/<stem>.wav
    layout."""
    a = tmp_path / "A"
    render_to_folder(pop909_root / "001", a, style="band", start=20.0, end=23.0)
    rendered_b = tmp_path / "B_render"
    render_to_folder(pop909_root / "034", rendered_b, style="piano", start=20.0, end=23.0)
    b = tmp_path / "B"
    b.mkdir()
    for stem in (rendered_b / "stems").iterdir():
        shutil.copy(stem, b / stem.name)
    return a, b


def test_transition_stems_end_to_end(tmp_path, tiny_checkpoints, two_songs, capsys):
    a, b = two_songs
    out = tmp_path / "T"
    at, length, b_start, fade = 1.0, 1.2, 0.5, 0.2
    rc = main(
        [
            "transition-stems",
            str(a),
            str(b),
            "--at",
            str(at),
            "--length",
            str(length),
            "--b-start",
            str(b_start),
            "--fade",
            str(fade),
            "-o",
            str(out),
            "--checkpoints",
            str(tiny_checkpoints),
            "--steps",
            "2",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    stems_a = {p.stem: _read(p) for p in (a / "stems").glob("*.wav")}
    stems_b = {p.stem: _read(p) for p in b.glob("*.wav")}
    assert {"MELODY", "PIANO", "BASS", "DRUMS"} <= set(stems_a) and "DRUMS" not in stems_b
    outs = {p.stem: _read(p) for p in (out / "stems").glob("*.wav")}
    assert set(outs) == set(stems_a) | set(stems_b)
    mix = _read(out / "mix.wav")
    total = int(round(at * SR)) + stems_b["MELODY"].shape[1] - int(round(b_start * SR))
    assert mix.shape == (2, total) and all(x.shape == (2, total) for x in outs.values())
    np.testing.assert_allclose(mix, sum(outs.values()), atol=1e-5)

    centres = stem_schedule(sorted(outs), at, length, fade)
    assert max(centres, key=centres.get) == "MELODY"
    # One shared gain may have been applied; each stem is (gain ×) A before its own crossfade (and blend margin)
    # and B after it.
    gain = None
    for name, y in outs.items():
        c = centres[name]
        cut_a = int((c - fade / 2 - DEFAULT_MARGIN) * SR) - 1
        cut_b = int(np.ceil((c + fade / 2 + DEFAULT_MARGIN) * SR)) + 1
        ref_a = stems_a.get(name, np.zeros((2, 10**7)))[:, :cut_a]
        b_from = cut_b - int(round(at * SR)) + int(round(b_start * SR))
        ref_b = stems_b.get(name, np.zeros((2, 10**7)))[:, b_from : b_from + total - cut_b]
        if gain is None and np.abs(ref_a).max() > 0:
            gain = float(np.abs(y[:, :cut_a]).max() / np.abs(ref_a).max())
            assert 0 < gain <= 1.0 + 1e-6
        np.testing.assert_allclose(
            y[:, :cut_a], gain * ref_a, atol=1e-5, err_msg=f"{name} changed before its crossfade"
        )
        np.testing.assert_allclose(y[:, cut_b:], gain * ref_b, atol=1e-5, err_msg=f"{name} changed after its crossfade")
        fade_part = y[:, cut_a:cut_b]
        assert np.isfinite(fade_part).all()
    assert "MELODY" in stdout and "fades out" in stdout
