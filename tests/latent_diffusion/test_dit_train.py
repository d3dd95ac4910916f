"""A 20-step tiny DiT training run on the CPU through the command line and the shared loop."""

from __future__ import annotations

import json
import math

import pytest
import torch

from guidance.objective import v_objective_loss, v_squared_error
from latent_diffusion import DiT, dit_preset
from latent_diffusion.known_masks import GAP_FRACTION, P_NOTHING_KNOWN, P_PREFIX, random_known_mask
from latent_diffusion.latent_cache import LatentCache, save_latent_cache
from latent_diffusion.train import initial_model, main
from musicprod_common.errors import run_main
from musicprod_common.training import example_rand, example_randn


@pytest.fixture
def cache(tmp_path):
    """Structured latents (per-channel sinusoids with a per-example phase): learnable in a few steps."""
    n, channels, frames = 48, 16, 32
    phase = torch.linspace(0, 2 * math.pi, n)[:, None, None]
    freq = (1 + torch.arange(channels) % 4)[None, :, None]
    z = 2.0 * torch.sin(2 * math.pi * freq * torch.arange(frames) / frames + phase) + 0.5
    path = tmp_path / "latents.safetensors"
    save_latent_cache(path, z, hop_samples=1024, sample_rate=44100)
    return path


def _eval_loss(model: torch.nn.Module, data: LatentCache) -> float:
    """v-loss on a fixed batch with fixed noise and times (indices the training never drew noise for)."""
    x0 = torch.stack([data[i]["latents"] for i in range(32)])
    with torch.no_grad():
        return float(v_objective_loss(model, x0, torch.arange(10_000, 10_032)))


def test_twenty_steps_learn_and_export(cache, tmp_path):
    out = tmp_path / "run"
    main(
        [
            "--preset",
            "tiny",
            "--latents",
            str(cache),
            "--out",
            str(out),
            "--steps",
            "20",
            "--batch-size",
            "16",
            "--lr",
            "1e-2",
            "--warmup-steps",
            "2",
            "--cpu",
            "--no-progress",
        ]
    )
    losses = [json.loads(line)["loss"] for line in (out / "losses.jsonl").read_text().splitlines()]
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)

    data = LatentCache(cache)
    trained = DiT.from_pretrained(out / "final")
    assert trained.config.in_channels == 16 and trained.config.latent_std == pytest.approx(tuple(data.std.tolist()))
    fresh = DiT(dit_preset("tiny", **data.dit_overrides()))
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()))
    assert _eval_loss(trained, data) < 0.95 * _eval_loss(fresh, data)


