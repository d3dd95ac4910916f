"""PaSST: front end, shapes, patchout, position-embedding cropping, official checkpoint layout."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio

from guidance.passt import PRESETS, MelFrontEnd, PaSST, load_official, passt_config
from musicprod_common.errors import InputError


def official_layout(
    embed: int = 768, depth: int = 12, classes: int = 527, freq: int = 12, time: int = 99
) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of the hear21passt PaSST-S state dict (passt-s-f128-p16-s10-ap.476-swa.pt)."""
    layout = {
        "cls_token": (1, 1, embed),
        "dist_token": (1, 1, embed),
        "new_pos_embed": (1, 2, embed),
        "freq_new_pos_embed": (1, embed, freq, 1),
        "time_new_pos_embed": (1, embed, 1, time),
        "patch_embed.proj.weight": (embed, 1, 16, 16),
        "patch_embed.proj.bias": (embed,),
        "norm.weight": (embed,),
        "norm.bias": (embed,),
        "head.0.weight": (embed,),
        "head.0.bias": (embed,),
        "head.1.weight": (classes, embed),
        "head.1.bias": (classes,),
        "head_dist.weight": (classes, embed),
        "head_dist.bias": (classes,),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        layout |= {
            b + "norm1.weight": (embed,),
            b + "norm1.bias": (embed,),
            b + "norm2.weight": (embed,),
            b + "norm2.bias": (embed,),
            b + "attn.qkv.weight": (3 * embed, embed),
            b + "attn.qkv.bias": (3 * embed,),
            b + "attn.proj.weight": (embed, embed),
            b + "attn.proj.bias": (embed,),
            b + "mlp.fc1.weight": (4 * embed, embed),
            b + "mlp.fc1.bias": (4 * embed,),
            b + "mlp.fc2.weight": (embed, 4 * embed),
            b + "mlp.fc2.bias": (embed,),
        }
    return layout


def test_passt_s_preset_has_the_official_layout():
    with torch.device("meta"):
        model = PaSST(passt_config("passt-s"))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == official_layout()
    assert 85e6 < sum(p.numel() for p in model.parameters()) < 88e6  # PaSST-S is ~86M parameters


def test_load_official_round_trip(tmp_path):
    torch.manual_seed(0)
    layout = official_layout(depth=2)  # the PaSST-S widths, two blocks to stay fast
    state = {k: torch.randn(shape) * 0.05 for k, shape in layout.items()}
    state = {
        k: (v.abs() + 0.5 if k.endswith(("norm.weight", "norm1.weight", "norm2.weight", "head.0.weight")) else v)
        for k, v in state.items()
    }
    path = tmp_path / "passt-s.pt"
    torch.save({f"net.{k}": v for k, v in state.items()}, path)  # as hear21passt's wrapper names them
    model = load_official(path)
    assert (
        model.cfg.depth == 2
        and model.cfg.embed_dim == 768
        and model.cfg.num_classes == 527
        and model.cfg.max_frames == 998
    )
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    audio = torch.randn(1, 32000)
    with torch.no_grad():
        out = model(audio)
    assert out["logits"].shape == (1, 527) and torch.isfinite(out["logits"]).all()


def test_load_official_refuses_wrong_files(tmp_path):
    with pytest.raises(InputError):
        load_official(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(InputError):
        load_official(bad)


def test_front_end_matches_torchaudio_kaldi_banks_and_normalisation():
    cfg = passt_config("tiny", input_sample_rate=32000, preemphasis=0.0)
    front = MelFrontEnd(cfg)
    tone = torch.sin(2 * math.pi * 1000 * torch.arange(32000) / 32000).unsqueeze(0)
    mel = front(tone)
    assert mel.shape == (1, 1, 128, 32000 // 320 + 1)
    # the loudest band is the one whose Kaldi centre frequency is nearest 1 kHz
    _, centres = torchaudio.compliance.kaldi.get_mel_banks(128, 1024, 32000.0, 0.0, 15000.0, 100.0, -500.0, 1.0)
    hz = 700.0 * (torch.exp(centres / 1127.0) - 1.0)
    peak = int(mel[0, 0, :, 50].argmax())
    assert abs(int((hz - 1000).abs().argmin()) - peak) <= 1
    # silence maps to (log(1e-5) + 4.5) / 5 everywhere
    quiet = front(torch.zeros(1, 32000))
    assert torch.allclose(quiet, torch.full_like(quiet, (math.log(1e-5) + 4.5) / 5))


def test_front_end_resamples_and_mixes_to_mono():
    cfg = passt_config("tiny", input_sample_rate=44100)
    front = MelFrontEnd(cfg)
    stereo = torch.randn(2, 2, 44100)
    mel = front(stereo)
    assert mel.shape == (2, 1, 128, 32000 // 320 + 1)
    assert torch.allclose(mel, front(stereo.mean(1)), atol=1e-5)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_output_shapes(preset):
    model = PaSST(passt_config(preset)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 2, 44100))
    assert out["logits"].shape == (2, model.cfg.num_classes)
    assert out["embedding"].shape == (2, model.cfg.embed_dim)
    assert out["family_logits"].shape == (2, model.cfg.num_families)


def test_patchout_only_in_training_mode():
    model = PaSST(passt_config("tiny", input_sample_rate=32000))
    spec = model.mel(torch.randn(1, 32000))
    n_freq, n_time = model.cfg.freq_patches, (spec.shape[-1] - 16) // 10 + 1
    model.train()
    tokens = model.tokens(spec)
    assert tokens.shape[1] == 2 + (n_freq - model.cfg.patchout_freq) * (n_time - model.cfg.patchout_time)
    model.eval()
    a, b = model.tokens(spec), model.tokens(spec)
    assert a.shape[1] == 2 + n_freq * n_time
    assert torch.equal(a, b)  # deterministic in eval


def test_time_position_embedding_is_cropped_for_short_inputs():
    model = PaSST(passt_config("tiny", input_sample_rate=32000, drop_rate=0.0)).eval()
    spec = model.mel(torch.randn(1, 32000))  # 101 frames → 9 time patches of the 62 the embedding covers
    n_time = (spec.shape[-1] - 16) // 10 + 1
    with torch.no_grad():
        base = model.tokens(spec)
        model.time_new_pos_embed[..., n_time:] += 100.0  # columns past the input must not matter
        assert torch.equal(model.tokens(spec), base)
        model.time_new_pos_embed[..., n_time - 1] += 1.0  # the last used column must
        assert not torch.allclose(model.tokens(spec), base)


def test_too_long_input_raises_but_embed_windows_it():
    model = PaSST(passt_config("tiny", input_sample_rate=32000)).eval()
    long = torch.randn(1, model.max_samples * 2 + 1000)
    with pytest.raises(InputError):
        model(long)
    with torch.no_grad():
        emb = model.embed(long)
        first = model.embed(long[..., : model.max_samples])
    assert emb.shape == (1, model.cfg.embed_dim) and not torch.allclose(emb, first)


def test_embed_is_differentiable_wrt_audio():
    model = PaSST(passt_config("tiny")).eval()
    audio = torch.randn(1, 2, 22050, requires_grad=True)
    model.embed(audio).square().sum().backward()
    assert audio.grad is not None and audio.grad.abs().sum() > 0


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(InputError, match="passt-s"):
        passt_config("huge")
    assert set(PRESETS) >= {"tiny", "small", "passt-s"}
