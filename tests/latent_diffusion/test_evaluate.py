"""The held-out v-error against analytic answers for Gaussian latents."""

from __future__ import annotations

import json

import pytest
import torch

from latent_diffusion import DiT, dit_preset
from latent_diffusion.evaluate import TIMES, main, v_errors
from latent_diffusion.latent_cache import save_latent_cache
from musicprod_common.checkpoint import save_pretrained


class Predictor(torch.nn.Module):
    """A stand-in DiT with identity normalisation and a fixed rule for v."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def normalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.rule(x, t)


def test_the_exact_denoiser_of_unit_gaussians_scores_one_at_every_time():
    """For x0 ~ N(0, I) and α² + σ² = 1, E[v | x_t] = ασ x_t − σα x_t = 0, and E[v²] = α² + σ² = 1."""
    latents = torch.randn(64, 8, 32, generator=torch.Generator().manual_seed(1))
    errors = v_errors(Predictor(lambda x, t: torch.zeros_like(x)), latents)
    assert errors == pytest.approx([1.0] * len(TIMES), abs=0.03)


def test_returning_the_noisy_input_as_x0_scores_the_known_answer():
    """x̂0 = x_t means v̂ = (α − 1) x_t / σ, so v̂ − v = x0 (1 − α)/σ − ε: for unit Gaussians 1 + (1 − α)²/σ²."""
    latents = torch.randn(64, 8, 32, generator=torch.Generator().manual_seed(2))

    def identity_v(x, t):
        alpha, sigma = torch.cos(torch.pi * t / 2)[:, None, None], torch.sin(torch.pi * t / 2)[:, None, None]
        return (alpha - 1) * x / sigma

    alpha, sigma = (torch.cos(torch.pi * torch.tensor(TIMES) / 2), torch.sin(torch.pi * torch.tensor(TIMES) / 2))
    expected = 1 + (1 - alpha) ** 2 / sigma**2
    assert v_errors(Predictor(identity_v), latents) == pytest.approx(expected.tolist(), rel=0.05)


def test_the_command_scores_a_checkpoint_on_a_cache(tmp_path, capsys):
    config = dit_preset("tiny", frames=32)
    save_pretrained(DiT(config), config, tmp_path / "dit")
    save_latent_cache(tmp_path / "c.safetensors", torch.randn(6, 16, 32), hop_samples=1024, sample_rate=44100)
    main(["--dit", str(tmp_path / "dit"), "--latents", str(tmp_path / "c.safetensors"), "--threads", "1"])
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["windows"] == 6 and set(row["v_mse"]) == {str(t) for t in TIMES}
    assert row["mean"] == pytest.approx(sum(row["v_mse"].values()) / len(TIMES), abs=1e-3)


def test_gap_scores_only_the_centred_gap():
    """Zero v inside the gap (the exact answer for unit Gaussians, error 1) and nonsense outside it: the gap score is
    1."""
    from latent_diffusion.evaluate import centred_gap_mask

    latents = torch.randn(64, 8, 32, generator=torch.Generator().manual_seed(3))
    mask = centred_gap_mask(32, 10)
    assert mask[0, 0, 11:21].sum() == 0 and mask.sum() == 22
    errors = v_errors(Predictor(lambda x, t: 100.0 * mask * x), latents, gap=10)
    assert errors == pytest.approx([1.0] * len(TIMES), abs=0.05)
