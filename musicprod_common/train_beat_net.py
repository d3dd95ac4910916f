"""Train the beat and downbeat network (``musicprod_common.beat_net``) on POP909 train songs rendered to audio.

    python -m musicprod_common.train_beat_net --out runs/beats --max-minutes 25 --cpu
    accelerate launch -m musicprod_common.train_beat_net ...   # same flags, any number of processes

Each train-split song gives one window of ``--seconds`` (from a random start), played by a random band: GM programs
drawn per track from pianos, organs, guitars, strings, brass, reeds, pipes, synth leads and pads, a bass line split
off the accompaniment (70 %), drums on the annotated beats (35 %), FluidR3 or TimGM6mb. Every song is humanized
(``pop909.humanize``: its tempo drifts by up to ±3 %, its notes a few ms off the grid) and its whole timeline is
scaled by up to ±15 %, so the network meets tempi and grooves the MIDI alone lacks. Chromatic percussion
(vibraphone, marimba, celesta...) is never drawn: the analysis benchmark's "mallets" style stays an unheard timbre.

Windows are rendered once and cached under ``build/beat_net/`` as the analysis's log-mel (float16) with their beat
and downbeat times. Targets follow Böck & Davies (2020): 1 on the annotated frame, 0.5 on its neighbours. The loss
is binary cross-entropy, its positives weighted up by how rare they are. Augmentation, drawn from the loop's
per-draw key: a random spectral tilt of up to ±12 dB across the bands (other microphones, other mastering).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from .beat_net import DYNAMIC_RANGE_DB, BeatNet, BeatNetConfig, normalise
from .errors import InputError
from .training import TrainConfig, add_training_args, example_rand, train, train_config

REPO = Path(__file__).resolve().parents[1]
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
# GM programs (0-based) by role. No chromatic percussion (8-15): the analysis benchmark's mallets stay unheard.
LEAD_PROGRAMS = (*range(0, 8), *range(16, 32), *range(40, 88))
ACCOMPANIMENT_PROGRAMS = (*range(0, 8), *range(16, 32), *range(40, 56), *range(88, 96))
BASS_PROGRAMS = tuple(range(32, 40))
BASS_CHANCE, DRUM_CHANCE = 0.7, 0.35
MAX_DRIFT, MAX_JITTER = 0.03, 0.012
TEMPO_SCALE = 0.15  # the timeline is scaled by a factor in [1 / 1.15, 1.15], log-uniform
MAX_TILT_DB = 12.0
NEIGHBOUR_TARGET = 0.5  # target on the frames either side of an annotated one


def _scaled(song, factor: float):
    """``song`` with every time (notes, beats, downbeats) multiplied by ``factor``: slower above 1."""
    from .pop909 import Note

    tracks = {
        name: tuple(Note(n.pitch, n.velocity, n.start * factor, n.end * factor) for n in notes)
        for name, notes in song.tracks.items()
    }
    return dataclasses.replace(song, tracks=tracks, beats=song.beats * factor, downbeats=song.downbeats * factor)


def render_window(pop909: str, song_id: str, seconds: float, seed: int) -> dict[str, np.ndarray]:
    """One training window: the analysis's log-mel (T, n_mels) float16 and the beat and downbeat times (s) in it."""
    from . import analysis
    from .pop909 import humanize, load_song
    from .render import render_song
    from .styles import Style

    rng = np.random.default_rng(seed)
    style = Style(
        "random",
        melody=int(rng.choice(LEAD_PROGRAMS)),
        bridge=int(rng.choice(LEAD_PROGRAMS)),
        piano=int(rng.choice(ACCOMPANIMENT_PROGRAMS)),
        bass=int(rng.choice(BASS_PROGRAMS)) if rng.random() < BASS_CHANCE else None,
        drums=bool(rng.random() < DRUM_CHANCE),
    )
    song = load_song(Path(pop909) / song_id)
    song = humanize(song, seed, drift=rng.uniform(0.0, MAX_DRIFT), jitter=rng.uniform(0.0, MAX_JITTER))
    song = _scaled(song, math.exp(rng.uniform(-1, 1) * math.log1p(TEMPO_SCALE)))
    start = float(rng.uniform(0.0, max(0.0, song.end_time - seconds)))
    soundfont = SOUNDFONTS[int(rng.integers(len(SOUNDFONTS)))]
    rendering = render_song(song, style, start=start, end=start + seconds, soundfont=soundfont)
    mel = analysis.log_mel(analysis._mono(rendering.mix.clamp(-1, 1), rendering.sample_rate))

    def inside(times: np.ndarray) -> np.ndarray:
        t = np.asarray(times, dtype=np.float64) - start
        return t[(t >= 0) & (t < seconds)]

    return {"mel": mel.T.astype(np.float16), "beats": inside(song.beats), "downbeats": inside(song.downbeats)}


