"""One-pass multi-stem MIDI rendering with FluidSynth.

Each track gets its own MIDI channel, audio group and effects group (``synth.audio-groups`` =
``synth.audio-channels`` = ``synth.effects-groups`` = number of tracks), so a single call sequence of
``fluid_synth_process`` yields one dry stereo pair plus reverb and chorus pairs per track. A stem is its dry
pair plus its own reverb and chorus; the mix is the sum of the stems. pyfluidsynth's ``get_samples`` returns
dithered int16, so ``fluid_synth_process`` is bound here with ctypes on the library pyfluidsynth loaded, and
everything stays float32.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .audio import SAMPLE_RATE
from .errors import InputError
from .pop909 import Song, transpose_song
from .styles import Style, Track, arrange, get_style

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DRUM_BANK = 128  # SoundFont bank that holds GM drum kits
_CHANNEL_TYPE_MELODIC, _CHANNEL_TYPE_DRUM = 0, 1  # fluidsynth's CHANNEL_TYPE_*
_EFFECTS_PER_GROUP = 2  # reverb, chorus: fluidsynth's fx buffers come as [group][reverb|chorus][L|R]
_BLOCK = 64  # FLUID_BUFSIZE: FluidSynth's internal block length
_MAX_BLOCK = 8192  # frames per fluid_synth_process call between events
_HEADROOM = 0.99  # peak the mix and stems may reach before the shared gain turns them down
_SYNTH_GAIN = 0.3


@dataclass
class Rendering:
    """Float32 audio at ``sample_rate``: ``mix`` (2, T) and ``stems`` name -> (2, T); mix == sum of stems."""

    mix: torch.Tensor
    stems: dict[str, torch.Tensor]
    sample_rate: int = SAMPLE_RATE


def default_soundfont() -> Path:
    """``$MUSICPROD_SOUNDFONT`` or the Debian ``fluid-soundfont-gm`` file."""
    return Path(os.environ.get("MUSICPROD_SOUNDFONT", DEFAULT_SOUNDFONT))


class _Lib:
    """ctypes prototypes for the few libfluidsynth calls used here (bound once per process)."""

    def __init__(self) -> None:
        try:
            # pyfluidsynth: only used to find and load libfluidsynth; imported here so that a missing library
            # fails a render with the one-line error below, not every command that imports this module
            import fluidsynth
        except (ImportError, OSError) as err:
            raise InputError(
                f"libfluidsynth could not be loaded ({err}); install it (apt install fluidsynth) "
                "and pyfluidsynth (pip install pyfluidsynth)"
            ) from err
        lib = fluidsynth._fl
        p, i, d, c = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p

        def fn(name: str, restype, *argtypes):
            return ctypes.CFUNCTYPE(restype, *argtypes)((name, lib))

        self.new_settings = fn("new_fluid_settings", p)
        self.delete_settings = fn("delete_fluid_settings", None, p)
        self.setint = fn("fluid_settings_setint", i, p, c, i)
        self.setnum = fn("fluid_settings_setnum", i, p, c, d)
        self.new_synth = fn("new_fluid_synth", p, p)
        self.delete_synth = fn("delete_fluid_synth", None, p)
        self.sfload = fn("fluid_synth_sfload", i, p, c, i)
        self.program_select = fn("fluid_synth_program_select", i, p, i, i, i, i)
        self.set_channel_type = fn("fluid_synth_set_channel_type", i, p, i, i)
        self.get_sfont_by_id = fn("fluid_synth_get_sfont_by_id", p, p, i)
        self.add_sfont = fn("fluid_synth_add_sfont", i, p, p)
        self.remove_sfont = fn("fluid_synth_remove_sfont", i, p, p)
        self.noteon = fn("fluid_synth_noteon", i, p, i, i, i)
        self.noteoff = fn("fluid_synth_noteoff", i, p, i, i)
        self.process = fn("fluid_synth_process", i, p, i, i, ctypes.POINTER(p), i, ctypes.POINTER(p))
        # Library code never prints: drop fluidsynth's log output for every level (errors surface as return codes).
        set_log = fn("fluid_set_log_function", p, i, p, p)
        for level in range(5):
            set_log(level, None, None)


_LIB: _Lib | None = None


def _lib() -> _Lib:
    global _LIB
    if _LIB is None:
        _LIB = _Lib()
    return _LIB


# Loading FluidR3_GM takes about 0.4 s while a new synth takes about 5 ms, so each process loads a soundfont
# once into a holder synth and lends the loaded soundfont to a fresh synth per render (fluid_synth_add_sfont);
# a fresh synth is what makes renders bit-identical (a reset synth keeps its reverb modulation phase).
_SOUNDFONTS: dict[str, int] = {}


def _loaded_soundfont(lib: _Lib, sf_path: Path) -> int:
    key = str(sf_path.resolve())
    if key not in _SOUNDFONTS:
        settings = lib.new_settings()
        holder = lib.new_synth(settings)
        if not holder:
            raise RuntimeError("new_fluid_synth failed")
        sfid = lib.sfload(holder, key.encode(), 0)
        if sfid < 0:
            lib.delete_synth(holder)
            lib.delete_settings(settings)
            raise InputError(f"{sf_path}: FluidSynth could not load this soundfont; pass a valid .sf2 file")
        _SOUNDFONTS[key] = lib.get_sfont_by_id(holder, sfid)  # the holder lives as long as the process
    return _SOUNDFONTS[key]


def _new_synth(lib: _Lib, n_tracks: int, sample_rate: int) -> tuple[int, int]:
    """A synth with one audio group and one effects group per track, and its settings."""
    settings = lib.new_settings()
    for name, value in (
        ("synth.audio-groups", n_tracks),
        ("synth.audio-channels", n_tracks),
        ("synth.effects-groups", n_tracks),
        ("synth.midi-channels", max(16, n_tracks)),
        ("synth.cpu-cores", 1),
    ):
        lib.setint(settings, name.encode(), value)
    lib.setnum(settings, b"synth.sample-rate", float(sample_rate))
    lib.setnum(settings, b"synth.gain", _SYNTH_GAIN)
    synth = lib.new_synth(settings)
    if not synth:
        lib.delete_settings(settings)
        raise RuntimeError("new_fluid_synth failed")
    return synth, settings


def _to_block(frame: float) -> int:
    """Round a frame position to FluidSynth's block grid: FluidSynth applies events only between blocks anyway,
    and putting them exactly there keeps every fluid_synth_process call block-aligned."""
    return int(round(frame / _BLOCK)) * _BLOCK


def _events(
    tracks: Sequence[Track], start: float, end: float, sr: int, n_frames: int
) -> list[tuple[int, int, int, int, int]]:
    """(frame, kind, channel, key, velocity) sorted, frames on the block grid; kind 0 = note-off, 1 = note-on,
    so at the same frame a repeated note's off comes before the next on. Notes crossing ``start`` begin there."""
    events = []
    for chan, track in enumerate(tracks):
        by_pitch: dict[int, list] = {}
        for n in track.notes:
            if n.end > start and n.start < end:
                by_pitch.setdefault(n.pitch, []).append(n)
        for pitch, notes in by_pitch.items():
            notes.sort(key=lambda n: n.start)
            for k, n in enumerate(notes):
                on = _to_block((max(n.start, start) - start) * sr)
                stop = n.end if k + 1 == len(notes) else min(n.end, notes[k + 1].start)  # no overlaps on one key
                off = max(on + _BLOCK, _to_block((stop - start) * sr))
                if on >= n_frames:
                    continue
                events.append((on, 1, chan, pitch, n.velocity))
                if off < n_frames:
                    events.append((off, 0, chan, pitch, 0))
    events.sort()
    return events


