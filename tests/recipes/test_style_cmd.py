"""``musicprod style`` end to end with tiny random-init checkpoints (VAE, DiT and PaSST classifier).

The models are untrained, so this checks what the command promises about where it writes and what it refuses,
not whether the result sounds like the target style (BENCHMARKS.md measures that with the shipped models).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from recipes_testutils import changed_span, write_song

from guidance.tasks import DEFAULT_MARGIN
from recipes.cli import main

STEPS = "2"


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("how", [["--to", "strings"], ["--reference", "REF"], ["--reference", "REF", "--to", "jazz"]])
def test_style_changes_only_the_region_and_keeps_the_format(tmp_path, ckpt_env, how):
    song = write_song(tmp_path / "song.flac", 3.0, 22050, 1, "PCM_16", seed=1)
    ref = write_song(tmp_path / "ref.wav", 1.0, 48000, 2, seed=2)
    out = tmp_path / "out.flac"
    how = [str(ref) if h == "REF" else h for h in how]
    assert main(["style", str(song), "--start", "1", "--end", "1.2", "-o", str(out), "--steps", STEPS, *how]) == 0
    info_in, info_out = sf.info(str(song)), sf.info(str(out))
    assert (info_out.samplerate, info_out.channels, info_out.frames, info_out.subtype) == (
        info_in.samplerate,
        info_in.channels,
        info_in.frames,
        info_in.subtype,
    )
    x, y = sf.read(str(song), dtype="int16")[0], sf.read(str(out), dtype="int16")[0]
    lo, hi = changed_span(x, y)
    assert hi > lo, "the region was not changed"
    assert lo >= 22050 * (1 - DEFAULT_MARGIN) - 1 and hi <= 22050 * (1.2 + DEFAULT_MARGIN) + 1


def test_style_weights_eta_and_guidance_step_reach_the_sampler(tmp_path, ckpt_env):
    song = write_song(tmp_path / "song.wav", 2.0, seed=1)
    runs = {
        "plain": ["--chroma-weight", "0"],
        "classifier": ["--chroma-weight", "0", "--classifier-weight", "1000"],
        "chroma": [],
        "ancestral": ["--eta", "1"],
        "eps_step": ["--guidance-step", "eps"],
    }  # the style defaults: η = 0, x̂0 steps
    outs = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.wav"
        assert (
            main(
                [
                    "style",
                    str(song),
                    "--start",
                    "0.5",
                    "--end",
                    "0.7",
                    "-o",
                    str(out),
                    "--steps",
                    STEPS,
                    "--to",
                    "strings",
                    "--classifier-weight",
                    "1",
                    *extra,
                ]
            )
            == 0
        )
        outs[name] = sf.read(str(out))[0]
    assert not np.array_equal(outs["plain"], outs["classifier"])
    assert not np.array_equal(outs["plain"], outs["chroma"])
    assert not np.array_equal(outs["chroma"], outs["ancestral"])
    assert not np.array_equal(outs["chroma"], outs["eps_step"])


@pytest.mark.parametrize(
    "extra, expect",
    [
        ([], "--reference"),  # no style named at all
        (["--to", "polka"], "strings"),  # the error lists the styles the classifier knows
        (["--to", "strings", "--classifier-weight", "0"], "weight 0"),
        (["--to", "strings", "--guidance", "0"], "--guidance 0"),
        (["--reference", "SHORT"], "too short"),
        (["--reference", "SONG"], "input"),  # -o the reference itself: would overwrite an input
        (["--to", "strings", "--classifier", "NOWHERE"], "classifier"),
    ],
)
def test_style_refuses_bad_requests_with_one_line(tmp_path, ckpt_env, capsys, extra, expect):
    song = write_song(tmp_path / "song.wav", 2.0, seed=1)
    short = tmp_path / "short.wav"
    sf.write(str(short), np.zeros((441, 2), np.float32), 44100)
    ref = tmp_path / "ref.wav"
    write_song(ref, 1.0, seed=2)
    out = ref if "SONG" in extra else tmp_path / "out.wav"
    names = {"SHORT": str(short), "SONG": str(ref), "NOWHERE": str(tmp_path / "no_classifier")}
    before = ref.read_bytes()
    rc = main(
        [
            "style",
            str(song),
            "--start",
            "0.5",
            "--end",
            "0.7",
            "-o",
            str(out),
            "--steps",
            STEPS,
            *[names.get(e, e) for e in extra],
        ]
    )
    assert rc == 2
    line = one_error_line(capsys)
    assert expect in line, line
    assert ref.read_bytes() == before
    assert not (tmp_path / "out.wav").exists()
