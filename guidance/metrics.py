"""Evaluation metrics of Levy et al. 2023: FAD (and FAD-∞), KLD, realism. The paper's multi-scale mel distance (MR)
is :class:`musicprod_common.features.MelDistance`, beside the project's other audio features.

All distribution metrics work on embeddings / class probabilities that the caller computes with an
embedder such as :meth:`guidance.passt.PaSST.embed`; :func:`embed_audio` and :func:`class_probs` are
the batched helpers. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

Array = np.ndarray | torch.Tensor


def _as_float64(x: Array) -> torch.Tensor:
    t = x.detach().cpu() if torch.is_tensor(x) else torch.from_numpy(np.asarray(x))
    return t.to(torch.float64)


# --- Fréchet Audio Distance ---


@dataclass
class FadResult:
    fad: float
    n_reference: int
    n_test: int


def gaussian_stats(embeddings: Array) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of embeddings ``(N, D)``, in float64."""
    x = _as_float64(embeddings)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need embeddings (N >= 2, D), got shape {tuple(x.shape)}")
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def _psd_sqrt(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a positive semi-definite matrix via eigh (negative round-off clipped)."""
    vals, vecs = torch.linalg.eigh(0.5 * (cov + cov.T))
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1: Array, cov1: Array, mu2: Array, cov2: Array) -> float:
    """Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2) (Heusel et al. 2017; Kilgour et al. 2019):

        ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}

    The symmetric form has the same trace as sqrtm(Σ1 Σ2) (similar matrices) but is PSD, so eigh in
    float64 gives it without the complex round-off of a general matrix square root.
    """
    mu1, mu2, cov1, cov2 = (_as_float64(a) for a in (mu1, mu2, cov1, cov2))
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    eig = torch.linalg.eigvalsh(0.5 * (middle + middle.T)).clamp(min=0)
    diff = mu1 - mu2
    return float(diff @ diff + torch.trace(cov1) + torch.trace(cov2) - 2.0 * eig.sqrt().sum())


def fad(reference: Array, test: Array) -> FadResult:
    """FAD between embedding sets ``(N_ref, D)`` and ``(N_test, D)``; reports both n (FAD is biased in n)."""
    mu_r, cov_r = gaussian_stats(reference)
    mu_t, cov_t = gaussian_stats(test)
    return FadResult(
        frechet_distance(mu_r, cov_r, mu_t, cov_t),
        int(_as_float64(reference).shape[0]),
        int(_as_float64(test).shape[0]),
    )


@dataclass
class FadInfResult:
    fad_inf: float  # intercept of the fit: the FAD extrapolated to infinitely many test samples
    slope: float
    r2: float
    points: list[tuple[int, float]] = field(default_factory=list)  # (n, FAD at n)


def fad_inf(reference: Array, test: Array, *, steps: int = 25, min_n: int = 500, seed: int = 0) -> FadInfResult:
    """FAD-∞ (Gui et al. 2024, as fadtk computes it): FAD of ``steps`` bootstrap subsets of the test
    embeddings (drawn with replacement) at n evenly spaced in [min_n, N], a least-squares line of FAD
    against 1/n, and its intercept at 1/n = 0. ``min_n`` is lowered to N/2 for small sets."""
    mu_r, cov_r = gaussian_stats(reference)
    x = _as_float64(test)
    n_max = x.shape[0]
    low = min(min_n, max(2, n_max // 2))
    ns = sorted({int(n) for n in np.linspace(low, n_max, steps)})
    if len(ns) < 2:
        raise ValueError(f"FAD-∞ needs at least 2 distinct subset sizes; got {n_max} test embeddings")
    gen = torch.Generator().manual_seed(seed)
    points = []
    for n in ns:
        idx = torch.randint(n_max, (n,), generator=gen)
        mu_t, cov_t = gaussian_stats(x[idx])
        points.append((n, frechet_distance(mu_r, cov_r, mu_t, cov_t)))
    inv_n = np.array([1.0 / n for n, _ in points])
    values = np.array([v for _, v in points])
    slope, intercept = np.polyfit(inv_n, values, 1)
    residual = values - (slope * inv_n + intercept)
    total = np.sum((values - values.mean()) ** 2)
    r2 = float(1.0 - np.sum(residual**2) / total) if total > 0 else 1.0
    return FadInfResult(float(intercept), float(slope), r2, points)


# --- KL divergence between classifier label distributions ---


def kl_divergence(pred_probs: torch.Tensor, target_probs: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pair KL(target ‖ pred) = Σ_c p_target log(p_target / (p_pred + eps)), ``(B, K)`` → ``(B,)``.

    As audiocraft's ``kl_divergence`` (eps inside the log of the prediction only).
    """
    return torch.nn.functional.kl_div((pred_probs + eps).log(), target_probs, reduction="none").sum(-1)


