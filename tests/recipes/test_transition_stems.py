"""``musicprod transition-stems`` end to end on two POP909 renders, and its per-stem schedule."""

from __future__ import annotations

import re
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
    render_to_folder(pop909_root / "001", a, style="band", start=20.0, end=40.0)
    rendered_b = tmp_path / "B_render"
    render_to_folder(pop909_root / "034", rendered_b, style="piano", start=20.0, end=40.0)
    b = tmp_path / "B"
    b.mkdir()
    for stem in (rendered_b / "stems").iterdir():
        shutil.copy(stem, b / stem.name)
    return a, b


def test_transition_stems_end_to_end(tmp_path, tiny_checkpoints, two_songs, capsys):
    a, b = two_songs
    out = tmp_path / "T"
    args = ["transition-stems", str(a), str(b), "--at", "6", "--bars", "2", "--fade", "0.2", "-o", str(out)]
    rc = main([*args, "--checkpoints", str(tiny_checkpoints), "--steps", "2"])
    assert rc == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    stems_a = {p.stem: _read(p) for p in (a / "stems").glob("*.wav")}
    stems_b = {p.stem: _read(p) for p in b.glob("*.wav")}
    assert {"MELODY", "PIANO", "BASS", "DRUMS"} <= set(stems_a) and "DRUMS" not in stems_b
    outs = {p.stem: _read(p) for p in (out / "stems").glob("*.wav")}
    assert set(outs) == set(stems_a) | set(stems_b)
    mix = _read(out / "mix.wav")
    assert all(x.shape == mix.shape for x in outs.values())
    np.testing.assert_allclose(mix, sum(outs.values()), atol=1e-5)

    minutes, seconds = re.search(r"cue-out (\d+):(\d+\.\d)", stdout).groups()
    cue_out = 60 * int(minutes) + float(seconds)
    assert abs(cue_out - 6.0) < 2.5  # snapped to a downbeat of A near --at
    assert re.search(r"DRUMS +crossfaded over", stdout) and re.search(r"BASS +swapped at", stdout), stdout
    assert re.search(r"MELODY +a 0.2 s regenerated crossfade", stdout) and "fades out" in stdout, stdout
    # One shared gain may have been applied; before the cue-out every stem is (gain ×) A's own.
    keep = int((cue_out - 0.05 - DEFAULT_MARGIN) * SR)
    gain = float(np.abs(outs["PIANO"][:, :keep]).max() / np.abs(stems_a["PIANO"][:, :keep]).max())
    assert 0 < gain <= 1.0 + 1e-6
    for name, y in outs.items():
        ref = stems_a.get(name, np.zeros_like(y))[:, :keep]
        np.testing.assert_allclose(y[:, :keep], gain * ref, atol=1e-5, err_msg=f"{name} changed before the cue-out")
    assert np.abs(outs["DRUMS"][:, -SR:]).max() == 0  # A's drums are gone once B has taken over
