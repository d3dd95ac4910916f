"""Embedder and classifier guidance terms for the shared sampler (Levy et al. 2023, §3.3).

Both are guidance terms in the sense of :mod:`guidance.terms`: ``term(x0, audio) -> scalar`` on the
decoded x̂0 audio ``(B, 2, T)``, with ``space = "audio"`` so the sampler decodes once per step. Pass
them to :func:`guidance.tasks.solve` as ``extra_terms`` (weights in ``extra_weights``).

* :class:`EmbeddingGuidance` (style transfer): d = ‖e(x̂0) − e(reference)‖², e = PaSST embedding.
* :class:`ClassifierGuidance`: d = BCE(σ(f(x̂0)), target classes), multi-hot targets.
* :class:`ChromaGuidance` (what a restyle keeps): d = 1 − corr(chroma(x̂0), chroma(source)), the source's notes.

Like the reconstruction term, the distances are sums over the batch (not means), so a batch of B edits
gets the same per-example step as one edit. The classifier's parameters are frozen here; only the
audio receives gradients.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.errors import InputError
from musicprod_common.features import ChromaSTFT

from .passt import PaSST

CHROMA_N_FFT = 8192  # the chromagram's FFT size; see ChromaGuidance


def _frozen(model: PaSST) -> PaSST:
    return model.eval().requires_grad_(False)


class EmbeddingGuidance:
    """L2 distance between the PaSST embedding of the decoded x̂0 and a reference embedding.

    ``reference`` is an embedding ``(B, E)`` or ``(1, E)`` (broadcast over the batch); build it from
    reference audio with :meth:`from_audio`.
    """

    space = "audio"

    def __init__(self, embedder: PaSST, reference: torch.Tensor):
        if reference.ndim != 2 or reference.shape[-1] != embedder.cfg.embed_dim:
            raise InputError(f"reference embedding must be (B, {embedder.cfg.embed_dim}), got {tuple(reference.shape)}")
        self.embedder = _frozen(embedder)
        self.reference = reference.detach()

    @classmethod
    def from_audio(cls, embedder: PaSST, reference_audio: torch.Tensor) -> "EmbeddingGuidance":
        """Reference from audio ``(B, 2, T)`` (or ``(1, 2, T)`` for one clip shared by the batch)."""
        embedder = _frozen(embedder)
        with torch.no_grad():
            return cls(embedder, embedder.embed(reference_audio))

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        if audio is None:
            raise ValueError("EmbeddingGuidance works on decoded audio; the Guidance needs a decode function")
        emb = self.embedder.embed(audio)  # (B, E)
        return (emb - self.reference.to(emb)).square().sum()


class ClassifierGuidance:
    """BCE between the classifier's sigmoid outputs on the decoded x̂0 and target classes.

    ``target``: class indices ``(B,)`` / an int (one class for the whole batch) / multi-hot ``(B, K)``.
    ``head="style"`` uses the style logits, ``"family"`` the instrument-family logits (multi-label).
    """

    space = "audio"

    def __init__(self, classifier: PaSST, target: torch.Tensor | int | Sequence[int], *, head: str = "style"):
        if head not in ("style", "family"):
            raise InputError(f"unknown classifier head {head!r}; choose 'style' or 'family'")
        if head == "family" and classifier.family_head is None:
            raise InputError("this classifier has no instrument-family head; use head='style'")
        self.classifier = _frozen(classifier)
        self.key = "logits" if head == "style" else "family_logits"
        k = classifier.cfg.num_classes if head == "style" else classifier.cfg.num_families
        target = torch.as_tensor(target)
        if target.ndim <= 1 and not target.is_floating_point():
            if target.numel() and (int(target.min()) < 0 or int(target.max()) >= k):
                raise InputError(f"target class out of range 0..{k - 1}: {target.tolist()}")
            target = F.one_hot(target.reshape(-1), k).float()  # (B or 1, K)
        if target.shape[-1] != k:
            raise InputError(f"multi-hot target needs {k} columns, got shape {tuple(target.shape)}")
        self.target = target.float()

    def logits(self, audio: torch.Tensor) -> torch.Tensor:
        windows = self.classifier.windows(audio)
        return torch.stack([self.classifier(w)[self.key] for w in windows]).mean(0)

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        if audio is None:
            raise ValueError("ClassifierGuidance works on decoded audio; the Guidance needs a decode function")
        logits = self.logits(audio).float()  # (B, K)
        target = self.target.to(logits.device).expand_as(logits)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum")


class ChromaGuidance:
    """Keeps a source's notes while another term changes its style: d = Σ_b (1 − r_b), with r_b the Pearson
    correlation of the chromagrams of the decoded x̂0 and of the source ``(B, 2, T)`` (mid channel).

    The chromagram is librosa's ``chroma_stft`` written in torch so that it has a gradient
    (:class:`musicprod_common.features.ChromaSTFT`). Why a long FFT (8192 samples, 5.4 Hz bins): a
    semitone is 6 Hz at 100 Hz, and shorter FFTs blur the bass notes into their neighbours. Optimising the shipped
    VAE's latent for this distance on 4 held-out clips raised their CQT chroma (the evaluation's) from 0.25 to 0.52
    in 60 steps with n_fft 8192, against 0.42 with 4096 and 0.34 with 2048 (``benchmarks/vae_latent_reach.py --objective
    chroma``).
    """

    space = "audio"

    def __init__(self, source: torch.Tensor, *, sample_rate: int = SAMPLE_RATE, n_fft: int = CHROMA_N_FFT):
        if source.ndim != 3:
            raise InputError(f"the source must be audio (B, channels, T), got shape {tuple(source.shape)}")
        if source.shape[-1] < n_fft:
            raise InputError(
                f"keeping the notes needs at least {n_fft} samples ({n_fft / sample_rate:.2f} s) of source audio, "
                f"got {source.shape[-1]}; use a longer region or set the chroma weight to 0"
            )
        self.length = source.shape[-1]
        self.chromagram = ChromaSTFT(sample_rate, n_fft=n_fft).to(source.device)  # (B, C, T) -> (B, 12, frames)
        with torch.no_grad():
            self.target = _standardised(self.chromagram(source))

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        if audio is None:
            raise ValueError("ChromaGuidance works on decoded audio; the Guidance needs a decode function")
        if audio.shape[-1] != self.length:
            raise ValueError(f"ChromaGuidance: x̂0 has {audio.shape[-1]} samples, the source {self.length}")
        correlation = (_standardised(self.chromagram(audio)) * self.target.to(audio.device)).sum(-1)
        return (1.0 - correlation).sum()


def _standardised(chroma: torch.Tensor) -> torch.Tensor:
    """``(B, 12, n)`` → ``(B, 12·n)`` with zero mean and unit norm per example, so a dot product is Pearson's r."""
    flat = chroma.flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-10)


def style_target(classifier: PaSST, style: str) -> int:
    """Class index of a style name in the classifier's ``class_names``."""
    names = list(classifier.cfg.class_names)
    if style not in names:
        raise InputError(f"unknown style {style!r} for this classifier; it knows: {', '.join(names)}")
    return names.index(style)
