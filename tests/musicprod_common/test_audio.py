from __future__ import annotations

import os
import stat

import pytest
import soundfile as sf
import torch

from musicprod_common.audio import SAMPLE_RATE, load_audio, load_stereo_44k, save_audio, to_stereo_44k
from musicprod_common.errors import InputError


def _tone(channels: int = 2, seconds: float = 0.25, sr: int = SAMPLE_RATE) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return torch.stack([0.5 * torch.sin(2 * torch.pi * (220 * (c + 1)) * t) for c in range(channels)])


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3"])
def test_round_trip(tmp_path, suffix):
    x = _tone()
    path = save_audio(tmp_path / f"a.{suffix}", x, SAMPLE_RATE)
    y, sr = load_audio(path)
    assert sr == SAMPLE_RATE and y.dtype == torch.float32 and y.shape[0] == 2
    if suffix in ("wav", "flac"):  # lossless; mp3/ogg pad and smear
        assert y.shape == x.shape
        assert torch.allclose(y, x, atol=1e-4)
    else:
        assert abs(y.shape[1] - x.shape[1]) < SAMPLE_RATE // 10


def test_wav_defaults_to_float_and_like_keeps_format(tmp_path):
    x = _tone()
    save_audio(tmp_path / "f.wav", x, SAMPLE_RATE)
    assert sf.info(str(tmp_path / "f.wav")).subtype == "FLOAT"
    sf.write(str(tmp_path / "in.wav"), x.T.numpy(), SAMPLE_RATE, subtype="PCM_24")
    save_audio(tmp_path / "out.wav", x, SAMPLE_RATE, like=tmp_path / "in.wav")
    assert sf.info(str(tmp_path / "out.wav")).subtype == "PCM_24"
    sf.write(str(tmp_path / "in.flac"), x.T.numpy(), SAMPLE_RATE, subtype="PCM_16")
    save_audio(tmp_path / "out.flac", 2 * x, SAMPLE_RATE, like=tmp_path / "in.flac")  # clipped, not wrapped
    info = sf.info(str(tmp_path / "out.flac"))
    assert (info.format, info.subtype) == ("FLAC", "PCM_16")
    assert float(load_audio(tmp_path / "out.flac")[0].max()) > 0.99


def test_save_is_atomic_with_normal_permissions(tmp_path):
    path = save_audio(tmp_path / "a.wav", _tone(), SAMPLE_RATE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(InputError, match="nope"):
        save_audio(tmp_path / "nope" / "a.wav", _tone(), SAMPLE_RATE)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="folder"):
        load_audio(tmp_path)
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + os.urandom(64))
    with pytest.raises(InputError, match="junk.wav"):
        load_audio(tmp_path / "junk.wav")
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(InputError, match="empty.flac"):
        load_audio(tmp_path / "empty.flac")
    sf.write(str(tmp_path / "zero.wav"), torch.zeros(0, 2).numpy(), SAMPLE_RATE)
    with pytest.raises(InputError, match="zero.wav"):
        load_audio(tmp_path / "zero.wav")


def test_to_stereo_44k():
    mono = _tone(1, sr=22050)
    out = to_stereo_44k(mono, 22050)
    assert out.shape == (2, 2 * mono.shape[1]) and out.dtype == torch.float32
    assert torch.equal(out[0], out[1])
    stereo = _tone(2)
    assert torch.equal(to_stereo_44k(stereo, SAMPLE_RATE), stereo)
    assert to_stereo_44k(_tone(2, sr=48000), 48000).shape == (2, round(0.25 * SAMPLE_RATE))
    with pytest.raises(InputError, match="3 channels"):
        to_stereo_44k(_tone(3), SAMPLE_RATE)
    bad = stereo.clone()
    bad[0, 5] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        to_stereo_44k(bad, SAMPLE_RATE)
    bad[0, 5] = float("inf")
    with pytest.raises(InputError, match="NaN or infinite"):
        to_stereo_44k(bad, SAMPLE_RATE)


def test_load_stereo_44k(tmp_path):
    sf.write(str(tmp_path / "m.flac"), _tone(1, sr=16000).T.numpy(), 16000)
    out = load_stereo_44k(tmp_path / "m.flac")
    assert out.shape[0] == 2 and abs(out.shape[1] - round(0.25 * SAMPLE_RATE)) <= 1