def kld(pred_probs: torch.Tensor, target_probs: torch.Tensor, eps: float = 1e-6) -> dict[str, float]:
    """Mean KLD both ways over paired clips, softmax probabilities ``(B, K)`` of generated and target audio.

    Keys follow audiocraft: ``kld_pq`` (= ``kld``) is KL(target ‖ generated), ``kld_qp`` the reverse,
    ``kld_both`` their sum; ``n`` is the number of pairs.
    """
    if pred_probs.shape != target_probs.shape:
        raise ValueError(
            f"KLD needs paired probabilities of one shape, got {tuple(pred_probs.shape)} and "
            f"{tuple(target_probs.shape)}"
        )
    pq = float(kl_divergence(pred_probs.double(), target_probs.double(), eps).mean())
    qp = float(kl_divergence(target_probs.double(), pred_probs.double(), eps).mean())
    return {"kld": pq, "kld_pq": pq, "kld_qp": qp, "kld_both": pq + qp, "n": int(pred_probs.shape[0])}


# --- realism score (Kynkäänniemi et al. 2019) ---


def realism_scores(real: Array, fake: Array, *, k: int = 3, prune: float = 0.5) -> torch.Tensor:
    """Realism of each fake embedding ``(M,)`` against real embeddings ``(N, D)``.

    Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models",
    Eq. 3: R(φ_g) = max_r ‖φ_r − NN_k(φ_r)‖ / ‖φ_g − φ_r‖, the real sample's k-NN radius over its
    distance to the fake one; ≥ 1 means inside some real sample's k-NN ball. As in the paper, the
    ``prune`` fraction of real samples with the largest radii (outliers) is left out of the max.
    """
    r = _as_float64(real)
    g = _as_float64(fake)
    if r.shape[0] <= k:
        raise ValueError(f"realism needs more than k={k} real embeddings, got {r.shape[0]}")
    d_rr = torch.cdist(r, r)
    radii = d_rr.kthvalue(k + 1, dim=1).values  # k+1: the nearest is the sample itself
    keep = radii <= torch.quantile(radii, 1.0 - prune) if prune > 0 else torch.ones_like(radii, dtype=torch.bool)
    d_gr = torch.cdist(g, r[keep])  # (M, N_kept)
    return (radii[keep][None, :] / d_gr.clamp(min=1e-12)).max(dim=1).values


def normalised_realism(
    real: Array, fake: Array, baseline: Array, *, k: int = 3, prune: float = 0.5
) -> dict[str, float]:
    """Mean realism of ``fake`` divided by that of a ``baseline`` set (e.g. crossfades of the same clips).

    > 1: the method's outputs sit closer to the real data manifold than the baseline's.
    """
    ours = float(realism_scores(real, fake, k=k, prune=prune).mean())
    base = float(realism_scores(real, baseline, k=k, prune=prune).mean())
    return {"realism": ours, "realism_baseline": base, "realism_normalised": ours / base if base > 0 else float("inf")}


# --- batched embedder helpers ---


@torch.no_grad()
def embed_audio(
    embed: Callable[[torch.Tensor], torch.Tensor], audio: torch.Tensor, batch_size: int = 16
) -> torch.Tensor:
    """Apply an embedder (e.g. ``PaSST.embed``) to audio ``(N, C, T)`` in batches → ``(N, E)`` float32 on CPU."""
    return torch.cat([embed(audio[i : i + batch_size]).float().cpu() for i in range(0, audio.shape[0], batch_size)])


@torch.no_grad()
def class_probs(
    classify: Callable[[torch.Tensor], torch.Tensor], audio: torch.Tensor, batch_size: int = 16
) -> torch.Tensor:
    """Softmax class probabilities ``(N, K)`` of a classifier's logits (e.g. ``PaSST.classify``)."""
    return torch.cat(
        [classify(audio[i : i + batch_size]).float().softmax(-1).cpu() for i in range(0, audio.shape[0], batch_size)]
    )
