"""How far can the VAE's decoder go, if its latent is chosen for it? The decoder's reach against the encoder's choice.

    python benchmarks/vae_latent_reach.py --checkpoint checkpoints/vae --data build/eval/vae_heldout --objective chroma
    [--clips 4 --steps 60]

The codec loses some of its input. That can be the encoder's choice of latent (an amortisation gap) or the decoder's
reach. This starts from the encoder's latent of each held-out clip and runs Adam on the latent alone (decoder frozen,
no phase refinement in the loop, as in guidance) toward the clip, then scores the decoded result as the evaluation
does: CQT chroma with the input, and the log10-mel L1. The objective is either

* ``chroma``: :class:`guidance.style_guidance.ChromaGuidance`'s distance, one row per ``--n-fft`` of its chromagram.
  A large rise in chroma means the decoder can carry the notes and guidance toward them can help
  (``--chroma-weight`` in ``benchmarks/style_transfer.py``);
* ``log10_mel_l1``: the evaluation's own reconstruction metric (:class:`musicprod_common.features.Log10MelL1`). A
  small fall means the decoder, not the encoder, limits the reconstruction.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Callable

import torch

from guidance.style_guidance import ChromaGuidance
from musicprod_common.features import Log10MelL1, chroma_correlation
from musicprod_common.files import write_json
from vae import SpectrogramVAE
from vae.evaluate import load_eval_clips


def scores(clips: torch.Tensor, decoded: torch.Tensor) -> dict[str, float]:
    return {
        "chroma": float(chroma_correlation(decoded, clips).mean()),
        "log10_mel_l1": float(Log10MelL1()(clips, decoded).mean()),
    }


def reach(
    vae: SpectrogramVAE, clips: torch.Tensor, distance: Callable[[torch.Tensor], torch.Tensor], steps: int, lr: float
) -> dict[str, float]:
    """Adam on the latent for ``steps`` against ``distance(decoded) -> scalar``; the scores and the latent's change."""
    with torch.no_grad():
        z0 = vae.encode(clips).mode()
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    start = time.perf_counter()
    for _ in range(steps):
        loss = distance(vae.decode(z, clips.shape[-1], phase_iterations=0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        row = scores(clips, vae.decode(z, clips.shape[-1]))
        row["latent_change"] = float(((z - z0).pow(2).mean() / z0.pow(2).mean()).sqrt())
    return {**row, "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="held-out renders, as for vae.evaluate")
    p.add_argument("--objective", choices=["chroma", "log10_mel_l1"], default="chroma")
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument(
        "--lr", type=float, default=None, help="Adam's step (default 0.05 for chroma, 0.02 for log10_mel_l1)"
    )
    p.add_argument(
        "--n-fft", type=int, nargs="+", default=[8192, 4096, 2048], help="chromagram FFT sizes (chroma objective)"
    )
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="JSON file for the rows")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lr = args.lr or (0.05 if args.objective == "chroma" else 0.02)
    vae = SpectrogramVAE.from_pretrained(args.checkpoint).float().eval().requires_grad_(False)
    clips, _ = load_eval_clips(args.data, 6.0, args.clips)
    clips = clips[..., : clips.shape[-1] // vae.latent_hop * vae.latent_hop]
    with torch.no_grad():
        codec = scores(clips, vae.decode(vae.encode(clips).mode(), clips.shape[-1]))
    print(f"codec alone: chroma {codec['chroma']:.3f}, log10-mel L1 {codec['log10_mel_l1']:.3f}", flush=True)
    if args.objective == "chroma":  # a guidance term takes (x̂0, audio); only the audio matters here
        objectives = {f"chroma, n_fft {n}": partial(ChromaGuidance(clips, n_fft=n), None) for n in args.n_fft}
    else:
        log10_mel_l1 = Log10MelL1()
        objectives = {"log10_mel_l1": lambda y: log10_mel_l1(clips, y).sum()}
    rows = []
    for name, distance in objectives.items():
        rows.append({"objective": name, **reach(vae, clips, distance, args.steps, lr)})
        print(
            ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()), flush=True
        )
    result = {
        "checkpoint": args.checkpoint,
        "clips": len(clips),
        "steps": args.steps,
        "lr": lr,
        "codec": codec,
        "rows": rows,
    }
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
