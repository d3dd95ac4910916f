"""Binomial diffusion (Atassi): forward marginals, the sampler's tasks, the training script."""

from __future__ import annotations

import pytest
import torch

from symbolic.binomial import (
    BinomialConfig,
    betas,
    binomial_config,
    binomial_loss,
    build_binomial,
    independent_bit_logit,
    load_binomial,
    q_sample,
    sample_binomial,
    task_mask,
)
from symbolic.data import build_dataset_file


def test_betas():
    b = betas(100)
    assert b[0] == pytest.approx(0.01) and b[-1] == 1.0 and torch.all(b[1:] > b[:-1])


@pytest.mark.parametrize("t", [0, 30, 99])
def test_forward_marginals(t):
    g = torch.Generator().manual_seed(t)
    r = 0.2
    x0 = (torch.arange(400) % 2).float()  # half zeros, half ones
    n = 4000
    beta = betas(100)[t]
    z = (torch.rand(n, 400, generator=g) < r).float()
    u = torch.rand(n, 400, generator=g)
    mean = q_sample(x0.expand(n, -1), beta, z, u).mean(0)  # (400,)
    want = (1 - beta) * x0 + beta * r
    # each cell's mean of n Bernoulli draws: within 5 standard errors
    se = (want * (1 - want) / n).sqrt().clamp(min=1e-6)
    assert torch.all((mean - want).abs() <= 5 * se + 1e-6)


@pytest.mark.parametrize("t", [0, 50, 99])
def test_independent_bit_logit_is_the_posterior_of_the_forward_process(t):
    """Monte Carlo of q_sample against Bayes' rule: P(x0 = 1 | x_t) for independent Bernoulli(r) bits."""
    g = torch.Generator().manual_seed(t)
    r, n = torch.tensor(0.1), 2_000_000
    beta = betas(100)[t]
    x0 = (torch.rand(n, generator=g) < r).float()
    x_t = q_sample(x0, beta, (torch.rand(n, generator=g) < r).float(), torch.rand(n, generator=g))
    for bit in (0.0, 1.0):
        sel = x_t == bit
        empirical = x0[sel].mean()
        exact = torch.sigmoid(independent_bit_logit(torch.tensor(bit), beta, r))
        se = (exact * (1 - exact) / sel.sum()).sqrt()
        assert abs(empirical - exact) <= 5 * se + 1e-6, (bit, float(empirical), float(exact))


def test_untrained_model_samples_at_the_data_density():
    """The U-Net's output layer starts at zero, so a fresh model is the exact denoiser of independent
    Bernoulli(r) bits, and the reverse process must then hand back bits at density r (not silence)."""
    torch.manual_seed(0)
    r = (0.05, 0.1, 0.02, 0.03)
    model = build_binomial(
        BinomialConfig(**{**binomial_config("tiny").__dict__, "density": r, "num_timesteps": 10})
    ).eval()
    out = sample_binomial(model, shape=(8, 4, 64, 64), generator=torch.Generator().manual_seed(0))
    density = out.mean(dim=(0, 2, 3))
    for got, want in zip(density.tolist(), r):
        se = (want * (1 - want) / (8 * 64 * 64)) ** 0.5
        assert abs(got - want) <= 5 * se, (density.tolist(), r)


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = BinomialConfig(**{**binomial_config("tiny").__dict__, "density": (0.05, 0.1, 0.02, 0.03)})
    model = build_binomial(cfg).eval()
    torch.nn.init.normal_(model.unet.conv_out.weight, std=0.1)
    return model


@pytest.mark.parametrize("task", ["completion", "infill", "harmonize"])
def test_tasks_keep_known_bits(task):
    model = _model()
    cfg = model.cfg
    cfg.num_timesteps = 5  # a short chain keeps the test fast; the rule is the same at T=100
    g = torch.Generator().manual_seed(0)
    known = (torch.rand(2, 4, 64, 64, generator=g) < 0.1).float()
    mask = task_mask(task, known.shape)
    out = sample_binomial(model, known=known, known_mask=mask, generator=g)
    assert out.shape == known.shape and set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out[mask], known[mask])
    assert not torch.equal(out[~mask], known[~mask])


@pytest.mark.parametrize("noise_known", [False, True])
def test_known_bits_are_clean_at_every_level_unless_noised(noise_known):
    """By default the network sees the condition (e.g. the melody) exactly at every step; noise_known hides part of
    it."""
    model = _model()
    model.cfg.num_timesteps = 6
    g = torch.Generator().manual_seed(3)
    known = (torch.rand(2, 4, 64, 64, generator=g) < 0.1).float()
    mask = task_mask("harmonize", known.shape)
    seen = []
    sample_binomial(
        model,
        known=known,
        known_mask=mask,
        noise_known=noise_known,
        generator=g,
        callback=lambda d: seen.append(torch.equal(d["x"][mask], known[mask])),
    )
    assert seen[-1]  # the output keeps the known bits either way
    assert all(seen) != noise_known  # noised: the known bits differ at the early (high-β) levels


