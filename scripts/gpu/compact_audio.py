"""Re-encode a pre-rendered folder (FLAC + manifest.jsonl) as Ogg Vorbis to fit more music into the
64 MiB that can travel to a lent GPU machine (it has no FluidSynth, so training audio is carried there).

    python scripts/gpu/compact_audio.py SRC DST [--mono] [--sample-rate 32000] [--compression 0.2]

Vorbis at compression 0.2 is ~250 kb/s stereo (2.8% relative RMS error on a POP909 render); the model
cards say which models were trained on Vorbis-compressed renders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf
import torch
import torchaudio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--mono", action="store_true")
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--compression", type=float, default=0.2, help="0 = best quality, 1 = smallest")
    args = parser.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (args.src / "manifest.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        audio, sr = sf.read(str(args.src / row["file"]), dtype="float32", always_2d=True)
        x = torch.from_numpy(audio.T)
        if args.mono:
            x = x.mean(0, keepdim=True)
        if args.sample_rate != sr:
            x = torchaudio.functional.resample(x, sr, args.sample_rate)
        row["file"] = Path(row["file"]).with_suffix(".ogg").name
        sf.write(
            str(args.dst / row["file"]),
            x.numpy().T,
            args.sample_rate,
            format="OGG",
            subtype="VORBIS",
            compression_level=args.compression,
        )
    (args.dst / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    size = sum(p.stat().st_size for p in args.dst.iterdir()) / 2**20
    print(f"{len(rows)} clips -> {args.dst} ({size:.1f} MiB)")


if __name__ == "__main__":
    main()
