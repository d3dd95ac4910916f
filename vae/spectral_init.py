"""Start a VAE from the principal components of its training spectra.

Why: at the 128x budget a *linear* autoencoder (PCA of 4-frame log-magnitude stacks, Griffin-Lim phase) scores
a lower held-out mel distance than every VAE trained on the 2-core CPU (``benchmarks/vae_linear_baseline.py``), so
those runs were short of optimisation, not of capacity. The two layers that touch the spectrum are where a
randomly initialised model wastes its first steps:

* the encoder's first layer, a linear map of each STFT frame to ``stft_dim`` channels: its magnitude weights
  become the whitened leading components of the stereo ``|X|^p`` frames (a data-fitted filterbank);
* the decoder's head, a linear map from ``stft_dim`` channels to per-bin log-magnitude: its rows become the
  leading components of the stereo log-magnitude frames scaled by their standard deviations, and its bias
  the mean log spectrum, so any unit-variance input it gets is a plausible spectrum of the training data;
* with summed (instantaneous-frequency) phase, as in the presets, the decoder's phase rows start at zero: every
  bin then starts at its centre-frequency advance, a smooth phase, where random rows add a random walk that
  cancels in the overlap-add (held-out mel 0.390 -> 0.363 at equal CPU time; checkpoints/vae).

Everything between the two ends keeps its random initialisation. Pearson 1901 / Hotelling
1933 for the components; the covariance is accumulated in float64 and diagonalised with ``torch.linalg.eigh``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from musicprod_common.errors import InputError

from .model import SpectrogramVAE


class Components(NamedTuple):
    mean: torch.Tensor  # (D,)
    vectors: torch.Tensor  # (k, D), leading first
    variances: torch.Tensor  # (k,), floored (see principal_components)
    share: float  # the k components' share of the total variance


def principal_components(frames: torch.Tensor, k: int) -> Components:
    """The top ``k`` principal components of ``frames`` ``(N, D)`` (float64)."""
    mean = frames.mean(0)
    centred = frames - mean
    cov = centred.T @ centred / max(1, frames.shape[0] - 1)
    variances, vectors = torch.linalg.eigh(cov)  # ascending
    top = variances.flip(0)[:k]
    share = float(top.sum() / cov.trace().clamp(min=1e-30))
    # a floor: with fewer frames than components (a tiny dataset) the last ones are empty, and whitening
    # must not blow them up
    floored = top.clamp(min=1e-3 * float(top[0].clamp(min=1e-12)))
    return Components(mean, vectors.flip(1)[:, :k].T.contiguous(), floored, share)


@torch.no_grad()
def spectral_statistics(
    model: SpectrogramVAE, dataset: Dataset, *, examples: int = 512, frame_stride: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stereo STFT frames of ``examples`` training items (every ``frame_stride``-th frame), float64 ``(N, 2F)``:
    the encoder's compressed magnitude ``|X|^p`` and the decoder's log-magnitude (natural log, floored)."""
    cfg = model.config
    power, log = [], []
    for i in range(min(examples, len(dataset))):
        audio = dataset[i]["audio"].float()[None]  # (1, 2, T), with the dataset's own gain augmentation
        audio = audio[..., : audio.shape[-1] // model.latent_hop * model.latent_hop]
        mag = model.input_magnitude(audio)[0, ::frame_stride].double()  # (N, 2, F)
        power.append(mag.pow(cfg.magnitude_power).flatten(1))
        log.append(mag.clamp(min=1e-5).log().flatten(1))
    return torch.cat(power), torch.cat(log)


@torch.no_grad()
def init_from_spectra(model: SpectrogramVAE, dataset: Dataset, *, examples: int = 512) -> dict[str, float]:
    """Set the encoder's magnitude filterbank and the decoder's log-magnitude head from PCA (see the module docstring).

    Returns the fraction of variance the ``stft_dim`` components keep on each side, for the run's log.
    """
    cfg = model.config
    if not cfg.encoder_magnitude:
        raise InputError(
            "the spectral init needs encoder_magnitude=True (its filterbank reads |X|^p); train with --no-spectral-init"
        )
    bins, d = cfg.n_fft // 2 + 1, cfg.stft_dim
    power, log = spectral_statistics(model, dataset, examples=examples)

    mean_p, comps_p, var_p, share_p = principal_components(power, d)
    filters = comps_p / var_p.sqrt()[:, None]  # whitened: each channel starts at unit variance
    proj = model.encoder.proj
    weight = proj.weight.view(d, 2, cfg.encoder_parts, bins)
    weight[:, :, 2, :] = filters.view(d, 2, bins).to(weight.dtype)
    weight[:, :, :2, :] *= 0.1  # the re/im inputs start as a small addition to the filterbank, not its equal
    proj.bias.copy_(-(filters @ mean_p).to(proj.bias.dtype))

    mean_l, comps_l, var_l, share_l = principal_components(log, d)
    head = model.decoder.head
    rows = head.weight.view(2, 2, bins, d)  # (channel, log-magnitude/phase, bin, feature)
    rows[:, 0] = (comps_l * var_l.sqrt()[:, None]).T.reshape(2, bins, d).to(rows.dtype)
    head.bias.view(2, 2, bins)[:, 0] = mean_l.view(2, bins).to(head.bias.dtype)
    if cfg.phase == "instantaneous_frequency":  # an absolute phase of zero everywhere would be the 172 Hz comb
        rows[:, 1] = 0.0
        head.bias.view(2, 2, bins)[:, 1] = 0.0

    return {"encoder_variance_kept": share_p, "decoder_variance_kept": share_l}
