"""Shape, initialisation, position and size tests of the latent DiT."""

from __future__ import annotations

import pytest
import torch

from latent_diffusion import DiT, dit_preset
from latent_diffusion.dit import DiTBlock, apply_rotary, rotary_cos_sin
from musicprod_common.checkpoint import save_pretrained
from musicprod_common.errors import InputError


def _perturbed(model: DiT, generator: torch.Generator) -> DiT:
    """The model with every parameter randomised, so zero-initialised layers no longer hide anything."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator))
    return model


def test_shapes(seeded):
    cfg = dit_preset("tiny")
    model = _perturbed(DiT(cfg), seeded)
    x = torch.randn(3, cfg.in_channels, cfg.frames, generator=seeded)
    out = model(x, torch.rand(3, generator=seeded))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    # rotary positions: a window of another length (a multiple of the patch size) works too
    longer = torch.randn(2, cfg.in_channels, 3 * cfg.frames, generator=seeded)
    assert model(longer, torch.tensor(0.5)).shape == longer.shape


def test_rejects_bad_shapes(seeded):
    cfg = dit_preset("tiny")
    model = DiT(cfg)
    with pytest.raises(ValueError):
        model(torch.randn(1, cfg.in_channels + 1, cfg.frames), torch.rand(1))
    with pytest.raises(ValueError):
        model(torch.randn(1, cfg.in_channels, cfg.frames + 1), torch.rand(1))


def test_adaln_zero_blocks_are_identity_at_init(seeded):
    cfg = dit_preset("tiny")
    block = DiTBlock(cfg.width, cfg.heads, cfg.mlp_ratio, cfg.cond_width, cfg.rope_base)
    x = torch.randn(2, 8, cfg.width, generator=seeded)
    cond = torch.randn(2, cfg.cond_width, generator=seeded)
    assert torch.equal(block(x, cond), x)
    # the identity comes from the zero gates, not from a block that ignores its input
    torch.nn.init.normal_(block.ada[1].weight, std=0.1)
    assert not torch.allclose(block(x, cond), x)
    # and the whole fresh network predicts v = 0 (zero-initialised final layer)
    model = DiT(cfg)
    assert torch.equal(
        model(torch.randn(2, cfg.in_channels, cfg.frames, generator=seeded), torch.rand(2)),
        torch.zeros(2, cfg.in_channels, cfg.frames),
    )


def test_rotary_scores_depend_only_on_distance(seeded):
    head = 8
    cos, sin = rotary_cos_sin(20, head, 10000.0, torch.device("cpu"))
    q = torch.randn(head, generator=seeded).expand(1, 1, 20, head)
    k = torch.randn(head, generator=seeded).expand(1, 1, 20, head)
    scores = apply_rotary(q, cos, sin)[0, 0] @ apply_rotary(k, cos, sin)[0, 0].T  # (20, 20)
    torch.testing.assert_close(scores[3, 7], scores[10, 14])
    torch.testing.assert_close(scores[5, 0], scores[17, 12])
    assert not torch.allclose(scores[3, 7], scores[3, 8])


def test_paper_preset_is_about_one_billion_parameters():
    cfg = dit_preset("paper")
    assert (cfg.depth, cfg.width) == (32, 1536)
    with torch.device("meta"):
        model = DiT(cfg)
    count = sum(p.numel() for p in model.parameters())
    assert 0.85e9 <= count <= 1.15e9, count


def test_from_pretrained_round_trip_with_latent_stats(tmp_path, seeded):
    cfg = dit_preset("tiny", latent_mean=tuple(range(16)), latent_std=tuple(0.5 + i for i in range(16)))
    model = _perturbed(DiT(cfg), seeded).eval()
    save_pretrained(model, cfg, tmp_path / "final")
    loaded = DiT.from_pretrained(tmp_path / "final")
    assert loaded.config == cfg
    x, t = torch.randn(2, 16, cfg.frames, generator=seeded), torch.rand(2, generator=seeded)
    torch.testing.assert_close(loaded(x, t), model(x, t))
    z = torch.randn(2, 16, cfg.frames, generator=seeded) * 3 + 5
    torch.testing.assert_close(loaded.denormalize_latents(loaded.normalize_latents(z)), z)
    assert not torch.allclose(loaded.normalize_latents(z), z)


def test_from_pretrained_rejects_a_missing_folder(tmp_path):
    with pytest.raises(InputError):
        DiT.from_pretrained(tmp_path / "nope")


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(InputError, match="small"):
        dit_preset("huge")


def test_known_conditioning_starts_as_the_model_it_grew_from(seeded):
    from latent_diffusion.train import with_known_conditioning

    cfg = dit_preset("tiny")
    plain = _perturbed(DiT(cfg), seeded)
    grown = with_known_conditioning(plain)
    assert grown.config.known_conditioning and not plain.config.known_conditioning
    x = torch.randn(2, cfg.in_channels, cfg.frames, generator=seeded)
    t = torch.rand(2, generator=seeded)
    mask = (torch.arange(cfg.frames) % 3 == 0).float().expand(2, 1, cfg.frames)
    assert torch.equal(grown(x, t, known=torch.randn(x.shape, generator=seeded), known_mask=mask), plain(x, t))


def test_known_conditioning_reads_only_the_known_frames(seeded):
    cfg = dit_preset("tiny", known_conditioning=True)
    model = _perturbed(DiT(cfg), seeded)
    x = torch.randn(1, cfg.in_channels, cfg.frames, generator=seeded)
    t = torch.tensor([0.7])
    known = torch.randn(x.shape, generator=seeded)
    mask = torch.zeros(1, 1, cfg.frames)
    mask[..., :10] = 1.0
    out = model(x, t, known=known, known_mask=mask)
    elsewhere = torch.where(mask > 0, known, torch.randn(x.shape, generator=seeded))  # only unknown frames differ
    assert torch.equal(model(x, t, known=elsewhere, known_mask=mask), out)
    assert not torch.allclose(model(x, t, known=known + 1.0, known_mask=mask), out)  # the known frames do matter
    # nothing known is the unconditional call
    assert torch.equal(model(x, t, known=known, known_mask=torch.zeros_like(mask)), model(x, t))


def test_a_dit_without_known_conditioning_refuses_known_frames(seeded):
    cfg = dit_preset("tiny")
    x = torch.randn(1, cfg.in_channels, cfg.frames, generator=seeded)
    with pytest.raises(ValueError, match="known_conditioning"):
        DiT(cfg)(x, torch.rand(1), known=x, known_mask=torch.ones(1, 1, cfg.frames))
