"""``musicprod transition`` end to end: click tracks at two tempos, a song without a beat, refusals, the plot."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from recipes.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "guidance"))
from test_transitions import clicks  # noqa: E402

STEPS = "2"


def write_clicks(path: Path, bpm: float, seconds: float, sr: int, channels: int, **kw) -> Path:
    x = clicks(bpm, seconds, sr, **kw).numpy()[:channels].T
    sf.write(str(path), x, sr, subtype="PCM_16" if path.suffix == ".flac" else "FLOAT")
    return path


def test_beat_matched_transition_keeps_a_and_its_format(tmp_path, ckpt_env, capsys):
    a = write_clicks(tmp_path / "a.wav", 120, 30.0, 44100, 2)
    b = write_clicks(tmp_path / "b.flac", 126, 30.0, 22050, 1, offset=0.3, pitch=1500.0)
    out, plot = tmp_path / "ab.wav", tmp_path / "ab.png"
    args = ["transition", str(a), str(b), "-o", str(out), "--bars", "4", "--fade", "0.2", "--steps", STEPS]
    assert main([*args, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    tempo_a, tempo_b, speed = (
        float(x) for x in re.search(r"A ([\d.]+) BPM .* B ([\d.]+) BPM .* ×([\d.]+)", text).groups()
    )
    assert abs(tempo_a - 120) < 1 and abs(tempo_b - 126) < 1 and abs(speed - 120 / 126) < 0.01, text
    assert "bass swapped" in text, text
    minutes, seconds = re.search(r"cue-out (\d+):(\d+\.\d)", text).groups()
    cue_out = 60 * int(minutes) + float(seconds)
    assert abs((cue_out - 0.5) / 2.0 - round((cue_out - 0.5) / 2.0)) < 0.05  # on a downbeat of A (every 2 s)
    x, y = sf.read(str(a))[0], sf.read(str(out))[0]
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "FLOAT")
    first = np.nonzero((x[: len(y)] != y[: len(x)]).any(axis=1))[0][0]
    assert first >= int((cue_out - 0.05) * 44100) - 1  # everything before the cue-out is A's own samples
    assert plot.stat().st_size > 10_000


def test_a_song_without_a_beat_gets_a_plain_regenerated_crossfade(tmp_path, ckpt_env, capsys):
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(str(a), 0.1 * rng.standard_normal((44100 * 6, 2)), 44100)
    sf.write(str(b), 0.1 * rng.standard_normal((44100 * 5, 2)), 44100)
    out = tmp_path / "ab.wav"
    assert main(["transition", str(a), str(b), "-o", str(out), "--fade", "0.2", "--steps", STEPS]) == 0
    assert "no steady beat" in capsys.readouterr().out
    y = sf.read(str(out))[0]
    assert abs(len(y) - (11 * 44100 - 0.2 * 44100)) <= 2
    assert np.array_equal(y[:44100], sf.read(str(a))[0][:44100])


def test_impossible_requests_exit_2_and_write_nothing(tmp_path, ckpt_env, capsys):
    a = write_clicks(tmp_path / "a.wav", 120, 20.0, 44100, 2)
    b = write_clicks(tmp_path / "b.wav", 120, 20.0, 44100, 2)
    out = tmp_path / "ab.wav"
    for extra in (["--bars", "64"], ["--at", "25"], ["--b-start", "19.9", "--bars", "4"]):
        assert main(["transition", str(a), str(b), "-o", str(out), "--fade", "0", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and not out.exists(), err
