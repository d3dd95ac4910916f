"""``musicprod accompany / harmonize / infill-midi`` end to end with tiny random-init checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pretty_midi
import pytest
import torch

from musicprod_common.checkpoint import save_pretrained
from recipes.cli import main
from symbolic.binomial import binomial_config, build_binomial
from symbolic.chords import parse_harte
from symbolic.fgg import build_fgg, fgg_config
from symbolic.roll import write_midi


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ck")
    torch.manual_seed(0)
    fgg = build_fgg(fgg_config("tiny"))
    torch.nn.init.normal_(fgg.conv_out.weight, std=0.1)  # zero-initialised output layer would predict nothing
    save_pretrained(fgg, fgg_config("tiny"), root / "fgg")
    cfg = dataclasses.replace(binomial_config("tiny"), num_timesteps=4)  # a short chain keeps the test fast
    binom = build_binomial(cfg)
    torch.nn.init.normal_(binom.unet.conv_out.weight, std=0.1)
    save_pretrained(binom, cfg, root / "binomial")
    melody = write_midi(
        root / "melody.mid", {"MELODY": [(72, 0, 4), (74, 4, 8), (76, 8, 16), (79, 16, 24), (77, 32, 40)]}, bpm=90
    )
    return root, melody


def _notes(path: Path) -> dict[str, list[pretty_midi.Note]]:
    return {i.name: i.notes for i in pretty_midi.PrettyMIDI(str(path)).instruments}


def test_accompany_in_key(ckpts, tmp_path):
    root, melody = ckpts
    out = tmp_path / "acc.mid"
    rc = main(
        [
            "accompany",
            "--chords",
            "C G Am F",
            "--melody",
            str(melody),
            "--bars",
            "6",
            "--steps",
            "3",
            "--checkpoint",
            str(root / "fgg"),
            "-o",
            str(out),
        ]
    )
    assert rc == 0 and out.exists()
    notes = _notes(out)
    assert notes["PIANO"] and len(notes["MELODY"]) == 5
    bar = 4 * 60 / 90  # the melody's tempo is used
    for n in notes["PIANO"]:
        chord = parse_harte(["C:maj", "G:maj", "A:min", "F:maj"][round(n.start / (bar / 16)) // 16 % 4])
        assert chord.scale_mask >> (n.pitch % 12) & 1, (n.pitch, n.start)


def test_accompany_audio(ckpts, tmp_path):
    import soundfile as sf

    from musicprod_common.render import default_soundfont

    if not Path(default_soundfont()).is_file():
        pytest.skip("no soundfont")
    root, _ = ckpts
    rc = main(
        [
            "accompany",
            "--chords",
            "Am F C G",
            "--bars",
            "4",
            "--steps",
            "2",
            "--checkpoint",
            str(root / "fgg"),
            "--scale",
            "A:minor_pentatonic",
            "-o",
            str(tmp_path / "a.mid"),
            "--audio",
            str(tmp_path / "a.wav"),
        ]
    )
    assert rc == 0
    pitch_classes = {n.pitch % 12 for n in _notes(tmp_path / "a.mid")["PIANO"]}
    assert pitch_classes and pitch_classes <= {9, 0, 2, 4, 7}  # the user scale replaces the chord scales
    audio, sr = sf.read(tmp_path / "a.wav")
    assert sr == 44100 and audio.shape[1] == 2 and abs(audio).max() > 0


def test_harmonize_and_infill(ckpts, tmp_path):
    root, melody = ckpts
    har = tmp_path / "har.mid"
    assert main(["harmonize", "--melody", str(melody), "--checkpoint", str(root / "binomial"), "-o", str(har)]) == 0
    notes = _notes(har)
    assert [(n.pitch) for n in notes["MELODY"]] == [72, 74, 76, 79, 77] and notes["PIANO"]
    inf = tmp_path / "inf.mid"
    assert (
        main(
            [
                "infill-midi",
                str(har),
                "--start-bar",
                "1",
                "--end-bar",
                "2",
                "--checkpoint",
                str(root / "binomial"),
                "-o",
                str(inf),
            ]
        )
        == 0
    )
    before, after = _notes(har)["PIANO"], _notes(inf)["PIANO"]
    bar = 4 * 60 / 90

    def outside(ns):
        return sorted((n.pitch, round(n.start, 3)) for n in ns if not bar - 1e-3 <= n.start < 2 * bar - 1e-3)

    assert outside(before) == outside(after)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["accompany", "--chords", "C Xm", "-o", "{tmp}/o.mid"], "chord 'Xm'"),
        (["accompany", "--chords", "C G", "--bars", "5", "-o", "{tmp}/o.mid"], "--bars 5"),
        (["accompany", "--chords", "C G", "-o", "{tmp}/o.wav"], "unknown MIDI format"),
        (["accompany", "--chords", "C G", "--melody", "{tmp}/missing.mid", "-o", "{tmp}/o.mid"], "file not found"),
        (["accompany", "--chords", "C G", "--scale", "C:weird", "-o", "{tmp}/o.mid"], "unknown scale"),
        (["accompany", "--chords", "C G", "--checkpoint", "{tmp}", "-o", "{tmp}/o.mid"], "config.json"),
        (["harmonize", "--melody", "{tmp}/bad.mid", "-o", "{tmp}/o.mid"], "not a readable MIDI"),
        (["infill-midi", "{melody}", "--start-bar", "3", "--end-bar", "2", "-o", "{tmp}/o.mid"], "--start-bar 3"),
    ],
)
def test_bad_input(ckpts, tmp_path, capsys, argv, message):
    root, melody = ckpts
    (tmp_path / "bad.mid").write_bytes(b"garbage")
    argv = [a.format(tmp=tmp_path, melody=melody) for a in argv]
    if argv[0] != "accompany" or "--checkpoint" not in argv:
        argv += ["--checkpoint", str(root / ("fgg" if argv[0] == "accompany" else "binomial"))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.mid").exists()
