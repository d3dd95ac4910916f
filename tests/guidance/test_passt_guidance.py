"""Embedder / classifier guidance terms and the style-transfer recipe on a tiny waveform 'model'."""

from __future__ import annotations

import math

import pytest
import torch

from guidance import Denoiser, EditModel, IdentityCodec, sampler_preset
from guidance.passt import PaSST, passt_config
from guidance.style_guidance import ChromaGuidance, ClassifierGuidance, EmbeddingGuidance, style_target
from guidance.style_transfer import transfer_style
from musicprod_common.errors import InputError

SR = 44100
SAMPLER = sampler_preset("waveform").but(steps=4)  # the shipped waveform model's settings, fewer steps


def tiny_passt(seed: int = 0) -> PaSST:
    torch.manual_seed(seed)
    model = PaSST(passt_config("tiny"))
    with torch.no_grad():  # the head is zero-initialised in PaSST; give it some signal for the tests
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def descend(term, audio: torch.Tensor, lr: float, steps: int = 3) -> tuple[float, float]:
    x = audio.clone().requires_grad_(True)
    first = float(term(None, x).detach())
    for _ in range(steps):
        (grad,) = torch.autograd.grad(term(None, x), x)
        x = (x - lr * grad / grad.abs().max()).detach().requires_grad_(True)
    return first, float(term(None, x).detach())


