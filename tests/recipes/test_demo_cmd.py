"""``musicprod demo``: repairs the bundled song's two dropouts and writes audio plus a plot, all in one folder."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from guidance.tasks import DEFAULT_MARGIN
from recipes.cli import main
from recipes.demo_cmd import GAPS, SECONDS


def test_demo_repairs_the_bundled_song(tmp_path, tiny_checkpoints, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--checkpoints", str(tiny_checkpoints), "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    files = {name: out / f"{name}.flac" for name in ("original", "damaged", "repaired")}
    for path in (*files.values(), out / "spectrogram.png"):
        assert path.stat().st_size > 0 and str(path) in printed, f"{path} missing or not reported"
    assert "copied 40.00-42.00 s from" in printed, "the bar heard again later is copied back"
    assert "generated 4.00-6.00 s" in printed, "the intro, heard once, is generated"
    x, sr = sf.read(str(files["damaged"]), dtype="int32")
    y, _ = sf.read(str(files["repaired"]), dtype="int32")
    truth, _ = sf.read(str(files["original"]), dtype="int32")
    assert x.shape == y.shape == truth.shape == (int(SECONDS * sr), 2)
    outside = np.ones(len(x), dtype=bool)
    for a, b in GAPS:
        outside[int((a - DEFAULT_MARGIN) * sr) - 1 : int((b + DEFAULT_MARGIN) * sr) + 1] = False
        assert (y[int(a * sr) : int(b * sr)] != 0).any(), f"the dropout at {a:g}-{b:g} s is still silent"
    assert np.array_equal(x[outside], y[outside])
    copied = slice(int(40.2 * sr), int(41.8 * sr))  # the copy is the later bar, which plays the same notes
    err = np.sqrt(np.mean((y[copied] - truth[copied]).astype(float) ** 2) / np.mean(truth[copied].astype(float) ** 2))
    assert err < 0.5, f"the copied bar is off by {err:.2f} of the original's RMS"
