"""Map-style datasets of fixed-length float32 stereo 44.1 kHz segments, shaped (2, T).

Every item is a deterministic function of (seed, index), so an evaluation set is fixed by its seed, and items
are dicts, as :func:`musicprod_common.training.train` expects.

- :class:`Pop909Segments`: POP909 rendered on the fly (random window, style and transposition).
- :class:`AudioFolderSegments`: any folder of wav/flac/ogg/mp3 (e.g. the output of ``prerender``), with style
  labels when the folder has a ``manifest.jsonl``.
- :class:`FMASegments`: the Free Music Archive layout with genre labels.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from .audio import AUDIO_SUFFIXES, SAMPLE_RATE, to_stereo_44k
from .errors import InputError
from .pop909 import Song, load_song, split_song_ids
from .render import render_song
from .styles import STYLE_NAMES, VAE_HELDOUT_STYLE, get_style

# Fixed stem order for (S, 2, T) stem tensors; a style without a track gives zeros there.
STEM_NAMES: tuple[str, ...] = ("MELODY", "BRIDGE", "PIANO", "BASS", "DRUMS")
_SILENCE_PEAK = 1e-3  # a window whose mix never reaches this is treated as silent and redrawn
_MAX_DRAWS = 8


def training_styles() -> list[str]:
    """All styles except :data:`VAE_HELDOUT_STYLE` (the default for training the audio models)."""
    return [s for s in STYLE_NAMES if s != VAE_HELDOUT_STYLE]


class Pop909Segments(Dataset):
    """POP909 windows rendered with FluidSynth on the fly.

    Item ``i`` plays song ``i % num_songs`` of ``split``; a generator seeded by (seed, i) picks the window
    start (on a beat), the style among ``styles`` and a transposition in [-transpose, transpose]. Silent
    windows are redrawn. Items: ``audio`` (2, T) float32, ``style`` LongTensor () = index into
    :data:`STYLE_NAMES`, ``transpose`` LongTensor (), and with ``with_stems`` ``stems`` (5, 2, T) in
    :data:`STEM_NAMES` order.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        seconds: float,
        *,
        styles: Sequence[str] | None = None,
        transpose: int = 6,
        seed: int = 0,
        with_stems: bool = False,
        items_per_song: int = 16,
        soundfont: str | os.PathLike | None = None,
    ) -> None:
        self.root = Path(root)
        self.song_ids = split_song_ids(self.root, split)
        self.seconds = float(seconds)
        self.num_samples = int(round(self.seconds * SAMPLE_RATE))
        self.styles = list(styles) if styles else training_styles()
        for name in self.styles:
            get_style(name)
        self.transpose = int(transpose)
        self.seed = int(seed)
        self.with_stems = with_stems
        self.items_per_song = int(items_per_song)
        self.soundfont = soundfont
        self._songs: dict[str, Song] = {}

    def __len__(self) -> int:
        return len(self.song_ids) * self.items_per_song

    def song(self, song_id: str) -> Song:
        if song_id not in self._songs:
            self._songs[song_id] = load_song(self.root / song_id)
        return self._songs[song_id]

    def draw(self, index: int) -> dict:
        """The (song, style, transpose, start) of item ``index``, before rendering (the first draw)."""
        return self._draws(index)[0]

    def _draws(self, index: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, index])
        song_id = self.song_ids[index % len(self.song_ids)]
        song = self.song(song_id)
        first = min((n.start for notes in song.tracks.values() for n in notes), default=0.0)
        latest = max(first, song.end_time - self.seconds)
        beats = np.asarray(song.beats)
        candidates = beats[(beats >= first - 1e-6) & (beats <= latest)] if len(beats) else beats
        draws = []
        for _ in range(_MAX_DRAWS):
            start = float(rng.choice(candidates)) if len(candidates) else float(rng.uniform(first, latest))
            draws.append(
                {
                    "song": song_id,
                    "style": self.styles[int(rng.integers(len(self.styles)))],
                    "transpose": int(rng.integers(-self.transpose, self.transpose + 1)),
                    "start": round(start, 6),
                }
            )
        return draws

    def render(self, index: int) -> tuple[dict, torch.Tensor, dict[str, torch.Tensor]]:
        """(draw, mix (2, T), stems) of item ``index``; the first non-silent draw."""
        song = None
        for draw in self._draws(index):
            song = self.song(draw["song"])
            out = render_song(
                song,
                draw["style"],
                start=draw["start"],
                end=draw["start"] + self.seconds,
                transpose=draw["transpose"],
                soundfont=self.soundfont,
            )
            if float(out.mix.abs().max()) >= _SILENCE_PEAK:
                break
        return draw, out.mix, out.stems

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        draw, mix, stems = self.render(index)
        item = {
            "audio": mix,
            "style": torch.tensor(STYLE_NAMES.index(draw["style"])),
            "transpose": torch.tensor(draw["transpose"]),
        }
        if self.with_stems:
            zeros = torch.zeros_like(mix)
            item["stems"] = torch.stack([stems.get(name, zeros) for name in STEM_NAMES])
        return item


