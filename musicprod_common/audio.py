"""Audio file I/O and the project's one audio format: float32 stereo at 44.1 kHz, shaped (2, T)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
import torchaudio.functional as AF

from .errors import InputError
from .files import atomic_path

SAMPLE_RATE = 44100
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def load_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Read an audio file (wav, flac, ogg, mp3, anything libsndfile reads) as float32 (C, T) and its rate.

    Missing files, folders, unreadable/corrupt data and zero-length audio raise InputError naming the file.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an audio file; pass a wav/flac/ogg/mp3 file")
    if not path.is_file():
        raise InputError(f"{path}: no such audio file; check the path")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except Exception as err:  # libsndfile raises LibsndfileError/RuntimeError/TypeError on bad data
        raise InputError(f"{path}: not a readable audio file ({err}); pass a valid wav/flac/ogg/mp3") from err
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise InputError(f"{path}: the audio has zero length; pass a file with sound in it")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)


def _format_like(like: str | os.PathLike | None, path: Path) -> tuple[str | None, str | None]:
    """(format, subtype) to write: the input's own when ``like`` is given and the target's suffix agrees."""
    if like is None:
        return None, ("FLOAT" if path.suffix.lower() == ".wav" else None)
    try:
        info = sf.info(str(like))
    except Exception:
        return None, None
    suffix_format = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}.get(path.suffix.lower())
    if suffix_format is not None and suffix_format != info.format:
        return None, None  # the user asked for another container; let libsndfile pick its default subtype
    return info.format, info.subtype


def save_audio(
    path: str | os.PathLike,
    audio: torch.Tensor,
    sample_rate: int,
    *,
    like: str | os.PathLike | None = None,
    subtype: str | None = None,
) -> Path:
    """Write ``audio`` (C, T) atomically (temp file + rename). The format comes from the suffix; with ``like``
    (an input file) its format and subtype are kept; wav defaults to 32-bit float. Returns the path."""
    path = Path(path)
    if audio.dim() != 2:
        raise ValueError(f"audio must be (C, T), got shape {tuple(audio.shape)}")
    fmt, default_subtype = _format_like(like, path)
    data = audio.detach().to(torch.float32).cpu().numpy().T  # (T, C)
    subtype = subtype or default_subtype
    if (subtype or "PCM").startswith("PCM") or fmt in ("FLAC", "OGG", "MP3"):
        data = np.clip(data, -1.0, 1.0)  # integer and lossy formats cannot hold samples beyond full scale
    with atomic_path(path) as tmp:
        try:
            sf.write(str(tmp), data, sample_rate, format=fmt, subtype=subtype)
        except Exception as err:
            raise InputError(f"{path}: cannot write audio there ({err}); pick another output path or format") from err
    return path


def to_stereo_44k(audio: torch.Tensor, sample_rate: int, *, name: str = "audio") -> torch.Tensor:
    """(C, T) at any rate -> float32 (2, T') at 44.1 kHz: :func:`to_stereo` at :data:`SAMPLE_RATE`."""
    return to_stereo(audio, sample_rate, SAMPLE_RATE, name=name)


def to_stereo(audio: torch.Tensor, sample_rate: int, target_rate: int, *, name: str = "audio") -> torch.Tensor:
    """(C, T) at any rate -> float32 (2, T') at ``target_rate``. Mono is duplicated; other rates are resampled
    with torchaudio's windowed-sinc resampler; more than 2 channels or NaN/inf raise InputError."""
    if audio.dim() == 1:
        audio = audio[None]
    if audio.dim() != 2 or audio.shape[0] == 0:
        raise InputError(f"{name}: expected (channels, samples) audio, got shape {tuple(audio.shape)}")
    if audio.shape[0] > 2:
        raise InputError(f"{name}: has {audio.shape[0]} channels; only mono and stereo are supported, downmix it first")
    audio = audio.to(torch.float32)
    if not torch.isfinite(audio).all():
        raise InputError(f"{name}: contains NaN or infinite samples; pass clean audio")
    if audio.shape[0] == 1:
        audio = audio.expand(2, -1)
    if sample_rate != target_rate:
        audio = AF.resample(audio, int(sample_rate), int(target_rate))
    return audio.contiguous()


def load_stereo_44k(path: str | os.PathLike) -> torch.Tensor:
    """:func:`load_audio` then :func:`to_stereo_44k`: float32 (2, T) at 44.1 kHz."""
    audio, sr = load_audio(path)
    return to_stereo_44k(audio, sr, name=str(path))


def match_format(audio: torch.Tensor, sample_rate: int, target_rate: int, channels: int) -> torch.Tensor:
    """``(c, T)`` at ``sample_rate`` → ``(channels, T')`` at ``target_rate`` (mono ↔ stereo by mean/duplicate)."""
    if audio.shape[0] != channels:
        audio = audio.mean(0, keepdim=True) if channels == 1 else audio.expand(channels, -1)
    if sample_rate != target_rate:
        audio = torchaudio.functional.resample(audio.float(), sample_rate, target_rate)
    return audio.contiguous()
