"""Song-aware ``musicprod inpaint``/``continue``/``inpaint-batch``: copies where the song repeats, the model where it
does not, references, several regions, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from recipes.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "musicprod_common"))
from test_passages import loop_song, noise  # noqa: E402

SR = 22050


def write(path: Path, audio, sr: int = SR) -> Path:
    sf.write(str(path), np.asarray(audio).T, sr, subtype="FLOAT")
    return path


def gapped_loop(tmp_path: Path, regions, repeats: int = 5) -> tuple[Path, np.ndarray]:
    """A loop song with ``regions`` (seconds) silenced; returns the file and the undamaged song ``(2, T)``."""
    song = loop_song(repeats=repeats).numpy()
    damaged = song.copy()
    for a, b in regions:
        damaged[:, int(round(a * SR)) : int(round(b * SR))] = 0.0
    return write(tmp_path / "song.wav", damaged), song


def test_auto_copies_a_repeat_without_loading_a_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICPROD_CHECKPOINTS", str(tmp_path / "no-models-here"))  # any model load would fail
    song, truth = gapped_loop(tmp_path, [(17.3, 19.3)])
    out = tmp_path / "out.wav"
    assert main(["inpaint", str(song), "--start", "17.3", "--end", "19.3", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "copied 17.30-19.30 s from" in said and "of the song (match" in said
    y, _ = sf.read(str(out), dtype="float32", always_2d=True)
    np.testing.assert_allclose(y.T, truth, atol=1e-6)


def test_several_regions_in_one_call(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICPROD_CHECKPOINTS", str(tmp_path / "no-models-here"))
    song, truth = gapped_loop(tmp_path, [(9.0, 10.0), (25.5, 27.0)])
    out, plot = tmp_path / "out.wav", tmp_path / "where.png"
    assert (
        main(["inpaint", str(song), "--start", "9", "25.5", "--end", "10", "27", "-o", str(out), "--plot", str(plot)])
        == 0
    )
    assert capsys.readouterr().out.count("copied") == 2
    y, _ = sf.read(str(out), dtype="float32", always_2d=True)
    np.testing.assert_allclose(y.T, truth, atol=1e-6)
    assert plot.stat().st_size > 0


def test_no_repeat_falls_back_to_the_model_and_says_so(tmp_path, ckpt_env, capsys):
    song = write(tmp_path / "noise.wav", noise(30.0).numpy())
    out = tmp_path / "out.wav"
    assert main(["inpaint", str(song), "--start", "14", "--end", "14.2", "-o", str(out), "--steps", "2"]) == 0
    said = capsys.readouterr().out
    assert "generated 14.00-14.20 s with the latent model: no passage matched (best" in said
    x, _ = sf.read(str(song), dtype="float32")
    y, _ = sf.read(str(out), dtype="float32")
    assert not np.array_equal(x, y)


def test_source_song_without_a_match_fails_with_the_score(tmp_path, capsys):
    song = write(tmp_path / "noise.wav", noise(30.0).numpy())
    out = tmp_path / "out.wav"
    assert main(["inpaint", str(song), "--start", "14", "--end", "16", "-o", str(out), "--source", "song"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "scores" in err and "threshold" in err
    assert not out.exists()


def test_a_reference_take_fills_what_the_song_lacks(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICPROD_CHECKPOINTS", str(tmp_path / "no-models-here"))
    import torch

    loop = loop_song(repeats=1)
    lone = torch.cat([noise(10.0, seed=4), loop, noise(10.0, seed=5)], dim=1).numpy()  # the loop once, at 10-18 s
    damaged = lone.copy()
    damaged[:, 12 * SR : 14 * SR] = 0.0
    song = write(tmp_path / "song.wav", damaged)
    take = torch.cat([noise(5.0, seed=3), loop], dim=1)
    import torchaudio

    take_44k = torchaudio.functional.resample(take, SR, 44100)  # another rate: resampled on reading
    write(tmp_path / "take.wav", take_44k.numpy(), 44100)
    out = tmp_path / "out.wav"
    assert (
        main(
            [
                "inpaint",
                str(song),
                "--start",
                "12",
                "--end",
                "14",
                "-o",
                str(out),
                "--reference",
                str(tmp_path / "take.wav"),
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "of take.wav" in said
    y, _ = sf.read(str(out), dtype="float32", always_2d=True)
    inside = slice(12 * SR, 14 * SR)
    err = np.sqrt(np.mean((y.T[:, inside] - lone[:, inside]) ** 2) / np.mean(lone[:, inside] ** 2))
    assert err < 0.05, (
        f"the resampled take's copy is off by {err:.3f} of the signal's RMS"
    )  # two resamplings: not exact


@pytest.mark.parametrize("kind", ["unreadable", "nan", "channels", "short"])
def test_bad_reference_is_one_line_and_writes_nothing(tmp_path, kind, capsys):
    song, _ = gapped_loop(tmp_path, [(17.3, 19.3)])
    ref = tmp_path / "ref.wav"
    if kind == "unreadable":
        ref.write_text("not audio")
    elif kind == "nan":
        x = noise(5.0).numpy()
        x[0, 100] = np.nan
        write(ref, x)
    elif kind == "channels":
        write(ref, np.zeros((3, SR * 5), dtype=np.float32))
    else:
        write(ref, noise(1.0).numpy())
    out = tmp_path / "out.wav"
    assert (
        main(["inpaint", str(song), "--start", "17.3", "--end", "19.3", "-o", str(out), "--reference", str(ref)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ref.wav" in err
    assert not out.exists()


def test_batch_copies_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICPROD_CHECKPOINTS", str(tmp_path / "no-models-here"))
    folder = tmp_path / "takes"
    folder.mkdir()
    truths = {}
    for seed in (0, 1):
        song = loop_song(seed=seed).numpy()
        truths[seed] = song
        damaged = song.copy()
        damaged[:, int(17.3 * SR) : int(19.3 * SR)] = 0.0
        write(folder / f"take{seed}.wav", damaged)
    assert main(["inpaint-batch", str(folder), "--start", "17.3", "--end", "19.3", "-o", str(tmp_path / "fixed")]) == 0
    said = capsys.readouterr().out
    assert said.count("copied") == 2
    for seed, truth in truths.items():
        y, _ = sf.read(str(tmp_path / "fixed" / f"take{seed}.wav"), dtype="float32", always_2d=True)
        np.testing.assert_allclose(y.T, truth, atol=1e-6)


def test_continue_carries_on_with_what_followed_the_closing_bars(tmp_path, ckpt_env, capsys):
    full = loop_song(repeats=4).numpy()  # 32 s
    cut = int(20.0 * SR)
    song = write(tmp_path / "song.wav", full[:, :cut])
    out = tmp_path / "out.wav"
    assert main(["continue", str(song), "-o", str(out), "--context", "0.1", "--steps", "2"]) == 0
    assert "copied" in capsys.readouterr().out
    y, _ = sf.read(str(out), dtype="float32", always_2d=True)
    assert y.shape[0] > cut
    np.testing.assert_allclose(y.T, full[:, : y.shape[0]], atol=1e-6)
