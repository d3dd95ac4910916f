"""Beat-matched transitions against today's regenerated crossfade and a plain crossfade, on pairs of POP909 songs.

Each pair joins the first ``--seconds`` of one split song, rendered in one style, into another song rendered in
another style, chosen so that their annotated tempos differ by at most 20 % (after double/half time) and their
keys differ. In one run, on the same cue points (the new plan's):

* ``new``: ``guidance.transitions.beat_matched_transition`` (B stretched to A's tempo, cut on downbeats, bass swapped
  at the middle downbeat, the model regenerating ``--fade`` s around the swap);
* ``new-mix``: the same without the model (``--fade 0``);
* ``today``: A up to the end of the overlap, then B from the cue-in, joined by the model's regenerated 2.5 s
  crossfade (``guidance.tasks.transition``), no tempo matching;
* ``crossfade``: an equal-power crossfade over the same overlap, without tempo matching.

Scores over the transition (the overlap ± ``BEAT_SPAN_S``), all from tools independent of the analysis that planned
it: librosa's beat tracker, told A's annotated tempo and keeping weak beats at the span's ends, on the output,
scored with ``mir_eval.beat.continuity`` against the intended grid (the annotated beats of A up to the middle of the
joint and of B after it, on the output's clock; for the beat-matched methods at A's metrical level), and the same
tracker on the two songs alone against their
annotations; how many of B's annotated beats over the overlap land within 17.5 % of a beat of A's annotated ones
("on grid": no tracker involved, the plan's own accuracy); onset flamming (pairs of detected onsets 10-60 ms apart,
per second of overlap); the key distance between A and B as played (1 − the MIREX weighted key score); and loudness:
the largest change of short-term loudness (3 s windows, ITU-R BS.1770, not gated: EBU Tech 3341) between
consecutive seconds across the transition, minus the same on the songs alone (``loud_vs_alone``: minus the mean of
the two songs' own largest steps; ``loud_vs_own``: minus the larger, since a step a song takes by itself is not the
transition's; each song measured on the output's clock and grid, B as it plays there). A
folder of audio has no annotations: its beats are librosa's on each song alone and its keys the analysis's.

    python benchmarks/transitions.py --split valid --pairs 8 --songs 60 --match-key
    python benchmarks/transitions.py --split test --pairs 16 --songs 80 --match-key --out runs/transitions/test.jsonl
    python benchmarks/transitions.py --folder my_songs/ --pairs 6     # any audio, pairs of consecutive files
    python benchmarks/transitions.py --split valid --songs 60 --pairs 40 --match-key --plan-only  # the plans alone
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from itertools import cycle
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from guidance.tasks import transition  # noqa: E402
from guidance.transitions import beat_matched_transition, plan_songs  # noqa: E402
from musicprod_common.analysis import key_relation, transpose_key  # noqa: E402
from musicprod_common.audio import load_audio, save_audio  # noqa: E402
from musicprod_common.pop909 import load_song, split_song_ids  # noqa: E402

METHODS = ("new", "new-mix", "today", "crossfade")
BEAT_SPAN_S = 8.0  # seconds of output either side of the overlap that the beat tracker sees
STYLE_PAIRS = (("band", "strings"), ("mallets", "synth-pop"), ("strings", "band"), ("jazz", "mallets"))
FLAM_S = (0.010, 0.060)
# How strictly librosa's tracker keeps to the tempo it is told (librosa's default: 100). Chosen on the 91 valid songs
# alone, told their annotated tempo, before any transition was scored with it: CMLt 0.875 at 100, 0.891 at 200,
# 0.897 at 400, 0.890 at 800. The scores should measure the transition, not the tracker's drift on the songs.
TIGHTNESS = 400


def harte_to_key(label: str) -> str:
    """POP909's ``Gb:maj`` → mir_eval's ``Gb major``."""
    tonic, mode = label.split(":")
    return f"{tonic} {'minor' if mode.startswith('min') else 'major'}"


def tempo_of(beats: np.ndarray) -> float:
    return 60.0 / float(np.median(np.diff(beats)))


def rendered(args) -> list[dict]:
    """Songs of the split as dicts (name, path, beats, key, tempo), rendering what is missing; or a folder's files."""
    if args.folder:
        files = sorted(p for p in Path(args.folder).iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"))
        return [dict(name=p.stem, path=p, beats=None, key=None, tempo=None) for p in files]
    from musicprod_common.render import render_song

    cache = REPO / "build" / "transitions" / f"{args.split}-{Path(args.soundfont).stem}-{args.seconds:g}s"
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    ids = split_song_ids(args.pop909, args.split)[args.skip : args.skip + args.songs]
    styles = cycle(s for pair in STYLE_PAIRS for s in pair)
    for sid in tqdm(ids, desc="render", file=sys.stderr, leave=False):
        style = next(styles)
        path = cache / f"{sid}-{style}.flac"
        song = load_song(Path(args.pop909) / sid)
        beats = song.beats[song.beats < args.seconds]
        if len(beats) < 16 or song.key is None:
            continue
        if not path.exists():
            save_audio(path, render_song(song, style, end=args.seconds, soundfont=args.soundfont).mix, 44100)
        out.append(
            dict(name=f"{sid}-{style}", path=path, beats=beats, key=harte_to_key(song.key), tempo=tempo_of(beats))
        )
    return out


def pairs(songs: list[dict], n: int, folder: bool) -> list[tuple[dict, dict]]:
    """Up to ``n`` pairs (A, B): tempos within 20 % after double/half time, different keys; each song A once."""
    if folder:
        return list(zip(songs[::2], songs[1::2]))[:n]
    out, used = [], set()
    for a in songs:
        for b in songs:
            if a is b or b["name"] in used or a["name"] in used:
                continue
            ratio = min(abs(math.log(a["tempo"] / (m * b["tempo"]))) for m in (0.5, 1, 2))
            if ratio <= math.log(1.2) and a["key"] != b["key"] and a["name"][4:] != b["name"][4:]:
                out.append((a, b))
                used.update((a["name"], b["name"]))
                break
        if len(out) == n:
            break
    return out


def tracked(audio: torch.Tensor, sr: int, lo: float, hi: float, bpm: float | None = None) -> np.ndarray:
    """librosa's beat tracker on seconds [lo, hi) of ``audio``, told the tempo to expect when ``bpm`` is given (so
    the scores measure the grid's continuity, not the tracker's octave errors on slow songs); beat times in the
    audio's clock. Weak beats at the span's ends are kept (``trim=False``): a song B with softer attacks than A
    would otherwise lose its beats after the joint to the trimming, which is meant for silence at a file's end. It
    keeps to the tempo as strictly as :data:`TIGHTNESS` says."""
    import librosa

    lo = max(0.0, lo)
    y = audio[:, int(lo * sr) : int(hi * sr)].float().mean(0).numpy()
    prior = {} if bpm is None else {"start_bpm": bpm}
    _, times = librosa.beat.beat_track(y=y, sr=sr, units="time", trim=False, tightness=TIGHTNESS, **prior)
    return np.asarray(times) + lo


def continuity(ref: np.ndarray, est: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    import mir_eval

    ref = ref[(ref >= lo) & (ref < hi)]
    if len(ref) < 4 or len(est) < 4:
        return float("nan"), float("nan")
    _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    return float(cmlt), float(amlt)


def flams_per_s(audio: torch.Tensor, sr: int, lo: float, hi: float) -> float:
    """Pairs of detected onsets 10-60 ms apart per second of [lo, hi): two grids out of step play every hit twice."""
    import librosa

    y = audio[:, int(lo * sr) : int(hi * sr)].float().mean(0).numpy()
    onsets = librosa.onset.onset_detect(y=y, sr=sr, hop_length=128, units="time")
    gaps = np.diff(onsets)
    return float(((gaps >= FLAM_S[0]) & (gaps <= FLAM_S[1])).sum() / max(hi - lo, 1e-9))


def short_term_loudness(x: np.ndarray, sr: int) -> float:
    """Loudness (LUFS) of ``x`` ``(samples, channels)`` as EBU Tech 3341 defines short-term loudness: the K-weighted
    mean square of the whole window (ITU-R BS.1770), not gated. pyloudnorm's meter, given one block as long as ``x``,
    computes exactly that; its integrated loudness with 400 ms blocks would gate out the quiet blocks, so a rest
    with a faint tail in it would measure quieter than the same rest in silence."""
    import pyloudnorm

    if len(x) < 0.4 * sr:  # less than one of BS.1770's blocks (the end of a song)
        return float("nan")
    # One block of all but the last sample: pyloudnorm refuses a block as long as its input by float rounding.
    return pyloudnorm.Meter(sr, block_size=(len(x) - 1) / sr).integrated_loudness(x)


def loudness_step(audio: torch.Tensor, sr: int, lo: float, hi: float, clock=None) -> float:
    """The largest change (LU) of short-term loudness (3 s windows, :func:`short_term_loudness`) between consecutive
    seconds in [lo, hi) of the output. ``clock`` maps output seconds to ``audio``'s own where ``audio`` is one song
    as it plays in the output: its windows then hold what the output's hold, and a step the song takes by itself is
    measured as the output measures it, not on a grid a fraction of a second away (a sudden drop's step depends on
    where the grid falls)."""
    clock = clock or (lambda t: t)
    values = []
    for t in np.arange(max(0.0, lo), hi - 3.0 + 1e-9, 1.0):
        x = audio[:, int(clock(t) * sr) : int(clock(t + 3.0) * sr)].double().numpy().T
        values.append(short_term_loudness(x, sr))
    values = np.array([v for v in values if np.isfinite(v)])
    return float(np.abs(np.diff(values)).max()) if len(values) > 1 else float("nan")


def on_grid(a_ref: np.ndarray, b_ref: np.ndarray, b_clock, start: float, end: float) -> float:
    """The share of B's beats (annotated, mapped to the output by ``b_clock``) in output seconds [start, end) that
    land within 17.5 % of a beat of one of A's, at whichever level is finer: two songs playing on one grid."""
    b_all = np.asarray(b_clock(b_ref))
    b_out = b_all[(b_all >= start) & (b_all < end)]
    if len(b_out) == 0:
        return float("nan")
    beat_a, beat_b = np.median(np.diff(a_ref)), np.median(np.diff(b_all))
    grid = a_ref
    while beat_a > 1.5 * beat_b:  # B plays twice as many beats: A's halfway points count too
        grid, beat_a = np.sort(np.concatenate([grid, (grid[:-1] + grid[1:]) / 2])), beat_a / 2
    off = np.abs(b_out[:, None] - grid[None]).min(1)
    return float(np.mean(off < 0.175 * min(beat_a, beat_b)))


def plan_only(chosen: list[tuple[dict, dict]], args) -> int:
    """``--plan-only``: each pair planned as ``new`` plans it, without the model or the trackers, and scored by the
    share of B's annotated beats over the overlap on A's grid: seconds a pair, for choices about the plan."""
    shares = []
    for a_info, b_info in tqdm(chosen, desc="plans", file=sys.stderr):
        a, sr = load_audio(a_info["path"])
        b, _ = load_audio(b_info["path"])
        plan = plan_songs(a, b, sr, bars=args.bars, match_key=args.match_key)
        overlap = (plan.cue_out, plan.cue_out + plan.length)
        share = on_grid(a_info["beats"], b_info["beats"], plan.b_to_output, *overlap) if plan.beat_matched else None
        shares.append(float("nan") if share is None else share)
        print(f"{a_info['name']} → {b_info['name']}: " + ("not beat-matched" if share is None else f"{share:.2f}"))
    v = np.array(shares)
    print(f"on grid {np.nanmean(v):.3f}; all on grid {int(np.sum(v >= 0.999))} of {len(v)} pairs")
    return 0


def key_distance(a: str, b: str) -> float:
    """1 − the MIREX weighted key score: 0 the same key, 0.5 a fifth, 0.7 relative, 0.8 parallel, 1 otherwise."""
    import mir_eval

    return 1.0 - float(mir_eval.key.weighted_score(a, b))


def run_pair(a_info: dict, b_info: dict, model, args) -> dict[str, dict[str, float]]:
    a, sr = load_audio(a_info["path"])
    b, sr_b = load_audio(b_info["path"])
    assert sr == sr_b == 44100
    common = dict(bars=args.bars, match_key=args.match_key, seed=args.seed, sampler=model.sampler.but(steps=args.steps))
    out_new, plan = beat_matched_transition(model, a, b, sr, fade=args.fade, **common)
    out_mix, _ = beat_matched_transition(None, a, b, sr, fade=args.fade, **common)  # no model: the mix as planned
    o0, n, i0 = (int(round(x * sr)) for x in (plan.cue_out, plan.length, plan.cue_in))
    plain_b = b[:, i0:]
    out_today = transition(model, a[:, : o0 + n], plain_b, sr, fade=2.5, sampler=common["sampler"], seed=args.seed)
    u = (torch.arange(n) + 0.5) / n
    ov = a[:, o0 : o0 + n] * torch.cos(0.5 * math.pi * u) + plain_b[:, :n] * torch.sin(0.5 * math.pi * u)
    out_xfade = torch.cat([a[:, :o0], ov, plain_b[:, n:]], dim=-1)

    # The songs' own beats: annotated for renders, librosa's on each song alone for a folder.
    a_ref = a_info["beats"] if a_info["beats"] is not None else tracked(a, sr, 0, a.shape[-1] / sr, plan.a.tempo)
    b_ref = b_info["beats"] if b_info["beats"] is not None else tracked(b, sr, 0, b.shape[-1] / sr, plan.b.tempo)
    bpm_a, bpm_b = 60 / np.median(np.diff(a_ref)), 60 / np.median(np.diff(b_ref))
    lo, hi = max(0.0, plan.cue_out - BEAT_SPAN_S), plan.cue_out + plan.length + BEAT_SPAN_S

    def intended(middle: float, b_clock, level: bool = False) -> np.ndarray:
        """A's beats before the joint's ``middle`` (output seconds), then B's, mapped to the output by ``b_clock``;
        with ``level``, B's beats at A's metrical level (every other one of a double-time B, halves of a half-time
        one), kept in phase with the beat that lands on the cue-out. The switch is moved to halfway between two of
        A's beats: on a beat, two grids a few milliseconds apart would count that beat twice or not at all."""
        beat = float(np.median(np.diff(a_ref)))
        nearest = a_ref[np.argmin(np.abs(a_ref - middle))]
        middle = nearest + (beat / 2 if middle >= nearest else -beat / 2)
        b_out = b_clock(b_ref)
        if level:
            ratio = np.median(np.diff(a_ref)) / np.median(np.diff(b_out))
            if ratio > 1.5:
                first = int(np.argmin(np.abs(b_out - plan.cue_out)))
                b_out = b_out[first % 2 :: 2]
            elif ratio < 0.67:
                b_out = np.sort(np.concatenate([b_out, (b_out[:-1] + b_out[1:]) / 2]))
        return np.concatenate([a_ref[a_ref < middle], b_out[b_out >= middle]])

    mid = plan.cue_out + plan.length / 2
    today_start = plan.cue_out + plan.length - 2.5  # where today's B starts in its output
    overlap = (plan.cue_out, plan.cue_out + plan.length)
    aligned = {
        "new": on_grid(a_ref, b_ref, plan.b_to_output, *overlap),
        "new-mix": on_grid(a_ref, b_ref, plan.b_to_output, *overlap),
        "today": on_grid(a_ref, b_ref, lambda t: t - plan.cue_in + today_start, today_start, today_start + 2.5),
        "crossfade": on_grid(a_ref, b_ref, lambda t: t - plan.cue_in + plan.cue_out, *overlap),
    }
    grids = {
        "new": intended(mid, plan.b_to_output, level=True),
        "new-mix": intended(mid, plan.b_to_output, level=True),
        "today": intended(today_start + 1.25, lambda t: t - plan.cue_in + today_start),
        "crossfade": intended(mid, lambda t: t - plan.cue_in + plan.cue_out),
    }
    a_hi = plan.cue_out + plan.length
    alone = [continuity(a_ref, tracked(a, sr, lo, a_hi, bpm_a), lo, a_hi)]
    b_lo = plan.cue_in
    b_hi = plan.cue_in + (plan.length + BEAT_SPAN_S) * plan.speed
    alone.append(continuity(b_ref, tracked(b, sr, b_lo, b_hi, bpm_b), b_lo, b_hi))
    alone_cmlt = float(np.nanmean([c for c, _ in alone]))
    b_clock = np.linspace(plan.cue_in, b.shape[-1] / sr, 4096)  # B's seconds, and where they play in the output
    out_clock = np.asarray(plan.b_to_output(b_clock))
    b_first = max(0.0, lo) + math.ceil(plan.cue_out - max(0.0, lo))  # the output's first window with B in it
    own_steps = [
        loudness_step(a, sr, lo, plan.cue_out + plan.length),
        loudness_step(b, sr, b_first, hi, clock=lambda t: float(np.interp(t, out_clock, b_clock))),
    ]
    alone_loud = float(np.nanmean(own_steps))
    # A step either song already takes by itself inside the span is the song's, not the transition's.
    louder_own = float(np.nanmax(own_steps)) if np.isfinite(own_steps).any() else float("nan")
    key_b = {"new": plan.semitones, "new-mix": plan.semitones, "today": 0, "crossfade": 0}
    results = {}
    for name, out in (("new", out_new), ("new-mix", out_mix), ("today", out_today), ("crossfade", out_xfade)):
        end = min(hi, out.shape[-1] / sr - 0.5)
        cmlt, amlt = continuity(grids[name], tracked(out, sr, lo, end, bpm_a), lo, end)
        # Annotated keys for renders; for a folder, the analysis's own estimates.
        ka = a_info["key"] or plan.a.key
        kb = transpose_key(b_info["key"] or plan.b.key, key_b[name])
        step = loudness_step(out, sr, lo, hi)
        results[name] = dict(
            cmlt=cmlt,
            amlt=amlt,
            cmlt_vs_alone=cmlt - alone_cmlt,
            on_grid=aligned[name],
            flams=flams_per_s(out, sr, plan.cue_out, plan.cue_out + plan.length),
            key=key_distance(ka, kb),
            compatible=float(key_relation(ka, kb) is not None),
            loud=step,
            loud_vs_alone=step - alone_loud,
            loud_vs_own=step - louder_own,
        )
    results["plan"] = dict(
        speed=plan.speed,
        semitones=plan.semitones,
        beat_matched=float(plan.beat_matched),
        pinned=float(bool(plan.timemap)),
    )
    if args.save:
        folder = REPO / "build" / "transitions" / "outputs"
        folder.mkdir(parents=True, exist_ok=True)
        for name, out in (("new", out_new), ("today", out_today), ("crossfade", out_xfade)):
            save_audio(folder / f"{a_info['name']}_{b_info['name']}_{name}.flac", out, sr)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pop909", type=Path, default=REPO.parent / "shared" / "data" / "pop909")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    p.add_argument("--folder", type=Path, default=None, help="pairs from a folder of audio instead of POP909")
    p.add_argument("--songs", type=int, default=120, help="songs of the split to draw pairs from")
    p.add_argument("--skip", type=int, default=0, help="leave out the split's first N songs (songs scored before)")
    p.add_argument("--pairs", type=int, default=12)
    p.add_argument("--seconds", type=float, default=60.0, help="seconds of each song rendered")
    p.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--fade", type=float, default=2.5, help="seconds the model regenerates in 'new'")
    p.add_argument("--match-key", action="store_true")
    p.add_argument("--steps", type=int, default=20, help="sampling steps of every model run (the same for all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoints", type=Path, default=None)
    p.add_argument("--save", action="store_true", help="also write the outputs to build/transitions/outputs/")
    p.add_argument("--out", type=Path, default=None, help="also write one JSON line per pair here")
    p.add_argument("--plan-only", action="store_true", help="only plan each pair and score its beats on A's grid")
    args = p.parse_args(argv)
    if args.plan_only and args.folder:
        p.error("--plan-only scores annotated beats: use it on POP909 pairs, without --folder")
    torch.set_num_threads(args.threads)
    songs = rendered(args)
    chosen = pairs(songs, args.pairs, args.folder is not None)
    if args.plan_only:
        return plan_only(chosen, args)
    from recipes.models import load_models

    model = load_models("latent", args.checkpoints)
    t0 = time.time()
    rows = []
    out_file = open(args.out, "w") if args.out else None
    for a_info, b_info in tqdm(chosen, desc="pairs", file=sys.stderr):
        rows.append(run_pair(a_info, b_info, model, args))
        if out_file:
            out_file.write(json.dumps({"a": a_info["name"], "b": b_info["name"], **rows[-1]}) + "\n")
            out_file.flush()
    print(f"{len(rows)} pairs ({args.split if not args.folder else args.folder}), {time.time() - t0:.0f} s")
    speeds = np.array([r["plan"]["speed"] for r in rows])
    matched = sum(r["plan"]["beat_matched"] for r in rows)
    print(f"B stretched ×{speeds.min():.3f}-×{speeds.max():.3f}; beat-matched {matched:.0f} of {len(rows)}")
    keys = ("cmlt", "amlt", "cmlt_vs_alone", "on_grid", "flams", "key", "compatible")
    keys += ("loud", "loud_vs_alone", "loud_vs_own")
    print(f"{'method':<10}" + "".join(f"{k:>15}" for k in keys))
    for m in METHODS:
        cells = []
        for k in keys:
            v = np.array([r[m][k] for r in rows], dtype=float)
            v = v[np.isfinite(v)]
            cells.append(f"{v.mean():7.3f} ± {v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0:.3f}")
        print(f"{m:<10}" + "".join(f"{c:>15}" for c in cells))
    cm = np.array([r["new"]["cmlt"] for r in rows])
    print(
        f"new: CMLt ≥ 0.9 on {np.mean(cm >= 0.9):.0%} of pairs; loudness step > 1 LU over the songs' own on "
        f"{np.mean(np.array([r['new']['loud_vs_alone'] for r in rows]) > 1.0):.0%} (their mean), "
        f"{np.mean(np.array([r['new']['loud_vs_own'] for r in rows]) > 1.0):.0%} (the larger)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
