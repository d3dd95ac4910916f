"""How much of the notes can the VAE's decoder put back, if its latent is chosen for them?

    python benchmarks/vae_chroma_reach.py --checkpoint checkpoints/vae --data build/eval/vae_heldout [--clips 4 --steps 60]

The codec keeps little of its input's chroma (``vae.evaluate``: CQT-chroma correlation about 0.29). That can be the
encoder's choice of latent or the decoder's reach. This starts from the encoder's latent of each held-out clip and
runs Adam on the latent alone to lower :class:`guidance.style_guidance.ChromaGuidance`'s distance to the clip (the
decoder frozen, no phase refinement in the loop, as in guidance), then scores the decoded result as the evaluation
does: CQT chroma with the input, and the mel distance. One row per ``--n-fft`` of the guidance's chromagram. A large
rise means the decoder can carry the notes and guidance toward them can help (``--chroma-weight`` in
``guidance.style_transfer``).
"""
from __future__ import annotations

import argparse
import time

import torch

from guidance.style_guidance import ChromaGuidance
from musicprod_common.audio import chroma_correlation
from musicprod_common.files import write_json
from vae import SpectrogramVAE
from vae.evaluate import Metrics, load_eval_clips


def reach(vae: SpectrogramVAE, clips: torch.Tensor, n_fft: int, steps: int, lr: float) -> dict[str, float]:
    term = ChromaGuidance(clips, n_fft=n_fft)
    with torch.no_grad():
        z0 = vae.encode(clips).mode()
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    start = time.perf_counter()
    for _ in range(steps):
        loss = term(None, vae.decode(z, clips.shape[-1], phase_iterations=0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        decoded = vae.decode(z, clips.shape[-1])
        change = float(((z - z0).pow(2).mean() / z0.pow(2).mean()).sqrt())
    return {"n_fft": n_fft, "chroma": float(chroma_correlation(decoded, clips).mean()),
            "mel": float(Metrics().mel(clips, decoded).mean()), "latent_change": change, "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="held-out renders, as for vae.evaluate")
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--n-fft", type=int, nargs="+", default=[8192, 4096, 2048])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="JSON file for the rows")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    vae = SpectrogramVAE.from_pretrained(args.checkpoint).float().eval().requires_grad_(False)
    clips, _ = load_eval_clips(args.data, 6.0, args.clips)
    clips = clips[..., : clips.shape[-1] // vae.latent_hop * vae.latent_hop]
    with torch.no_grad():
        decoded = vae.decode(vae.encode(clips).mode(), clips.shape[-1])
    codec = {"chroma": float(chroma_correlation(decoded, clips).mean()), "mel": float(Metrics().mel(clips, decoded).mean())}
    print(f"codec alone: chroma {codec['chroma']:.3f}, mel {codec['mel']:.3f}", flush=True)
    rows = []
    for n_fft in args.n_fft:
        rows.append(reach(vae, clips, n_fft, args.steps, args.lr))
        print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    result = {"checkpoint": args.checkpoint, "clips": len(clips), "steps": args.steps, "lr": args.lr, "codec": codec, "rows": rows}
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
