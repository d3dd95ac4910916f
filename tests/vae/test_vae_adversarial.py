"""The optional adversarial decoder stage: gradient routing, frozen encoder, loadable export."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

from musicprod_common.checkpoint import save_pretrained
from vae import PRESETS, SpectrogramVAE
from vae.adversarial import AdversarialConfig, AdversarialVAE, main, switch_phase
from vae.train import VAELoss


def test_each_loss_moves_only_its_own_side():
    torch.manual_seed(0)
    vae = SpectrogramVAE.from_preset("tiny").train()
    model = AdversarialVAE(vae, AdversarialConfig(disc_ffts=(256, 128)), VAELoss(crop_samples=2048))
    x = torch.randn(2, 2, 2048, generator=torch.Generator().manual_seed(1)) * 0.1
    _, logs = model(x, torch.zeros(2, 2, 16))
    dec, disc = list(vae.decoder.parameters()), list(model.disc.parameters())
    grads_d = torch.autograd.grad(logs["disc"], dec + disc, retain_graph=True, allow_unused=True)
    assert all(g is None for g in grads_d[: len(dec)])
    assert any(g is not None and g.abs().sum() > 0 for g in grads_d[len(dec) :])
    grads_g = torch.autograd.grad(logs["adv"] + logs["feat"], dec + disc, retain_graph=True, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads_g[: len(dec)])
    assert all(g is None for g in grads_g[len(dec) :])
    assert not any(p.requires_grad for p in vae.encoder.parameters())


def test_zero_adversarial_weights_are_a_plain_decoder_fine_tune():
    torch.manual_seed(0)
    vae = SpectrogramVAE.from_preset("tiny").train()
    recon = VAELoss(crop_samples=2048)
    model = AdversarialVAE(vae, AdversarialConfig(w_adv=0.0, w_feat=0.0, disc_ffts=(256,)), recon)
    x = torch.randn(2, 2, 2048, generator=torch.Generator().manual_seed(1)) * 0.1
    noise = torch.zeros(2, 2, 16)
    loss, logs = model(x, noise)
    with torch.no_grad():
        z = vae.encode(x, chunked=False).sample(noise)
        spectra = (vae.decode_spectrum(z)[0], vae.input_magnitude(x))
        expected, _ = recon.terms(vae.decode(z, 2048, chunked=False, phase_iterations=0), x, spectra)
    assert "disc" not in logs and torch.allclose(loss, expected)
    grads = torch.autograd.grad(loss, [*vae.decoder.parameters(), *model.disc.parameters()], allow_unused=True)
    assert all(g is None for g in grads[len(list(vae.decoder.parameters())) :])  # the discriminator never ran
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.slow  # ~15-35 s on 2 shared cores
def test_adversarial_stage_exports_a_vae_with_the_same_encoder(tmp_path):
    torch.manual_seed(0)
    init = SpectrogramVAE.from_preset("tiny")
    save_pretrained(init, init.config, tmp_path / "init")
    (tmp_path / "data").mkdir()
    t = np.arange(22050) / 44100
    for i in range(2):
        tone = (np.sin(2 * np.pi * 220 * (i + 1) * t) * 0.3).astype(np.float32)
        sf.write(str(tmp_path / "data" / f"{i}.flac"), np.stack([tone, tone], 1), 44100)
    main(
        [
            "--init",
            str(tmp_path / "init"),
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--crop-frames",
            "16",
            "--clip-seconds",
            "0.5",
            "--num-workers",
            "0",
            "--cpu",
            "--no-progress",
            "--warmup-steps",
            "1",
            "--lr",
            "1e-3",
            "--export-dtype",
            "float32",
        ]
    )
    tuned = SpectrogramVAE.from_pretrained(tmp_path / "run" / "final")
    before, after = init.state_dict(), tuned.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


def test_switching_the_phase_reading_keeps_the_latent_space_and_the_magnitude():
    torch.manual_seed(0)
    vae = SpectrogramVAE(dataclasses.replace(PRESETS["tiny"], phase="absolute"))  # as the shipped checkpoint
    switched = switch_phase(vae, "instantaneous_frequency")
    assert switched.config.phase == "instantaneous_frequency" and vae.config.phase == "absolute"
    before, after = vae.state_dict(), switched.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("decoder.head."))
    z = torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        (mag_a, _), (mag_b, phase_b) = vae.decode_spectrum(z), switched.decode_spectrum(z)
    assert torch.equal(mag_a, mag_b)
    # zeroed phase outputs: every bin advances by its centre frequency, 2 pi k hop / n_fft per frame
    advance = torch.arange(129) * (2 * torch.pi * 64 / 256)
    step = phase_b[0, 1:, 0] - phase_b[0, :-1, 0]
    off = torch.remainder(step - advance + torch.pi, 2 * torch.pi) - torch.pi  # wrapped to [-pi, pi)
    assert off.abs().max() < 1e-4
    assert switch_phase(switched, "instantaneous_frequency") is switched
