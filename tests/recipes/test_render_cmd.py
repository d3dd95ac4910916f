from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch

from musicprod_common.audio import load_audio
from recipes.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pop909" / "001"


def test_render_window_writes_mix_and_stems(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "render",
            str(EXAMPLE),
            "--style",
            "band",
            "--start",
            "12",
            "--end",
            "13.5",
            "--transpose",
            "-2",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert str(out / "mix.wav") in printed
    stems = sorted((out / "stems").glob("*.wav"))
    assert [p.stem for p in stems] == ["BASS", "BRIDGE", "DRUMS", "MELODY", "PIANO"]
    mix, sr = load_audio(out / "mix.wav")
    assert sr == 44100 and mix.shape == (2, round(1.5 * 44100))
    assert sf.info(str(out / "mix.wav")).subtype == "FLOAT"
    total = sum(load_audio(p)[0] for p in stems)
    assert torch.allclose(total, mix, atol=1e-6, rtol=0)
    assert not [p for p in out.rglob(".*")]  # no temporary files left


def test_render_midi_file_24bit(tmp_path):
    out = tmp_path / "o"
    assert main(["render", str(EXAMPLE / "001.mid"), "--end", "1", "--format", "24", "-o", str(out)]) == 0
    assert sf.info(str(out / "mix.wav")).subtype == "PCM_24"
    assert sorted(p.stem for p in (out / "stems").iterdir()) == ["BRIDGE", "MELODY", "PIANO"]


def _bad_inputs(tmp: Path) -> dict[str, list[str]]:
    (tmp / "bad.mid").write_bytes(b"not a midi file")
    import pretty_midi

    empty = pretty_midi.PrettyMIDI()
    empty.instruments.append(pretty_midi.Instrument(0, name="PIANO"))
    empty.write(str(tmp / "empty.mid"))
    partial = tmp / "001"
    shutil.copytree(EXAMPLE, partial)
    (partial / "chord_midi.txt").unlink()
    (tmp / "afile").write_text("x")
    return {
        "bad.mid": [str(tmp / "bad.mid")],
        "empty.mid": [str(tmp / "empty.mid")],
        "chord_midi.txt": [str(partial)],
        "missing.sf2": [str(EXAMPLE), "--soundfont", str(tmp / "missing.sf2")],
        "nosuch": [str(tmp / "nosuch")],
        "afile": [str(EXAMPLE), "-o", str(tmp / "afile" / "out")],
    }


@pytest.mark.parametrize("case", ["bad.mid", "empty.mid", "chord_midi.txt", "missing.sf2", "nosuch", "afile"])
def test_bad_input_one_line_exit_2_no_output(tmp_path, capsys, case):
    args = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    before = set(tmp_path.rglob("*"))
    rc = main(["render", *args, "--end", "1"] + ([] if "-o" in args else ["-o", str(out)]))
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and case in err
    assert set(tmp_path.rglob("*")) == before  # nothing written


def test_unwritable_output_leaves_nothing(tmp_path, capsys, monkeypatch):
    from musicprod_common import audio
    from recipes import render_cmd

    calls = {"n": 0}
    real = audio.save_audio

    def failing(path, *a, **k):  # the third file fails to write, as on a full disk
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(path, *a, **k)

    monkeypatch.setattr(render_cmd, "save_audio", failing)
    out = tmp_path / "out"
    rc = main(["render", str(EXAMPLE), "--end", "0.5", "-o", str(out)])
    assert rc == 2 and "No space left" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []
