"""``musicprod demo``: inpaints the bundled clip's gap and writes audio plus a plot, all in one folder."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from recipes.cli import main
from recipes.demo_cmd import EXAMPLE_CLIP, GAP
from recipes.pipeline import DEFAULT_MARGIN


def test_demo_inpaints_the_bundled_clip(tmp_path, tiny_checkpoints, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--checkpoints", str(tiny_checkpoints), "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    inpainted = out / f"inpainted{EXAMPLE_CLIP.suffix}"
    for path in (out / f"original{EXAMPLE_CLIP.suffix}", inpainted, out / "spectrogram.png"):
        assert path.stat().st_size > 0 and str(path) in printed, f"{path} missing or not reported"
    info_in, info_out = sf.info(str(EXAMPLE_CLIP)), sf.info(str(inpainted))
    assert (info_out.samplerate, info_out.channels, info_out.frames, info_out.format) == (
        info_in.samplerate, info_in.channels, info_in.frames, info_in.format)
    x, sr = sf.read(str(EXAMPLE_CLIP), dtype="int32")
    y, _ = sf.read(str(inpainted), dtype="int32")
    changed = np.nonzero((x != y).any(axis=1))[0]
    assert changed.size > 0
    assert changed[0] >= (GAP[0] - DEFAULT_MARGIN) * sr - 1 and changed[-1] < (GAP[1] + DEFAULT_MARGIN) * sr + 1
