from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

from musicprod_common.datasets import AudioFolderSegments, Pop909Segments
from musicprod_common.errors import InputError
from musicprod_common.prerender import main, prerender
from musicprod_common.styles import STYLE_NAMES


def test_prerender_writes_flac_and_manifest(tmp_path, examples_root):
    out = tmp_path / "data"
    manifest = prerender(examples_root, out, split="all", seconds=0.5, count=3, seed=7, workers=1, stems=True)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    for r in rows:
        info = sf.info(str(out / r["file"]))
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("FLAC", "PCM_16", 2, 44100)
        assert STYLE_NAMES[r["style_index"]] == r["style"]
        assert {"song", "start", "transpose"} <= set(r)
        assert (out / r["file"]).with_suffix(".stems").is_dir()
    # The files are the dataset's items, quantised to 16 bits.
    expected = Pop909Segments(examples_root, "all", 0.5, seed=7)[1]["audio"]
    back = AudioFolderSegments(out, 0.5)
    assert len(back) == 3 and int(back[1]["style"]) == rows[1]["style_index"]
    assert torch.allclose(back[1]["audio"], expected, atol=2 / 32768)
    assert back[1]["audio"].shape == expected.shape
    # Resuming renders nothing again; other settings in the same folder are refused.
    mtime = (out / rows[0]["file"]).stat().st_mtime_ns
    prerender(examples_root, out, split="all", seconds=0.5, count=4, seed=7, workers=1)
    assert (out / rows[0]["file"]).stat().st_mtime_ns == mtime
    assert len(manifest.read_text().splitlines()) == 4
    with pytest.raises(InputError, match="other settings"):
        prerender(examples_root, out, split="all", seconds=0.5, count=4, seed=8, workers=1)


def test_prerender_cli_with_workers(tmp_path, examples_root, capsys):
    out = tmp_path / "d"
    rc = main(
        [
            "--pop909",
            str(examples_root),
            "--split",
            "all",
            "--seconds",
            "0.3",
            "--count",
            "4",
            "--out",
            str(out),
            "--workers",
            "2",
            "--styles",
            "band,jazz,organ",
            "--exclude-styles",
            "organ",
            "--format",
            "ogg",
            "--stems",
        ]
    )
    assert rc == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["style"] for r in rows} <= {"band", "jazz"}
    assert all(sf.info(str(out / r["file"])).format == "OGG" for r in rows)
    item = AudioFolderSegments(out, 0.3, with_stems=True)[0]
    assert item["stems"].shape == (5, 2, item["audio"].shape[1]) and float(item["stems"].abs().max()) > 0
    assert main(["--pop909", str(examples_root), "--count", "1", "--out", str(out), "--styles", "polka"]) == 2
    assert "polka" in capsys.readouterr().err
