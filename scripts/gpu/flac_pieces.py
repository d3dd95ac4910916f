"""Cut short FLAC pieces from a pre-rendered folder, as many songs as fit a size budget, for a lent GPU machine.

    python scripts/gpu/flac_pieces.py build/gpu4/vae_flac .carry/s17v/vae --seconds 1.8 --megabytes 46

Only 64 MiB travel per device call, and FLAC is the one format the VAE may learn from (Vorbis drops the quiet top
octave that the mel distance measures; `compact_audio.py`). A training crop is 1.49 s, so a piece a little longer
than that from each of many clips carries more songs and styles per megabyte than whole 6 s clips. Clips are drawn
in a seeded random order until the budget is spent; each piece starts at a seeded random offset. The manifest keeps
each clip's row (style, song, programs) with ``seconds`` and ``start`` updated.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import soundfile as sf

from musicprod_common.errors import OneLineParser


def main() -> None:
    p = OneLineParser(prog="flac_pieces.py", description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="a prerender folder (FLAC + manifest.jsonl)")
    p.add_argument("dst", type=Path, help="new folder for the pieces")
    p.add_argument("--seconds", type=float, default=1.8, help="length of each piece (at least the training crop)")
    p.add_argument("--megabytes", type=float, default=46.0, help="stop before the pieces pass this size")
    p.add_argument("--seed", type=int, default=17)
    args = p.parse_args()
    manifest = args.src / "manifest.jsonl"
    if not manifest.is_file():
        p.error(f"{manifest} not found; pass a folder written by musicprod_common.prerender")
    if args.dst.exists():
        p.error(f"{args.dst} exists; pass a new folder")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    args.dst.mkdir(parents=True)
    budget, used, kept = args.megabytes * 1e6, 0, []
    for row in rows:
        audio, sr = sf.read(args.src / row["file"], dtype="int16")
        n = int(round(args.seconds * sr))
        if audio.shape[0] < n:
            continue
        start = rng.randrange(0, audio.shape[0] - n + 1)
        out = args.dst / row["file"]
        sf.write(out, audio[start : start + n], sr, subtype="PCM_16")
        if used + out.stat().st_size > budget:
            out.unlink()
            break
        used += out.stat().st_size
        kept.append({**row, "seconds": args.seconds, "start": round(row["start"] + start / sr, 6)})
    kept.sort(key=lambda r: r["file"])
    (args.dst / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    print(f"{len(kept)} pieces of {args.seconds} s ({used / 1e6:.1f} MB) from {len(rows)} clips in {args.dst}")


if __name__ == "__main__":
    main()
