"""FGG U-Net shapes, the paper config size, the training script and sampling through the shared loop."""

from __future__ import annotations

import json

import torch

import symbolic.generate as G
from symbolic.chords import parse_progression
from symbolic.data import build_dataset_file
from symbolic.fgg import build_fgg, count_parameters, fgg_config, fgg_loss, load_fgg, make_cond
from symbolic.metrics import out_of_key_rate


def random_model(seed: int = 0):
    """A tiny random-init model whose zero-initialised output layer is perturbed, so it predicts something."""
    torch.manual_seed(seed)
    model = build_fgg(fgg_config("tiny")).eval()
    torch.nn.init.normal_(model.conv_out.weight, std=0.1)
    return model


def test_shapes_and_presets():
    torch.manual_seed(0)
    model = build_fgg(fgg_config("tiny"))
    x = torch.randn(2, 2, 64, 64)
    cond = make_cond(torch.rand(2, 1, 64, 64), torch.rand(2, 2, 64, 64), None)
    assert cond.shape == (2, 7, 64, 64)
    assert torch.equal(cond[:, 5:7], torch.stack([torch.ones(2, 64, 64), torch.zeros(2, 64, 64)], 1))
    assert model(x, torch.tensor([0, 999]), cond).shape == (2, 2, 64, 64)


def test_paper_config_size_on_meta():
    with torch.device("meta"):
        model = build_fgg(fgg_config("paper"))
    n = count_parameters(model)
    assert 33e6 < n < 41e6  # Zhu et al. 2024: about 37M


def test_cfg_dropout_is_per_example_deterministic():
    cfg = fgg_config("tiny")
    model = build_fgg(cfg)
    batch = {
        "x0": torch.rand(4, 2, 64, 64).round(),
        "chord": torch.rand(4, 1, 64, 64),
        "rhythm": torch.rand(4, 2, 64, 64),
        "melody": torch.rand(4, 2, 64, 64),
        "key": torch.arange(4),
    }
    seen = []
    model.forward = lambda x, t, cond: seen.append(cond) or torch.zeros_like(x)
    fgg_loss(model, batch, cfg)
    fgg_loss(model, batch, cfg)
    assert torch.equal(seen[0], seen[1])
    flags = seen[0][:, 5:7, 0, 0]
    assert set(flags.flatten().tolist()) <= {0.0, 1.0}
    assert torch.equal(seen[0][:, 1:3] * (1 - flags[:, :1, None, None]), torch.zeros(4, 2, 64, 64))  # dropped → zeros


def test_train_script_20_steps(pop909_root, tmp_path):
    from symbolic.train_fgg import main

    data = tmp_path / "data.safetensors"
    build_dataset_file(pop909_root, data, limit=2)
    out = tmp_path / "run"
    rc = main(
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
    assert rc == 0
    losses = [json.loads(line)["loss"] for line in (out / "losses.jsonl").read_text().splitlines()]
    assert len(losses) == 20 and all(loss == loss for loss in losses)  # no NaN
    model = load_fgg(str(out / "final"))
    assert model.cfg == fgg_config("tiny")


def test_sampling_uses_shared_loop_and_correction(monkeypatch):
    model = random_model()
    track = G.chord_track(parse_progression("C G Am F"), 4)
    calls = []
    real_sample = G.sample

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(G, "sample", spy)
    allowed = track.allowed()[None]
    last = {}
    out = G.sample_fgg(
        model,
        track.chord_roll()[None],
        allowed,
        melody=torch.zeros(1, 2, 64, 64),
        sampling=G.SamplingConfig(steps=5),
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: last.update(d),
    )
    assert len(calls) == 1 and calls[0]["edit_denoised"] is not None
    assert isinstance(calls[0]["edit_denoised"], G.FineGrainedCorrection)
    assert torch.equal(out, last["denoised"])  # the last step returns the edited x̂0
    assert out_of_key_rate(out, allowed) == 0.0
    raw = G.sample_fgg(
        model,
        track.chord_roll()[None],
        allowed,
        sampling=G.SamplingConfig(steps=5, correction=False),
        generator=torch.Generator().manual_seed(0),
    )
    assert calls[-1]["edit_denoised"] is None and out_of_key_rate(raw, allowed) > 0  # random-init net is out of key


def test_inpainting_keeps_known_and_long_form():
    model = random_model()
    track = G.chord_track(parse_progression("C G Am F"), 8)
    roll = G.generate_long(model, track, sampling=G.SamplingConfig(steps=3), generator=torch.Generator().manual_seed(1))
    assert roll.shape == (2, 128, 64) and out_of_key_rate(roll[None], track.allowed()[None]) == 0.0
    assert G.window_starts(8) == [0, 2, 4] and G.window_starts(32)[-1] == 28
    known = (torch.rand(1, 2, 64, 64) > 0.9).float()
    mask = torch.zeros(1, 1, 64, 1)
    mask[:, :, :32] = 1
    out = G.sample_fgg(
        model,
        track.chord_roll(0, 64)[None],
        None,
        known=known,
        known_mask=mask,
        sampling=G.SamplingConfig(steps=3),
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(out[:, :, :32], known[:, :, :32])
