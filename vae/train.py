"""Train the spectrogram VAE with the shared loop.

    python -m vae.train --preset small --data DIR --out runs/vae --max-minutes 9 --batch-size 64 --mixed-precision bf16
    accelerate launch -m vae.train --preset small --data DIR --out runs/vae ...

``DIR`` is a folder of audio clips (e.g. pre-rendered POP909 FLACs). Every clip is decoded once into
memory (float16, in parallel worker processes); training examples are short random crops of those clips
with a random gain, so the GPU never waits on audio decoding.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Mapping

import auraloss.freq
import torch
from torch.utils.data import DataLoader, Dataset

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.datasets import AudioFolderSegments
from musicprod_common.errors import InputError, OneLineParser, run_main
from musicprod_common.training import (
    STATE_NAME,
    TrainConfig,
    add_train_args,
    example_randn,
    mix_seed,
    train,
    train_config_from_args,
)

from .model import PHASE_MODES, SpectrogramVAE, VAEConfig, get_config
from .spectral_init import init_from_spectra


@dataclasses.dataclass
class LossConfig:
    mrstft_ffts: tuple[int, ...] = (512, 1024, 2048, 4096, 8192)  # long windows resolve the low and mid bands
    sum_diff_ffts: tuple[int, ...] = (1024, 2048, 4096)
    w_mrstft: float = 1.0
    w_sum_diff: float = 1.0  # stereo image: auraloss's sum-and-difference term
    # off: with summed (instantaneous-frequency) phase the waveform's absolute phase is the decoder's free
    # choice, and a sample-wise L1 against a signal of unknown phase rewards a quieter output
    w_l1: float = 0.0
    w_kl: float = 1e-4  # small: the latent should stay close to N(0, I) without blurring the reconstruction
    # multi-resolution log-mel L1, the main reconstruction loss of HiFi-GAN and Vocos; off in stage 1
    w_mel: float = 0.0
    mel_ffts: tuple[int, ...] = (1024, 2048, 4096, 8192)  # 128 bands leave empty filters below n_fft 1024
    mel_bins: int = 128
    # the decoder's own magnitude (before the iSTFT) against the input's STFT on the same grid: log-magnitude
    # L1 + spectral convergence. The iSTFT of an inconsistent spectrogram cancels, and without this term the
    # first GPU-trained decoder learned to shape its output by cancellation (a flat magnitude, the level set by phase)
    w_spectrum: float = 1.0
    spectrum_floor: float = 1e-5  # magnitudes below are clamped (the evaluation's mel floor): silence is not fitted


class VAELoss:
    """auraloss multi-resolution STFT + sum-and-difference STFT + waveform L1 + KL (the losses of Levy et al. 2023,
    with the sum-and-difference term for stereo), and the decoder's own magnitude against the input's STFT.

    The default weights suit summed phase: the waveform L1 is off and the own-magnitude term on (see ``LossConfig``);
    ``--w-l1 1 --w-spectrum 0`` gives the first GPU-trained checkpoint's losses back.
    """

    def __init__(self, cfg: LossConfig | None = None, *, crop_samples: int | None = None):
        self.cfg = cfg = cfg or LossConfig()

        def res(ffts: tuple[int, ...]) -> dict[str, list[int]]:
            # torch.stft's reflect padding needs n_fft / 2 < length: drop resolutions too long for the crop
            fits = [n for n in ffts if crop_samples is None or n < crop_samples] or [min(ffts)]
            return {"fft_sizes": fits, "hop_sizes": [n // 4 for n in fits], "win_lengths": fits}

        self.mrstft = auraloss.freq.MultiResolutionSTFTLoss(**res(cfg.mrstft_ffts))
        self.sum_diff = auraloss.freq.SumAndDifferenceSTFTLoss(**res(cfg.sum_diff_ffts))
        self.spectral_convergence = auraloss.freq.SpectralConvergenceLoss()
        self.log_magnitude = auraloss.freq.STFTMagnitudeLoss(log=True, distance="L1")
        self.mel = (
            None
            if cfg.w_mel == 0
            else auraloss.freq.MultiResolutionSTFTLoss(
                **res(cfg.mel_ffts),
                w_sc=0.0,
                w_log_mag=1.0,
                scale="mel",
                n_bins=cfg.mel_bins,
                sample_rate=SAMPLE_RATE,  # the VAE's only rate
            )
        )

    def __call__(
        self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["audio"].float()  # (B, 2, T)
        core = model.module if hasattr(model, "module") else model  # DDP wraps the model
        shape = (core.config.latent_channels, core.latent_length(x.shape[-1]))
        noise = example_randn(batch["key"], shape, salt=0x5AE, device=x.device)  # per-draw posterior noise
        y, posterior, magnitude = model(x, noise)
        with torch.autocast(x.device.type, enabled=False):
            recon, logs = self.terms(y, x, (magnitude, core.input_magnitude(x)) if self.cfg.w_spectrum else None)
            l_kl = posterior.kl().mean()
        loss = recon + self.cfg.w_kl * l_kl
        logs["kl"] = l_kl
        return loss, {k: float(v.detach()) for k, v in logs.items()}

    def terms(
        self, y: torch.Tensor, x: torch.Tensor, spectra: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted reconstruction loss of ``y`` against ``x`` (both ``(B, 2, T)``), in float32, and its parts.

        ``spectra``: the decoder's magnitude and the input's on the same grid, for the ``w_spectrum`` term.
        """
        y, x = y.float(), x.float()
        self.mrstft.to(x.device)
        self.sum_diff.to(x.device)
        c = self.cfg
        parts = {"mrstft": self.mrstft(y, x), "sum_diff": self.sum_diff(y, x), "l1": (y - x).abs().mean()}
        total = c.w_mrstft * parts["mrstft"] + c.w_sum_diff * parts["sum_diff"] + c.w_l1 * parts["l1"]
        if self.mel is not None:
            parts["mel"] = self.mel.to(x.device)(y, x)
            total = total + c.w_mel * parts["mel"]
        if c.w_spectrum and spectra is not None:
            parts["spectrum"] = self.spectrum(*spectra)
            total = total + c.w_spectrum * parts["spectrum"]
        return total, parts

    def spectrum(self, magnitude: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Spectral convergence + log-magnitude L1 of the decoder's own magnitude against the input's (same grid)."""
        est, ref = (m.float().clamp(min=self.cfg.spectrum_floor) for m in (magnitude, reference))
        return self.spectral_convergence(est, ref) + self.log_magnitude(est, ref)


# ---- data ------------------------------------------------------------------------------------------


def _clip_dataset(root: Path, seconds: float, seed: int) -> Dataset:
    """The foundation's audio-folder dataset: items ``{"audio": (2, seconds * 44100)}``."""
    return AudioFolderSegments(root, seconds, seed=seed)


def load_clip_bank(
    root: str | os.PathLike, *, seconds: float = 6.0, seed: int = 0, workers: int | None = None
) -> torch.Tensor:
    """Decode every clip under ``root`` once: ``(N, 2, seconds * 44100)`` float16 (half the RAM, ample precision)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: data folder not found; pass a folder of audio clips with --data")
    dataset = _clip_dataset(root, seconds, seed)
    workers = min(16, os.cpu_count() or 1) if workers is None else workers
    loader = DataLoader(
        dataset,
        batch_size=16,
        num_workers=workers,
        collate_fn=lambda items: torch.stack([i["audio"] for i in items]).half(),
    )
    bank: torch.Tensor | None = None
    filled = 0
    for chunk in loader:  # fill one preallocated tensor: no second copy of a bank that may be tens of GB
        if bank is None:
            bank = torch.empty(len(dataset), *chunk.shape[1:], dtype=torch.float16)
        bank[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return bank


class RandomCrops(Dataset):
    """``crops_per_clip`` random crops of each clip in a bank, each a function of its index only.

    Each item: ``{"audio": (2, crop_samples)}`` with its peak set to a random level in ``peak_db`` dBFS
    (wide, so quiet and loud inputs are both seen in training: the calibration run sent quiet inputs back
    too loud) and a random left/right swap.
    """

    def __init__(
        self,
        bank: torch.Tensor,
        crop_samples: int,
        crops_per_clip: int = 64,
        *,
        peak_db: tuple[float, float] = (-40.0, 0.0),
        seed: int = 0,
    ):
        if bank.shape[-1] < crop_samples:
            raise InputError(
                f"clips are {bank.shape[-1]} samples, shorter than the crop of {crop_samples}; use longer clips or "
                "--crop-frames smaller"
            )
        self.bank, self.crop, self.per_clip, self.peak_db, self.seed = bank, crop_samples, crops_per_clip, peak_db, seed

    def __len__(self) -> int:
        return self.bank.shape[0] * self.per_clip

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(mix_seed(self.seed, index))
        clip = self.bank[index % self.bank.shape[0]]
        start = int(torch.randint(0, clip.shape[-1] - self.crop + 1, (), generator=g))
        lo, hi = self.peak_db
        peak_db = lo + (hi - lo) * float(torch.rand((), generator=g))
        audio = clip[:, start : start + self.crop].float()
        # normalise the crop's peak to a random level; renders sit near -14 dBFS, real mixes near 0 dBFS
        gain = 10.0 ** (peak_db / 20.0) / audio.abs().amax().clamp(min=10.0 ** (peak_db / 20.0 - 2.0))  # at most +40 dB
        audio = audio * gain
        if bool(torch.rand((), generator=g) < 0.5):
            audio = audio.flip(0)
        return {"audio": audio}


# ---- CLI ---------------------------------------------------------------------------------------------


def add_loss_args(p: argparse.ArgumentParser) -> None:
    """The reconstruction-loss options shared by ``vae.train`` and ``vae.adversarial`` (read by
    :func:`loss_config_from_args`)."""
    p.add_argument("--w-l1", type=float, default=LossConfig.w_l1, help="weight of the waveform L1 term")
    p.add_argument(
        "--w-spectrum",
        type=float,
        default=LossConfig.w_spectrum,
        help="weight of the decoder's own magnitude against the input's STFT (log-magnitude L1 + spectral convergence)",
    )
    p.add_argument(
        "--mrstft-ffts",
        type=int,
        nargs="+",
        default=list(LossConfig.mrstft_ffts),
        help="FFT sizes of the multi-resolution STFT loss (hop FFT/4); the losses are most of a CPU step's time",
    )
    p.add_argument(
        "--sum-diff-ffts",
        type=int,
        nargs="+",
        default=list(LossConfig.sum_diff_ffts),
        help="FFT sizes of the stereo sum-and-difference STFT loss",
    )


def loss_config_from_args(args: argparse.Namespace, **fields: float) -> LossConfig:
    return LossConfig(
        mrstft_ffts=tuple(args.mrstft_ffts),
        sum_diff_ffts=tuple(args.sum_diff_ffts),
        w_l1=args.w_l1,
        w_spectrum=args.w_spectrum,
        **fields,
    )


DEFAULTS = TrainConfig(
    steps=15000,
    batch_size=32,
    lr=6e-4,
    warmup_steps=300,
    log_every=50,
    checkpoint_every=1000,
    num_workers=min(8, os.cpu_count() or 1),
)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m vae.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small", help="model preset: tiny, small, paper")
    p.add_argument("--data", required=True, help="folder of audio clips (flac/wav/ogg/mp3)")
    p.add_argument("--out", required=True, help="run folder: state.pt, losses.jsonl, tb/, final/")
    p.add_argument(
        "--crop-frames", type=int, default=64, help="latent frames per training crop (64 x 1024 samples = 1.49 s)"
    )
    p.add_argument("--clip-seconds", type=float, default=6.0, help="length of the clips read from --data")
    p.add_argument("--crops-per-clip", type=int, default=256)
    p.add_argument("--phase", choices=PHASE_MODES, default=None, help="override the preset's decoder phase reading")
    p.add_argument(
        "--spectral-init",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the encoder's filterbank and the decoder's log-magnitude head from PCA of the training spectra "
        "(vae/spectral_init.py: lower held-out mel at equal CPU time, 40 of 40 clips)",
    )
    add_loss_args(p)
    p.add_argument("--no-progress", action="store_true")
    add_train_args(p, DEFAULTS)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    config: VAEConfig = get_config(args.preset)
    if args.phase is not None:
        config = dataclasses.replace(config, phase=args.phase)
    model = SpectrogramVAE(config)
    bank = load_clip_bank(args.data, seconds=args.clip_seconds, seed=args.seed)
    dataset = RandomCrops(bank, args.crop_frames * config.latent_hop, args.crops_per_clip, seed=args.seed)
    loss_fn = VAELoss(loss_config_from_args(args), crop_samples=dataset.crop)
    if args.spectral_init and not (Path(args.out) / STATE_NAME).exists():  # a resumed run has its own weights
        kept = init_from_spectra(model, dataset)
        print("spectral init: " + ", ".join(f"{k} {v:.3f}" for k, v in kept.items()), file=sys.stderr)
    cfg = train_config_from_args(args)
    summary = train(model, loss_fn, dataset, cfg, args.out, model_config=config, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"trained {summary['steps']} steps in {summary['wall_seconds']:.0f} s on {len(bank)} clips; "
            f"last losses {summary['last']}; weights in {Path(args.out) / 'final'}"
        )
    return summary


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="vae.train"))