def test_reverting_rule_and_variation():
    model = _model()
    model.cfg.num_timesteps = 4
    steps = []
    start = (torch.rand(1, 4, 64, 64, generator=torch.Generator().manual_seed(1)) < 0.1).float()
    sample_binomial(
        model,
        start=start,
        strength=0.5,
        generator=torch.Generator().manual_seed(2),
        callback=lambda d: steps.append(d["t"]),
    )
    assert steps == [1, 0]  # variation starts partway down the chain
    out_full = sample_binomial(
        model, shape=(1, 4, 64, 64), generator=torch.Generator().manual_seed(2), callback=lambda d: steps.append(d["t"])
    )
    assert steps[2:] == [3, 2, 1, 0] and out_full.shape == (1, 4, 64, 64)


def test_known_region_training_shows_the_condition_clean_and_leaves_it_out_of_the_loss():
    from symbolic.binomial import TRAINING_TASKS, training_known_mask

    shape = (4, 64, 64)
    index = torch.arange(400)
    assert not training_known_mask(index, shape, 0.0, "cpu").any()
    masks = training_known_mask(index, shape, 1.0, "cpu")
    # every example gets one of the tasks' regions, and each task turns up
    patterns = {tuple(m.any(-1).flatten().tolist()) for m in masks}
    want = set()
    for name in TRAINING_TASKS:
        union = torch.zeros(1, *shape, dtype=torch.bool)
        for task in name.split("+"):
            union |= task_mask(task, (1, *shape))
        want.add(tuple(union[0].any(-1).flatten().tolist()))
    assert patterns == want
    half = training_known_mask(index, shape, 0.5, "cpu").flatten(1).any(1).float().mean()
    assert 0.4 < half < 0.6

    class Recorder(torch.nn.Module):
        """Returns a learnable logit per bit and keeps the input it was shown."""

        def __init__(self, logits):
            super().__init__()
            self.logits = torch.nn.Parameter(logits)

        def forward(self, x_t, t):
            self.seen, self.t = x_t, t
            return self.logits

    cfg = BinomialConfig(**{**binomial_config("tiny").__dict__, "density": (0.05, 0.1, 0.02, 0.03)})
    batch = {
        "x0": (torch.rand(2, 2, 64, 64) < 0.3).float(),
        "melody": (torch.rand(2, 2, 64, 64) < 0.3).float(),
        "key": torch.arange(2),
    }
    known = training_known_mask(batch["key"], shape, 1.0, "cpu")
    model = Recorder(30.0 * known.float())  # confidently wrong about every known 0, undecided elsewhere
    loss, _ = binomial_loss(model, batch, cfg, known_prob=1.0)
    loss.backward()
    x0 = torch.cat([batch["x0"], batch["melody"]], 1)
    assert torch.equal(model.seen[known], x0[known])  # clean at whatever level t was drawn
    assert (model.logits.grad[known] == 0).all() and (model.logits.grad[~known] != 0).all()
    # log 2 per unknown bit, averaged over the unknown bits only: the known ones add nothing
    assert float(loss.detach()) == pytest.approx(float(torch.log(torch.tensor(2.0))), rel=1e-5)


def test_loss_and_train_script(pop909_root, tmp_path):
    model = _model()
    batch = {"x0": torch.zeros(2, 2, 64, 64), "melody": torch.ones(2, 2, 64, 64), "key": torch.arange(2)}
    loss, logs = binomial_loss(model, batch, model.cfg)
    assert loss.ndim == 0 and loss > 0 and "bce" in logs
    from symbolic.train_binomial import main

    data = tmp_path / "data.safetensors"
    build_dataset_file(pop909_root, data, limit=2)
    out = tmp_path / "run"
    assert (
        main(
            [
                "--preset",
                "tiny",
                "--data",
                str(data),
                "--out",
                str(out),
                "--steps",
                "20",
                "--batch-size",
                "2",
                "--num-workers",
                "0",
                "--cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len((out / "losses.jsonl").read_text().splitlines()) == 20
    trained = load_binomial(str(out / "final"))
    assert all(0 < r < 0.5 for r in trained.cfg.density) and trained.cfg.density != binomial_config("tiny").density
    # a fine-tune from those weights with known-region training; zero steps of learning rate keep them exactly
    tuned = tmp_path / "tuned"
    assert (
        main(
            [
                "--preset",
                "tiny",
                "--data",
                str(data),
                "--out",
                str(tuned),
                "--init",
                str(out / "final"),
                "--known-prob",
                "0.5",
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--lr",
                "0",
                "--num-workers",
                "0",
                "--cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    before, after = trained.state_dict(), load_binomial(str(tuned / "final")).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert (
        main(
            [
                "--preset",
                "small",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "bad"),
                "--init",
                str(out / "final"),
                "--steps",
                "1",
                "--cpu",
                "--no-progress",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "--preset",
                "tiny",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "bad"),
                "--known-prob",
                "1.5",
                "--steps",
                "1",
                "--cpu",
                "--no-progress",
            ]
        )
        == 2
    )