def _read_segment(path: Path, start_s: float, seconds: float, num_samples: int) -> torch.Tensor:
    """(2, num_samples) float32 at 44.1 kHz from ``path`` starting at ``start_s``, zero-padded at the end."""
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            f.seek(min(int(start_s * sr), max(0, f.frames - 1)))
            data = f.read(int(math.ceil(seconds * sr)) + 1, dtype="float32", always_2d=True)
    except Exception as err:
        raise InputError(f"{path}: not a readable audio file ({err}); remove or replace it") from err
    if data.shape[0] == 0:
        raise InputError(f"{path}: zero-length audio; remove it from the folder")
    audio = to_stereo_44k(torch.from_numpy(np.ascontiguousarray(data.T)), sr, name=str(path))
    audio = audio[:, :num_samples]
    if audio.shape[1] < num_samples:
        audio = torch.nn.functional.pad(audio, (0, num_samples - audio.shape[1]))
    return audio.contiguous()


def _duration(path: Path) -> float:
    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate
    except Exception:
        return 0.0  # unreadable: left out of the index


class _SegmentIndex(Dataset):
    """Files cut into ``seconds``-long segments: file k gives max(1, floor(duration / seconds)) segments
    starting at a per-file offset drawn from (seed, k) within the leftover time."""

    def __init__(self, files: Sequence[Path], seconds: float, seed: int) -> None:
        self.seconds = float(seconds)
        self.num_samples = int(round(self.seconds * SAMPLE_RATE))
        self.seed = int(seed)
        self.files: list[Path] = []
        self.entries: list[tuple[int, float]] = []  # (file number, start s)
        for path in files:
            duration = _duration(path)
            if duration <= 0:
                continue
            k = len(self.files)
            self.files.append(path)
            count = max(1, int(duration // self.seconds))
            leftover = max(0.0, duration - count * self.seconds)
            offset = float(np.random.default_rng([self.seed, k]).uniform(0, leftover)) if leftover > 0 else 0.0
            self.entries.extend((k, offset + j * self.seconds) for j in range(count))

    def __len__(self) -> int:
        return len(self.entries)

    def _audio(self, index: int) -> tuple[int, torch.Tensor]:
        k, start = self.entries[index]
        return k, _read_segment(self.files[k], start, self.seconds, self.num_samples)


def _audio_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and p.is_file()
        and not any(part.endswith(".stems") for part in p.relative_to(root).parts[:-1])
    )


class AudioFolderSegments(_SegmentIndex):
    """Any folder of wav/flac/ogg/mp3 (searched recursively) as (2, T) float32 44.1 kHz segments.

    With a ``manifest.jsonl`` (as written by ``prerender``: one JSON object per line with ``file`` and
    ``style``), only the listed files are used and items carry ``style`` (LongTensor (), index into
    :data:`STYLE_NAMES`); with ``with_stems`` they carry ``stems`` (5, 2, T) from ``NAME.stems/TRACK.<suffix>``.
    """

    def __init__(self, root: str | os.PathLike, seconds: float, *, seed: int = 0, with_stems: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a folder; pass a folder of wav/flac/ogg/mp3 files")
        manifest = self.root / "manifest.jsonl"
        self.labels: dict[Path, int] | None = None
        if manifest.is_file():
            self.labels = {}
            for line_no, line in enumerate(manifest.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.labels[self.root / row["file"]] = STYLE_NAMES.index(row["style"])
                except (ValueError, KeyError) as err:
                    raise InputError(
                        f"{manifest}: line {line_no} is not a manifest entry with a known style ({err}); "
                        "re-run prerender"
                    ) from err
            files = sorted(p for p in self.labels if p.is_file())
        else:
            files = _audio_files(self.root)
        super().__init__(files, seconds, seed)
        if not self.entries:
            raise InputError(f"{self.root}: no readable wav/flac/ogg/mp3 files; pass a folder with audio in it")
        self.with_stems = with_stems

    def __getitem__(self, index: int) -> dict:
        k, audio = self._audio(index)
        item = {"audio": audio}
        if self.labels is not None:
            item["style"] = torch.tensor(self.labels[self.files[k]])
        if self.with_stems:
            _, start = self.entries[index]
            stem_dir = self.files[k].with_suffix(".stems")
            paths = [stem_dir / f"{name}{self.files[k].suffix}" for name in STEM_NAMES]
            item["stems"] = torch.stack(
                [
                    _read_segment(p, start, self.seconds, self.num_samples) if p.is_file() else torch.zeros_like(audio)
                    for p in paths
                ]
            )
        return item


def read_fma_genres(tracks_csv: Path) -> dict[int, str]:
    """track id -> top genre from FMA's ``tracks.csv`` (3 header rows: group, field, ``track_id``)."""
    try:
        with open(tracks_csv, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            groups, fields, _ = next(reader), next(reader), next(reader)
            try:
                col = next(i for i, (g, n) in enumerate(zip(groups, fields)) if g == "track" and n == "genre_top")
            except StopIteration:
                raise InputError(
                    f"{tracks_csv}: no ('track', 'genre_top') column; pass FMA's fma_metadata/tracks.csv"
                ) from None
            genres = {}
            for row in reader:
                if len(row) > col and row[0].strip().isdigit() and row[col].strip():
                    genres[int(row[0])] = row[col].strip()
            return genres
    except (OSError, StopIteration, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{tracks_csv}: cannot read FMA metadata ({err}); pass FMA's fma_metadata/tracks.csv") from err


class FMASegments(_SegmentIndex):
    """The Free Music Archive: ``root/fma_*/NNN/NNNNNN.mp3`` plus ``root/fma_metadata/tracks.csv``.

    Tracks without a top genre are left out. Items: ``audio`` (2, T) float32 and ``genre`` LongTensor () =
    index into ``self.genres`` (sorted genre names of the tracks found).
    """

    def __init__(
        self, root: str | os.PathLike, seconds: float, *, seed: int = 0, genres: Sequence[str] | None = None
    ) -> None:
        self.root = Path(root)
        tracks_csv = self.root / "fma_metadata" / "tracks.csv"
        if not tracks_csv.is_file():
            raise InputError(f"{tracks_csv}: FMA metadata missing; pass the folder holding fma_metadata/ and fma_*/")
        by_id = read_fma_genres(tracks_csv)
        files = [
            p
            for p in sorted(self.root.glob("fma_*/[0-9][0-9][0-9]/*.mp3"))
            if p.parent.parent.name != "fma_metadata" and p.stem.isdigit() and int(p.stem) in by_id
        ]
        self.genres = list(genres) if genres is not None else sorted({by_id[int(p.stem)] for p in files})
        files = [p for p in files if by_id[int(p.stem)] in self.genres]
        super().__init__(files, seconds, seed)
        if not self.entries:
            raise InputError(f"{self.root}: no readable fma_*/NNN/NNNNNN.mp3 with a genre; check the FMA folder")
        self._genre_of = {p: self.genres.index(by_id[int(p.stem)]) for p in self.files}

    def __getitem__(self, index: int) -> dict:
        k, audio = self._audio(index)
        return {"audio": audio, "genre": torch.tensor(self._genre_of[self.files[k]])}
