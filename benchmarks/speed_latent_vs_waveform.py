"""Speed: seconds of audio generated per second of compute, latent model vs waveform model, at equal steps.

    python benchmarks/speed_latent_vs_waveform.py [--dit runs/dit/final] [--vae runs/vae/final] \
        [--unet runs/unet/final] [--steps 50] [--threads 1] [--repeats 2] [--waveform-seconds 5.94]

Both models are timed in the same run, interleaved, on the CPU, each generating one window unguided with
deterministic DDIM (``guidance.sampler.sample``) from noise:

* latent:   ``small`` DiT over 5.94 s (2^18 samples) of latent frames, then the VAE decode to audio;
* waveform: ``small`` U-Net over its training window (2^16 samples, 1.49 s), and, with
  ``--waveform-seconds``, over a window of that length too (so both generate the same duration).

Without checkpoints the ``small`` presets are built with random weights: the timing does not depend on the
weights. Prints one JSON line per measurement, then a summary line with the throughput ratio (the issue's
target is ≥ 10×). The best of ``--repeats`` runs is kept for each, which discounts other load on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Callable

import torch
from latent_models import load_latent_models

from guidance.denoiser import Denoiser
from guidance.sampler import sample
from guidance.schedule import uniform_timesteps
from latent_diffusion import DiT
from vae import SpectrogramVAE
from waveform_diffusion import WaveformUNet, unet_preset


def build(args: argparse.Namespace) -> tuple[DiT, SpectrogramVAE, WaveformUNet]:
    dit, vae, _ = load_latent_models(args.vae, args.dit)
    unet = WaveformUNet.from_pretrained(args.unet) if args.unet else WaveformUNet(unet_preset("small"))
    return dit, vae, unet.eval()


def best_time(fn: Callable[[], torch.Tensor], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dit", help="DiT checkpoint folder (default: random-init small preset)")
    p.add_argument("--vae", help="VAE checkpoint folder (default: random-init small preset)")
    p.add_argument("--unet", help="U-Net checkpoint folder (default: random-init small preset)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--waveform-seconds",
        type=float,
        default=None,
        help="also time the U-Net on a window of about this many seconds (e.g. 5.94, the latent window)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dit, vae, unet = build(args)
    ts = uniform_timesteps(args.steps)
    gen = torch.Generator().manual_seed(0)

    latent_samples = dit.config.window_samples
    z_T = torch.randn(1, dit.config.in_channels, dit.config.frames, generator=gen)

    @torch.no_grad()
    def run_latent() -> torch.Tensor:
        z = sample(Denoiser(dit), z_T, ts)
        return vae.decode(dit.denormalize_latents(z), latent_samples)

    windows = [unet.config.window]
    if args.waveform_seconds:
        factor = unet.config.total_factor
        windows.append(max(factor, round(args.waveform_seconds * unet.config.sample_rate / factor) * factor))
    noises = {w: torch.randn(1, 2, w, generator=gen) for w in windows}

    def run_waveform(window: int) -> Callable[[], torch.Tensor]:
        @torch.no_grad()
        def run() -> torch.Tensor:
            return sample(Denoiser(unet), noises[window], ts)

        return run

    run_latent(), run_waveform(windows[0])()  # warm-up: allocator, lazy init
    results = []
    seconds = best_time(run_latent, args.repeats)
    audio = latent_samples / dit.config.sample_rate
    results.append(
        {
            "model": "latent (DiT small + VAE decode)",
            "audio_seconds": audio,
            "compute_seconds": seconds,
            "audio_per_compute": audio / seconds,
            "params_M": sum(q.numel() for q in dit.parameters()) / 1e6,
        }
    )
    for window in windows:
        seconds = best_time(run_waveform(window), args.repeats)
        audio = window / unet.config.sample_rate
        results.append(
            {
                "model": f"waveform (U-Net small, {window} samples)",
                "audio_seconds": audio,
                "compute_seconds": seconds,
                "audio_per_compute": audio / seconds,
                "params_M": sum(q.numel() for q in unet.parameters()) / 1e6,
            }
        )
    for row in results:
        print(json.dumps({"steps": args.steps, "threads": args.threads, **row}))
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), torch "
        f"{torch.__version__}",
        "steps": args.steps,
        "weights": "checkpoints"
        if (args.dit and args.vae and args.unet)
        else "random-init small presets (timing only)",
        "ratio_latent_over_waveform": [
            results[0]["audio_per_compute"] / row["audio_per_compute"] for row in results[1:]
        ],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
