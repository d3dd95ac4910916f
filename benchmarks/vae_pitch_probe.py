"""Does a VAE's latent carry pitch? Probes from latent frames to the input's CQT chroma, on held-out renders.

    python benchmarks/vae_pitch_probe.py --checkpoint checkpoints/vae --data build/eval/vae_heldout [--train 30 --test
    10]

The VAE's reconstruction can lose the partials either because the encoder drops them or because the decoder cannot
turn them back into sound. This tells the two apart. Two probes map 7 latent frames (±3 of context) to the
12-bin chroma of the centre frame: ridge regression and a 2-layer MLP. Each is fitted on the first ``--train``
clips and scored on the next ``--test`` clips, which are other songs. The score is the Pearson correlation of the
predicted and true chroma, per clip, as ``vae.evaluate`` scores the reconstruction. The same probes on a 16-band
log-mel of the input (16 numbers per frame, as the latent has per channel) and a constant prediction (the mean
training chroma) are the references. If a probe beats the reconstruction's own chroma score by a wide margin,
the pitch is in the latent and the decoder is what loses it.
"""

from __future__ import annotations

import argparse
import json

import librosa
import numpy as np
import torch

from musicprod_common.features import chromagram
from vae import SpectrogramVAE
from vae.evaluate import load_eval_clips

CONTEXT = 3  # latent frames each side


def with_context(features: np.ndarray) -> np.ndarray:
    """``(F, n)`` → ``(n, (2·CONTEXT + 1)·F)``: every frame with its neighbours, edges repeated."""
    n = features.shape[1]
    padded = np.pad(features, ((0, 0), (CONTEXT, CONTEXT)), mode="edge")
    return np.concatenate([padded[:, k : k + n] for k in range(2 * CONTEXT + 1)], 0).T


def clip_features(vae: SpectrogramVAE, clip: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latent with context, 16-band log-mel with context, chroma) per latent frame of one clip ``(2, T)``."""
    with torch.no_grad():
        z = vae.encode(clip[None]).mode()[0].numpy()  # (C, L)
    mono = clip.mean(0).numpy()
    hop = vae.latent_hop
    chroma = chromagram(clip, 44100, hop_length=hop)  # the CQT chroma that vae.evaluate scores
    mel = np.log(librosa.feature.melspectrogram(y=mono, sr=44100, n_fft=4 * hop, hop_length=hop, n_mels=16) + 1e-6)
    n = min(z.shape[1], chroma.shape[1], mel.shape[1])
    return with_context(z[:, :n]), with_context(mel[:, :n]), chroma[:, :n].T


def correlation(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.corrcoef(pred.ravel(), true.ravel())[0, 1])


def ridge_probe(train_x, train_y, test_x, lam: float = 100.0) -> list[np.ndarray]:
    a = np.concatenate(train_x)
    mu, sd = a.mean(0), a.std(0) + 1e-6
    design = lambda f: np.c_[(f - mu) / sd, np.ones(len(f))]  # noqa: E731
    a = design(a)
    w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ np.concatenate(train_y))
    return [design(f) @ w for f in test_x]


def mlp_probe(train_x, train_y, test_x, epochs: int = 300, seed: int = 0) -> list[np.ndarray]:
    torch.manual_seed(seed)
    a = torch.tensor(np.concatenate(train_x), dtype=torch.float32)
    b = torch.tensor(np.concatenate(train_y), dtype=torch.float32)
    mu, sd = a.mean(0), a.std(0) + 1e-6
    net = torch.nn.Sequential(
        torch.nn.Linear(a.shape[1], 256),
        torch.nn.GELU(),
        torch.nn.Linear(256, 256),
        torch.nn.GELU(),
        torch.nn.Linear(256, b.shape[1]),
    )
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-2)
    for _ in range(epochs):  # full batch: a few thousand frames
        loss = (net((a - mu) / sd) - b).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return [net((torch.tensor(f, dtype=torch.float32) - mu) / sd).numpy() for f in test_x]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="folder of held-out renders (the vae.evaluate set)")
    p.add_argument("--train", type=int, default=30, help="clips the probes are fitted on")
    p.add_argument("--test", type=int, default=10, help="clips after those, the probes are scored on")
    p.add_argument("--seconds", type=float, default=6.0, help="clip length, as vae.evaluate reads them")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clips, _ = load_eval_clips(args.data, args.seconds, args.train + args.test)  # vae.evaluate's clips, in its order
    if len(clips) < args.train + args.test:
        raise SystemExit(f"error: {args.data} has {len(clips)} clips; --train + --test needs {args.train + args.test}")
    vae = SpectrogramVAE.from_pretrained(args.checkpoint).eval()
    latent, mel, chroma = zip(*(clip_features(vae, clip) for clip in clips))
    fit, held = slice(0, args.train), slice(args.train, None)
    mean_chroma = np.concatenate(chroma[fit]).mean(0)
    scores = {"constant": [correlation(np.tile(mean_chroma, (len(y), 1)), y) for y in chroma[held]]}
    for name, feats in (("latent", latent), ("log_mel_16", mel)):
        for probe in (ridge_probe, mlp_probe):
            preds = probe(feats[fit], chroma[fit], feats[held])
            scores[f"{name}_{probe.__name__.split('_')[0]}"] = [correlation(q, y) for q, y in zip(preds, chroma[held])]
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "train_clips": args.train,
                "test_clips": args.test,
                "chroma_correlation": {k: round(float(np.mean(v)), 3) for k, v in scores.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
