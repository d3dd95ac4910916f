"""``musicprod app``: a local web page for editing songs, listening to each edit A/B and downloading it.

Pick a region on the waveform; inpaint, regenerate, restyle, continue or join two songs; play the original and the
result around the region; download the result in the input's format. Chords (and a melody MIDI) become an
accompaniment MIDI, rendered through FluidSynth to listen to.

A small standard-library server and one static page (``recipes/static/app.html``), rather than Gradio: dragging a
region over a waveform, a shared playhead for A/B and pre-roll around the region are a few lines of canvas code but
do not exist as Gradio components, and all that the server exposes is the few routes of :class:`Handler`. The server
owns one temporary folder, removed when it stops. Uploads and results get server-made ids, and every file
route takes only such an id, never a path. One worker thread runs the edits from a queue, one at a time, so two
requests never share the model; the page polls a job for its progress.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import queue
import re
import socket
import sys
import tempfile
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
import soundfile as sf
import torch

from guidance.config import sampler_preset
from guidance.song import INPAINT_SOURCES, continue_song, inpaint_regions, model_windows, needs_model, plan_inpaint
from guidance.style_guidance import style_target
from guidance.style_transfer import restyle
from guidance.tasks import regenerate
from guidance.transitions import BRIDGE_S, PHRASE_BARS, beat_matched_transition
from musicprod_common.audio import AUDIO_SUFFIXES, SAMPLE_RATE, match_format, save_audio
from musicprod_common.errors import InputError
from musicprod_common.plot import plot_before_after, plot_transition
from musicprod_common.styles import STYLE_NAMES
from symbolic.chords import parse_progression
from symbolic.generate import SamplingConfig, window_starts
from symbolic.pipeline import accompany, write_outputs

from .accompany_cmd import MIDI_SUFFIXES
from .cli_common import non_negative_float, positive_int, read_audio
from .models import MODEL_KINDS, default_checkpoints, load_models
from .style_cmd import load_classifier

PAGE = Path(__file__).with_name("static") / "app.html"
ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex: the only name a request can give a file or a job
EDITS = ("inpaint", "regenerate", "restyle", "continue", "transition", "accompany")
PEAKS = 4000  # waveform spans sent to the page: 0.15 s each in a 10-minute song, enough to zoom to a few seconds
SPECTROGRAM_COLUMNS = 2000
MAX_STEPS = 1000
CONTINUE_CONTEXT_S = 2.4  # `musicprod continue`'s default: the seconds of the song's end the model sees
MAX_WAITING = 16  # queued jobs beyond this are refused, so a stuck page cannot pile up hours of work
MAX_JSON = 64 * 1024
DRAIN_LIMIT = 256 * 2**20  # an oversized upload's body is read and dropped up to this, so the client sees the 413
CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".mid": "audio/midi",
    ".midi": "audio/midi",
    ".png": "image/png",
}


class Refused(Exception):
    """A request the server answers with ``status`` and a one-line ``message`` for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Stored:
    """A file in the app's folder: ``path`` is server-made; ``name`` is what the user called it (shown and offered as
    the download's name, never opened)."""

    path: Path
    name: str
    kind: str  # "audio", "midi" or "image"
    duration: float = 0.0
    sample_rate: int = 0
    channels: int = 0


