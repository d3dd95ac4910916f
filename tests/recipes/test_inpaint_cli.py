"""``musicprod inpaint`` / ``regenerate`` / ``continue`` end to end with tiny random-init checkpoints.

The models are untrained, so these tests check the plumbing the recipes promise — where the output may
differ from the input, and that rate, channels, length and file format survive — not audio quality.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from recipes_testutils import TINY_FRAMES, changed_span, write_song

from guidance.config import sampler_preset
from guidance.song import inpaint
from guidance.tasks import DEFAULT_MARGIN
from recipes.cli import main
from recipes.models import load_models

STEPS = "2"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "suffix, rate, channels, subtype, model",
    [
        (".wav", 44100, 2, "PCM_16", "latent"),  # the common case: CD-format wav
        (".flac", 8000, 1, "PCM_16", "waveform"),  # mono, low rate (resampled for the model), lossless
        (".wav", 22050, 2, "FLOAT", "latent"),
    ],
)
def test_inpaint_long_song_changes_only_the_region(tmp_path, ckpt_env, suffix, rate, channels, subtype, model):
    song = write_song(tmp_path / f"song{suffix}", 60.0, rate, channels, subtype)
    before = sha(song)
    out, plot = tmp_path / f"out{suffix}", tmp_path / "plot.png"
    start, end = 31.0, 31.2
    rc = main(
        [
            "inpaint",
            str(song),
            "--start",
            str(start),
            "--end",
            str(end),
            "-o",
            str(out),
            "--model",
            model,
            "--steps",
            STEPS,
            "--plot",
            str(plot),
        ]
    )
    assert rc == 0
    assert sha(song) == before, "the input file was modified"
    info_in, info_out = sf.info(str(song)), sf.info(str(out))
    assert (info_out.samplerate, info_out.channels, info_out.frames, info_out.format, info_out.subtype) == (
        info_in.samplerate,
        info_in.channels,
        info_in.frames,
        info_in.format,
        info_in.subtype,
    )
    dtype = "int16" if subtype == "PCM_16" else "float32"  # compare the stored samples themselves
    x, _ = sf.read(str(song), dtype=dtype)
    y, _ = sf.read(str(out), dtype=dtype)
    lo, hi = changed_span(x, y)
    assert hi > lo, "nothing changed inside the region"
    margin = DEFAULT_MARGIN * rate
    assert lo >= start * rate - margin - 1 and hi <= end * rate + margin + 1, (
        f"changed samples {lo / rate:.3f}-{hi / rate:.3f} s reach outside {start}-{end} s ± {DEFAULT_MARGIN} s"
    )
    assert plot.stat().st_size > 0


def test_same_seed_is_bit_identical_and_seed_matters(tmp_path, ckpt_env):
    song = write_song(tmp_path / "song.wav", 5.0)
    outs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        outs[name] = tmp_path / f"{name}.wav"
        assert (
            main(
                [
                    "inpaint",
                    str(song),
                    "--start",
                    "2",
                    "--end",
                    "2.2",
                    "-o",
                    str(outs[name]),
                    "--steps",
                    STEPS,
                    "--seed",
                    seed,
                ]
            )
            == 0
        )
    assert sha(outs["a"]) == sha(outs["b"])
    assert sha(outs["a"]) != sha(outs["c"])


def test_pipeline_inpaint_keeps_shape_and_is_deterministic(tiny_checkpoints):
    """The library call: (channels, T) in, same out, identical beyond the margins, same seed → same tensor."""
    models = load_models("latent", tiny_checkpoints)
    assert models.window == TINY_FRAMES * models.codec.vae.latent_hop
    audio = torch.from_numpy(
        np.ascontiguousarray(np.random.default_rng(1).uniform(-0.5, 0.5, (1, 44100 * 3)).astype(np.float32))
    )
    calls = []
    run = dict(source="model", sampler=sampler_preset("latent").but(steps=3), seed=7)
    out1 = inpaint(models, audio, 44100, 1.0, 1.1, progress=calls.append, **run)
    out2 = inpaint(models, audio, 44100, 1.0, 1.1, **run)
    assert out1.shape == audio.shape and out1.dtype == audio.dtype
    assert torch.equal(out1, out2)
    assert sum(calls) == 3
    lo, hi = changed_span(audio[0].numpy(), out1[0].numpy())
    assert 44100 * (1.0 - DEFAULT_MARGIN) - 1 <= lo < hi <= 44100 * (1.1 + DEFAULT_MARGIN) + 1


def test_regenerate_and_continue(tmp_path, ckpt_env):
    a = write_song(tmp_path / "a.wav", 3.0, seed=1)
    b = write_song(tmp_path / "b.flac", 2.0, 22050, 1, "PCM_16", seed=2)
    out = tmp_path / "regen.wav"
    assert main(["regenerate", str(a), "--start", "1", "--end", "1.2", "-o", str(out), "--steps", STEPS]) == 0
    x, y = sf.read(str(a))[0], sf.read(str(out))[0]
    lo, hi = changed_span(x, y)
    assert hi > lo and lo >= 44100 * (1 - DEFAULT_MARGIN) - 1 and hi <= 44100 * (1.2 + DEFAULT_MARGIN) + 1

    cont = tmp_path / "cont.flac"
    assert main(["continue", str(b), "-o", str(cont), "--context", "0.2", "--steps", STEPS]) == 0
    xb, yb = sf.read(str(b), dtype="int16")[0], sf.read(str(cont), dtype="int16")[0]
    info = sf.info(str(cont))
    assert (info.samplerate, info.channels, info.format) == (22050, 1, "FLAC")
    keep = len(xb) - int(DEFAULT_MARGIN * 22050) - 1  # the input's last `margin` seconds crossfade into the new audio
    assert len(yb) > len(xb) and np.array_equal(yb[:keep], xb[:keep]), (
        "the continuation must start with the input unchanged"
    )
    assert not np.array_equal(yb[len(xb) :], np.zeros_like(yb[len(xb) :]))


def test_strength_reaches_the_sampler_and_is_checked(tmp_path, ckpt_env, capsys):
    a = write_song(tmp_path / "a.wav", 3.0, seed=1)
    outs = {}
    for strength in ("1", "0.3"):
        outs[strength] = tmp_path / f"regen{strength}.wav"
        args = [
            "regenerate",
            str(a),
            "--start",
            "1",
            "--end",
            "1.2",
            "-o",
            str(outs[strength]),
            "--steps",
            STEPS,
            "--strength",
            strength,
        ]
        assert main(args) == 0
    x, full, partial = (sf.read(str(p))[0] for p in (a, outs["1"], outs["0.3"]))
    assert not np.array_equal(full, partial), "--strength must change where the sampler starts"
    lo, hi = changed_span(x, partial)
    assert lo >= 44100 * (1 - DEFAULT_MARGIN) - 1 and hi <= 44100 * (1.2 + DEFAULT_MARGIN) + 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["regenerate", str(a), "--start", "1", "--end", "1.2", "-o", str(tmp_path / "bad.wav"), "--strength", "0"])
    assert exc.value.code == 2 and not (tmp_path / "bad.wav").exists()
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "strength" in err[0]


def test_match_level_scales_only_the_region(tmp_path, ckpt_env):
    a = write_song(tmp_path / "a.wav", 3.0, seed=1)
    plain, matched = tmp_path / "plain.wav", tmp_path / "matched.wav"
    base = ["inpaint", str(a), "--start", "1", "--end", "1.2", "--steps", STEPS]
    assert main([*base, "-o", str(plain)]) == 0 and main([*base, "-o", str(matched), "--match-level"]) == 0
    x, y0, y1 = (sf.read(str(p))[0] for p in (a, plain, matched))
    region = slice(int(44100 * (1 + DEFAULT_MARGIN)), int(44100 * (1.2 - DEFAULT_MARGIN)))
    assert not np.allclose(y0[region], y1[region]), "--match-level must change the generated audio"
    loud = np.abs(y0[region]) > 0.01
    ratio = y1[region][loud] / y0[region][loud]  # the same sample, one gain: the correction is a level, not a new fill
    assert np.allclose(ratio, np.median(ratio), rtol=0.01, atol=1e-3)
    lo, hi = changed_span(x, y1)
    assert lo >= 44100 * (1 - DEFAULT_MARGIN) - 1 and hi <= 44100 * (1.2 + DEFAULT_MARGIN) + 1


def test_batch_folder_and_csv(tmp_path, ckpt_env, monkeypatch):
    import tqdm as tqdm_module

    from recipes import inpaint_batch_cmd

    bars = []

    class RecordingBar(tqdm_module.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(inpaint_batch_cmd, "tqdm", RecordingBar)
    src = tmp_path / "in"
    src.mkdir()
    songs = [write_song(src / "one.wav", 2.0, seed=1), write_song(src / "two.flac", 2.5, 16000, 1, "PCM_16", seed=2)]
    out = tmp_path / "out"
    assert main(["inpaint-batch", str(src), "--start", "1", "--end", "1.1", "-o", str(out), "--steps", STEPS]) == 0
    for s in songs:
        o = out / s.name
        assert (sf.info(str(o)).samplerate, sf.info(str(o)).frames) == (
            sf.info(str(s)).samplerate,
            sf.info(str(s)).frames,
        )
        assert sf.read(str(o))[0].tolist() != sf.read(str(s))[0].tolist()
    assert [(b.total, b.n) for b in bars] == [(4, 4)], "one progress bar over 2 files × 2 steps"

    jobs = tmp_path / "jobs.csv"
    jobs.write_text("file,start,end,output\nin/one.wav,0.5,0.6,csv/one_a.wav\nin/one.wav,1.5,1.6,csv/one_b.wav\n")
    assert main(["inpaint-batch", str(jobs), "--steps", STEPS]) == 0
    x = sf.read(str(songs[0]))[0]
    for name, (s, e) in (("one_a.wav", (0.5, 0.6)), ("one_b.wav", (1.5, 1.6))):
        lo, hi = changed_span(x, sf.read(str(tmp_path / "csv" / name))[0])
        assert hi > lo and lo >= 44100 * (s - DEFAULT_MARGIN) - 1 and hi <= 44100 * (e + DEFAULT_MARGIN) + 1


def test_batch_checks_every_job_before_running(tmp_path, ckpt_env, capsys):
    src = write_song(tmp_path / "a.wav", 2.0)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("file,start,end,output\na.wav,0.5,0.6,out/ok.wav\na.wav,5,6,out/bad.wav\n")
    assert main(["inpaint-batch", str(jobs), "--steps", STEPS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ends after the file" in err[0]
    assert not (tmp_path / "out").exists(), "no output may be written when any job is bad"
    assert src.exists()


@pytest.mark.slow
def test_inpaint_four_minute_rendered_song(tmp_path, ckpt_env, pop909_root):
    """A 4-minute FluidSynth render: only the region and its margins change."""
    from musicprod_common.audio import save_audio
    from musicprod_common.pop909 import load_song
    from musicprod_common.render import render_song

    rendering = render_song(load_song(pop909_root / "003"), "band", start=0.0, end=240.0)
    song = save_audio(tmp_path / "song.wav", rendering.mix, rendering.sample_rate, subtype="PCM_16")
    out = tmp_path / "out.wav"
    start, end = 120.0, 120.25
    assert main(["inpaint", str(song), "--start", str(start), "--end", str(end), "-o", str(out), "--steps", "4"]) == 0
    x, y = sf.read(str(song), dtype="int16")[0], sf.read(str(out), dtype="int16")[0]
    assert x.shape == y.shape == (240 * 44100, 2)
    lo, hi = changed_span(x, y)
    assert hi > lo and lo >= 44100 * (start - DEFAULT_MARGIN) - 1 and hi <= 44100 * (end + DEFAULT_MARGIN) + 1


def test_region_longer_than_the_window_is_filled_window_by_window(tiny_checkpoints):
    """A 1 s region with a 0.37 s window: several windows, each continuing the last; still bit-exact outside."""
    from guidance.tasks import max_region, regenerate, windows_needed
    from musicprod_common.errors import InputError

    models = load_models("latent", tiny_checkpoints)
    sr, start, end = 22050, 2.0, 3.0
    assert end - start > max_region(models)
    audio = torch.from_numpy(synth_song_tensor(5.0, sr))
    calls = []
    two = sampler_preset("latent").but(steps=2)
    out = inpaint(models, audio, sr, start, end, source="model", sampler=two, seed=0, progress=calls.append)
    windows = windows_needed(models, start, end, 5.0)
    assert windows >= 3 and sum(calls) == 2 * windows
    lo, hi = changed_span(audio.T.numpy(), out.T.numpy())
    assert sr * (start - DEFAULT_MARGIN) - 1 <= lo and hi <= sr * (end + DEFAULT_MARGIN) + 1
    # every part of the region was generated: no stretch of the original survives inside it
    inside = (out != audio).any(0)[int(start * sr) : int(end * sr)]
    assert inside.float().mean() > 0.99
    with pytest.raises(InputError, match="at most"):
        regenerate(models, audio, sr, start, end, sampler=two)


def synth_song_tensor(seconds: float, sr: int) -> np.ndarray:
    from recipes_testutils import synth_song

    return np.ascontiguousarray(synth_song(seconds, sr).T)


def test_eta_flag_changes_the_output_and_is_range_checked(tmp_path, ckpt_env, capsys):
    song = write_song(tmp_path / "song.wav", 5.0)
    outs = {eta: tmp_path / f"eta{eta}.wav" for eta in ("0", "1")}
    for eta, out in outs.items():
        assert (
            main(["inpaint", str(song), "--start", "2", "--end", "2.2", "-o", str(out), "--steps", STEPS, "--eta", eta])
            == 0
        )
    assert sha(outs["0"]) != sha(outs["1"])
    with pytest.raises(SystemExit) as exc:
        main(["inpaint", str(song), "--start", "2", "--end", "2.2", "-o", str(tmp_path / "bad.wav"), "--eta", "1.5"])
    assert exc.value.code == 2 and not (tmp_path / "bad.wav").exists()
    assert "between 0 and 1" in capsys.readouterr().err