def _render_job(job: tuple[str, str, float, int, str]) -> str:
    pop909, song_id, seconds, seed, path = job
    torch.set_num_threads(1)
    window = render_window(pop909, song_id, seconds, seed)
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez(tmp, **window)
    tmp.replace(path)
    return path


def render_windows(
    pop909: str,
    split: str,
    songs: int,
    seconds: float,
    workers: int,
    cache: Path = REPO / "build" / "beat_net",
    seed: int = 0,
) -> list[Path]:
    """The windows of the first ``songs`` songs of ``split``, cached under ``cache``; what it lacks is rendered."""
    from tqdm.auto import tqdm

    from .pop909 import split_song_ids

    ids = split_song_ids(pop909, split)[:songs]
    cache = Path(cache) / f"{split}-{seconds:g}s-seed{seed}"
    cache.mkdir(parents=True, exist_ok=True)
    paths = [cache / f"{sid}.npz" for sid in ids]
    jobs = [(pop909, sid, seconds, seed * 100_003 + int(sid), str(p)) for sid, p in zip(ids, paths) if not p.exists()]
    if jobs:
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in tqdm(pool.imap_unordered(_render_job, jobs), total=len(jobs), desc="rendering", unit="song"):
                pass
    return paths


def frame_targets(times: np.ndarray, n_frames: int, frame_rate: float) -> np.ndarray:
    """(n_frames,) float32: 1 at each time's nearest frame, :data:`NEIGHBOUR_TARGET` on the frames beside it."""
    target = np.zeros(n_frames, dtype=np.float32)
    frames = np.round(np.asarray(times) * frame_rate).astype(int)
    frames = frames[(frames >= 0) & (frames < n_frames)]
    for side in (-1, 1):
        near = np.clip(frames + side, 0, n_frames - 1)
        target[near] = np.maximum(target[near], NEIGHBOUR_TARGET)
    target[frames] = 1.0
    return target


class BeatWindows(Dataset):
    """Cached windows as ``{"mel": (T, n_mels) normalised, "target": (2, T) beat and downbeat}``, equal T."""

    def __init__(self, paths: list[Path], frame_rate: float):
        self.items = []
        for path in paths:
            data = np.load(path)
            mel = normalise(data["mel"].astype(np.float32))
            n = mel.shape[0]
            target = np.stack([frame_targets(data[k], n, frame_rate) for k in ("beats", "downbeats")])
            self.items.append((mel, torch.from_numpy(target)))
        self.frames = min(m.shape[0] for m, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        mel, target = self.items[index]
        return {"mel": mel[: self.frames], "target": target[:, : self.frames]}


def loss_fn(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    mel, target = batch["mel"], batch["target"]
    tilt_db = (example_rand(batch["key"], (1,), salt=1, device=mel.device) * 2 - 1) * MAX_TILT_DB  # (B, 1)
    ramp = torch.linspace(-0.5, 0.5, mel.shape[-1], device=mel.device)
    mel = (mel + 2.0 * tilt_db[:, :, None] * ramp / DYNAMIC_RANGE_DB).clamp(-1.0, 1.0)  # ±tilt/2 dB at the band edges
    logits = model(mel)
    positive = target.mean(dim=(0, 2), keepdim=True).clamp_min(1e-4)  # share of beat / downbeat frames
    weight = torch.where(target > 0, 0.5 / positive, 0.5 / (1 - positive))
    losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="none")
    beat, down = losses.mean(dim=(0, 2))
    return beat + down, {"beat": float(beat), "downbeat": float(down)}


def main(argv: list[str] | None = None) -> int:
    from . import analysis

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pop909", default=str(REPO.parent / "shared" / "data" / "pop909"), help="POP909 folder")
    parser.add_argument("--songs", type=int, default=727, help="train-split songs (727 in all), one window each")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each window")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument("--cache", default=str(REPO / "build" / "beat_net"), help="where rendered windows are kept")
    add_training_args(parser, TrainConfig(steps=4000, batch_size=4, lr=2e-3, warmup_steps=100, ema_decay=0.995))
    args = parser.parse_args(argv)
    try:
        cfg = train_config(args)
        if not Path(args.pop909).is_dir():
            raise InputError(f"{args.pop909}: POP909 not found; pass --pop909 with the dataset's folder")
        paths = render_windows(args.pop909, "train", args.songs, args.seconds, args.workers, Path(args.cache))
        data = BeatWindows(paths, analysis.ONSET_RATE)
        summary = train(
            BeatNet(BeatNetConfig()),
            loss_fn,
            data,
            cfg,
            args.out,
            model_config=BeatNetConfig(),
            progress=not args.no_progress,
        )
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
