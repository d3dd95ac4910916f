"""Optional second stage: fine-tune the decoder against a multi-scale STFT discriminator, encoder frozen.

    python -m vae.adversarial --init runs/vae/final --data DIR --out runs/vae_adv --max-minutes 5 \\
        --batch-size 32 --mixed-precision bf16

As the design card summarises Levy et al. 2023, their VAE decoder is fine-tuned for a short while against a
multi-scale STFT discriminator with the encoder frozen. The discriminator follows the shape EnCodec
describes (Défossez et al. 2022, "High Fidelity Neural Audio Compression"): one 2-D conv net per STFT
resolution over the real and imaginary parts, hinge losses, and an L1 feature-matching term normalised
by the mean magnitude of the real features.

``--w-adv 0 --w-feat 0`` skips the discriminator: a plain decoder fine-tune on the stage-1 losses. Either way
the encoder, and so the latent space a DiT was trained on, stays exactly as it was, so the result can replace
a shipped decoder without retraining the DiT.

The shared loop has one optimizer, so generator and discriminator share it: the discriminator's loss
sees the reconstruction detached, and the generator's adversarial terms see the discriminator's weights
detached (``torch.func.functional_call``), so each loss moves only its own side.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from musicprod_common.checkpoint import WEIGHTS_NAME, load_weights, save_pretrained
from musicprod_common.errors import OneLineParser, run_main
from musicprod_common.training import TrainConfig, add_train_args, example_randn, train, train_config_from_args

from .model import PHASE_MODES, SpectrogramVAE
from .train import RandomCrops, VAELoss, add_loss_args, load_clip_bank, loss_config_from_args


class STFTDiscriminator(nn.Module):
    """One resolution: ``(B, 2, T)`` → logits ``(B, 1, frames', bins')`` and the feature maps before them."""

    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        act = nn.LeakyReLU(0.2)
        self.layers = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(4, channels, (3, 9), padding=(1, 4)), act),
                # strided in frequency, dilated in time (EnCodec's MS-STFTD layout)
                *[
                    nn.Sequential(
                        nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4)), act
                    )
                    for d in (1, 2, 4)
                ],
                nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), act),
            ]
        )
        self.out = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = audio.shape
        with torch.autocast(audio.device.type, enabled=False):
            spec = torch.stft(
                audio.float().reshape(b * c, t), self.n_fft, self.n_fft // 4, window=self.window, return_complex=True
            )
            x = torch.view_as_real(spec).reshape(b, c, *spec.shape[1:], 2)  # (B, 2, F, N, 2)
            x = x.permute(0, 1, 4, 3, 2).reshape(b, 2 * c, spec.shape[2], spec.shape[1])  # (B, 4, N, F)
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.out(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, n_ffts: tuple[int, ...] = (2048, 1024, 512, 256), channels: int = 32):
        super().__init__()
        self.discs = nn.ModuleList([STFTDiscriminator(n, channels) for n in n_ffts])

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(audio) for d in self.discs]


@dataclass
class AdversarialConfig:
    w_adv: float = 1.0
    w_feat: float = 2.0
    disc_ffts: tuple[int, ...] = (2048, 1024, 512, 256)


class AdversarialVAE(nn.Module):
    """The VAE (encoder frozen) and its discriminator in one module, so the shared loop (and DDP) see one model."""

    def __init__(self, vae: SpectrogramVAE, cfg: AdversarialConfig, recon: VAELoss):
        super().__init__()
        self.vae, self.cfg, self.recon = vae, cfg, recon
        self.disc = MultiScaleSTFTDiscriminator(cfg.disc_ffts)
        self.vae.encoder.requires_grad_(False)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``x``: ``(B, 2, T)``. Returns the summed generator + discriminator loss and its parts."""
        with torch.no_grad():
            z = self.vae.encode(x, chunked=False).sample(noise)
        y, mag = self.vae.decode_with_magnitude(z, x.shape[-1])
        spectra = (mag, self.vae.input_magnitude(x)) if self.recon.cfg.w_spectrum else None
        if self.cfg.w_adv == 0 and self.cfg.w_feat == 0:  # a plain decoder fine-tune: no discriminator to pay for
            with torch.autocast(x.device.type, enabled=False):
                recon, parts = self.recon.terms(y, x, spectra)
            return recon, {**parts, "recon": recon}

        # discriminator: hinge loss on real vs detached fake
        loss_d = x.new_zeros(())
        for (real, _), (fake, _) in zip(self.disc(x), self.disc(y.detach())):
            loss_d = loss_d + F.relu(1 - real.float()).mean() + F.relu(1 + fake.float()).mean()
        # generator: the same discriminator with its weights detached, so these terms train the decoder only
        frozen = {k: v.detach() for k, v in self.disc.named_parameters()}
        fake_out = torch.func.functional_call(self.disc, frozen, (y,))
        with torch.no_grad():
            real_out = self.disc(x)
        loss_adv, loss_feat = x.new_zeros(()), x.new_zeros(())
        for (fake, f_fake), (_, f_real) in zip(fake_out, real_out):
            loss_adv = loss_adv + F.relu(1 - fake.float()).mean()
            for a, b in zip(f_fake, f_real):
                loss_feat = loss_feat + (a.float() - b.float()).abs().mean() / (b.float().abs().mean() + 1e-8)
        n = len(fake_out)
        loss_adv, loss_d = loss_adv / n, loss_d / n
        loss_feat = loss_feat / (n * len(fake_out[0][1]))
        with torch.autocast(x.device.type, enabled=False):
            recon, parts = self.recon.terms(y, x, spectra)
        loss_g = recon + self.cfg.w_adv * loss_adv + self.cfg.w_feat * loss_feat
        return loss_g + loss_d, {**parts, "adv": loss_adv, "feat": loss_feat, "disc": loss_d, "recon": recon}


