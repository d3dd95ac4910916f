"""``musicprod analyze``: the printed summary, the JSON, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from recipes.cli import main

SR = 44100


def write_clicks(path: Path, bpm: float = 120.0, seconds: float = 12.0) -> np.ndarray:
    """A stereo 16-bit click track, an accented click on every 4th beat; returns the click times."""
    times = np.arange(0.5, seconds - 0.2, 60.0 / bpm)
    y = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.05 * SR)) / SR
    for i, start in enumerate(times):
        freq, gain = (1500.0, 1.0) if i % 4 == 0 else (1000.0, 0.6)
        click = gain * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.01)
        k = int(round(start * SR))
        y[k : k + len(click)] += click[: len(y) - k]
    sf.write(str(path), np.stack([y, y], axis=1) * 0.5, SR, subtype="PCM_16")
    return times


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("analyze") / "clicks.wav"
    return path, write_clicks(path)


def test_prints_tempo_meter_bars_and_key(clicks, capsys):
    path, times = clicks
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2
    bpm = float(re.search(r"([\d.]+) BPM", out[0]).group(1))
    assert bpm == pytest.approx(120.0, abs=1.0)
    assert out[0].startswith(f"{path}: ") and "4/4" in out[0] and re.search(r"key [A-G]#? (major|minor)", out[0])
    first = float(re.search(r"first downbeat ([\d.]+) s", out[0]).group(1))
    assert first == pytest.approx(times[0], abs=0.01)
    assert re.search(r"\d+ beats .* \d+ downbeats", out[1])


def test_json_parses_and_matches_the_clicks(clicks, capsys):
    path, times = clicks
    assert main(["analyze", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["file"] == str(path)
    assert data["has_beat"] is True and data["tempo"] == pytest.approx(120.0, abs=1.0)
    beats = np.array(data["beats"])
    assert np.abs(beats[:, None] - times[None, :]).min(axis=1).max() <= 0.01
    assert set(data["downbeats"]) <= set(data["beats"])
    assert data["beats_per_bar"] in (3, 4) and 0.0 <= data["key_confidence"] <= 1.0


def test_noise_has_no_steady_beat(tmp_path, capsys):
    path = tmp_path / "noise.flac"
    sf.write(str(path), np.random.default_rng(0).standard_normal(15 * SR).astype(np.float32) * 0.1, SR)
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no steady beat found" in out and "BPM" not in out
    assert main(["analyze", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["has_beat"] is False and data["tempo"] is None and data["beats"] == []


@pytest.mark.parametrize("kind", ["not_audio", "missing", "folder", "three_channels"])
def test_bad_input_is_one_line_and_exit_2(kind, tmp_path, capsys):
    path = {"not_audio": tmp_path / "notes.wav", "missing": tmp_path / "nope.wav", "folder": tmp_path}.get(
        kind, tmp_path / "three.wav"
    )
    if kind == "not_audio":
        path.write_text("this is not audio\n")
    if kind == "three_channels":
        sf.write(str(path), np.zeros((SR, 3), np.float32), SR)
    assert main(["analyze", str(path)]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("musicprod analyze: error:") and str(path) in lines[0]
    assert captured.out == ""


def test_low_rate_mono_file_is_analysed(tmp_path, capsys):
    path = tmp_path / "phone.wav"
    t = np.arange(8 * 8000) / 8000
    ticks = (np.sin(2 * np.pi * 1000 * t) * np.exp(-(t % 0.5) / 0.01)).astype(np.float32)  # a click every 0.5 s
    sf.write(str(path), 0.5 * ticks, 8000, subtype="PCM_16")
    assert main(["analyze", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["duration"] == pytest.approx(8.0, abs=0.01)
    assert data["tempo"] == pytest.approx(120.0, abs=1.0)
