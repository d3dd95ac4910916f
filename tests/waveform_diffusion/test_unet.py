"""Shape, initialisation and size tests of the waveform U-Net."""

from __future__ import annotations

import pytest
import torch

from musicprod_common.checkpoint import save_pretrained
from musicprod_common.errors import InputError
from waveform_diffusion import WaveformUNet, unet_preset
from waveform_diffusion.unet import ResBlock


def _perturbed(model: WaveformUNet, generator: torch.Generator) -> WaveformUNet:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator))
    return model


def test_shapes(seeded):
    cfg = unet_preset("tiny")
    model = _perturbed(WaveformUNet(cfg), seeded)
    x = torch.randn(2, 2, cfg.window, generator=seeded)
    out = model(x, torch.rand(2, generator=seeded))
    assert out.shape == x.shape and torch.isfinite(out).all()
    half = torch.randn(1, 2, cfg.window // 2, generator=seeded)  # any multiple of the total downsampling
    assert model(half, torch.tensor(0.3)).shape == half.shape


def test_rejects_bad_shapes():
    cfg = unet_preset("tiny")
    model = WaveformUNet(cfg)
    with pytest.raises(ValueError):
        model(torch.randn(1, 1, cfg.window), torch.rand(1))  # mono: the caller duplicates it first
    with pytest.raises(ValueError):
        model(torch.randn(1, 2, cfg.window + 1), torch.rand(1))


def test_residual_blocks_start_as_their_skip_path(seeded):
    block = ResBlock(16, 16, 32, 5, 4)
    x, temb = torch.randn(2, 16, 64, generator=seeded), torch.randn(2, 32, generator=seeded)
    assert torch.equal(block(x, temb), x)
    model = WaveformUNet(unet_preset("tiny"))
    assert torch.equal(model(torch.randn(1, 2, 4096, generator=seeded), torch.rand(1)), torch.zeros(1, 2, 4096))


def test_time_conditioning_changes_the_output(seeded):
    model = _perturbed(WaveformUNet(unet_preset("tiny")), seeded)
    x = torch.randn(1, 2, 4096, generator=seeded)
    assert not torch.allclose(model(x, torch.tensor([0.1])), model(x, torch.tensor([0.9])))


def test_paper_preset_is_about_440m_parameters_over_2_19_samples():
    cfg = unet_preset("paper")
    assert cfg.window == 2**19 and cfg.channels == 2
    with torch.device("meta"):
        model = WaveformUNet(cfg)
    count = sum(p.numel() for p in model.parameters())
    assert 0.85 * 440e6 <= count <= 1.15 * 440e6, count


def test_shipped_presets_fit_the_size_budget():
    """DiT small + U-Net small in fp16 must stay within 40 MB together."""
    from latent_diffusion import DiT, dit_preset

    with torch.device("meta"):
        total = sum(p.numel() for p in DiT(dit_preset("small")).parameters())
        total += sum(p.numel() for p in WaveformUNet(unet_preset("small")).parameters())
    assert 2 * total <= 40e6


def test_from_pretrained_round_trip_in_fp16(tmp_path, seeded):
    cfg = unet_preset("tiny")
    model = _perturbed(WaveformUNet(cfg), seeded).eval()
    save_pretrained(model, cfg, tmp_path / "final", dtype=torch.float16)
    loaded = WaveformUNet.from_pretrained(tmp_path / "final")
    assert loaded.config == cfg
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, model.state_dict()[name].half().float())


def test_unknown_preset_and_bad_config():
    with pytest.raises(InputError, match="tiny"):
        unet_preset("giant")
    with pytest.raises(ValueError):
        unet_preset("tiny", window=1000)
