"""Time of the passage search (``plan_inpaint``: features, search, alignment, seams) in a 10-minute song.

    python benchmarks/passage_search.py [--minutes 10] [--repeats 5] [--threads 2] [--songs DIR]

The song is whole POP909 renders (``benchmarks/song_inpaint.py``'s cache by default) joined end to end until
it lasts ``--minutes``, so the search meets real repeats. For each gap length the first call runs in a fresh
process state (it includes librosa's and soxr's one-time set-up), then ``--repeats`` more calls are timed and
their median reported. The search needs no model. Target: at most 1 s for a 10-minute song on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from guidance.song import plan_inpaint  # noqa: E402
from musicprod_common.audio import load_audio  # noqa: E402

TARGET_S = 1.0


def long_song(folder: Path, minutes: float) -> tuple[torch.Tensor, int]:
    parts, total, sr = [], 0, 44100
    for path in sorted(folder.glob("*.flac")):
        audio, sr = load_audio(path)
        parts.append(audio)
        total += audio.shape[-1]
        if total >= minutes * 60 * sr:
            break
    if total < minutes * 60 * sr:
        sys.exit(
            f"{folder}: only {total / sr / 60:.1f} minutes of audio; render more songs first "
            "(benchmarks/song_inpaint.py)"
        )
    return torch.cat(parts, dim=-1)[:, : int(minutes * 60 * sr)].contiguous(), sr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--songs", type=Path, default=REPO / "build" / "song_inpaint" / "valid-mallets-TimGM6mb")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    audio, sr = long_song(args.songs, args.minutes)

    middle = audio.shape[-1] / sr / 2
    rows = []
    for gap in (2.0, 8.0, 30.0):
        region = [(middle, middle + gap)]
        t0 = time.perf_counter()
        plan = plan_inpaint(audio, sr, region)[0]
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            plan_inpaint(audio, sr, region)
            times.append(time.perf_counter() - t0)
        rows.append(
            {
                "gap_s": gap,
                "first_call_s": round(first, 3),
                "median_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
                "copied": plan.copied,
                "score": None if plan.best is None else round(plan.best.score, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(
        json.dumps(
            {
                "benchmark": "passage_search",
                "minutes": args.minutes,
                "threads": args.threads,
                "target_s": TARGET_S,
                "pass": all(r["median_s"] <= TARGET_S for r in rows),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            }
        )
    )


if __name__ == "__main__":
    main()
