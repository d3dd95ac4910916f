"""Time-stretching and pitch-shifting with Rubber Band (Breakfast Quay), run as a separate program.

Rubber Band is a real time-stretcher: it keeps transients sharp and phases coherent where a plain phase vocoder
smears them, which matters for drums on a beat grid. The library is GPL; calling Debian's ``rubberband`` command
(package ``rubberband-cli``, which ``scripts/setup.sh`` installs) as a subprocess keeps it apart from this
MIT-licensed code. The R3 ("finer") engine is used: it is the better one for mixed music.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .errors import InputError

RUBBERBAND = "rubberband"


def available() -> bool:
    """Whether the ``rubberband`` command is installed."""
    return shutil.which(RUBBERBAND) is not None


def stretch(audio: torch.Tensor, sample_rate: int, *, speed: float = 1.0, semitones: float = 0.0) -> torch.Tensor:
    """``audio`` ``(channels, T)`` played ``speed`` times faster (the tempo multiplied by ``speed``, the length
    divided by it) and ``semitones`` higher, at the same rate and channel count; float32.

    A speed of 1 and no shift returns the input unchanged. The output has ``round(T / speed)`` samples exactly, so
    a beat at ``t`` seconds of the input is at ``t / speed`` of the output.
    """
    if not speed > 0:
        raise InputError(f"speed {speed:g} must be positive")
    if speed == 1.0 and semitones == 0.0:
        return audio.float()
    if not available():
        raise InputError(
            "time-stretching needs Rubber Band's command-line tool; install it (Debian: apt install rubberband-cli, "
            "or run scripts/setup.sh)"
        )
    length = int(round(audio.shape[-1] / speed))
    with tempfile.TemporaryDirectory(prefix="musicprod-stretch-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, audio.float().numpy().T, sample_rate, subtype="FLOAT")
        # --duration (not --tempo) pins the output length to the sample, so beat times scale exactly.
        cmd = [RUBBERBAND, "-q", "-3", "-D", f"{length / sample_rate!r}", "-p", f"{semitones!r}", str(src), str(dst)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise InputError(f"rubberband failed: {done.stderr.strip().splitlines()[-1] if done.stderr else '?'}")
        out, _ = sf.read(dst, dtype="float32", always_2d=True)
    out = torch.from_numpy(np.ascontiguousarray(out.T))
    if out.shape[-1] != length:  # the engine may round the last block; the grid's scale must stay exact
        out = torch.nn.functional.pad(out, (0, max(0, length - out.shape[-1])))[..., :length]
    return out