def adversarial_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    x = batch["audio"].float()
    core = model.module if hasattr(model, "module") else model
    shape = (core.vae.config.latent_channels, core.vae.latent_length(x.shape[-1]))
    noise = example_randn(batch["key"], shape, salt=0x5AE, device=x.device)
    loss, logs = model(x, noise)
    return loss, {k: float(v.detach()) for k, v in logs.items()}


def switch_phase(vae: SpectrogramVAE, phase: str) -> SpectrogramVAE:
    """The same VAE with the decoder's phase outputs read as ``phase`` (see ``VAEConfig.phase``).

    The rows of the head that give the phase are zeroed when the reading changes, since what they learnt
    means nothing in the other one; with ``instantaneous_frequency`` the decoder then starts with every bin
    advancing at its centre frequency. The encoder, and so the latent space, are untouched.
    """
    if phase == vae.config.phase:
        return vae
    new = SpectrogramVAE(dataclasses.replace(vae.config, phase=phase))
    new.load_state_dict(vae.state_dict())
    bins = vae.config.n_fft // 2 + 1
    with torch.no_grad():
        rows = new.decoder.head.weight.view(2, 2, bins, -1)  # (channel, magnitude/phase, bin, in)
        rows[:, 1].zero_()
        new.decoder.head.bias.view(2, 2, bins)[:, 1].zero_()
    return new.train(vae.training)


def export_vae(out_dir: Path, config) -> Path:
    """The loop exported the whole AdversarialVAE (EMA); keep only the VAE's weights, loadable by from_pretrained."""
    final = out_dir / "final"
    state = load_weights(final / WEIGHTS_NAME)
    vae = SpectrogramVAE(config)
    vae.load_state_dict({k[len("vae.") :]: v.float() for k, v in state.items() if k.startswith("vae.")})
    dtype = next(iter(state.values())).dtype
    save_pretrained(vae, config, final, dtype=dtype if dtype != torch.float32 else None)
    return final


# Discriminator training wants Adam's β = (0.5, 0.9) (the usual GAN setting), not the diffusion (0.9, 0.999).
DEFAULTS = TrainConfig(
    steps=3000,
    batch_size=32,
    lr=1e-4,
    warmup_steps=100,
    betas=(0.5, 0.9),
    log_every=50,
    checkpoint_every=500,
    num_workers=min(8, os.cpu_count() or 1),
)


def main(argv: list[str] | None = None) -> dict:
    p = OneLineParser(prog="python -m vae.adversarial", description=__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True, help="stage-1 checkpoint folder (e.g. runs/vae/final)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--crop-frames", type=int, default=64)
    p.add_argument("--clip-seconds", type=float, default=6.0)
    p.add_argument("--crops-per-clip", type=int, default=256)
    p.add_argument("--w-adv", type=float, default=1.0)
    p.add_argument("--w-feat", type=float, default=2.0)
    p.add_argument(
        "--w-mel",
        type=float,
        default=0.0,
        help="weight of a multi-resolution log-mel L1 term added to the stage-1 losses",
    )
    add_loss_args(p)
    p.add_argument(
        "--phase",
        choices=PHASE_MODES,
        default=None,
        help="read the decoder's phase outputs this way from now on (default: as --init does)",
    )
    p.add_argument("--no-progress", action="store_true")
    add_train_args(p, DEFAULTS)
    args = p.parse_args(argv)

    vae = SpectrogramVAE.from_pretrained(args.init).train()
    if args.phase is not None:
        vae = switch_phase(vae, args.phase)
    bank = load_clip_bank(args.data, seconds=args.clip_seconds, seed=args.seed)
    dataset = RandomCrops(bank, args.crop_frames * vae.latent_hop, args.crops_per_clip, seed=args.seed + 1)
    model = AdversarialVAE(
        vae,
        AdversarialConfig(w_adv=args.w_adv, w_feat=args.w_feat),
        VAELoss(loss_config_from_args(args, w_mel=args.w_mel), crop_samples=dataset.crop),
    )
    cfg = train_config_from_args(args)
    summary = train(
        model,
        adversarial_loss,
        dataset,
        cfg,
        args.out,
        model_config=vae.config,
        parameters=lambda m: [*m.vae.decoder.parameters(), *m.disc.parameters()],
        progress=not args.no_progress,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        final = export_vae(Path(args.out), vae.config)
        print(
            f"fine-tuned the decoder for {summary['steps']} steps in {summary['wall_seconds']:.0f} s; weights in "
            f"{final}"
        )
    return summary


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="vae.adversarial"))
