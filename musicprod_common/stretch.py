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
from typing import Sequence

import numpy as np
import soundfile as sf
import torch

from .errors import InputError

RUBBERBAND = "rubberband"


def available() -> bool:
    """Whether the ``rubberband`` command is installed."""
    return shutil.which(RUBBERBAND) is not None


def stretch(
    audio: torch.Tensor,
    sample_rate: int,
    *,
    speed: float = 1.0,
    semitones: float = 0.0,
    timemap: Sequence[tuple[float, float]] = (),
) -> torch.Tensor:
    """``audio`` ``(channels, T)`` played ``speed`` times faster (the tempo multiplied by ``speed``, the length
    divided by it) and ``semitones`` higher, at the same rate and channel count; float32.

    A speed of 1 and no shift returns the input unchanged. The output has ``round(T / speed)`` samples exactly, so
    a beat at ``t`` seconds of the input is at ``t / speed`` of the output.

    ``timemap`` pins times inside: ``(input s, output s)`` pairs, both increasing from the implied (0, 0), that
    Rubber Band's key-frame map follows, the speed varying between them (a song whose tempo drifts, kept on
    another's beats). After the last pair the audio plays at ``speed`` again, so the output then has
    ``round((out + (T/sr − in) / speed) · sr)`` samples; :func:`output_time` maps any input time the same way.
    """
    if not speed > 0:
        raise InputError(f"speed {speed:g} must be positive")
    keys = _keyframes(timemap)
    if speed == 1.0 and semitones == 0.0 and not keys:
        return audio.float()
    if not available():
        raise InputError(
            "time-stretching needs Rubber Band's command-line tool; install it (Debian: apt install rubberband-cli, "
            "or run scripts/setup.sh)"
        )
    length = int(round(output_time(audio.shape[-1] / sample_rate, speed, keys) * sample_rate))
    with tempfile.TemporaryDirectory(prefix="musicprod-stretch-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, audio.float().numpy().T, sample_rate, subtype="FLOAT")
        # --duration (not --tempo) pins the output length to the sample, so beat times scale exactly.
        cmd = [RUBBERBAND, "-q", "-3", "-D", f"{length / sample_rate!r}", "-p", f"{semitones!r}"]
        if keys:
            frames = Path(tmp) / "map.txt"
            frames.write_text("".join(f"{round(i * sample_rate)} {round(o * sample_rate)}\n" for i, o in keys))
            cmd += ["-M", str(frames)]
        cmd += [str(src), str(dst)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise InputError(f"rubberband failed: {done.stderr.strip().splitlines()[-1] if done.stderr else '?'}")
        out, _ = sf.read(dst, dtype="float32", always_2d=True)
    out = torch.from_numpy(np.ascontiguousarray(out.T))
    if out.shape[-1] != length:  # the engine may round the last block; the grid's scale must stay exact
        out = torch.nn.functional.pad(out, (0, max(0, length - out.shape[-1])))[..., :length]
    return out


def _keyframes(timemap: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The map's pairs after the implied (0, 0) (Rubber Band's R3 engine misreads a key frame at 0: the start is
    implied), checked to increase."""
    keys = [(float(i), float(o)) for i, o in timemap if (i, o) != (0, 0)]
    steps = zip([(0.0, 0.0)] + keys, keys)
    if any(i1 <= i0 or o1 <= o0 for (i0, o0), (i1, o1) in steps):
        raise InputError("a time map needs (input, output) times that both increase from (0, 0)")
    return keys


def output_time(t: np.ndarray | float, speed: float, timemap: Sequence[tuple[float, float]] = ()) -> np.ndarray | float:
    """Where input time ``t`` (s) lands in :func:`stretch`'s output: 0 at 0, through ``timemap``'s pairs linearly
    between them, and at ``speed`` after the last (and before 0)."""
    keys = [(0.0, 0.0)] + _keyframes(timemap)
    i, o = np.array([k[0] for k in keys]), np.array([k[1] for k in keys])
    t = np.asarray(t, dtype=np.float64)
    out = np.interp(t, i, o)
    out = np.where(t < 0, t / speed, out)
    out = np.where(t > i[-1], o[-1] + (t - i[-1]) / speed, out)
    return out if out.ndim else float(out)