def render_tracks(
    tracks: Sequence[Track],
    *,
    start: float = 0.0,
    end: float,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[float], None] | None = None,
) -> Rendering:
    """Render the window [start, end) s of ``tracks`` in one FluidSynth pass.

    Returns mix (2, T) and one stem (2, T) per track, T = round((end - start) * sample_rate). Deterministic:
    a fresh synth per call (the loaded soundfont is shared), and nothing is dithered. ``progress`` gets the fraction
    done (0..1) now and then.
    """
    if not tracks:
        raise InputError("nothing to render: no tracks")
    if not end > start:
        raise InputError(f"empty time window [{start}, {end}); pass an end after the start")
    sf_path = Path(soundfont) if soundfont is not None else default_soundfont()
    if not sf_path.is_file():
        raise InputError(
            f"{sf_path}: soundfont not found; install fluid-soundfont-gm (apt install fluid-soundfont-gm) "
            "or set MUSICPROD_SOUNDFONT / --soundfont to a .sf2 file"
        )
    lib = _lib()
    n_tracks = len(tracks)
    n_frames = int(round((end - start) * sample_rate))
    sfont = _loaded_soundfont(lib, sf_path)
    synth, settings = _new_synth(lib, n_tracks, sample_rate)
    try:
        sfid = lib.add_sfont(synth, sfont)
        for chan, track in enumerate(tracks):
            if track.is_drum:
                lib.set_channel_type(synth, chan, _CHANNEL_TYPE_DRUM)
                lib.program_select(synth, chan, sfid, DRUM_BANK, track.program)
            else:
                lib.set_channel_type(synth, chan, _CHANNEL_TYPE_MELODIC)
                lib.program_select(synth, chan, sfid, 0, track.program)

        # fluid_synth_process ADDS into the buffers, so they start at zero.
        # FluidSynth renders internally in blocks of _BLOCK frames; render whole blocks and cut the extra frames.
        n_alloc = -(-n_frames // _BLOCK) * _BLOCK
        dry = np.zeros((2 * n_tracks, n_alloc), dtype=np.float32)  # [track][L|R]
        fx = np.zeros((2 * _EFFECTS_PER_GROUP * n_tracks, n_alloc), dtype=np.float32)  # [track][reverb|chorus][L|R]
        dry_base = [dry.ctypes.data + r * dry.strides[0] for r in range(dry.shape[0])]
        fx_base = [fx.ctypes.data + r * fx.strides[0] for r in range(fx.shape[0])]
        ptr_dry = (ctypes.c_void_p * len(dry_base))()
        ptr_fx = (ctypes.c_void_p * len(fx_base))()

        def run_until(frame: int, pos: int) -> int:
            while pos < frame:
                n = min(_MAX_BLOCK, frame - pos)
                offset = pos * 4
                for r, base in enumerate(dry_base):
                    ptr_dry[r] = base + offset
                for r, base in enumerate(fx_base):
                    ptr_fx[r] = base + offset
                if lib.process(synth, n, len(fx_base), ptr_fx, len(dry_base), ptr_dry) != 0:
                    raise RuntimeError("fluid_synth_process failed")
                pos += n
                if progress is not None:
                    progress(min(1.0, pos / n_frames))
            return pos

        pos = 0
        for frame, kind, chan, key, vel in _events(tracks, start, end, sample_rate, n_frames):
            pos = run_until(frame, pos)
            if kind:
                lib.noteon(synth, chan, key, vel)
            else:
                lib.noteoff(synth, chan, key)
        run_until(n_alloc, pos)
    finally:
        lib.remove_sfont(synth, sfont)  # lent, not owned: deleting the synth must not free it
        lib.delete_synth(synth)
        lib.delete_settings(settings)

    dry, fx = dry[:, :n_frames], fx[:, :n_frames]
    stems_np = dry.reshape(n_tracks, 2, n_frames) + fx.reshape(n_tracks, _EFFECTS_PER_GROUP, 2, n_frames).sum(1)
    peak = float(np.abs(stems_np).max(initial=0.0))
    mix_np = stems_np.sum(0)
    peak = max(peak, float(np.abs(mix_np).max(initial=0.0)))
    if peak > _HEADROOM:  # one gain for mix and stems together keeps mix == sum(stems)
        stems_np *= np.float32(_HEADROOM / peak)
    stems_np = stems_np.astype(np.float32)
    mix = torch.from_numpy(stems_np.sum(0, dtype=np.float32))
    stems = {track.name: torch.from_numpy(stems_np[i].copy()) for i, track in enumerate(tracks)}
    return Rendering(mix, stems, sample_rate)


def render_song(
    song: Song,
    style: Style | str = "piano",
    *,
    start: float = 0.0,
    end: float | None = None,
    transpose: int = 0,
    tail: float = 1.5,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[float], None] | None = None,
) -> Rendering:
    """Render ``song`` in ``style`` over [start, end) s, transposed by ``transpose`` semitones.

    ``end=None`` renders to the last note's end plus ``tail`` seconds so notes can decay. Notes crossing
    ``start`` begin at ``start`` (the window is rendered without rendering from the song's start).
    """
    style = get_style(style) if isinstance(style, str) else style
    if start < 0:
        raise InputError(f"start {start} s is negative; pass a start >= 0")
    if song.num_notes == 0:
        raise InputError(f"song {song.song_id}: no notes to render")
    stop = song.end_time + tail if end is None else end
    if not stop > start:
        raise InputError(
            f"window [{start}, {stop}) s is empty (song {song.song_id} ends at {song.end_time:.1f} s); "
            "pass --start before the end and --end after --start"
        )
    tracks = arrange(transpose_song(song, transpose), style)
    return render_tracks(tracks, start=start, end=stop, soundfont=soundfont, sample_rate=sample_rate, progress=progress)