def test_fine_tune_starts_from_the_checkpoint_and_keeps_its_statistics(cache, tmp_path):
    first = tmp_path / "first"
    main(
        [
            "--preset",
            "tiny",
            "--latents",
            str(cache),
            "--out",
            str(first),
            "--steps",
            "10",
            "--batch-size",
            "8",
            "--lr",
            "1e-2",
            "--warmup-steps",
            "2",
            "--cpu",
            "--no-progress",
            "--export-dtype",
            "float32",
        ]
    )
    shifted = tmp_path / "shifted.safetensors"  # same "VAE", other statistics
    save_latent_cache(shifted, LatentCache(cache, normalize=False).raw * 1.5 + 0.3, hop_samples=1024, sample_rate=44100)
    tuned = tmp_path / "tuned"
    main(
        [
            "--init",
            str(first / "final"),
            "--latents",
            str(shifted),
            "--out",
            str(tuned),
            "--steps",
            "3",
            "--batch-size",
            "8",
            "--lr",
            "1e-12",
            "--warmup-steps",
            "1",
            "--cpu",
            "--no-progress",
            "--export-dtype",
            "float32",
        ]
    )
    start, end = DiT.from_pretrained(first / "final"), DiT.from_pretrained(tuned / "final")
    assert end.config == start.config
    _, data = initial_model(str(first / "final"), [shifted])  # training sees the checkpoint's normalisation
    mean, std = torch.tensor(start.config.latent_mean), torch.tensor(start.config.latent_std)
    torch.testing.assert_close(data[0]["latents"], (data.raw[0] - mean[:, None]) / std[:, None])
    assert not torch.allclose(mean, LatentCache(shifted).mean, atol=0.1)
    for a, b in zip(start.state_dict().values(), end.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_init_stats_cache_moves_the_checkpoint_onto_a_new_latent_space(cache, tmp_path):
    first = tmp_path / "first"
    main(
        [
            "--preset",
            "tiny",
            "--latents",
            str(cache),
            "--out",
            str(first),
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--cpu",
            "--no-progress",
            "--export-dtype",
            "float32",
        ]
    )
    other_vae = tmp_path / "other.safetensors"  # same shape, another VAE's statistics
    save_latent_cache(
        other_vae, LatentCache(cache, normalize=False).raw * 3.0 - 2.0, hop_samples=1024, sample_rate=44100
    )
    model, data = initial_model(str(first / "final"), [other_vae], keep_stats=False)
    own = LatentCache(other_vae)
    torch.testing.assert_close(data.mean, own.mean)
    torch.testing.assert_close(data[0]["latents"], own[0]["latents"])
    assert model.config.latent_std == pytest.approx(tuple(own.std.tolist()))  # what decoding its samples needs
    start = DiT.from_pretrained(first / "final")
    assert not torch.allclose(torch.tensor(start.config.latent_std), own.std, atol=0.1)
    for a, b in zip(start.state_dict().values(), model.state_dict().values()):
        torch.testing.assert_close(a, b)
    tuned = tmp_path / "tuned"
    main(
        [
            "--init",
            str(first / "final"),
            "--init-stats",
            "cache",
            "--latents",
            str(other_vae),
            "--out",
            str(tuned),
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--cpu",
            "--no-progress",
            "--export-dtype",
            "float32",
        ]
    )
    assert DiT.from_pretrained(tuned / "final").config.latent_mean == pytest.approx(tuple(own.mean.tolist()))


def test_fine_tune_refuses_a_cache_of_another_shape(cache, tmp_path, capsys):
    first = tmp_path / "first"
    main(
        [
            "--preset",
            "tiny",
            "--latents",
            str(cache),
            "--out",
            str(first),
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--cpu",
            "--no-progress",
        ]
    )
    other = tmp_path / "other.safetensors"
    save_latent_cache(other, torch.randn(8, 16, 64), hop_samples=1024, sample_rate=44100)
    argv = [
        "--init",
        str(first / "final"),
        "--latents",
        str(other),
        "--out",
        str(tmp_path / "t"),
        "--steps",
        "2",
        "--cpu",
    ]
    assert run_main(main, argv, prog="latent_diffusion.train") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "do not match --init" in err[0]


def test_budget_anneals_and_stops_with_large_steps(cache, tmp_path):
    """``--steps`` large + ``--max-minutes``: the shared loop stops on the budget and exports."""
    out = tmp_path / "run"
    main(
        [
            "--preset",
            "tiny",
            "--latents",
            str(cache),
            "--out",
            str(out),
            "--steps",
            "1000000",
            "--max-minutes",
            "0.01",
            "--batch-size",
            "8",
            "--cpu",
            "--no-progress",
        ]
    )
    state = torch.load(out / "state.pt", weights_only=True)
    assert 1 <= state["step"] < 1000000 and (out / "final" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["--out", "x"],  # no data
        ["--out", "x", "--latents", "missing.safetensors", "--steps", "3"],
        ["--out", "x", "--vae", "some/vae"],  # --vae without --data
        ["--out", "x", "--latents", "CACHE", "--steps", "0"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, cache, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [str(cache) if a == "CACHE" else a for a in argv]
    assert run_main(main, argv, prog="latent_diffusion.train") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_steps_auto_is_gone(cache, capsys):
    """``--steps`` is a plain number: ``auto`` is a one-line usage error, exit 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--latents", str(cache), "--out", "x", "--steps", "auto"])
    assert exit_info.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_builds_the_cache_from_a_vae_and_an_audio_folder(tmp_path):
    """The ``--vae CKPT --data DIR`` path: encode the folder once, take C and the hop from the VAE, train."""
    import soundfile as sf

    from musicprod_common.checkpoint import save_pretrained
    from vae import SpectrogramVAE

    vae = SpectrogramVAE.from_preset("tiny")
    save_pretrained(vae, vae.config, tmp_path / "vae")
    clips = tmp_path / "clips"
    clips.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        sf.write(clips / f"c{i}.flac", (0.1 * torch.randn(44100, 2, generator=g)).numpy(), 44100)
    out = tmp_path / "run"
    main(
        [
            "--preset",
            "tiny",
            "--vae",
            str(tmp_path / "vae"),
            "--data",
            str(clips),
            "--out",
            str(out),
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--cpu",
            "--no-progress",
        ]
    )
    data = LatentCache(out / "latents.safetensors")
    frames = dit_preset("tiny").frames
    assert (data.channels, data.frames, data.hop_samples) == (vae.config.latent_channels, frames, vae.latent_hop)
    assert len(data) == 3 * (44100 // (frames * vae.latent_hop))  # whole windows per 1 s clip
    trained = DiT.from_pretrained(out / "final")
    assert trained.config.in_channels == vae.config.latent_channels


def test_random_known_masks_cover_the_three_edits_and_are_functions_of_the_key():
    frames, n = 256, 2000
    masks = random_known_mask(torch.arange(n), frames)[:, 0]
    assert torch.equal(random_known_mask(torch.arange(n), frames)[:, 0], masks)
    unknown = 1 - masks
    runs = (unknown[:, 1:] > unknown[:, :-1]).sum(1) + unknown[:, 0]  # starts of unknown runs
    assert (runs == 1).all()  # one gap (or everything) per draw
    nothing = masks.sum(1) == 0
    prefix = ~nothing & (unknown[:, -1] == 1)
    assert abs(float(nothing.float().mean()) - P_NOTHING_KNOWN) < 0.03
    assert abs(float(prefix.float().mean()) - P_PREFIX) < 0.04  # a gap drawn at the very end also counts here
    gaps = unknown[~nothing].sum(1)
    lo, hi = GAP_FRACTION
    assert gaps.min() >= round(lo * frames) and gaps.max() <= round(hi * frames)


def test_weighted_v_objective_is_the_mean_over_the_weighted_elements():
    net = lambda x, t: 0.3 * x  # noqa: E731
    x0 = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(0))
    keys = torch.arange(4)
    assert torch.allclose(v_objective_loss(net, x0, keys, weight=torch.ones(4, 1, 8)), v_objective_loss(net, x0, keys))
    weight = torch.zeros(4, 1, 8)
    weight[..., :3] = 1.0
    t = example_rand(keys, (), salt=1)
    eps = example_randn(keys, (3, 8), salt=2)
    expected = v_squared_error(net, x0, t, eps)[..., :3].mean()
    assert torch.allclose(v_objective_loss(net, x0, keys, weight=weight), expected)


def test_known_conditioning_learns_to_read_the_context(tmp_path):
    """Latents constant in time, a random level per example and channel: at high noise only the known frames tell
    the level, so after training the gap's v-error is far lower with them than without them."""
    n, channels, frames = 256, 16, 32
    z = torch.randn(n, channels, 1, generator=torch.Generator().manual_seed(0)).expand(n, channels, frames).contiguous()
    path = tmp_path / "flat.safetensors"
    save_latent_cache(path, z, hop_samples=1024, sample_rate=44100)
    out = tmp_path / "run"
    main(
        [
            "--preset",
            "tiny",
            "--known-conditioning",
            "--latents",
            str(path),
            "--out",
            str(out),
            "--steps",
            "300",
            "--batch-size",
            "32",
            "--lr",
            "1e-2",
            "--warmup-steps",
            "5",
            "--cpu",
            "--no-progress",
            "--export-dtype",
            "float32",
        ]
    )
    model = DiT.from_pretrained(out / "final")
    data = LatentCache(path)
    x0 = torch.stack([data[i]["latents"] for i in range(64)])
    mask = torch.ones(64, 1, frames)
    mask[..., 10:22] = 0.0
    gap = 1.0 - mask
    keys = torch.arange(50_000, 50_064)
    t_high = torch.full((64,), 0.9)
    eps = example_randn(keys, (channels, frames), salt=2)
    with torch.no_grad():
        with_context = (v_squared_error(model, x0, t_high, eps, known=x0, known_mask=mask) * gap).sum() / (
            gap.sum() * channels
        )
        without = (v_squared_error(model, x0, t_high, eps) * gap).sum() / (gap.sum() * channels)
    assert with_context < 0.6 * without, (float(with_context), float(without))  # 0.37x measured at these settings