@dataclass
class Job:
    """One queued edit: validated ``params``, its progress (``done`` of ``total`` ``unit``), and the outcome."""

    id: str
    params: dict[str, Any]
    state: str = "queued"  # queued, running, done or error
    done: int = 0
    total: int = 0
    unit: str = "steps"
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def display_name(name: str) -> str:
    """The last part of a client's file name, printable and at most 100 characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    clean = "".join(c for c in base if c.isprintable() and c not in '"<>|*?:').strip()
    return clean[-100:] or "upload"


def peaks(audio: torch.Tensor, n: int = PEAKS) -> list[list[float]]:
    """``[min, max]`` over the channels of ``audio`` ``(channels, T)`` in ``n`` equal spans (fewer for short audio)."""
    lo, hi = torch.amin(audio, 0).numpy(), torch.amax(audio, 0).numpy()
    n = max(1, min(n, lo.size))
    starts = np.linspace(0, lo.size, n + 1).astype(int)[:-1]
    spans = np.stack([np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts)], axis=1)
    return np.round(spans, 4).tolist()


def write_spectrogram(path: Path, audio: torch.Tensor, sample_rate: int) -> Path:
    """A bare log-mel image of the whole file (low notes at the bottom), drawn under the waveform on its time axis.

    :func:`musicprod_common.features.log_mel`'s 46 ms windows, but hopped so that about four frames fall in each of
    the image's columns (max-pooled into it): a 10-minute song takes 0.7 s, not the 8 s of every 5.8 ms frame."""
    import torchaudio
    from matplotlib.image import imsave

    n_fft = 1 << max(8, int(np.ceil(np.log2(sample_rate * 0.046))))
    hop = max(n_fft // 8, audio.shape[-1] // (4 * SPECTROGRAM_COLUMNS))
    mono = torch.nn.functional.pad(audio.float().mean(0), (0, max(0, n_fft - audio.shape[-1])))
    power = torchaudio.transforms.MelSpectrogram(
        sample_rate, n_fft=n_fft, hop_length=hop, n_mels=min(96, n_fft // 4), f_max=sample_rate / 2
    )(mono)
    mel = (10.0 * torch.log10(power.clamp(min=1e-10))).numpy()  # (mels, frames)
    columns = min(SPECTROGRAM_COLUMNS, mel.shape[1])
    mel = np.maximum.reduceat(mel, np.linspace(0, mel.shape[1], columns + 1).astype(int)[:-1], axis=1)
    imsave(path, mel, cmap="magma", vmin=mel.max() - 80.0, vmax=mel.max(), origin="lower", format="png")
    return path


class Studio:
    """The app without HTTP: its files, its job queue and the worker that runs the edits with the models."""

    def __init__(
        self,
        *,
        model: str = "latent",
        checkpoints: Path | None = None,
        max_upload_mb: float = 50.0,
        max_seconds: float = 600.0,
    ) -> None:
        if model not in MODEL_KINDS:
            raise InputError(f"unknown model {model!r}; choose one of {', '.join(MODEL_KINDS)}")
        self.model_kind = model
        self.checkpoints = Path(checkpoints) if checkpoints is not None else default_checkpoints()
        self.max_upload_bytes = int(max_upload_mb * 2**20)
        self.max_seconds = max_seconds
        self._folder = tempfile.TemporaryDirectory(prefix="musicprod-app-")
        self.root = Path(self._folder.name)
        self.files: dict[str, Stored] = {}
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._loaded: dict[str, Any] = {}  # the models, loaded by the worker on first use and only used by it
        self.runners: dict[str, Callable[[Job], None]] = {
            "inpaint": self._inpaint,
            "regenerate": self._regenerate,
            "restyle": self._restyle,
            "continue": self._continue,
            "transition": self._transition,
            "accompany": self._accompany,
        }
        self._worker = threading.Thread(target=self._work, name="musicprod-app-worker", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stop taking jobs and remove the folder with every upload and result."""
        self._queue.put(None)
        self._folder.cleanup()

    # ------------------------------------------------------------------------------------------------ what the page
    def info(self) -> dict[str, Any]:
        """What the page offers: the limits, the model, the named styles and the instruments."""
        try:
            styles = json.loads((self.checkpoints / "classifier" / "config.json").read_text())["class_names"]
        except (OSError, ValueError, KeyError):
            styles = []  # no classifier: restyling takes a reference clip only
        preset, style = sampler_preset(self.model_kind), sampler_preset(self.model_kind, "style")
        return {
            "model": self.model_kind,
            "max_upload_mb": self.max_upload_bytes / 2**20,
            "max_seconds": self.max_seconds,
            "sources": list(INPAINT_SOURCES),
            "styles": styles,
            "instruments": list(STYLE_NAMES),
            "steps": preset.steps,
            "strength": {"regenerate": preset.strength, "restyle": style.strength, "transition": preset.strength},
        }

    def file(self, file_id: str) -> Stored:
        if not ID.fullmatch(file_id):
            raise Refused(400, "not a file id")
        with self._lock:
            stored = self.files.get(file_id)
        if stored is None or not stored.path.is_file():
            raise Refused(404, "no such file; it may have been removed when the app restarted")
        return stored

    def job(self, job_id: str) -> dict[str, Any]:
        """A job as the page polls it; ``position``: how many jobs run or wait before it."""
        if not ID.fullmatch(job_id):
            raise Refused(400, "not a job id")
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise Refused(404, "no such job")
            ahead = list(self.jobs).index(job_id)
            position = sum(j.state in ("queued", "running") for j in list(self.jobs.values())[:ahead])
        view = {k: getattr(job, k) for k in ("id", "state", "done", "total", "unit", "message")}
        return {**view, "position": position if job.state == "queued" else 0, "result": job.result}

    def public(self, message: str) -> str:
        """``message`` with the folder's paths replaced by the names the user knows, and flags by field names."""
        with self._lock:
            stored = list(self.files.values())
        for s in stored:
            message = message.replace(str(s.path), s.name)
        message = message.replace(str(self.root), "(app folder)")
        # the task layer names the command line's flags (--bars); the page has fields of the same names
        return re.sub(r"(?<![\w-])--(?=[a-z])", "", message)

    # ---------------------------------------------------------------------------------------------------- uploads
    def upload(self, data: bytes, name: str, kind: str = "audio") -> dict[str, Any]:
        """Store an uploaded file under a new id after checking it is usable; returns what the page draws."""
        name = display_name(name)
        suffixes = {"audio": AUDIO_SUFFIXES, "midi": MIDI_SUFFIXES}.get(kind)
        if suffixes is None:
            raise Refused(400, f"unknown upload kind {kind!r}; use audio or midi")
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in suffixes:
            raise InputError(
                f"{name}: unknown {kind} format {suffix or '(no suffix)'}; use one of {', '.join(suffixes)}"
            )
        file_id = uuid.uuid4().hex
        path = self.root / f"{file_id}{suffix}"
        path.write_bytes(data)
        try:
            if kind == "midi":
                self._check_midi(path, name)
                return self._add(file_id, Stored(path, name, "midi"))
            audio, sr = self._read(path, name)
            stored = self._add(file_id, Stored(path, name, "audio", audio.shape[-1] / sr, sr, audio.shape[0]))
            spectrogram_id = uuid.uuid4().hex
            picture = write_spectrogram(self.root / f"{spectrogram_id}.png", audio, sr)
            self._add(spectrogram_id, Stored(picture, f"{PurePosixPath(name).stem}.png", "image"))
            return {**stored, "peaks": peaks(audio), "spectrogram": spectrogram_id}
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def _add(self, file_id: str, stored: Stored) -> dict[str, Any]:
        with self._lock:
            self.files[file_id] = stored
        keys = ("name", "kind", "duration", "sample_rate", "channels")
        return {"id": file_id, **{k: getattr(stored, k) for k in keys}}

    def _read(self, path: Path, name: str) -> tuple[torch.Tensor, int]:
        """:func:`read_audio`, also refusing what is longer than the configured limit; errors name ``name``."""
        try:
            info = sf.info(str(path))
            seconds = info.frames / info.samplerate
        except Exception:
            seconds = 0.0  # not even a header: read_audio says why below
        if seconds > self.max_seconds:  # before decoding, which costs memory in proportion to the length
            raise InputError(f"{name}: {seconds:.1f} s is longer than this app takes ({self.max_seconds:g} s)")
        try:
            audio, sr = read_audio(path)
        except InputError as err:
            raise InputError(str(err).replace(str(path), name)) from None
        if audio.shape[-1] / sr > self.max_seconds:
            raise InputError(
                f"{name}: {audio.shape[-1] / sr:.1f} s is longer than this app takes ({self.max_seconds:g} s)"
            )
        return audio, sr

    @staticmethod
    def _check_midi(path: Path, name: str) -> None:
        import pretty_midi

        try:
            midi = pretty_midi.PrettyMIDI(str(path))
        except Exception as err:  # mido raises OSError, EOFError, KeyError, ValueError on bad data
            raise InputError(f"{name}: not a readable MIDI file ({type(err).__name__}); pass a .mid file") from None
        if not any(i.notes for i in midi.instruments):
            raise InputError(f"{name}: the MIDI file has no notes; pass a melody")

    # ------------------------------------------------------------------------------------------------------- jobs
    def submit(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check ``params`` now (bad ones fail at once, with a message) and queue the edit; returns its view."""
        if not isinstance(params, dict):
            raise InputError("the request must be a JSON object")
        job = Job(uuid.uuid4().hex, self._validate(params))
        if job.params["edit"] == "accompany":
            job.unit = "windows"
        with self._lock:
            waiting = sum(j.state == "queued" for j in self.jobs.values())
            if waiting >= MAX_WAITING:
                raise Refused(503, f"{waiting} edits are already waiting; try again when they are done")
            self.jobs[job.id] = job
        self._queue.put(job)
        return self.job(job.id)

    def _validate(self, p: dict[str, Any]) -> dict[str, Any]:
        edit = p.get("edit")
        if edit not in EDITS:
            raise InputError(f"unknown edit {edit!r}; choose one of {', '.join(EDITS)}")
        if edit == "accompany":
            chords = p.get("chords")
            if not isinstance(chords, str) or not chords.strip() or len(chords) > 1000:
                raise InputError("type the chords, e.g. C G Am F (one per bar, cycled)")
            parse_progression(chords)
            bars = _integer(p, "bars", 8, 4, 256)
            window_starts(bars)
            melody = p.get("melody")
            return {
                "edit": edit,
                "chords": chords.strip(),
                "bars": bars,
                "melody": None if melody in (None, "") else self._expect(melody, "midi"),
                "bpm": _number(p, "bpm", 100.0, 20.0, 400.0),
                "instrument": _choice(p, "instrument", STYLE_NAMES, "piano"),
                "steps": _integer(p, "steps", SamplingConfig.steps, 1, MAX_STEPS),
                "seed": _integer(p, "seed", 0, 0, 2**32 - 1),
            }
        song = self._expect(p.get("input"), "audio")
        out: dict[str, Any] = {
            "edit": edit,
            "input": song,
            "steps": _integer(p, "steps", sampler_preset(self.model_kind).steps, 1, MAX_STEPS),
            "seed": _integer(p, "seed", 0, 0, 2**32 - 1),
        }
        stored = self.files[song]
        if edit in ("inpaint", "regenerate", "restyle"):
            start, end = _number(p, "start"), _number(p, "end")
            if not 0 <= start < end <= stored.duration + 1e-6:
                raise InputError(
                    f"region {start:g}-{end:g} s is empty or outside {stored.name} (0-{stored.duration:.2f} s); "
                    "select a region inside the file"
                )
            out.update(start=start, end=end)
        if edit in ("inpaint", "continue"):
            out["source"] = _choice(p, "source", INPAINT_SOURCES, "auto")
        if edit in ("regenerate", "restyle", "transition"):
            preset = sampler_preset(self.model_kind, "style" if edit == "restyle" else "infill").strength
            out["strength"] = _number(p, "strength", preset, 1e-3, 1.0)
        if edit == "restyle":
            style, reference = p.get("style") or None, p.get("reference") or None
            styles = self.info()["styles"]
            if style is None and reference is None:
                raise InputError(f"choose a style ({', '.join(styles) or 'none known'}) or upload a reference clip")
            if style is not None and style not in styles:
                raise InputError(f"unknown style {style!r}; choose one of {', '.join(styles)}")
            out.update(style=style, reference=None if reference is None else self._expect(reference, "audio"))
        if edit == "transition":
            out.update(
                second=self._expect(p.get("second"), "audio"),
                bars=_integer(p, "bars", PHRASE_BARS, 1, 64),
                fade=_number(p, "fade", BRIDGE_S, 0.0, 60.0),
            )
        return out

    def _expect(self, file_id: Any, kind: str) -> str:
        """The id of an uploaded file of ``kind``."""
        if not isinstance(file_id, str):
            raise InputError(f"upload the {kind} file first")
        if self.file(file_id).kind != kind:
            raise InputError(f"that file is not {kind}; upload {'an audio file' if kind == 'audio' else 'a MIDI file'}")
        return file_id

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            job.state = "running"
            try:
                self.runners[job.params["edit"]](job)
                job.done = job.total
                job.state = "done"
            except InputError as err:
                job.message, job.state = self.public(str(err)), "error"
            except Exception as err:  # a bug: the page gets one line, the terminal the traceback, the app goes on
                traceback.print_exc(file=sys.stderr)
                job.message = f"the edit failed ({type(err).__name__}: {self.public(str(err))}); see the app's log"
                job.state = "error"

    # ------------------------------------------------------------------------------------------------------ edits
    def _model(self):
        if "model" not in self._loaded:
            self._loaded["model"] = load_models(self.model_kind, self.checkpoints)
        return self._loaded["model"]

    def _progress(self, job: Job, total: int) -> Callable[[int], None]:
        job.total = total

        def tick(n: int) -> None:
            job.done = min(job.total, job.done + n)

        return tick

    def _song(self, job: Job, key: str = "input") -> tuple[Stored, torch.Tensor, int]:
        stored = self.file(job.params[key])
        return stored, *self._read(stored.path, stored.name)

    def _inpaint(self, job: Job) -> None:
        p = job.params
        song, audio, sr = self._song(job)
        plans = plan_inpaint(audio, sr, [(p["start"], p["end"])], source=p["source"])
        model = self._model() if needs_model(plans) else None
        sampler = sampler_preset(self.model_kind).but(steps=p["steps"])
        total = sampler.steps * model_windows(model, plans, song.duration) if model is not None else 0
        result = inpaint_regions(
            model, audio, sr, plans, sampler=sampler, seed=p["seed"], progress=self._progress(job, total)
        )
        plan = result.plans[0]
        if p["source"] == "model":  # the plan's own line would explain why no passage was looked for
            describe = f"generated {plan.start:.2f}-{plan.end:.2f} s with the {self.model_kind} model"
        else:
            describe = plan.describe(["the song"], self.model_kind)
        self._finish(job, song, audio, result.audio, sr, (p["start"], p["end"]), describe)

    def _regenerate(self, job: Job) -> None:
        p = job.params
        song, audio, sr = self._song(job)
        sampler = sampler_preset(self.model_kind).but(steps=p["steps"], strength=p["strength"])
        run = dict(sampler=sampler, seed=p["seed"], progress=self._progress(job, sampler.steps))
        out = regenerate(self._model(), audio, sr, p["start"], p["end"], **run)
        describe = f"regenerated {p['start']:.2f}-{p['end']:.2f} s at strength {p['strength']:g}"
        self._finish(job, song, audio, out, sr, (p["start"], p["end"]), describe)

    def _restyle(self, job: Job) -> None:
        p = job.params
        song, audio, sr = self._song(job)
        if "classifier" not in self._loaded:
            self._loaded["classifier"] = load_classifier(self.checkpoints / "classifier")
        classifier = self._loaded["classifier"]
        reference, reference_rate = None, SAMPLE_RATE
        if p["reference"] is not None:
            clip, reference, reference_rate = self._song(job, "reference")
            if reference.shape[-1] * SAMPLE_RATE / reference_rate < classifier.min_samples:
                raise InputError(
                    f"{clip.name}: {clip.duration:.2f} s is too short to have a style; upload at least "
                    f"{classifier.min_samples / SAMPLE_RATE:.2f} s"
                )
        target = None if p["style"] is None else style_target(classifier, p["style"])
        sampler = sampler_preset(self.model_kind, "style").but(steps=p["steps"], strength=p["strength"])
        out = restyle(
            self._model(),
            audio,
            sr,
            p["start"],
            p["end"],
            embedder=classifier,
            reference=reference,
            reference_rate=reference_rate,
            target_class=target,
            sampler=sampler,
            seed=p["seed"],
            progress=self._progress(job, sampler.steps),
        )
        toward = " and ".join(x for x in (p["style"], p["reference"] and self.file(p["reference"]).name) if x)
        describe = f"restyled {p['start']:.2f}-{p['end']:.2f} s toward {toward} at strength {p['strength']:g}"
        self._finish(job, song, audio, out, sr, (p["start"], p["end"]), describe)

    def _continue(self, job: Job) -> None:
        p = job.params
        song, audio, sr = self._song(job)
        model = self._model()
        # half the window of a model too small for the usual context (the tests' tiny one)
        context = min(CONTINUE_CONTEXT_S, model.window / model.sample_rate / 2)
        sampler = sampler_preset(self.model_kind).but(steps=p["steps"])
        run = dict(source=p["source"], sampler=sampler, seed=p["seed"], progress=self._progress(job, sampler.steps))
        result = continue_song(model, audio, sr, context=context, **run)
        plan = result.plans[0]
        describe = (
            plan.describe(["the song"], self.model_kind)
            if plan.copied
            else f"continued by {plan.end - plan.start:.2f} s with the {self.model_kind} model"
        )
        before = torch.nn.functional.pad(audio, (0, result.audio.shape[-1] - audio.shape[-1]))
        self._finish(job, song, before, result.audio, sr, (plan.start, plan.end), describe)

    def _transition(self, job: Job) -> None:
        p = job.params
        song, a, sr = self._song(job)
        second, b, sr_b = self._song(job, "second")
        b = match_format(b, sr_b, sr, a.shape[0])
        model = self._model() if p["fade"] > 0 else None
        sampler = sampler_preset(self.model_kind).but(steps=p["steps"], strength=p["strength"])
        out, plan = beat_matched_transition(
            model,
            a,
            b,
            sr,
            bars=p["bars"],
            fade=p["fade"],
            sampler=sampler,
            seed=p["seed"],
            progress=self._progress(job, sampler.steps if model is not None else 0),
        )
        overlap = (plan.cue_out, plan.cue_out + plan.length)

        def draw(path: Path) -> None:
            a_grid, b_grid = plan.grids()
            swap = None if plan.swap is None else plan.cue_out + plan.swap
            plot_transition(path, out, sr, overlap, a_grid, b_grid, swap=swap, title=f"{song.name} → {second.name}")

        describe = "; ".join([*plan.notices, plan.describe()])
        self._finish(job, song, a, out, sr, overlap, describe, draw=draw)

    def _finish(
        self,
        job: Job,
        song: Stored,
        before: torch.Tensor,
        after: torch.Tensor,
        sr: int,
        region: tuple[float, float],
        describe: str,
        draw: Callable[[Path], None] | None = None,
    ) -> None:
        """Write the result in the input's format and its before/after picture; the job's result names both."""
        edit = job.params["edit"]
        name = f"{PurePosixPath(song.name).stem}-{edit}{song.path.suffix}"
        out_id, plot_id = uuid.uuid4().hex, uuid.uuid4().hex
        out_path, plot_path = self.root / f"{out_id}{song.path.suffix}", self.root / f"{plot_id}.png"
        save_audio(out_path, after, sr, like=song.path)
        if draw is None:
            title = f"{song.name}: {region[0]:.2f}-{region[1]:.2f} s, {edit}"
            plot_before_after(plot_path, before, after, sr, [region], title=title)
        else:
            draw(plot_path)
        out = self._add(out_id, Stored(out_path, name, "audio", after.shape[-1] / sr, sr, after.shape[0]))
        self._add(plot_id, Stored(plot_path, f"{PurePosixPath(name).stem}.png", "image"))
        job.result = {
            "audio": out,
            "peaks": peaks(after),
            "plot": plot_id,
            "region": list(region),
            "describe": describe,
        }

    def _accompany(self, job: Job) -> None:
        p = job.params
        melody = None if p["melody"] is None else self.file(p["melody"])

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        fgg = self.checkpoints / "fgg"
        tracks, steps, melody_bpm = accompany(
            p["chords"],
            bars=p["bars"],
            melody_path=None if melody is None else melody.path,
            sampling=SamplingConfig(steps=p["steps"]),
            checkpoint=fgg if (fgg / "config.json").is_file() else None,
            seed=p["seed"],
            progress=progress,
        )
        midi_id, audio_id = uuid.uuid4().hex, uuid.uuid4().hex
        midi_path, audio_path = self.root / f"{midi_id}.mid", self.root / f"{audio_id}.wav"
        bpm = melody_bpm or p["bpm"]
        write_outputs(tracks, steps, midi_path, bpm=bpm, audio_path=audio_path, style=p["instrument"])
        info = sf.info(str(audio_path))
        midi = self._add(midi_id, Stored(midi_path, "accompaniment.mid", "midi"))
        audio = Stored(audio_path, "accompaniment.wav", "audio", info.frames / info.samplerate, info.samplerate, 2)
        notes = len(tracks["PIANO"])
        describe = f"{notes} accompaniment notes over {p['bars']} bars at {bpm:g} BPM, played by {p['instrument']}"
        job.result = {"midi": midi, "audio": self._add(audio_id, audio), "describe": describe}


def _number(p: dict[str, Any], key: str, default: float | None = None, lo: float = 0.0, hi: float = math.inf) -> float:
    value = p.get(key, default)
    if value is None or value == "":
        if default is None:
            raise InputError(f"{key}: give a number")
        value = default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{key}: {value!r} is not a number") from None
    if not lo <= number <= hi:  # also refuses NaN
        raise InputError(f"{key}: {value} must be between {lo:g} and {hi:g}")
    return number


def _integer(p: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    number = _number(p, key, default, lo, hi)
    if number != int(number):
        raise InputError(f"{key}: {number:g} must be a whole number")
    return int(number)


def _choice(p: dict[str, Any], key: str, choices: tuple[str, ...] | list[str], default: str) -> str:
    value = p.get(key) or default
    if value not in choices:
        raise InputError(f"{key}: unknown {value!r}; choose one of {', '.join(choices)}")
    return value


# ------------------------------------------------------------------------------------------------------------ HTTP
class AppServer(ThreadingHTTPServer):
    """The HTTP server around a :class:`Studio`; ``loopback``: bound to this machine only, so requests must name it."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], studio: Studio) -> None:
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.studio = studio
        self.page = PAGE.read_bytes()
        try:
            self.loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            self.loopback = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    """Routes: ``GET /``, ``GET /api/info``, ``POST /api/upload?kind=audio|midi&name=N`` (the file is the body),
    ``POST /api/jobs`` (JSON), ``GET /api/jobs/ID``, ``GET /api/files/ID[?download=1]``. Nothing else is served."""

    server: AppServer
    server_version = "musicprod"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the page polls several times a second; the terminal keeps only what went wrong

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        studio = self.server.studio
        try:
            self._check_caller(method)
            url = urlsplit(self.path)
            parts = url.path.split("/")[1:]
            query = parse_qs(url.query)
            if method == "GET" and url.path in ("/", "/index.html"):
                return self._send(200, self.server.page, "text/html; charset=utf-8")
            if method == "GET" and parts == ["api", "info"]:
                return self._json(200, studio.info())
            if method == "POST" and parts == ["api", "upload"]:
                data = self._body(studio.max_upload_bytes, f"{studio.max_upload_bytes / 2**20:g} MB")
                kind, name = query.get("kind", ["audio"])[0], query.get("name", [""])[0]
                return self._json(200, studio.upload(data, name, kind))
            if method == "POST" and parts == ["api", "jobs"]:
                try:
                    params = json.loads(self._body(MAX_JSON, f"{MAX_JSON // 1024} KB"))
                except ValueError:
                    raise Refused(400, "the request is not JSON") from None
                return self._json(202, studio.submit(params))
            if method == "GET" and len(parts) == 3 and parts[:2] == ["api", "jobs"]:
                return self._json(200, studio.job(parts[2]))
            if method == "GET" and len(parts) == 3 and parts[:2] == ["api", "files"]:
                return self._file(studio.file(parts[2]), download=query.get("download") == ["1"])
            raise Refused(404 if method == "GET" else 405, "no such page")
        except Refused as err:
            self._json(err.status, {"error": str(err)})
        except InputError as err:
            self._json(400, {"error": studio.public(str(err))})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away mid-reply
        except Exception as err:  # a bug: the request fails, the server goes on serving
            traceback.print_exc(file=sys.stderr)
            self._json(500, {"error": f"internal error ({type(err).__name__}); see the app's log"})

    def _check_caller(self, method: str) -> None:
        """Refuse other sites' pages: a loopback app only answers requests addressed to this machine (DNS
        rebinding), and a POST must come from the app's own page if it names an origin (cross-site forms)."""
        host = self.headers.get("Host", "")
        if self.server.loopback and urlsplit(f"//{host}").hostname not in ("127.0.0.1", "localhost", "::1"):
            raise Refused(403, "this app only answers requests addressed to 127.0.0.1 or localhost")
        origin = self.headers.get("Origin")
        if method == "POST" and origin is not None and urlsplit(origin).netloc != host:
            raise Refused(403, "requests must come from the app's own page")

    def _body(self, limit: int, shown: str) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise Refused(411, "the request must say its length (Content-Length)") from None
        if length < 0:
            raise Refused(400, "bad Content-Length")
        if length > limit:
            self._drain(length)
            raise Refused(413, f"the upload is {length / 2**20:.1f} MB; this app takes at most {shown}")
        data = self.rfile.read(length)
        if len(data) != length:
            raise Refused(400, "the upload was cut short")
        return data

    def _drain(self, length: int) -> None:
        """Read and drop a refused body, so the client reads the 413 rather than a reset connection."""
        self.close_connection = True
        left = min(length, DRAIN_LIMIT)
        while left > 0 and (chunk := self.rfile.read(min(left, 2**20))):
            left -= len(chunk)

    def _file(self, stored: Stored, *, download: bool) -> None:
        """The file, whole or the one byte range asked for (``<audio>`` seeks with ranges)."""
        size = stored.path.stat().st_size
        start, end = byte_range(self.headers.get("Range", ""), size)
        if start > end and size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = 206 if (start, end) != (0, size - 1) else 200
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPES.get(stored.path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if download:
            fallback = stored.name.encode("ascii", "replace").decode().replace("?", "_")
            self.send_header(
                "Content-Disposition", f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(stored.name)}"
            )
        self.end_headers()
        with stored.path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := f.read(min(left, 2**16))):
                self.wfile.write(chunk)
                left -= len(chunk)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)


def byte_range(header: str, size: int) -> tuple[int, int]:
    """The first and last byte a ``Range: bytes=a-b`` header asks for in a file of ``size`` bytes (the whole file
    when it asks for none or several); first > last when the range lies past the end."""
    asked = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if asked is None or not any(asked.groups()):
        return 0, size - 1
    first, last = asked.groups()
    if not first:  # "bytes=-n": the last n bytes
        return max(0, size - int(last)), size - 1
    return int(first), min(int(last or size - 1), size - 1)


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 7860) -> AppServer:
    """Bind (port 0: any free port); serve with ``serve_forever``."""
    try:
        return AppServer((host, port), studio)
    except OSError as err:
        raise InputError(
            f"cannot listen on {host}:{port} ({err.strerror or err}); pass another --port or --host"
        ) from err


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "app",
        help="a local web page for editing songs: select a region, edit it, listen A/B, download",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860; 0 picks a free one)")
    p.add_argument(
        "--max-upload-mb", type=non_negative_float, default=50.0, help="largest upload accepted, MB (default 50)"
    )
    p.add_argument(
        "--max-seconds", type=non_negative_float, default=600.0, help="longest audio accepted, seconds (default 600)"
    )
    p.add_argument("--model", choices=MODEL_KINDS, default="latent", help="the audio model (default latent)")
    p.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="folder with vae/, dit/, unet/, classifier/ and fgg/ checkpoints "
        f"(default: $MUSICPROD_CHECKPOINTS or {default_checkpoints()})",
    )
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: torch's own)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)  # the command owns global torch settings; the Studio never touches them
    studio = Studio(
        model=args.model, checkpoints=args.checkpoints, max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds
    )
    try:
        server = make_server(studio, args.host, args.port)
    except InputError:
        studio.close()
        raise
    print(f"musicprod app: open {server.url} (Ctrl-C stops it)", flush=True)
    print(f"uploads and results go to {studio.root}, removed when it stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("musicprod app: stopped; uploads and results removed", file=sys.stderr)
    finally:
        server.server_close()
        studio.close()
