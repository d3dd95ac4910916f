"""Metrics: FAD against scipy's sqrtm, FAD-∞, KLD and realism known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from guidance.metrics import (
    fad,
    fad_inf,
    frechet_distance,
    gaussian_stats,
    kl_divergence,
    kld,
    normalised_realism,
    realism_scores,
)


def random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, 2 * d))
    return a @ a.T / (2 * d)


def scipy_frechet(mu1, cov1, mu2, cov2) -> float:
    covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_distance_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    cov1, cov2 = random_cov(rng, d), random_cov(rng, d)
    ours = frechet_distance(mu1, cov1, mu2, cov2)
    ref = scipy_frechet(mu1, cov1, mu2, cov2)
    assert ours == pytest.approx(ref, rel=1e-8, abs=1e-8)


def test_frechet_distance_closed_forms():
    d = 8
    eye = np.eye(d)
    assert frechet_distance(np.zeros(d), eye, np.zeros(d), eye) == pytest.approx(0.0, abs=1e-10)
    shift = np.arange(d, dtype=float)
    assert frechet_distance(np.zeros(d), eye, shift, eye) == pytest.approx(float(shift @ shift))
    # scaled identities: tr(a² I) + tr(b² I) − 2 tr(ab I) = d (a − b)²
    assert frechet_distance(np.zeros(d), 4 * eye, np.zeros(d), 9 * eye) == pytest.approx(d * (2 - 3) ** 2)


def test_fad_reports_n_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 8, generator=g), torch.randn(200, 8, generator=g) + 0.5
    r1, r2 = fad(a, b), fad(b, a)
    assert (r1.n_reference, r1.n_test) == (300, 200)
    assert r1.fad == pytest.approx(r2.fad, rel=1e-9)
    mu, cov = gaussian_stats(a.numpy())
    assert torch.allclose(cov, torch.from_numpy(np.cov(a.numpy(), rowvar=False)))


def test_fad_inf_extrapolates_away_the_small_sample_bias():
    g = torch.Generator().manual_seed(0)
    d = 16
    reference = torch.randn(20000, d, generator=g)  # near-exact statistics of N(0, I)
    test = torch.randn(2000, d, generator=g)  # the same distribution: the true FAD is 0
    result = fad_inf(reference, test, steps=10, min_n=200)
    small_n_fad = result.points[0][1]
    assert [n for n, _ in result.points] == sorted(n for n, _ in result.points)
    assert result.slope > 0  # FAD grows as n shrinks
    assert abs(result.fad_inf) < small_n_fad / 5
    assert abs(result.fad_inf) < fad(reference, test).fad


def test_kld_known_answer():
    p = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
    q = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    exact_pq = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)  # KL(p ‖ q) for the first pair
    exact_qp = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    per_pair = kl_divergence(q, p)  # audiocraft's argument order: (pred, target) → KL(target ‖ pred)
    assert per_pair[0].item() == pytest.approx(exact_pq, abs=1e-5)
    assert per_pair[1].item() == pytest.approx(0.0, abs=1e-5)
    out = kld(q, p)
    assert out["n"] == 2
    assert out["kld_pq"] == pytest.approx(exact_pq / 2, abs=1e-5)
    assert out["kld_qp"] == pytest.approx(exact_qp / 2, abs=1e-5)
    assert out["kld_both"] == pytest.approx(out["kld_pq"] + out["kld_qp"])


def test_realism_known_answer():
    real = torch.tensor([[0.0], [1.0], [3.0]])  # 1-NN radii: 1, 1, 2
    fake = torch.tensor([[0.5], [3.0 + 4.0], [1.25]])
    scores = realism_scores(real, fake, k=1, prune=0.0)
    # 0.5: max(1/0.5, 1/0.5, 2/2.5) = 2;  7: max(1/7, 1/6, 2/4) = 0.5;  1.25: max(1/1.25, 1/0.25, 2/1.75) = 4
    assert torch.allclose(scores, torch.tensor([2.0, 0.5, 4.0], dtype=torch.float64))
    # pruning the largest-radius half leaves only radius-1 spheres: 7 → max(1/7, 1/6) = 1/6
    pruned = realism_scores(real, fake, k=1, prune=0.5)
    assert pruned[1].item() == pytest.approx(1 / 6)


def test_normalised_realism_is_one_against_itself_and_orders_sets():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 4, generator=g)
    near = torch.randn(50, 4, generator=g)
    far = torch.randn(50, 4, generator=g) + 5.0
    assert normalised_realism(real, near, near)["realism_normalised"] == pytest.approx(1.0)
    assert normalised_realism(real, near, far)["realism_normalised"] > 1.0
