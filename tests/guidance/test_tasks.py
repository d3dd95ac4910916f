"""Tasks, projection, x_T construction and windowing, on a tiny stand-in codec and network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from guidance import (
    XI_LATENT,
    XI_WAVEFORM,
    CosineSchedule,
    Denoiser,
    EditModel,
    IdentityCodec,
    ReplaceProjection,
    SamplerConfig,
    constant_power_crossfade,
    continuation,
    edit_long,
    infill,
    infill_problem,
    initial_noise,
    known_weight,
    latent_mask,
    level_correction,
    neighbour_crossfade,
    regenerate,
    regenerate_problem,
    sampler_preset,
    solve,
    transition,
    transition_problem,
    window_plan,
)
from musicprod_common.errors import InputError

HOP = 4
WINDOW = 64


class FoldCodec:
    """Stand-in for the VAE: folds ``HOP`` samples of both channels into 2·HOP channels (exactly invertible)."""

    hop = HOP
    erode = 1  # exercise the erosion path in solve()

    def encode(self, audio: torch.Tensor) -> torch.Tensor:  # (B, 2, T) -> (B, 2·hop, T/hop)
        b, c, t = audio.shape
        return audio.reshape(b, c, t // HOP, HOP).permute(0, 1, 3, 2).reshape(b, c * HOP, t // HOP)

    def decode(self, z: torch.Tensor, length: int) -> torch.Tensor:
        b, _, frames = z.shape
        return z.reshape(b, 2, HOP, frames).permute(0, 1, 3, 2).reshape(b, 2, frames * HOP)[..., :length]


class TinyNet(torch.nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x)) * torch.cos(t)[:, None, None]


@dataclass
class AudioLoss:
    """A guidance term from any differentiable ``loss(decoded audio) -> scalar`` (the term protocol of
    guidance.terms)."""

    loss: Callable[[torch.Tensor], torch.Tensor]
    space: str = "audio"

    def __call__(self, x0: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        return self.loss(audio)


# The stand-ins sample as the shipped waveform model does (the paper's L1 on 0.5 s each side, v_θ held constant),
# at the latent model's ξ unless told otherwise.
SAMPLER = sampler_preset("waveform").but(xi=XI_LATENT)


def latent_model() -> EditModel:
    model = EditModel(Denoiser(TinyNet(2 * HOP), CosineSchedule(), "v"), FoldCodec(), window=WINDOW, sample_rate=16)
    model.sampler = SAMPLER
    return model


def waveform_model() -> EditModel:
    model = EditModel(Denoiser(TinyNet(2), CosineSchedule(), "v"), IdentityCodec(), window=WINDOW, sample_rate=16)
    model.sampler = SAMPLER.but(xi=XI_WAVEFORM)
    return model


def audio(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 2, n, generator=torch.Generator().manual_seed(seed))


def test_fold_codec_roundtrip():
    x = audio(WINDOW)
    assert torch.equal(FoldCodec().decode(FoldCodec().encode(x), WINDOW), x)


def test_latent_mask_is_conservative():
    mask = torch.ones(1, 1, 16)
    mask[..., 5:9] = 0.0  # samples 5..8 unknown: frames 1 (4..7) and 2 (8..11) straddle or hold the gap
    assert latent_mask(mask, 4).flatten().tolist() == [1.0, 0.0, 0.0, 1.0]
    wide = torch.ones(1, 1, 32)
    wide[..., 12:16] = 0.0  # frame 3 unknown; erode=2 also frees frames 1, 2, 4, 5
    assert latent_mask(wide, 4, erode=2).flatten().tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("with_prior", [False, True])
def test_initial_noise_construction(with_prior):
    y, prior = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    mask = (torch.arange(8) % 3 == 0).float().expand(2, 1, 8)
    x_T = initial_noise(y, mask, prior if with_prior else None, 0.85, torch.Generator().manual_seed(1))
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    fill = 0.85 * z + 0.15 * prior if with_prior else z
    known = mask.expand_as(y) > 0.5
    assert torch.equal(x_T[known], y[known])  # Aᵀy
    assert torch.allclose(x_T[~known], fill[~known])  # (I − AᵀA)(…)


def test_projection_is_exact_at_s0_and_leaves_unknown_alone():
    y, x = torch.randn(1, 4, 6), torch.randn(1, 4, 6)
    mask = torch.tensor([1.0, 1, 0, 0, 1, 0]).reshape(1, 1, 6)
    proj = ReplaceProjection(y, mask, Denoiser(lambda x, t: x).alpha_sigma)
    out = proj(x, torch.zeros(1))
    known = mask.expand_as(y) > 0.5
    assert torch.equal(out[known], y[known]) and torch.equal(out[~known], x[~known])


@pytest.mark.parametrize("make_model", [latent_model, waveform_model])
@pytest.mark.parametrize("space,resample", [("audio", 1), ("latent", 1), ("audio", 3)])
def test_solve_keeps_known_region_exact(make_model, space, resample):
    model, x = make_model(), audio(WINDOW)
    problem = infill_problem(x, 24, 40)
    finals = []
    distance = "l1" if space == "latent" else None
    out = solve(
        problem,
        model,
        model.sampler.but(steps=6, space=space, distance=distance, resample=resample, jump=2),
        generator=torch.Generator().manual_seed(0),
        callback=finals.append,
    )
    assert len(finals) == 6 * resample
    assert out.shape == x.shape
    assert torch.equal(out[..., :24], x[..., :24]) and torch.equal(out[..., 40:], x[..., 40:])
    assert not torch.allclose(out[..., 24:40], x[..., 24:40])
    # The sampler's own output (before decoding and pasting) already holds the measurement in known frames.
    last = finals[-1]["x"]
    y = model.codec.encode(problem.y)
    known = latent_mask(problem.mask, model.codec.hop, y.shape[-1], model.codec.erode).expand_as(y) > 0.5
    assert torch.equal(last[known], y[known])


class ScaledFoldCodec(FoldCodec):
    """A codec with a trainable parameter, as the VAE has: its graph must not leak into sampling."""

    def __init__(self):
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        return super().encode(audio) * self.scale

    def decode(self, z: torch.Tensor, length: int) -> torch.Tensor:
        return super().decode(z / self.scale, length)


@pytest.mark.parametrize("xi", [0.0, 3e-2])
def test_solve_output_carries_no_graph(xi):
    model = latent_model()
    model.codec = ScaledFoldCodec()
    x = audio(WINDOW)
    steps = []
    out = solve(regenerate_problem(x, 16, 32), model, SAMPLER.but(steps=3, xi=xi), callback=steps.append)
    assert not out.requires_grad and not any(d["x"].requires_grad for d in steps)
    assert torch.equal(out[..., :16], x[..., :16])


def test_guided_regeneration_of_a_whole_window_measures_nothing_and_equals_unguided():
    """Nothing known and no extra term: the guidance loss has no graph, so its gradient is zero, not an error."""
    model, x = latent_model(), audio(WINDOW)
    problem = regenerate_problem(x, 0, WINDOW)
    guided = solve(problem, model, SAMPLER.but(steps=3, xi=3e-2), generator=torch.Generator().manual_seed(0))
    plain = solve(problem, model, SAMPLER.but(steps=3, xi=0.0), generator=torch.Generator().manual_seed(0))
    assert torch.equal(guided, plain)


def test_solve_paper_variant_and_hook_term_run():
    model, x = latent_model(), audio(WINDOW)
    calls = []

    def hook(a: torch.Tensor) -> torch.Tensor:
        calls.append(a.shape)
        return a.pow(2).mean()

    problem = regenerate_problem(x, 16, 32)
    paper = sampler_preset("latent", "paper").but(steps=4)
    out = solve(problem, model, paper, extra_terms=[AudioLoss(hook)])
    assert out.shape == x.shape and calls and calls[0] == x.shape  # the hook saw decoded audio (B, 2, T)


def test_known_weight_ramp():
    mask = torch.ones(1, 1, 20)
    mask[..., 8:12] = 0.0
    w = known_weight(mask, 3).flatten()
    assert torch.all(w[8:12] == 0) and torch.all(w[:5] == 1) and torch.all(w[15:] == 1)
    assert torch.all(w[5:8].diff() < 0) and torch.all(w[12:15].diff() > 0)  # fades towards the gap


@pytest.mark.parametrize("length", [40, 200])  # shorter and longer than the 64-sample window
def test_edit_long_bit_exact_outside_region_and_margins(length):
    x = audio(length, seed=2)
    start, end, margin = 20, 30, 4
    noise = torch.randn(1, 2, WINDOW)
    out = edit_long(x, start, end, WINDOW, margin, lambda chunk, a, b: noise + chunk)
    assert out.shape == x.shape
    assert torch.equal(out[..., : start - margin], x[..., : start - margin])
    assert torch.equal(out[..., end + margin :], x[..., end + margin :])
    assert not torch.allclose(out[..., start:end], x[..., start:end])


def test_edit_long_rejects_region_larger_than_window():
    with pytest.raises(InputError):
        edit_long(audio(300), 10, 100, WINDOW, 4, lambda c, a, b: c)


def test_infill_and_regenerate_long_audio():
    model, x = latent_model(), audio(160, seed=3)[0]  # 10 s at 16 Hz, window 4 s
    for task in (infill, regenerate):
        out = task(model, x, 16, 4.0, 5.0, sampler=SAMPLER.but(steps=4), margin=0.25)
        assert out.shape == x.shape
        assert torch.equal(out[..., : 4 * 16 - 4], x[..., : 4 * 16 - 4]) and torch.equal(
            out[..., 5 * 16 + 4 :], x[..., 5 * 16 + 4 :]
        )


def test_continuation_appends_to_input():
    model, x = waveform_model(), audio(100, seed=4)[0]
    out = continuation(model, x, 16, sampler=model.sampler.but(steps=4), context=1.0, margin=0.0)
    assert out.shape[-1] == 100 + WINDOW - 16
    assert torch.equal(out[..., :100], x)


def test_constant_power_crossfade_gains():
    ones = torch.ones(1, 2, 32)
    ga = constant_power_crossfade(ones, 0 * ones, 8, 24)
    gb = constant_power_crossfade(0 * ones, ones, 8, 24)
    torch.testing.assert_close(ga**2 + gb**2, ones)
    assert torch.all(ga[..., :8] == 1) and torch.all(gb[..., 24:] == 1)


def test_neighbour_crossfade_known_answer():
    x = torch.zeros(1, 2, 40)
    x[..., :10] = 1.0  # before the gap [10, 18): ones; after it: twos
    x[..., 18:] = 2.0
    out = neighbour_crossfade(x, 10, 18)
    r = (torch.arange(8) + 0.5) / 8
    torch.testing.assert_close(out[0, 0, 10:18], torch.cos(0.5 * torch.pi * r) + 2 * torch.sin(0.5 * torch.pi * r))
    assert torch.equal(out[..., :10], x[..., :10]) and torch.equal(out[..., 18:], x[..., 18:])


def test_neighbour_crossfade_loops_short_context():
    x = audio(24, seed=7)  # 4 samples before a 16-sample gap: the last 4 are repeated into it
    out = neighbour_crossfade(x, 4, 20)
    before_gain = torch.cos(0.5 * torch.pi * (torch.arange(16) + 0.5) / 16)
    after_gain = torch.sin(0.5 * torch.pi * (torch.arange(16) + 0.5) / 16)
    torch.testing.assert_close(
        out[..., 4:20], x[..., :4].repeat(1, 1, 4) * before_gain + x[..., 20:].repeat(1, 1, 4) * after_gain
    )
    with pytest.raises(InputError):
        neighbour_crossfade(x, 0, 8)


def test_infill_with_prior_starts_from_the_crossfade():
    x = audio(WINDOW, seed=8)
    problem = infill_problem(x, 24, 40, k=0.5)
    assert problem.k == 0.5 and torch.equal(problem.prior, neighbour_crossfade(x, 24, 40))
    assert infill_problem(x, 24, 40).prior is None
    with pytest.raises(InputError):
        infill_problem(x, 24, 40, k=0.0)
    out = solve(problem, latent_model(), SAMPLER.but(steps=4))
    assert torch.equal(out[..., :24], x[..., :24]) and torch.equal(out[..., 40:], x[..., 40:])


def test_level_correction_known_answers():
    x = audio(40, seed=9)
    mask = torch.ones(1, 1, 40)
    mask[..., 16:24] = 0.0
    decoded = 0.5 * x
    decoded[..., :8] = 3.0 * x[..., :8]  # farther than the 8-sample band from the gap: must not count
    torch.testing.assert_close(level_correction(x, decoded, mask, band=8), torch.full((1, 1, 1), 2.0))
    torch.testing.assert_close(
        level_correction(x, 1e-3 * x, mask, band=8), torch.full((1, 1, 1), 10.0)
    )  # the ±20 dB limit
    assert level_correction(0 * x, decoded, mask, band=8).item() == 1.0  # silence: nothing to measure


def test_solve_level_band_restores_the_codec_level():
    class QuietCodec(FoldCodec):
        erode = 0  # the known frames then decode to exactly a quarter of the truth

        def decode(self, z: torch.Tensor, length: int) -> torch.Tensor:
            return 0.25 * super().decode(z, length)

    model = latent_model()
    model.codec = QuietCodec()
    x = audio(WINDOW, seed=10)
    problem = infill_problem(x, 24, 40)
    plain = solve(problem, model, SAMPLER.but(steps=3), generator=torch.Generator().manual_seed(0))
    fixed = solve(problem, model, SAMPLER.but(steps=3, level_band_s=0.5), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fixed[..., 24:40], 4.0 * plain[..., 24:40])  # known frames decode 4× too quiet
    assert torch.equal(fixed[..., :20], x[..., :20])


def test_transition_problem_and_task():
    a, b = audio(100, seed=5), audio(90, seed=6)
    problem = transition_problem(a[..., -40:], b[..., :44], WINDOW)  # overlap [20, 40)
    assert torch.equal(problem.y[..., :20], a[..., 60:80]) and torch.equal(problem.y[..., 40:], b[..., 20:44])
    assert problem.prior is not None and problem.mask[..., 20:40].sum() == 0
    model = latent_model()
    out = transition(model, a[0], b[0], 16, sampler=SAMPLER.but(steps=4), fade=1.0, margin=0.0)
    fade = 16  # 1 s at 16 Hz
    assert out.shape[-1] == 100 + 90 - fade
    # A is kept up to the fade and B after it, bit for bit; only the fade region is generated.
    assert torch.equal(out[..., : 100 - fade], a[0, :, : 100 - fade])
    assert torch.equal(out[..., -(90 - fade) :], b[0, :, fade:])


def test_transition_too_long_fade_is_input_error():
    with pytest.raises(InputError):
        transition(latent_model(), audio(100)[0], audio(100)[0], 16, sampler=SAMPLER.but(steps=2), fade=5.0)


def test_cropped_audio_l1_matches_full_decode_loss_and_gradient():
    from guidance import CroppedAudioL1, L1Distance, distance_to_unknown

    codec, x = FoldCodec(), audio(WINDOW, seed=7)
    problem = infill_problem(x, 28, 36)
    band = problem.mask * (distance_to_unknown(problem.mask) <= 6)  # 6 known samples each side of the gap
    cropped = CroppedAudioL1(problem.y, band, codec.decode, HOP, context=1)
    full = L1Distance(problem.y, band, "audio")
    assert len(cropped.crops) == 1 and cropped.crops[0][1] - cropped.crops[0][0] < WINDOW // HOP  # a partial decode
    z = torch.randn(1, 2 * HOP, WINDOW // HOP, requires_grad=True)
    (g_crop,) = torch.autograd.grad(cropped(z, None), z)
    (g_full,) = torch.autograd.grad(full(z, codec.decode(z, WINDOW)), z)
    torch.testing.assert_close(g_crop, g_full)  # the fold codec has no receptive field, so they agree exactly
    assert g_full.abs().sum() > 0


def test_cropped_audio_mel_scores_each_measured_run_on_the_mid_channel():
    from guidance import CroppedAudioMel, distance_to_unknown
    from musicprod_common.features import MelDistance

    codec, n = FoldCodec(), 24000
    x = audio(n, seed=8)
    problem = infill_problem(x, 10000, 14000)
    band = problem.mask * (distance_to_unknown(problem.mask) <= 5000)  # runs [5000, 10000) and [14000, 19000)
    term = CroppedAudioMel(problem.y, band, codec.decode, HOP, context=1, sample_rate=44100)
    z = torch.randn(1, 2 * HOP, n // HOP, requires_grad=True)
    decoded, mel = codec.decode(z, n), MelDistance(44100)

    def mid(a):
        return a.mean(1, keepdim=True)

    expected = sum(mel(mid(decoded[..., a:b]), mid(x[..., a:b])).sum() for a, b in ((5000, 10000), (14000, 19000)))
    torch.testing.assert_close(term(z, None), expected)
    (g_term,) = torch.autograd.grad(term(z, None), z)
    (g_expected,) = torch.autograd.grad(expected, z)
    torch.testing.assert_close(g_term, g_expected)  # the fold codec has no receptive field, so they agree exactly
    frames_touched = g_term.abs().sum(dim=1)[0] > 0
    assert frames_touched[5000 // HOP : 10000 // HOP].any() and not frames_touched[: 5000 // HOP].any()
    short = CroppedAudioMel(problem.y, problem.mask * (distance_to_unknown(problem.mask) <= 1000), codec.decode, HOP)
    assert not short(z, None).requires_grad  # runs below the largest STFT are not measured


def test_a_sampler_config_refuses_what_cannot_be_sampled():
    with pytest.raises(InputError, match="L1 only"):
        SamplerConfig(space="latent", distance="mel")
    with pytest.raises(InputError, match="distance"):
        SamplerConfig(distance="cosine")
    with pytest.raises(InputError, match="strength"):
        SamplerConfig(strength=0.0)
    with pytest.raises(InputError, match="steps"):
        SamplerConfig().but(steps=0)
    assert SamplerConfig().but(steps=None, xi=0.0) == SamplerConfig(xi=0.0)  # None: a flag left out


def test_the_presets_compose_family_and_edit():
    latent, style, paper = (
        sampler_preset("latent"),
        sampler_preset("latent", "style"),
        sampler_preset("latent", "paper"),
    )
    assert (latent.distance, latent.band_s, latent.through_net) == ("mel", 0.25, False)
    assert (style.eta, style.guidance_step, style.strength, style.distance) == (0.0, "x0", 0.4, "mel")
    assert (paper.distance, paper.band_s, paper.through_net, paper.xi) == ("l1", None, True, latent.xi)
    assert sampler_preset("waveform", "style").distance == "l1"  # a style edit keeps its family's distance
    with pytest.raises(InputError, match="unknown edit"):
        sampler_preset("latent", "remix")


def test_solve_measures_the_band_it_is_given():
    problem = infill_problem(audio(WINDOW, seed=3), WINDOW // 4, WINDOW // 2)

    def run(sampler):
        return solve(problem, latent_model(), sampler.but(steps=4), generator=torch.Generator().manual_seed(0))

    assert SAMPLER.band_s == 0.5  # 8 samples at the stand-in's 16 Hz
    assert not torch.equal(run(SAMPLER), run(SAMPLER.but(band_s=0.1)))  # 2 samples: half the eroded frame by the gap


def test_solve_takes_the_model_sampler_unless_given_one():
    problem = infill_problem(audio(WINDOW), WINDOW // 4, WINDOW // 2)

    def run(model, sampler=None):
        return solve(problem, model, sampler, generator=torch.Generator().manual_seed(0))

    model = latent_model()
    model.sampler = SAMPLER.but(steps=4, xi=0.0)
    deterministic = run(model)
    assert model.sampler.eta == 0.0 and torch.equal(deterministic, run(model, model.sampler))
    ancestral = model.sampler.but(eta=1.0)
    assert not torch.equal(run(model, ancestral), deterministic)
    model.sampler = ancestral
    assert torch.equal(run(model), run(model, ancestral))


class ContextNet(TinyNet):
    """A network conditioned on the known frames (as a DiT with ``known_conditioning``); records what it was shown."""

    def __init__(self, channels: int):
        super().__init__(channels)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor, known: torch.Tensor, known_mask: torch.Tensor) -> torch.Tensor:
        self.seen.append((known, known_mask))
        return super().forward(x, t) + 0.1 * known * known_mask


@pytest.mark.parametrize("xi", [0.0, 3e-2])
def test_solve_shows_a_conditioned_model_the_clean_measurement_and_its_frame_mask(xi):
    net = ContextNet(2 * HOP)
    model = EditModel(
        Denoiser(net, CosineSchedule(), "v"), FoldCodec(), window=WINDOW, sample_rate=16, conditions_on_known=True
    )
    x = audio(WINDOW)
    problem = infill_problem(x, 24, 40)
    out = solve(problem, model, SAMPLER.but(steps=4, xi=xi))
    assert len(net.seen) == 4
    y = model.codec.encode(problem.y)
    mask = latent_mask(problem.mask, HOP, y.shape[-1], model.codec.erode)
    for known, known_mask in net.seen:
        assert torch.equal(known, y) and torch.equal(known_mask, mask)
    assert torch.equal(out[..., :24], x[..., :24]) and torch.equal(out[..., 40:], x[..., 40:])


def test_a_region_longer_than_the_window_is_infilled_window_by_window():
    """Only infill chunks (each window generates to its end and the next continues from it); regenerate refuses."""
    model, x = latent_model(), audio(400, seed=11)[0]  # window 64 samples, region 160
    start, end, margin = 100, 260, 4
    calls = []
    out = infill(
        model, x, 16, start / 16, end / 16, sampler=SAMPLER.but(steps=2), margin=margin / 16, progress=calls.append
    )
    assert len(calls) == 2 * len(window_plan(start, end, 400, WINDOW, margin)) > 2 * 2
    assert torch.equal(out[..., : start - margin], x[..., : start - margin])
    assert torch.equal(out[..., end + margin :], x[..., end + margin :])
    assert (out[..., start:end] != x[..., start:end]).all(dim=1).float().mean() > 0.99
    with pytest.raises(InputError, match="regenerates at most"):
        regenerate(model, x, 16, start / 16, end / 16, sampler=SAMPLER.but(steps=2), margin=margin / 16)
