"""A linear autoencoder at the VAE's budget: how far does PCA of log-magnitudes get?

    python benchmarks/vae_linear_baseline.py --train build/gpu4/vae_flac --heldout build/eval/vae_heldout

The VAE spends 16 values on every 1024 stereo samples (4 STFT frames of 2 x 513 bins at its n_fft 1024, hop 256).
This fits principal components (``vae.spectral_init.principal_components``) to such 4-frame stacks of natural-log
magnitudes from training renders, keeps ``k`` of them (k = 16 is exactly the VAE's 128x budget), and scores the
held-out renders with ``vae.evaluate.Metrics``. The phase comes from Griffin-Lim (64 iterations, as the issue's
mel baseline), so nothing but the ``k`` numbers per latent frame crosses the bottleneck. The input's true phase
is a second reading: it shows what the magnitude alone costs, and flatters pitch (a true phase carries much of it).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchaudio.transforms as T

from musicprod_common.datasets import AudioFolderSegments
from vae.evaluate import Metrics
from vae.model import VAEConfig
from vae.spectral_init import principal_components


def stacks(
    audio: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int, group: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(2, T)`` → its complex STFT ``(2, F, N + 1)`` and ``(N / group, group * 2F)`` stacks of log-magnitude
    frames."""
    spec = torch.stft(audio, n_fft, hop, window=window, center=True, return_complex=True)
    n = (spec.shape[-1] - 1) // group * group
    logmag = spec[..., :n].abs().clamp(min=1e-5).log()  # (2, F, n)
    return spec, logmag.permute(2, 0, 1).reshape(n // group, -1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="folder of training renders to fit the components on")
    p.add_argument("--heldout", required=True, help="folder of held-out renders to score (vae.evaluate's --data)")
    p.add_argument("--train-clips", type=int, default=200)
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--ks", type=int, nargs="+", default=[16, 32, 64], help="components kept; 16 = the VAE's budget")
    p.add_argument("--gl-iters", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="JSON file for the results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()

    cfg = VAEConfig()
    n_fft, hop, group = cfg.n_fft, cfg.hop_length, cfg.time_down
    window = torch.hann_window(n_fft)
    train = AudioFolderSegments(args.train, 6.0, seed=0)
    frames = torch.cat(
        [stacks(train[i]["audio"], window, n_fft, hop, group)[1] for i in range(min(args.train_clips, len(train)))]
    ).double()
    components = principal_components(frames, max(args.ks))
    mean, vectors = components.mean, components.vectors.T  # (D,), (D, k) leading first

    heldout = AudioFolderSegments(args.heldout, 6.0, seed=0)
    clips = [heldout[i]["audio"] for i in range(min(args.clips, len(heldout)))]
    metrics = Metrics()
    griffin_lim = T.GriffinLim(n_fft=n_fft, hop_length=hop, power=1.0, n_iter=args.gl_iters, rand_init=False)
    results: dict[str, dict[str, float]] = {}
    for k in args.ks:
        basis = vectors[:, :k]
        sums: dict[str, dict[str, float]] = {"griffin_lim": {}, "true_phase": {}}
        for audio in clips:
            spec, stack = stacks(audio, window, n_fft, hop, group)
            code = (stack.double() - mean) @ basis  # the k numbers per latent frame
            logmag = (code @ basis.T + mean).float().reshape(-1, 2, n_fft // 2 + 1).permute(1, 2, 0)
            magnitude = torch.cat([logmag, logmag[..., -1:]], -1).exp()  # the centred STFT's last frame
            t = audio.shape[-1]
            outputs = {
                "griffin_lim": griffin_lim(magnitude),
                "true_phase": torch.istft(
                    torch.polar(magnitude, spec[..., : magnitude.shape[-1]].angle()),
                    n_fft,
                    hop,
                    window=window,
                    center=True,
                ),
            }
            for name, out in outputs.items():
                out = torch.nn.functional.pad(out, (0, max(0, t - out.shape[-1])))[..., :t]
                for key, value in metrics.all(audio[None], out[None]).items():
                    sums[name][key] = sums[name].get(key, 0.0) + float(value) / len(clips)
        for name, values in sums.items():
            results[f"pca{k}_{name}"] = values
            print(
                f"k={k:<4} ({2 * group * hop // k}x) {name:<12} "
                + "  ".join(f"{m} {v:.3f}" for m, v in values.items()),
                flush=True,
            )
    summary = {
        "train_clips": min(args.train_clips, len(train)),
        "heldout_clips": len(clips),
        "frames_fitted": int(frames.shape[0]),
        "results": results,
        "wall_seconds": time.time() - started,
    }
    print(f"{summary['wall_seconds']:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
