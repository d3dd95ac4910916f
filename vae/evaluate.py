"""Evaluate a VAE checkpoint on held-out renders against a same-budget mel + Griffin-Lim baseline.

    python -m musicprod_common.prerender --pop909 ../shared/data/pop909 --split test --styles mallets \\
        --count 200 --seconds 6 --out data/vae_eval
    python -m vae.evaluate --checkpoint runs/vae/final --data data/vae_eval --out runs/vae/eval.json

Metrics (lower is better except SI-SDR and chroma), averaged over clips:
* ``log10_mel_l1``: L1 between log10 mel magnitudes, the mean over four resolutions
  (:class:`musicprod_common.features.Log10MelL1`; the VAE's target: at most half the baseline's). Not the mel
  distance of the infill and inpainting benchmarks (``MelDistance``: natural log, another filter bank), so the two
  sets of numbers do not compare;
* ``si_sdr``: scale-invariant SDR in dB (Le Roux et al. 2019), per channel;
* ``mrstft``: auraloss's multi-resolution STFT distance (spectral convergence + log magnitude);
* ``chroma``: CQT-chroma correlation with the input (higher is better; 1 = the pitches survive, ~0 = unrelated);
* ``level_db``: output minus input energy in dB, at the clip's own level and 24 dB quieter.

The baseline spends the latent's budget (2 * 44100 / 128 ≈ 689 values per second) on a mel spectrogram
and inverts it with torchaudio's InverseMelScale + GriffinLim; several (hop, mels) splits of that
budget are tried and the best one is reported, so the VAE is compared with the strongest of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import auraloss.freq
import torch
import torchaudio.transforms as T

from musicprod_common.checkpoint import load_training_state
from musicprod_common.datasets import AudioFolderSegments
from musicprod_common.errors import InputError
from musicprod_common.features import Log10MelL1, chroma_correlation
from musicprod_common.files import write_json
from musicprod_common.plot import plot_before_after
from musicprod_common.styles import STYLE_NAMES, VAE_HELDOUT_STYLE

from .model import COMPRESSION_RATIO, SAMPLE_RATE, SpectrogramVAE

BASELINE_SPLITS = ((1024, 8), (2048, 16), (4096, 32))  # (hop, mels per channel): 2 * mels * sr / hop = 2 sr / 128


class Metrics:
    """Distances between a reference and an estimate, both ``(B, 2, T)``; each returns ``(B,)``."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.log10_mel_l1 = Log10MelL1(SAMPLE_RATE).to(device)
        ffts = [512, 1024, 2048, 4096]
        self.mrstft = auraloss.freq.MultiResolutionSTFTLoss(
            fft_sizes=ffts, hop_sizes=[n // 4 for n in ffts], win_lengths=ffts
        ).to(device)

    @staticmethod
    def si_sdr(ref: torch.Tensor, est: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        """SI-SDR (Le Roux et al. 2019, "SDR - half-baked or well done?"): project ``est`` on ``ref``; mean over
        channels, in dB."""
        ref = ref - ref.mean(-1, keepdim=True)
        est = est - est.mean(-1, keepdim=True)
        alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
        target = alpha * ref
        noise = est - target
        ratio = (target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps)
        return (10 * torch.log10(ratio)).mean(-1)

    def stft(self, ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.mrstft(est[i : i + 1], ref[i : i + 1]).mean() for i in range(ref.shape[0])])

    @staticmethod
    def level_db(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
        return 10 * torch.log10((est.pow(2).flatten(1).mean(1) + 1e-12) / (ref.pow(2).flatten(1).mean(1) + 1e-12))

    @staticmethod
    def chroma(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
        """CQT-chroma correlation: do the pitches survive? The log-mel distances barely notice lost partials."""
        return chroma_correlation(est, ref, SAMPLE_RATE)

    def all(self, ref: torch.Tensor, est: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "log10_mel_l1": self.log10_mel_l1(ref, est),
            "si_sdr": self.si_sdr(ref, est),
            "mrstft": self.stft(ref, est),
            "level_db": self.level_db(ref, est),
            "chroma": self.chroma(ref, est),
        }


@dataclass
class MelGriffinLim:
    """Same-budget baseline: a ``mels``-band mel spectrogram per channel every ``hop`` samples, inverted
    with a least-squares inverse mel filterbank and Griffin-Lim (Griffin & Lim 1984)."""

    hop: int
    mels: int
    n_iter: int = 64

    @property
    def values_per_second(self) -> float:
        return 2 * self.mels * SAMPLE_RATE / self.hop

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:  # (B, 2, T) -> (B, 2, T)

        n_fft = max(2048, 2 * self.hop)
        mel = T.MelSpectrogram(SAMPLE_RATE, n_fft=n_fft, hop_length=self.hop, n_mels=self.mels, power=2.0).to(
            audio.device
        )
        inverse = T.InverseMelScale(n_fft // 2 + 1, n_mels=self.mels, sample_rate=SAMPLE_RATE)
        b, c, t = audio.shape
        griffin_lim = T.GriffinLim(
            n_fft=n_fft, hop_length=self.hop, power=2.0, n_iter=self.n_iter, rand_init=False, length=t
        ).to(audio.device)
        # the least-squares inverse runs on the CPU: CUDA's lstsq refuses underdetermined systems (mels < bins)
        spec = inverse(mel(audio.reshape(b * c, t)).cpu()).to(audio.device)
        return griffin_lim(spec).reshape(b, c, t)


def load_eval_clips(data: str | Path, seconds: float, max_clips: int | None) -> tuple[torch.Tensor, dict[str, int]]:
    """Clips ``(N, 2, seconds * 44100)`` and a count of their styles (from the manifest, if any)."""
    dataset = AudioFolderSegments(data, seconds, seed=0)
    n = len(dataset) if max_clips is None else min(max_clips, len(dataset))
    items = [dataset[i] for i in range(n)]
    styles = Counter(STYLE_NAMES[int(item["style"])] for item in items if "style" in item)
    return torch.stack([item["audio"] for item in items]), dict(styles)


@torch.inference_mode()
def evaluate(
    model: SpectrogramVAE,
    clips: torch.Tensor,
    *,
    batch_size: int = 8,
    baselines: bool = True,
    gl_iters: int = 64,
    quiet_db: float = -24.0,
    device: torch.device | str = "cpu",
) -> dict:
    """Score ``model`` (and the baselines) on ``clips`` ``(N, 2, T)``; returns means and per-clip values."""
    metrics = Metrics(device)
    model = model.to(device)
    systems: dict[str, object] = {"vae": lambda x: model.decode(model.encode(x).mode(), x.shape[-1])}
    if baselines:
        for hop, mels in BASELINE_SPLITS:
            systems[f"mel_gl_hop{hop}_{mels}mels"] = MelGriffinLim(hop, mels, n_iter=gl_iters)
    results: dict[str, dict[str, list[float]]] = {name: {} for name in systems}
    for start in range(0, clips.shape[0], batch_size):
        ref = clips[start : start + batch_size].float().to(device)
        for name, system in systems.items():
            for key, value in metrics.all(ref, system(ref)).items():
                results[name].setdefault(key, []).extend(value.tolist())
            if name == "vae":  # quiet inputs came back too loud in calibration: check the level explicitly
                quiet = ref * 10 ** (quiet_db / 20)
                results[name].setdefault("level_db_quiet", []).extend(metrics.level_db(quiet, system(quiet)).tolist())
    summary = {name: {k: sum(v) / len(v) for k, v in r.items()} for name, r in results.items()}
    out = {
        "clips": int(clips.shape[0]),
        "seconds_per_clip": clips.shape[-1] / SAMPLE_RATE,
        "latent_values_per_second": 2 * SAMPLE_RATE / COMPRESSION_RATIO,
        "mean": summary,
        "per_clip": results,
    }
    base = {k: v for k, v in summary.items() if k != "vae"}
    if base:
        best = min(base, key=lambda k: base[k]["log10_mel_l1"])
        out["best_baseline"] = best
        out["log10_mel_l1_ratio_vs_best_baseline"] = summary["vae"]["log10_mel_l1"] / base[best]["log10_mel_l1"]
        out["target_met"] = out["log10_mel_l1_ratio_vs_best_baseline"] <= 0.5
    return out


def format_table(result: dict) -> str:
    keys = ["log10_mel_l1", "si_sdr", "mrstft", "chroma", "level_db", "level_db_quiet"]
    rows = [f"{'system':<28}" + "".join(f"{k:>15}" for k in keys)]
    for name, values in result["mean"].items():
        rows.append(f"{name:<28}" + "".join(f"{values[k]:>15.3f}" if k in values else f"{'-':>15}" for k in keys))
    if "best_baseline" in result:
        rows.append(
            f"log10-mel L1 / best baseline ({result['best_baseline']}): "
            f"{result['log10_mel_l1_ratio_vs_best_baseline']:.3f} "
            f"(target <= 0.5: {'met' if result['target_met'] else 'NOT met'})"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vae.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or hub id")
    p.add_argument("--data", required=True, help="folder of held-out renders (prerender --split test --styles mallets)")
    p.add_argument("--out", default=None, help="JSON file for the results (default: CHECKPOINT/eval.json if a folder)")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--max-clips", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--gl-iters", type=int, default=64)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--fp32-state", default=None, help="also score the fp32 EMA weights in a training state.pt (fp16 check)"
    )
    p.add_argument(
        "--plot", default=None, help="PNG of the first clip's log-mel spectrogram, input over reconstruction"
    )
    args = p.parse_args(argv)
    try:
        started = time.time()
        model = SpectrogramVAE.from_pretrained(args.checkpoint)
        clips, styles = load_eval_clips(args.data, args.seconds, args.max_clips)
        if styles and set(styles) != {VAE_HELDOUT_STYLE}:
            print(
                f"warning: clips are in styles {styles}, not only the held-out style {VAE_HELDOUT_STYLE!r}",
                file=sys.stderr,
            )
        result = evaluate(
            model,
            clips,
            batch_size=args.batch_size,
            baselines=not args.no_baseline,
            gl_iters=args.gl_iters,
            device=args.device,
        )
        result.update(
            checkpoint=str(args.checkpoint), data=str(args.data), styles=styles, heldout_style=VAE_HELDOUT_STYLE
        )
        if args.fp32_state:
            fp32 = SpectrogramVAE(model.config)
            fp32.load_state_dict(load_training_state(args.fp32_state)["ema"])
            result["fp32_ema"] = evaluate(
                fp32.eval(), clips, batch_size=args.batch_size, baselines=False, device=args.device
            )["mean"]["vae"]
        if args.plot:
            with torch.no_grad():
                first = clips[:1].to(args.device)
                recon = model.to(args.device).decode(model.encode(first).mode(), first.shape[-1])
            plot_before_after(
                args.plot,
                first[0].cpu(),
                recon[0].cpu(),
                SAMPLE_RATE,
                [],
                labels=("input", "VAE"),
                title=f"{Path(args.data).name}: first clip, {args.checkpoint}",
            )
        result["device"] = args.device
        result["wall_seconds"] = time.time() - started
        out = (
            Path(args.out)
            if args.out
            else (Path(args.checkpoint) / "eval.json" if Path(args.checkpoint).is_dir() else Path("vae_eval.json"))
        )
        write_json(out, result)
        print(format_table(result))
        if "fp32_ema" in result:
            print("fp32 EMA weights: " + ", ".join(f"{k} {v:.3f}" for k, v in result["fp32_ema"].items()))
        print(f"{result['clips']} clips in {result['wall_seconds']:.0f} s; results in {out}")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
