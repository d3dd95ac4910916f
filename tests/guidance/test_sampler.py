"""The one sampling loop: exactness on Gaussian data, agreement with diffusers, golden numbers, hooks."""

from __future__ import annotations

import math

import pytest
import torch

from guidance import (
    CFGDenoiser,
    CosineSchedule,
    Denoiser,
    DiscreteSchedule,
    EditModel,
    EditProblem,
    Guidance,
    IdentityCodec,
    L1Distance,
    SamplerConfig,
    broadcast_like,
    cosine_alpha_sigma,
    linear_betas,
    renoise,
    resampling_timesteps,
    sample,
    solve,
    uniform_timesteps,
)
from musicprod_common.errors import InputError

MU, STD = 0.7, 0.5  # the Gaussian data N(μ, s²) of the analytic tests


def gaussian_x0(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """E[x0 | x_t] for x0 ~ N(μ, s²) under the cosine schedule (exact posterior mean)."""
    alpha, sigma = (broadcast_like(a, x) for a in cosine_alpha_sigma(t))
    return MU + alpha * STD**2 / (alpha**2 * STD**2 + sigma**2) * (x - alpha * MU)


GAUSSIAN = Denoiser(gaussian_x0, CosineSchedule(), prediction="x0")


def test_ddim_eta0_reproduces_gaussian_mean_and_std():
    # η = 0 is an affine map x_T ↦ a x_T + b, so mean = b and std = |a| are read off exactly from two inputs.
    errors = []
    for steps in (25, 100, 400):
        out = sample(GAUSSIAN, torch.tensor([0.0, 1.0]).reshape(2, 1), uniform_timesteps(steps))
        b, a = out[0, 0].item(), (out[1, 0] - out[0, 0]).item()
        errors.append(max(abs(b - MU), abs(abs(a) - STD)))
    assert errors[0] > errors[1] > errors[2]  # DDIM converges to the probability-flow ODE as steps grow
    assert errors[2] < 0.01 * STD


def test_ddpm_eta1_reproduces_gaussian_mean_and_std():
    n, steps = 20_000, 200
    gen = torch.Generator().manual_seed(0)
    out = sample(GAUSSIAN, torch.randn(n, 1, generator=gen), uniform_timesteps(steps), eta=1.0, generator=gen)
    se_mean, se_std = STD / math.sqrt(n), STD / math.sqrt(2 * n)
    # 5 standard errors of Monte-Carlo noise, plus 4% of s for the O(1/steps) bias of ancestral sampling with
    # the posterior mean in place of x0 (it loses Var[x0 | x_t]; about 2% of s at 200 steps, halving per doubling).
    assert abs(out.mean().item() - MU) < 5 * se_mean + 0.04 * STD
    assert abs(out.std().item() - STD) < 5 * se_std + 0.04 * STD


def test_resampling_timesteps_walk_back_every_jump():
    assert torch.equal(resampling_timesteps(50, 10, 1), uniform_timesteps(50))
    ts = resampling_timesteps(50, 10, 4)
    grid_step = 1 / 50
    diffs = ts[1:] - ts[:-1]
    assert ts[0] == 1 and ts[-1] == 0
    assert int((diffs < 0).sum()) == 50 * 4  # network evaluations: resamples × steps
    rises = diffs[diffs > 0]
    assert len(rises) == 5 * 3 and torch.allclose(rises, torch.full_like(rises, 10 * grid_step))
    assert torch.allclose(diffs[diffs < 0], torch.full_like(diffs[diffs < 0], -grid_step))


def test_renoise_matches_the_forward_marginal():
    # x_t = α_t x0 + σ_t ε with x0 ~ N(μ, s²); re-noised to s > t it must be distributed as α_s x0 + σ_s ε.
    n, gen = 200_000, torch.Generator().manual_seed(1)
    t, s = torch.tensor(0.3), torch.tensor(0.7)
    (a_t, s_t), (a_s, s_s) = cosine_alpha_sigma(t), cosine_alpha_sigma(s)
    x0 = MU + STD * torch.randn(n, generator=gen)
    x_t = a_t * x0 + s_t * torch.randn(n, generator=gen)
    x_s = renoise(x_t, a_t, s_t, a_s, s_s, gen)
    assert abs(x_s.mean().item() - a_s * MU) < 0.01
    assert abs(x_s.std().item() - math.sqrt(a_s**2 * STD**2 + s_s**2)) < 0.01
    # ... and keep the right correlation with x0: Cov(x_s, x0) = α_s s².
    assert abs(torch.cov(torch.stack([x_s, x0]))[0, 1].item() - a_s * STD**2) < 0.01


def test_resampled_ddpm_reproduces_gaussian_mean_and_std():
    n, gen = 20_000, torch.Generator().manual_seed(0)
    logs = []
    out = sample(
        GAUSSIAN,
        torch.randn(n, 1, generator=gen),
        resampling_timesteps(200, 10, 3),
        eta=1.0,
        generator=gen,
        callback=logs.append,
    )
    assert len(logs) == 600  # the callback runs once per network evaluation, never on the re-noising steps
    se_mean, se_std = STD / math.sqrt(n), STD / math.sqrt(2 * n)
    assert abs(out.mean().item() - MU) < 5 * se_mean + 0.04 * STD  # the tolerance of the plain DDPM test
    assert abs(out.std().item() - STD) < 5 * se_std + 0.04 * STD


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_strength_starts_from_the_noised_prior(strength):
    """From x_t = α x̄ + σ z the exact reverse process ends in p(x0 | x_t) averaged over z: a Gaussian with mean
    μ + α g (x̄ − μ) and variance s² σ² / (α² s² + σ²) + g² σ², where g = α s² / (α² s² + σ²). At strength 1
    (α = 0) that is the data distribution whatever x̄ is; at 0.5 it is pulled a fifth of the way to x̄."""
    n, prior_value = 4000, 2.7
    model = EditModel(GAUSSIAN, IdentityCodec(), window=4)
    problem = EditProblem(torch.zeros(n, 2, 4), torch.zeros(n, 1, 4), torch.full((n, 2, 4), prior_value), k=1.0)
    sampler = SamplerConfig(steps=200, eta=1.0, xi=0.0, strength=strength)
    out = solve(problem, model, sampler, generator=torch.Generator().manual_seed(0))
    alpha, sigma = (float(v) for v in cosine_alpha_sigma(torch.tensor(strength)))
    gain = alpha * STD**2 / (alpha**2 * STD**2 + sigma**2)
    mean = MU + alpha * gain * (prior_value - MU)
    std = math.sqrt(STD**2 * sigma**2 / (alpha**2 * STD**2 + sigma**2) + gain**2 * sigma**2)
    count = out.numel()
    assert abs(out.mean().item() - mean) < 5 * std / math.sqrt(count) + 0.04 * std  # the DDPM test's tolerance
    assert abs(out.std().item() - std) < 5 * std / math.sqrt(2 * count) + 0.04 * std


def test_strength_needs_a_prior_and_a_valid_value():
    model = EditModel(GAUSSIAN, IdentityCodec(), window=4)
    no_prior = EditProblem(torch.zeros(1, 2, 4), torch.zeros(1, 1, 4))
    with pytest.raises(InputError, match="needs a prior"):
        solve(no_prior, model, SamplerConfig(steps=2, strength=0.5))
    with pytest.raises(InputError, match="strength must be in"):
        solve(no_prior, model, SamplerConfig(steps=2, strength=0.0))


def test_golden_two_step_ddim_with_linear_v_model():
    # v_θ(x, t) = c x. Step 1 (t=1 → ½): x̂0 = −c x, ε̂ = x, x_½ = √½ (1 − c) x.
    # Step 2 (t=½ → 0): x_0 = x̂0 = √½ (1 − c) x_½ = ½ (1 − c)² x_T, worked out by hand.
    c = 0.5
    den = Denoiser(lambda x, t: c * x, CosineSchedule(), prediction="v")
    out = sample(den, torch.ones(1, 1, 1, dtype=torch.float64), torch.tensor([1.0, 0.5, 0.0]))
    assert out.item() == pytest.approx(0.5 * (1 - c) ** 2, abs=1e-7)


def toy_net(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed nonlinear function of (x, t) standing in for a trained network."""
    return torch.tanh(0.8 * x + 0.3 * broadcast_like(t.to(x.dtype), x) / 1000.0 + 0.1 * x.roll(1, dims=-1))


def _diffusers_run(scheduler, x, eta: float, model_input_time, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    traj = []
    for timestep in scheduler.timesteps:
        out = toy_net(x, model_input_time(torch.full((x.shape[0],), float(timestep))))
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype) if eta > 0 else None
        x = scheduler.step(out, timestep, x, eta=eta, variance_noise=noise).prev_sample
        traj.append(x)
    return traj


def _ours_run(denoiser, x, steps: int, eta: float, seed: int = 0):
    traj = []
    gen = torch.Generator().manual_seed(seed)
    sample(denoiser, x, uniform_timesteps(steps), eta=eta, generator=gen, callback=lambda d: traj.append(d["x"]))
    return traj


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_matches_diffusers_ddim_discrete_schedule(eta, prediction):
    diffusers = pytest.importorskip("diffusers")
    steps, train_steps = 20, 1000
    sched = diffusers.DDIMScheduler(
        num_train_timesteps=train_steps,
        beta_schedule="linear",
        clip_sample=False,
        set_alpha_to_one=True,
        prediction_type="v_prediction" if prediction == "v" else "epsilon",
        timestep_spacing="trailing",
    )
    sched.set_timesteps(steps)
    x = torch.randn(2, 2, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # The network sees the same 0-based training index in both runs, so toy_net gets identical inputs.
    ref = _diffusers_run(sched, x, eta, lambda k: k)
    ours = _ours_run(Denoiser(toy_net, DiscreteSchedule(linear_betas(train_steps)), prediction), x, steps, eta)
    assert len(ref) == len(ours) == steps
    for a, b in zip(ref, ours):
        torch.testing.assert_close(b, a.to(b.dtype), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_matches_diffusers_ddim_cosine_v_prediction(eta):
    diffusers = pytest.importorskip("diffusers")
    steps, train_steps = 25, 1000
    # ᾱ_j = cos²(π t_j / 2) at t_j = (j + 1)/T: the continuous cosine schedule sampled on diffusers' grid.
    t_grid = torch.arange(1, train_steps + 1, dtype=torch.float64) / train_steps
    abar = torch.cos(0.5 * math.pi * t_grid) ** 2
    betas = 1.0 - abar / torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    sched = diffusers.DDIMScheduler(
        num_train_timesteps=train_steps,
        trained_betas=betas.numpy(),
        clip_sample=False,
        set_alpha_to_one=True,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
    )
    sched.set_timesteps(steps)
    x = torch.randn(2, 2, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    # Our network receives continuous t; diffusers' index j is t·T − 1. toy_net is fed the same value in both.
    ref = _diffusers_run(sched, x, eta, lambda j: j)
    den = Denoiser(lambda x, t: toy_net(x, t * train_steps - 1), CosineSchedule(), "v")
    ours = _ours_run(den, x, steps, eta)
    for a, b in zip(ref, ours):
        # diffusers keeps ᾱ in float32 (a cumulative product of 1000 betas), hence the looser tolerance.
        torch.testing.assert_close(b, a.to(b.dtype), rtol=1e-3, atol=1e-4)


class Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * broadcast_like(torch.cos(t), x)


@pytest.mark.parametrize("through_net, step", [(True, "eps"), (False, "eps"), (False, "x0")])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_zero_xi_guidance_equals_unguided(through_net, step, eta):
    den = Denoiser(Conv(), CosineSchedule(), "v")
    x = torch.randn(2, 2, 32, generator=torch.Generator().manual_seed(3))
    mask = (torch.arange(32) < 16).float().expand(2, 1, 32)
    guide = Guidance([L1Distance(torch.ones_like(x), mask)], xi=0.0, through_net=through_net, step=step)
    ts = uniform_timesteps(10)
    plain = sample(den, x, ts, eta=eta, generator=torch.Generator().manual_seed(4))
    guided = sample(den, x, ts, eta=eta, guidance=guide, generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain, guided)


@pytest.mark.parametrize("through_net", [True, False])
def test_guidance_pulls_towards_measurement(through_net):
    x = torch.randn(4, 1, 64, generator=torch.Generator().manual_seed(5))
    target = torch.full_like(x, -1.0)  # far below the data mean μ
    mask = torch.ones(4, 1, 64)

    def dist(out):
        return (out - target).abs().mean().item()

    ts = uniform_timesteps(20)
    plain = sample(GAUSSIAN, x, ts)
    guided = sample(
        GAUSSIAN, x, ts, guidance=Guidance([L1Distance(target, mask)], xi=0.3, through_net=through_net, step="eps")
    )
    assert dist(guided) < dist(plain)


def test_x0_step_moves_the_denoised_estimate_by_xi_times_the_gradient():
    """Known answer: the last step lands on x̂0, so an x̂0 step (MPGD) shows there exactly, an ε̂ step not at all."""
    x = torch.randn(3, 1, 16, generator=torch.Generator().manual_seed(8))
    target = torch.zeros_like(x)
    ts = torch.tensor([0.6, 0.0])
    plain = sample(GAUSSIAN, x, ts)
    x0 = gaussian_x0(x, ts[:1].expand(3))
    assert torch.allclose(plain, x0, atol=1e-6)
    l1 = [L1Distance(target, torch.ones(3, 1, 16))]  # ∇ = sign(x̂0 − 0)
    stepped = sample(GAUSSIAN, x, ts, guidance=Guidance(l1, xi=0.1, through_net=True, step="x0"))
    assert torch.allclose(stepped, x0 - 0.1 * torch.sign(x0), atol=1e-6)
    assert torch.equal(sample(GAUSSIAN, x, ts, guidance=Guidance(l1, xi=0.1, through_net=True, step="eps")), plain)
    with pytest.raises(ValueError):
        Guidance(l1, xi=0.1, through_net=True, step="x")


def test_edit_denoised_output_is_the_edited_x0():
    den = Denoiser(Conv(), CosineSchedule(), "v")
    x = torch.randn(2, 2, 32, generator=torch.Generator().manual_seed(6))
    seen = []
    out = sample(den, x, uniform_timesteps(8), edit_denoised=lambda x0, t: (seen.append(t), x0.clamp(max=0.25))[1])
    assert len(seen) == 8 and out.max().item() <= 0.25
    unedited = sample(den, x, uniform_timesteps(8))
    assert unedited.max().item() > 0.25  # the clamp did something


def test_callback_reports_every_step():
    logs = []
    sample(GAUSSIAN, torch.zeros(1, 1), uniform_timesteps(5), callback=logs.append)
    assert [d["i"] for d in logs] == list(range(5))
    assert set(logs[0]) == {"x", "i", "t", "denoised"}


def test_cfg_scale_one_is_conditional_and_rescale_matches_std():
    def net(x, t, cond=1.0):
        return cond * torch.sin(x) + 0.1 * x

    den = Denoiser(net, CosineSchedule(), "v")
    x = torch.randn(3, 2, 16, generator=torch.Generator().manual_seed(7))
    t = torch.full((3,), 0.4)
    cond = den.predict(x, t, cond=1.0)
    one = CFGDenoiser(den, 1.0, uncond={"cond": 0.0}).predict(x, t, cond=1.0)
    assert torch.allclose(one, cond)
    full = CFGDenoiser(den, 7.5, rescale=1.0, uncond={"cond": 0.0}).predict(x, t, cond=1.0)
    torch.testing.assert_close(full.std(dim=(1, 2)), cond.std(dim=(1, 2)))


def test_discrete_schedule_ends_clean_and_indexes_like_ddpm():
    sched = DiscreteSchedule(linear_betas(1000))
    alpha, sigma = sched(torch.tensor([0.0, 1.0]))
    assert alpha[0].item() == 1.0 and sigma[0].item() == 0.0
    expected = torch.cumprod(1 - linear_betas(1000), 0)[-1].sqrt().item()
    assert alpha[1].item() == pytest.approx(expected, rel=1e-6)
    assert sched.model_time(torch.tensor([1.0, 0.02])).tolist() == [999.0, 19.0]