def test_embedding_guidance_gradient_moves_toward_reference():
    model = tiny_passt()
    g = torch.Generator().manual_seed(0)
    reference = 0.3 * torch.randn(1, 2, SR // 2, generator=g)
    start = 0.3 * torch.randn(1, 2, SR // 2, generator=g)
    term = EmbeddingGuidance.from_audio(model, reference)
    assert term.space == "audio"
    assert float(term(None, reference)) == pytest.approx(0.0, abs=1e-6)
    before, after = descend(term, start, lr=1e-2)
    assert after < before
    assert all(not p.requires_grad for p in model.parameters())  # only the audio is optimised


def test_classifier_guidance_raises_target_probability():
    model = tiny_passt()
    audio = 0.3 * torch.randn(2, 2, SR // 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = int(model(audio)["logits"].mean(0).argmin())  # the least likely class
    term = ClassifierGuidance(model, target)
    assert term.target.shape == (1, model.cfg.num_classes)
    before, after = descend(term, audio, lr=1e-2)
    assert after < before
    family = ClassifierGuidance(model, torch.zeros(2, model.cfg.num_families), head="family")
    assert torch.isfinite(family(None, audio))


def test_guidance_terms_reject_bad_targets():
    model = tiny_passt()
    with pytest.raises(InputError):
        ClassifierGuidance(model, model.cfg.num_classes)
    with pytest.raises(InputError):
        EmbeddingGuidance(model, torch.zeros(1, model.cfg.embed_dim + 1))
    with pytest.raises(InputError):
        style_target(model, "polka")
    assert style_target(model, model.cfg.class_names[2]) == 2


class ShrinkNet(torch.nn.Module):
    """v-prediction of a data distribution concentrated at 0: x̂0 = 0.5 α x_t (a smooth, cheap denoiser)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha = torch.cos(0.5 * math.pi * t).reshape(-1, 1, 1)
        sigma = torch.sin(0.5 * math.pi * t).reshape(-1, 1, 1)
        x0 = 0.5 * alpha * x
        return (alpha * x - x0) / sigma.clamp(min=1e-4)  # v from x0: x0 = α x − σ v


def test_transfer_style_runs_through_the_shared_sampler_and_weight_matters():
    window = SR // 4
    model = EditModel(Denoiser(ShrinkNet()), IdentityCodec(), window=window, sampler=SAMPLER)
    embedder = tiny_passt()
    g = torch.Generator().manual_seed(0)
    source = 0.3 * torch.randn(1, 2, window, generator=g)
    reference = 0.3 * torch.randn(1, 2, window, generator=g)
    plain = transfer_style(model, embedder, source, reference, weight=0.0, generator=torch.Generator().manual_seed(1))
    guided = transfer_style(
        model, embedder, source, reference, weight=100.0, generator=torch.Generator().manual_seed(1)
    )
    assert plain.shape == guided.shape == source.shape
    assert torch.isfinite(guided).all()
    assert not torch.allclose(plain, guided)
    ancestral = transfer_style(
        model,
        embedder,
        source,
        reference,
        weight=100.0,
        sampler=SAMPLER.but(eta=1.0),
        generator=torch.Generator().manual_seed(1),
    )
    assert not torch.allclose(ancestral, guided)  # η reaches the sampler (this model's default is 0)
    with pytest.raises(InputError):
        transfer_style(model, embedder, source[..., :-1], reference)
    with pytest.raises(InputError):  # keeping the notes with no style pull is no style transfer
        transfer_style(model, embedder, source, reference, weight=0.0, chroma_weight=1.0)


def chord(hz: list[float], seconds: float = 1.0, batch: int = 1) -> torch.Tensor:
    """Equal-level sines, the same in both channels: ``(batch, 2, samples)``."""
    t = torch.arange(int(seconds * SR)) / SR
    mono = sum(torch.sin(2 * math.pi * f * t) for f in hz) / len(hz)
    return mono.expand(batch, 2, -1).clone()


def test_chroma_guidance_distance_is_pitch_not_level_and_its_gradient_finds_the_notes():
    a_minor = chord([220.0, 261.63, 329.63])  # A C E
    term = ChromaGuidance(a_minor)
    assert term.space == "audio"
    assert float(term(None, a_minor)) == pytest.approx(0.0, abs=1e-5)
    assert float(term(None, 0.1 * a_minor)) == pytest.approx(0.0, abs=1e-5)  # level-blind
    c_major = chord([261.63, 329.63, 392.0])  # C E G: two notes shared
    f_sharp_major = chord([369.99, 466.16, 554.37])  # F# A# C#: none shared
    assert 0.0 < float(term(None, c_major)) < float(term(None, f_sharp_major)) <= 2.0
    before, after = descend(
        term, 0.3 * torch.randn(1, 2, SR, generator=torch.Generator().manual_seed(1)), lr=1e-2, steps=5
    )
    assert after < before
    with pytest.raises(ValueError):
        term(None, a_minor[..., :-1])
    with pytest.raises(InputError):
        ChromaGuidance(a_minor[..., :4000])  # shorter than one chroma frame


def test_chromagram_picture_is_written_whole(tmp_path):
    from musicprod_common.plot import plot_chromagrams

    path = plot_chromagrams(
        tmp_path / "c.png",
        {"A minor": chord([220.0, 261.63, 329.63])[0], "C major": chord([261.63, 329.63, 392.0])[0]},
        SR,
        title="two chords",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary file left beside it


def test_on_span_measures_only_its_span():
    from guidance.terms import OnSpan

    audio = torch.arange(20.0).reshape(1, 2, 10)
    term = OnSpan(lambda x0, a: a.sum(), 2, 5)
    assert term.space == "audio"
    assert float(term(None, audio)) == float(audio[..., 2:5].sum())  # 2+3+4 + 12+13+14


def test_style_terms_widen_short_regions_to_the_classifier_input_and_stay_in_the_window():
    from guidance.style_transfer import style_terms
    from guidance.terms import OnSpan

    model = tiny_passt()
    need = model.min_samples
    reference = 0.3 * torch.randn(1, 2, SR // 2, generator=torch.Generator().manual_seed(0))
    (term,), _ = style_terms(model, reference=reference, span=(1000, 1100), window=SR)
    assert isinstance(term, OnSpan) and term.stop - term.start == need and term.start <= 1000 and term.stop >= 1100
    (term,), _ = style_terms(model, target_class=2, span=(SR - 100, SR), window=SR)
    assert (term.start, term.stop) == (SR - need, SR)  # shifted left, not cut short by the window's end
    (term,), _ = style_terms(model, target_class=2, span=(0, SR), window=SR)
    assert (term.start, term.stop) == (0, SR)
    terms, weights = style_terms(model, reference=reference, target_class=1, weight=2.0, classifier_weight=3.0)
    assert [type(t) for t in terms] == [EmbeddingGuidance, ClassifierGuidance] and weights == [2.0, 3.0]
    with pytest.raises(InputError):
        style_terms(model, reference=reference, weight=0.0)
    with pytest.raises(InputError):  # keeping the notes needs the notes
        style_terms(model, reference=reference, chroma_weight=1.0)
    source = chord([220.0, 261.63, 329.63], seconds=1.0)  # one model window of SR samples
    terms, weights = style_terms(model, reference=reference, source=source, chroma_weight=5.0)
    assert isinstance(terms[-1], ChromaGuidance) and weights == [1.0, 5.0]
    region = (2000, 2000 + 10000)  # longer than a chroma frame: measured on the region itself
    terms, _ = style_terms(model, target_class=2, span=region, window=SR, source=source, chroma_weight=5.0)
    assert isinstance(terms[-1], OnSpan) and (terms[-1].start, terms[-1].stop) == region
    assert float(terms[-1](None, source)) == pytest.approx(0.0, abs=1e-5)
    terms, _ = style_terms(model, target_class=2, span=(SR - 100, SR), window=SR, source=source, chroma_weight=5.0)
    assert (terms[-1].start, terms[-1].stop) == (
        SR - 8192,
        SR,
    )  # a short region: widened to one chroma frame, in the window
    assert float(terms[-1](None, source)) == pytest.approx(0.0, abs=1e-5)
    # the widened span is long enough for the classifier: the term evaluates
    x = 0.3 * torch.randn(1, 2, SR, generator=torch.Generator().manual_seed(1))
    (term,), _ = style_terms(model, target_class=2, span=(5000, 5010), window=SR)
    assert torch.isfinite(term(None, x))


def test_restyle_changes_only_the_region_and_its_style_term_sees_only_the_region():
    from test_tasks import AudioLoss

    from guidance.style_transfer import restyle
    from guidance.tasks import regenerate

    window = SR // 4
    model = EditModel(Denoiser(ShrinkNet()), IdentityCodec(), window=window, sampler=SAMPLER.but(steps=3))
    audio = 0.3 * torch.randn(2, 2 * window, generator=torch.Generator().manual_seed(2))
    start_s, end_s = 0.5 * window / SR, 0.9 * window / SR  # inside the first window
    seen = []

    def recording_terms(window: torch.Tensor, a: int, b: int):
        assert window.shape == (1, 2, model.window)
        seen.append((a, b))
        return [AudioLoss(lambda au: (au[..., a:b] ** 2).sum())], [1.0]

    out = regenerate(model, audio, SR, start_s, end_s, region_terms=recording_terms, margin=0.0, seed=3)
    ((a, b),) = seen
    assert b - a == round(end_s * SR) - round(start_s * SR)
    s, e = round(start_s * SR), round(end_s * SR)
    assert torch.equal(out[..., :s], audio[..., :s]) and torch.equal(out[..., e:], audio[..., e:])
    styled = restyle(
        model,
        audio,
        SR,
        start_s,
        end_s,
        embedder=tiny_passt(),
        target_class=3,
        classifier_weight=1e3,
        chroma_weight=0.0,
        sampler=model.sampler,
        margin=0.0,
        seed=3,
    )
    assert torch.equal(styled[..., :s], audio[..., :s]) and torch.equal(styled[..., e:], audio[..., e:])
    assert not torch.equal(styled, out)
