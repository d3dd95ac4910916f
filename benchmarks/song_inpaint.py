"""Song-aware inpainting against the crossfade and the model alone, on whole songs with gaps at random positions.

    python benchmarks/song_inpaint.py --split valid --songs 48 --gap 2 --out runs/song_inpaint/valid_2s.jsonl \
        [--methods crossfade,model,copy,auto,seams,sdedit,target] [--style mallets] [--soundfont PATH] [--humanize] \
        [--gaps-per-song 1] [--seed 0] [--steps 50] [--threads 2] [--folder AUDIO_DIR]
    python benchmarks/song_inpaint.py --calibrate runs/song_inpaint/valid_2s.jsonl [more.jsonl ...]

Songs are whole POP909 songs of the split, rendered once (cached under ``build/song_inpaint/``) in ``--style``
(default ``mallets``, which the audio models never trained on) with ``--soundfont`` (default TimGM6mb, which they
never heard either). ``--humanize`` plays them the way people do: every note moved by a few milliseconds and its
velocity by a few steps, and the tempo drifting by ±2 % over half a minute, so that no repeat is exact (the
annotated beats move with it). ``--folder`` takes any audio files instead (no beat annotations: the beat score is
then measured against the beats tracked on the untouched song).

Methods, each on the same gaps in the same run:

* ``crossfade``: the audio before the gap fading into the audio after it (no model);
* ``model``: the latent model alone (``guidance.tasks.infill``, what ``--source model`` does);
* ``copy``: the best passage of the song, spliced, no model (``--source song --refine none``);
* ``auto``: ``musicprod inpaint``'s defaults (copy above the match threshold, the model below it);
* ``seams`` / ``sdedit`` / ``target``: the copy refined by the model in each of the three ways (``--refine``).

``--continuation`` measures ``musicprod continue`` instead: each song is cut at a random point at least 30 s in and
continued by the model alone (``model``), by the song's best passage (``copy``) and by the defaults (``auto``); the
new audio (and the 0.25 s before the cut) is scored against what the song really played there.

Scores (each on the gap ± 0.25 s unless said): the multi-scale log-mel distance to the truth
(``musicprod_common.features.MelDistance``); the CQT chroma correlation with the truth; beat continuity (CMLt, AMLt of
``mir_eval.beat``) of librosa's beat tracker, told the song's tempo, on the gap ± 4 s against the annotated beats,
for the untouched song and for each output. One JSON line per gap, then a summary. ``--calibrate`` fits
``passages.CALIBRATION`` (a logistic function of the match similarity for "the copy is closer to the truth than the
model's fill") on such files; runs of the same gaps are merged, later files overriding earlier ones, so a copy-only
run with new settings can be calibrated against an earlier run's model fills.

Settings are chosen on ``--split valid`` and the test split is scored once with the shipped ones.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.optimize import minimize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from guidance.config import sampler_preset  # noqa: E402
from guidance.song import continue_song, inpaint_regions, plan_inpaint  # noqa: E402
from guidance.tasks import infill, neighbour_crossfade  # noqa: E402
from musicprod_common import passages, splice  # noqa: E402
from musicprod_common.audio import load_audio, save_audio  # noqa: E402
from musicprod_common.errors import InputError  # noqa: E402
from musicprod_common.features import MelDistance, chroma_correlation  # noqa: E402
from musicprod_common.pop909 import humanize, load_song, split_song_ids  # noqa: E402
from musicprod_common.render import render_song  # noqa: E402
from recipes.models import load_models  # noqa: E402

METHODS = ("crossfade", "model", "copy", "auto", "seams", "sdedit", "target")
BAND_S = 0.25  # seconds of audio each side of the gap that the scores include (the seams lie there)
BEAT_SPAN_S = 4.0  # seconds each side of the gap that the beat tracker sees
TIMGM = "/usr/share/sounds/sf2/TimGM6mb.sf2"


def rendered_songs(args) -> list[tuple[str, Path, np.ndarray | None]]:
    """``(name, audio file, annotated beats or None)`` for every song of the run, rendering what is missing."""
    if args.folder:
        files = sorted(p for p in Path(args.folder).iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"))
        return [(p.stem, p, None) for p in files[: args.songs]]

    tag = f"{args.split}-{args.style}-{Path(args.soundfont).stem}{'-human' if args.humanize else ''}"
    cache = REPO / "build" / "song_inpaint" / tag
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for sid in split_song_ids(args.pop909, args.split)[: args.songs]:
        path, beats_path = cache / f"{sid}.flac", cache / f"{sid}.beats.npy"
        if not path.exists():
            song = load_song(Path(args.pop909) / sid)
            if args.humanize:
                song = humanize(song, int(sid))
            save_audio(path, render_song(song, args.style, soundfont=args.soundfont).mix, 44100)
            np.save(beats_path, song.beats)
        out.append((sid, path, np.load(beats_path)))
    return out


def beat_continuity(audio: torch.Tensor, sr: int, lo: int, hi: int, reference: np.ndarray) -> tuple[float, float]:
    """(CMLt, AMLt) of librosa's beat tracker on samples [lo, hi) against ``reference`` beat times (s, song time).

    The tracker is told the reference's tempo (the median beat interval over the whole song), as the transitions
    benchmark does: on a 10 s span its own prior picks twice or half the tempo on most of these songs, untouched
    or not, and CMLt would then measure that choice rather than the continuity of the edited beat."""
    import mir_eval  # a test extra, not a dependency (and 1 s): only the beat scores need it

    y = audio[:, lo:hi].float().mean(0).numpy()
    bpm = 60.0 / float(np.median(np.diff(reference))) if len(reference) > 1 else 120.0
    _, frames = librosa.beat.beat_track(y=y, sr=sr, units="time", start_bpm=bpm)
    est = np.asarray(frames) + lo / sr
    ref = reference[(reference >= lo / sr) & (reference < hi / sr)]
    if len(ref) < 2 or len(est) < 2:
        return float("nan"), float("nan")
    _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    return float(cmlt), float(amlt)


def run(args) -> None:
    torch.set_num_threads(args.threads)

    for module, name, value in (
        (passages, "CONTEXT_S", args.context),
        (passages, "CHROMA_WEIGHT", args.chroma_weight),
        (splice, "FADE_S", args.fade),
    ):
        if value is not None:
            setattr(module, name, value)
    methods = args.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        sys.exit(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    models = (
        load_models("latent", args.checkpoints) if set(methods) - {"crossfade", "copy"} or args.continuation else None
    )
    mel = MelDistance(44100)
    rng = random.Random(args.seed)
    out_file = open(args.out, "w") if args.out else None
    rows = []
    if args.continuation:
        unknown = set(methods) - {"model", "copy", "auto"}
        if unknown:
            sys.exit(f"--continuation compares model, copy and auto, not {sorted(unknown)}")
        rows = run_continuation(args, models, methods, out_file)
        summary = {"continuation": True, "songs": len(rows)}
        for m in methods:
            summary[m] = {
                "mel": round(float(np.mean([r[m]["mel"] for r in rows])), 4),
                "chroma": round(float(np.nanmean([r[m]["chroma"] for r in rows])), 4),
                "copied": round(float(np.mean([r[m]["copied"] for r in rows])), 4),
            }
            if m != "model" and "model" in methods:
                diff = np.array([r[m]["mel"] - r["model"]["mel"] for r in rows])
                summary[m]["minus_model"] = [
                    round(float(diff.mean()), 4),
                    round(float(diff.std(ddof=1) / math.sqrt(len(diff))), 4),
                ]
                summary[m]["beats_model"] = round(float(np.mean(diff < 0)), 4)
        print(json.dumps(summary))
        if out_file:
            out_file.write(json.dumps({"summary": summary}) + "\n")
        return
    for name, path, beats in rendered_songs(args):
        audio, sr = load_audio(path)
        duration = audio.shape[-1] / sr
        for k in range(args.gaps_per_song):
            if duration < args.gap + 2 * args.edge:
                continue
            t0 = round(rng.uniform(args.edge, duration - args.gap - args.edge), 3)
            region = (t0, t0 + args.gap)
            s, e = int(round(t0 * sr)), int(round((t0 + args.gap) * sr))
            lo, hi = max(0, s - int(BAND_S * sr)), min(audio.shape[-1], e + int(BAND_S * sr))
            blo, bhi = max(0, s - int(BEAT_SPAN_S * sr)), min(audio.shape[-1], e + int(BEAT_SPAN_S * sr))
            reference = beats if beats is not None else None
            if reference is None:
                reference = librosa.beat.beat_track(y=audio.mean(0).numpy(), sr=sr, units="time")[1]
            row = {"song": name, "gap": [t0, t0 + args.gap], "duration": round(duration, 2)}
            row["beats_original"] = beat_continuity(audio, sr, blo, bhi, reference)
            t = time.perf_counter()
            try:
                plan = plan_inpaint(audio, sr, [region], source="song", threshold=0.0)[
                    0
                ]  # the best, whatever its score
            except InputError:  # nothing around the gap to match
                plan = None
            row["search_s"] = round(time.perf_counter() - t, 3)
            if plan is not None and plan.best is not None:
                row["match"] = {
                    "similarity": round(plan.best.similarity, 4),
                    "score": round(plan.best.score, 4),
                    "left": plan.best.left,
                    "right": plan.best.right,
                    "correlation": round(plan.best.correlation, 4),
                    "from": round(plan.best.start_s, 3),
                }
            for method in methods:
                t = time.perf_counter()
                common = dict(sampler=sampler_preset("latent").but(steps=args.steps), seed=args.seed + k)
                if method == "crossfade":
                    result = neighbour_crossfade(audio[None], s, e)[0]
                elif method == "model":
                    result = infill(models, audio, sr, *region, **common)
                elif method == "auto":
                    auto_plans = plan_inpaint(audio, sr, [region], source="auto")
                    row["auto_copied"] = auto_plans[0].copied
                    result = inpaint_regions(models, audio, sr, auto_plans, **common).audio
                else:
                    if plan is None or plan.splice is None:
                        continue
                    refine = "none" if method == "copy" else method
                    result = inpaint_regions(models, audio, sr, [plan], refine=refine, **common).audio
                row[method] = {
                    "mel": round(float(mel(result[None, :, lo:hi], audio[None, :, lo:hi])), 4),
                    "chroma": round(float(chroma_correlation(result[None, :, lo:hi], audio[None, :, lo:hi])[0]), 4),
                    "beats": beat_continuity(result, sr, blo, bhi, reference),
                    "seconds": round(time.perf_counter() - t, 2),
                }
            rows.append(row)
            line = json.dumps(row)
            print(line, flush=True)
            if out_file:
                out_file.write(line + "\n")
                out_file.flush()
    summary = summarise(rows, methods)
    summary.update(
        split=args.split,
        gap_s=args.gap,
        style=args.style,
        soundfont=Path(args.soundfont).name,
        humanize=args.humanize,
        steps=args.steps,
        folder=args.folder,
        context=passages.CONTEXT_S,
        chroma_weight=passages.CHROMA_WEIGHT,
        fade=splice.FADE_S,
    )
    print(json.dumps(summary))
    if out_file:
        out_file.write(json.dumps({"summary": summary}) + "\n")


def run_continuation(args, models, methods: list[str], out_file) -> list[dict]:
    """Each song cut at a random point at least 30 s in; each method continues it, scored on the new audio (and the
    0.25 s before the cut) against what the song really played there."""
    mel, rng, rows = MelDistance(44100), random.Random(args.seed), []
    for name, path, _ in rendered_songs(args):
        audio, sr = load_audio(path)
        duration = audio.shape[-1] / sr
        cut = round(rng.uniform(30.0, duration - 10.0), 3) if duration > 40.0 else None
        if cut is None:
            continue
        head = audio[:, : int(round(cut * sr))]
        row = {"song": name, "cut": cut, "duration": round(duration, 2)}
        for method in methods:
            t = time.perf_counter()
            source, threshold = {"model": ("model", None), "copy": ("song", 0.0), "auto": ("auto", None)}[method]
            kw = {} if threshold is None else {"threshold": threshold}
            sampler = sampler_preset("latent").but(steps=args.steps)
            result = continue_song(models, head, sr, source=source, sampler=sampler, seed=args.seed, **kw)
            n = result.audio.shape[-1]
            lo = head.shape[-1] - int(BAND_S * sr)
            plan = result.plans[0]
            row[method] = {
                "mel": round(float(mel(result.audio[None, :, lo:n], audio[None, :, lo:n])), 4),
                "chroma": round(float(chroma_correlation(result.audio[None, :, lo:n], audio[None, :, lo:n])[0]), 4),
                "copied": plan.copied,
                "seconds": round(time.perf_counter() - t, 2),
            }
            if plan.best is not None:
                row[method]["match"] = {
                    "similarity": round(plan.best.similarity, 4),
                    "score": round(plan.best.score, 4),
                }
        rows.append(row)
        line = json.dumps(row)
        print(line, flush=True)
        if out_file:
            out_file.write(line + "\n")
            out_file.flush()
    return rows


def summarise(rows: list[dict], methods: list[str]) -> dict:
    """Means, paired differences against the crossfade and the share of gaps each method wins."""
    out: dict = {"gaps": len(rows)}
    for m in methods:
        have = [r for r in rows if m in r]
        if not have:
            continue
        mel = np.array([r[m]["mel"] for r in have])
        entry = {
            "n": len(have),
            "mel": round(float(mel.mean()), 4),
            "chroma": round(float(np.nanmean([r[m]["chroma"] for r in have])), 4),
            "cmlt": round(float(np.nanmean([r[m]["beats"][0] for r in have])), 4),
            "amlt": round(float(np.nanmean([r[m]["beats"][1] for r in have])), 4),
            "cmlt_original": round(float(np.nanmean([r["beats_original"][0] for r in have])), 4),
            "amlt_original": round(float(np.nanmean([r["beats_original"][1] for r in have])), 4),
        }
        if m != "crossfade" and all("crossfade" in r for r in have):
            diff = mel - np.array([r["crossfade"]["mel"] for r in have])
            entry["ratio_to_crossfade"] = round(float(mel.mean() / np.mean([r["crossfade"]["mel"] for r in have])), 4)
            entry["minus_crossfade"] = [
                round(float(diff.mean()), 4),
                round(float(diff.std(ddof=1) / math.sqrt(len(diff))), 4) if len(diff) > 1 else None,
            ]
            entry["beats_crossfade"] = round(float(np.mean(diff < 0)), 4)
        if m != "model" and all("model" in r for r in have):
            entry["beats_model"] = round(float(np.mean(mel < np.array([r["model"]["mel"] for r in have]))), 4)
        out[m] = entry
    return out


def calibrate(files: list[str]) -> None:
    """Fit P(copy closer to the truth than the model's fill | similarity) = σ(a·similarity + b) by maximum
    likelihood."""
    merged: dict[tuple, dict] = {}  # the same gaps from several runs: the model's fills need not be run again
    for f in files:
        for line in open(f):
            row = json.loads(line)
            if "summary" not in row:
                merged.setdefault((row["song"], tuple(row["gap"])), {}).update(row)
    xs, ys = [], []
    for row in merged.values():
        if "copy" in row and "model" in row and "match" in row:
            xs.append(row["match"]["similarity"])
            ys.append(float(row["copy"]["mel"] < row["model"]["mel"]))
    x, y = np.array(xs), np.array(ys)
    if len(x) < 4 or y.min() == y.max():
        sys.exit(f"{len(x)} gaps, {int(y.sum())} won by the copy: not enough of both outcomes to calibrate")

    def nll(p):
        z = p[0] * x + p[1]
        return float(np.sum(np.logaddexp(0, z) - y * z))

    a, b = minimize(nll, np.array([5.0, -2.5]), method="Nelder-Mead").x
    print(
        json.dumps(
            {
                "gaps": len(x),
                "copy_wins": int(y.sum()),
                "slope": round(float(a), 3),
                "intercept": round(float(b), 3),
                "similarity_at_0.5": round(float(-b / a), 4),
            }
        )
    )
    for lo in np.arange(0.0, 1.0, 0.1):
        sel = (x >= lo) & (x < lo + 0.1)
        if sel.any():
            print(
                f"  similarity {lo:.1f}-{lo + 0.1:.1f}: {int(sel.sum())} gaps, copy wins {y[sel].mean():.2f}, "
                f"fit {np.mean(1 / (1 + np.exp(-(a * x[sel] + b)))):.2f}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--calibrate", nargs="+", metavar="JSONL", help="fit the match-score calibration on these result files"
    )
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--songs", type=int, default=48)
    p.add_argument("--gaps-per-song", type=int, default=1)
    p.add_argument("--gap", type=float, default=2.0, help="gap length, seconds")
    p.add_argument("--edge", type=float, default=0.5, help="gaps start at least this far from the song's ends")
    p.add_argument("--methods", default="crossfade,model,copy,auto")
    p.add_argument("--style", default="mallets")
    p.add_argument("--soundfont", default=TIMGM)
    p.add_argument("--humanize", action="store_true")
    p.add_argument("--folder", help="a folder of audio files instead of POP909 renders")
    p.add_argument(
        "--continuation",
        action="store_true",
        help="measure continuation instead: each song cut at a random point and continued (methods model, copy, auto)",
    )
    p.add_argument("--pop909", default=str(REPO.parent / "shared" / "data" / "pop909"))
    p.add_argument("--checkpoints", default=None)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="also write the JSON lines here")
    knobs = p.add_argument_group("settings to choose on valid (default: the shipped ones)")
    knobs.add_argument("--context", type=float, help="passages.CONTEXT_S: seconds matched each side of a gap")
    knobs.add_argument(
        "--chroma-weight", type=float, help="passages.CHROMA_WEIGHT: the chroma's share of the similarity"
    )
    knobs.add_argument("--fade", type=float, help="splice.FADE_S: seconds of each seam's fade")
    args = p.parse_args()
    if args.calibrate:
        calibrate(args.calibrate)
    else:
        run(args)


if __name__ == "__main__":
    main()
