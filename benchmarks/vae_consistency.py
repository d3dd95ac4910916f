"""Is a VAE decoder's spectrogram the one you hear? Its STFT consistency and level, on held-out renders.

    python benchmarks/vae_consistency.py --checkpoint checkpoints/vae --data build/eval/vae_heldout [--clips 12]

The decoder predicts a magnitude and a phase per STFT frame and bin, and ``torch.istft`` overlap-adds them. Not every
such array is the STFT of a signal: where neighbouring frames disagree, overlap-adding cancels, and the STFT of the
output differs from what the decoder predicted. A decoder trained only on losses of its output can exploit that
and shape its output by cancellation. Per clip this reports

* ``inconsistency``: ||STFT(iSTFT(S)) − S|| / ||S||, with S the decoder's complex spectrogram (0 for a consistent one,
  about 1 when what is heard has little to do with what was predicted);
* ``cancelled_db``: the energy of STFT(iSTFT(S)) over that of S, in dB (how much the overlap-add threw away);
* ``magnitude_log10_mel_l1``: the evaluation's log10-mel L1 (:class:`musicprod_common.features.Log10MelL1`) between
  the input and the decoder's own magnitude paired with the input's true phase, which scores the predicted magnitude
  alone; and the output's ``log10_mel_l1`` for comparison.
"""

from __future__ import annotations

import argparse

import torch

from musicprod_common.features import Log10MelL1
from musicprod_common.files import write_json
from vae import SpectrogramVAE
from vae.evaluate import load_eval_clips


def consistency(vae: SpectrogramVAE, clip: torch.Tensor, log10_mel_l1: Log10MelL1) -> dict[str, float]:
    """One clip ``(2, T)``, ``T`` a multiple of the latent hop."""
    x = clip[None]
    with torch.no_grad():
        mag, phase = vae.decode_spectrum(vae.encode(x).mode())  # (1, N + 1, 2, F)
        y = vae._istft(mag, phase, x.shape[-1])
        predicted = torch.polar(mag, phase)[0].permute(1, 2, 0)  # (2, F, N + 1), the layout of vae._stft
        heard, true = vae._stft(y), vae._stft(x)
        own_magnitude = vae._istft(mag, true.angle().permute(2, 0, 1)[None], x.shape[-1])
    return {
        "inconsistency": float((heard - predicted).abs().norm() / predicted.abs().norm()),
        "cancelled_db": float(10 * torch.log10(heard.abs().pow(2).sum() / predicted.abs().pow(2).sum())),
        "magnitude_log10_mel_l1": float(log10_mel_l1(x, own_magnitude)[0]),
        "log10_mel_l1": float(log10_mel_l1(x, y)[0]),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="held-out renders, as for vae.evaluate")
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="JSON file for the per-clip numbers")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    vae = SpectrogramVAE.from_pretrained(args.checkpoint).float().eval()
    clips, _ = load_eval_clips(args.data, 6.0, args.clips)
    clips = clips[..., : clips.shape[-1] // vae.latent_hop * vae.latent_hop]
    log10_mel_l1 = Log10MelL1()
    rows = [consistency(vae, c, log10_mel_l1) for c in clips]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    print(
        f"{args.checkpoint} (phase: {vae.config.phase}), {len(rows)} clips: "
        + ", ".join(f"{k} {v:.3f}" for k, v in mean.items())
    )
    result = {"checkpoint": args.checkpoint, "phase": vae.config.phase, "mean": mean, "per_clip": rows}
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
