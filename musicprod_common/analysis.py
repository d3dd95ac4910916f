"""Tempo, beats, downbeats, meter and key of any audio: what a DJ reads off a track before mixing it.

    a = analyze(audio, 44100)        # audio (T,) or (channels, T), numpy or torch
    a.tempo, a.beats, a.downbeats, a.beats_per_bar, a.key     # 124.0, (N,) s, (M,) s, 4, "F minor"
    if a.has_beat: cut = a.nearest_downbeat(30.0)
    key_relation("C major", "A minor")      # "relative"
    compatible_shift("C major", "F# major")  # -1: F# lowered a semitone is F major, a fifth below C

Beats are librosa's dynamic-programming tracker (Ellis 2007, "Beat tracking by dynamic programming", JNMR 36(1))
on the beat activation of a small network trained on annotated songs (``beat_net.py``): a spectral flux says where
notes start, the network which of those starts are beats, which without drums decides between half, whole and
double time. The tempo is picked from the autocorrelation of the flux and of the activation under a log-normal prior
over tempi, and among that guess's halves, doubles and 3:2 ratios by the harmonic rhythm too: chords change with the
bar far more than on every beat. The autocorrelation is taken in windows of a few seconds and each
window's peak is found within 2 % of a period before the windows are averaged, so that a tempo which drifts, as
people's does, keeps as clear a peak as a sequencer's. Downbeats and meter come from beat-synchronous evidence: chords
change, the bass moves and the kick drum lands at bar starts more than elsewhere. The meter (3 or 4) is the one whose
bar the chords repeat with, and the downbeats follow the evidence along a Viterbi path over bar positions that lets
a bar end early (songs hold 2/4 bars and pickups). The key is the Krumhansl-Schmuckler correlation of the song's
CQT chroma with major/minor key profiles: Aarden's (2003) pitch-class counts of the Essen folk songs, which scored
above Krumhansl & Kessler's probe-tone ratings on valid renders.

Every confidence is in [0, 1]. Nothing here prints. librosa (about 1 s to import) and scipy are imported inside the
functions that use them, so the commands that import this module start without paying for them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .beat_net import shipped_beat_net
from .errors import InputError

ANALYSIS_RATE = 22050  # Hz: all of the beat's and the chroma's information, half the samples of 44.1 kHz
N_FFT = 1024  # 46 ms: short enough that an onset is not smeared far before it
HOP = 256  # 11.6 ms per onset frame
ONSET_RATE = ANALYSIS_RATE / HOP  # frames a second of the onset envelopes and of Analysis.pulse
N_MELS = 128
LOW_HZ = 150.0  # bass and kick drum live below this
CHROMA_HOP = 512  # 23 ms per chroma frame: harmony moves far slower than onsets

# Tempo. A first guess maximises the onset autocorrelation under a broad log-normal prior (librosa.feature.tempo's
# form); the metrical level is then picked among its halves, doubles and 3:2 ratios by the onset autocorrelation plus
# the harmonic rhythm: chords change with the bar (3 or 4 beats) and rarely on every beat. Chosen on valid renders.
# The tempo confidence is the chosen level's score lead over the next-best level, over LEVEL_MARGIN.
MIN_BPM, MAX_BPM = 40.0, 240.0
PRIOR_BPM, PRIOR_OCTAVES = 80.0, 2.0  # centre and standard deviation (octaves) of the tempo prior
LEVELS = (0.5, 2 / 3, 1.0, 1.5, 2.0)  # tempo ratios to the first guess that are weighed against it
BAR_WEIGHT = 1.0  # weight of the chords' periodicity over a bar of the candidate beat
BEAT_CHANGE_WEIGHT = 0.5  # penalty for chords that repeat with the candidate beat itself
PRIOR_WEIGHT = 0.5  # weight of the prior's log density in the level choice
ONSET_WINDOW_S = 8.0  # autocorrelation window of the onset tempogram
HARMONY_WINDOW_S = 16.0  # ... and of the chord-change tempogram: bars are long
TEMPOGRAM_STRIDE_S = 0.2  # one autocorrelation window every 0.2 s: they are 8-16 s long, and overlap anyway
PERIOD_TOLERANCE = 0.02  # a period is looked for within ±2 % in each window: a band's tempo wanders by a few per cent
DETREND_S = 0.2  # the onset envelope minus its moving average over this: slow swells (strings) carry no pulse
CHANGE_S = 0.25  # chroma novelty compares this much audio before and after each frame
# How strongly the tracker keeps to the tempo: librosa's default is 100. Without drums the onsets are sparse and a
# loose tracker strays after them; 200-1600 scored alike on valid renders, steady and drifting (BENCHMARKS.md). Above
# 300 the tracker holds the tempo's whole-frame period so hard that a beat at an end can land a frame off.
TIGHTNESS = 300.0
FINE_N_FFT, FINE_HOP = 256, 64  # 11.6 ms windows every 2.9 ms: where exactly each attack is
REFINE_S = 0.03  # how far a tracked beat may move to the attack it belongs to

# has_beat, with the beat network: its activation, less its moving average over DETREND_S as the flux is, repeats at
# the beat period more than at its median period in range by at least NET_BEAT_FLOOR + NET_BEAT_1S / sqrt(duration in
# s). Noise, ambience, rain and three kinds of speech (benchmarks/no_beat.py: 216 signals of 10, 30 and 90 s) reach at
# most 0.08 + 0.32 / sqrt(duration): a floor, since the largest of several periods is read, and a chance part that
# shrinks as the windows add up. The threshold is 1.5 times that. Every valid render clears it at 30 and 90 s (the
# weakest, strings, at 0.37 against 0.17 needed at 90 s), where the flux's test below let short speech-like bursts
# through and missed more strings.
NET_BEAT_FLOOR = 0.12
NET_BEAT_1S = 0.48
# has_beat without the network: the onset autocorrelation at the beat period rises above its median over all periods
# by at least BEAT_CONTRAST_1S / sqrt(duration in s). Noise reaches about 0.44 / sqrt(duration) by chance; valid-split
# renders reach 0.1 and more at 90 s. Calibrated on synthetic noise, ambience, rain and speech-like bursts
# (BENCHMARKS.md).
BEAT_CONTRAST_1S = 0.5

# Downbeat evidence weights: chord change, low-band onset, full-band onset (each z-scored over the song's beats).
DOWNBEAT_WEIGHTS = (1.0, 0.5, 0.5)
BAR_RESTART_COST = 6.0  # evidence (in z units) that a bar cut short must gain; POP909 songs hold a few such bars
METER_HARMONY_WEIGHT = 1.0  # weight of the chords' periodicity over 3 vs 4 beats in the meter choice
DOWNBEAT_FULL_CONTRAST = 3.0  # downbeat evidence lead (z units) that counts as full confidence; valid tops out near it
LEVEL_MARGIN = 0.5  # a level score lead that counts as full tempo confidence

# The beat network (beat_net.py, checkpoints/beats): the periodicity of its beat activation joins the spectral flux's
# in the tempo and level choice, with this weight (0.5 and 2 scored alike on valid renders), and the tracker follows
# the activation rather than the flux. False: the flux alone.
BEAT_NET = True
NET_LEVEL_WEIGHT = 1.0

# Weighted MIREX key score on valid renders: "aarden" 0.876, "kk" 0.836, "temperley" 0.688 (BENCHMARKS.md).
KEY_PROFILES = "aarden"

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
MODES = ("major", "minor")

# Key profiles: index 0 is the tonic. Krumhansl & Kessler (1982), "Tracing the dynamic changes in perceived tonal
# organization in a spatial representation of musical keys", Psychological Review 89(4): probe-tone ratings.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
# Temperley (1999), "What's key for key? The Krumhansl-Schmuckler key-finding algorithm reconsidered", Music
# Perception 17(1): the revised profiles, which weigh the leading tone up and the tritone down.
TEMPERLEY_MAJOR = (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0)
TEMPERLEY_MINOR = (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)
# Aarden (2003), "Dynamic melodic expectancy", PhD thesis, Ohio State University: pitch-class frequencies in the
# major- and minor-key folk songs of the Essen collection, as Humdrum's keycor lists them. Counts of what music
# plays rather than ratings of what listeners expect: the tonic triad weighs more, the other tones less.
AARDEN_MAJOR = (
    17.7661,
    0.145624,
    14.9265,
    0.160186,
    19.8049,
    11.3587,
    0.291248,
    22.062,
    0.145624,
    8.15494,
    0.232998,
    4.95122,
)
AARDEN_MINOR = (
    18.2648,
    0.737619,
    14.0499,
    16.8599,
    0.702494,
    14.4362,
    0.702494,
    18.6161,
    4.56621,
    1.93186,
    7.37619,
    1.75623,
)
PROFILES = {
    "kk": (KK_MAJOR, KK_MINOR),
    "temperley": (TEMPERLEY_MAJOR, TEMPERLEY_MINOR),
    "aarden": (AARDEN_MAJOR, AARDEN_MINOR),
}


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyze` found in one piece of audio. Times are seconds from its first sample."""

    duration: float
    tempo: float | None  # BPM from the median inter-beat interval; None when no steady beat was found
    tempo_confidence: float
    beats: np.ndarray  # (N,) float64, sorted; empty when no beat
    beat_confidence: float
    downbeats: np.ndarray  # (M,) bar starts, a subset of beats
    beats_per_bar: int  # 3 or 4
    downbeat_confidence: float
    key: str  # mir_eval format, tonic spelled with sharps: "C major", "F# minor"
    key_confidence: float
    # What the beats were tracked on, ONSET_RATE frames a second from 0 s: the beat network's activation, or without
    # it the onset strength (log-mel spectral flux). Where two songs' beats line up. Empty when it was not kept.
    pulse: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    # Seconds from the first to the last moment of sound (:func:`sounding`); None: the whole duration. A file may
    # open or close with silence, where no transition should cue.
    sound: tuple[float, float] | None = None

    @property
    def sound_span(self) -> tuple[float, float]:
        """(first, last) moment of sound in seconds; (0, duration) when not measured."""
        return self.sound if self.sound is not None else (0.0, self.duration)

    @property
    def has_beat(self) -> bool:
        """False for speech, ambience and noise: nothing steady to cut or mix on."""
        return len(self.beats) > 0

    def nearest_downbeat(self, t: float) -> float:
        """The downbeat closest to ``t`` seconds."""
        if len(self.downbeats) == 0:
            raise InputError("no downbeats: the audio has no steady beat (has_beat is False); cut it by time instead")
        return float(self.downbeats[int(np.argmin(np.abs(self.downbeats - t)))])

    def bar_index(self, t: float) -> int:
        """0-based index of the bar holding ``t`` seconds; -1 before the first downbeat (or when there is none)."""
        return int(np.searchsorted(self.downbeats, t, side="right")) - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times rounded to the millisecond, confidences to 3 decimals."""
        return {
            "duration": round(self.duration, 3),
            "has_beat": self.has_beat,
            "tempo": None if self.tempo is None else round(self.tempo, 2),
            "tempo_confidence": round(self.tempo_confidence, 3),
            "beats": [round(float(t), 3) for t in self.beats],
            "beat_confidence": round(self.beat_confidence, 3),
            "downbeats": [round(float(t), 3) for t in self.downbeats],
            "beats_per_bar": self.beats_per_bar,
            "downbeat_confidence": round(self.downbeat_confidence, 3),
            "key": self.key,
            "key_confidence": round(self.key_confidence, 3),
            "sound": [round(t, 3) for t in self.sound_span],
        }


# ---------------------------------------------------------------------------------------------------------- beats


@dataclass(frozen=True)
class _Features:
    """Frame-wise descriptors of the mono analysis signal."""

    onset: np.ndarray  # (N,) log-mel spectral flux; frame k at k * HOP / ANALYSIS_RATE s
    low: np.ndarray  # (N,) the same below LOW_HZ
    fine: np.ndarray  # log-mel flux with FINE_N_FFT windows every FINE_HOP samples
    beat: np.ndarray  # (N,) the beat network's beat probability per onset frame; empty without the network
    chroma: np.ndarray  # (12, M) CQT chroma, frame k at k * CHROMA_HOP / ANALYSIS_RATE s
    change: np.ndarray  # (M,) chord-change novelty in [0, 1]


def log_mel(y: np.ndarray) -> np.ndarray:
    """(N_MELS, frames) power mel spectrogram in dB of mono ``y`` at :data:`ANALYSIS_RATE`, one frame per onset
    frame: what the onsets are read from, and the beat network's input."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=ANALYSIS_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    return librosa.power_to_db(mel)


def _features(y: np.ndarray) -> _Features:
    import librosa

    mel_db = log_mel(y)
    n_low = max(1, int(np.sum(librosa.mel_frequencies(N_MELS + 2, fmax=ANALYSIS_RATE / 2)[1:-1] < LOW_HZ)))
    # center=False: the mel frames are already centred, and librosa's extra shift would put every onset
    # N_FFT / 2 samples late.
    bands = librosa.onset.onset_strength_multi(
        S=mel_db, sr=ANALYSIS_RATE, hop_length=HOP, n_fft=N_FFT, center=False, channels=[0, n_low, N_MELS]
    )
    onset = (bands[0] * n_low + bands[1] * (N_MELS - n_low)) / N_MELS  # the mean over all bands
    fine_db = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=ANALYSIS_RATE, n_fft=FINE_N_FFT, hop_length=FINE_HOP, n_mels=N_MELS // 2)
    )
    fine = librosa.onset.onset_strength(
        S=fine_db, sr=ANALYSIS_RATE, hop_length=FINE_HOP, n_fft=FINE_N_FFT, center=False
    )
    chroma = _song_chroma(y)
    change = _chroma_change(chroma, round(CHANGE_S * ANALYSIS_RATE / CHROMA_HOP))
    net = shipped_beat_net() if BEAT_NET else None
    beat = net.activations(mel_db.T)[0] if net is not None else np.zeros(0)
    return _Features(onset, bands[0], fine, beat, chroma, change)


def _chroma_change(chroma: np.ndarray, width: int) -> np.ndarray:
    """Cosine distance between the summed chroma of the ``width`` frames before and after each frame: (M,)."""
    n = chroma.shape[1]
    total = np.concatenate([np.zeros((12, 1)), np.cumsum(chroma, axis=1)], axis=1)
    idx = np.arange(n)
    before = total[:, idx] - total[:, np.maximum(idx - width, 0)]
    after = total[:, np.minimum(idx + width, n)] - total[:, idx]
    norm = np.linalg.norm(before, axis=0) * np.linalg.norm(after, axis=0)
    return np.where(norm > 0, 1.0 - (before * after).sum(axis=0) / np.maximum(norm, 1e-12), 0.0)


def _detrend(x: np.ndarray, width: int) -> np.ndarray:
    """``x`` minus its moving average over ``width`` frames."""
    from scipy.ndimage import uniform_filter1d

    return x - uniform_filter1d(x, max(1, width), mode="nearest")


def _tempogram(envelope: np.ndarray, hop: int, window_s: float) -> np.ndarray:
    """Autocorrelation of ``envelope`` (one value per ``hop`` samples) in windows of ``window_s``, each normalised by
    its lag 0, one window every :data:`TEMPOGRAM_STRIDE_S`: (lags, windows)."""
    import librosa

    win = max(4, round(window_s * ANALYSIS_RATE / hop))
    tg = librosa.feature.tempogram(onset_envelope=envelope, sr=ANALYSIS_RATE, hop_length=hop, win_length=win)
    return np.nan_to_num(tg[:, :: max(1, round(TEMPOGRAM_STRIDE_S * ANALYSIS_RATE / hop))])


@dataclass(frozen=True)
class _Periodicity:
    """How strongly the onsets (``pulse``, one row per onset frame of lag) and the chord changes (``harmony``, per
    chroma frame of lag) repeat at each lag, window by window: (lags, windows) each."""

    pulse: np.ndarray
    harmony: np.ndarray
    beat: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # the beat network's activation, like pulse
    beat_onsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # ... less its moving average

    @staticmethod
    def _peak(values: np.ndarray, lag: int) -> float:
        """Mean over the windows of each window's peak within :data:`PERIOD_TOLERANCE` of ``lag`` (at least a frame:
        periods fall between frames). Taking the peak before the mean keeps a drifting tempo's peak as high as a
        steady one's: the mean first would spread it over the lags the drift visits."""
        reach = max(1, round(PERIOD_TOLERANCE * lag))
        lo, hi = max(lag - reach, 1), min(lag + reach + 1, values.shape[0])
        return float(values[lo:hi].max(axis=0).mean()) if hi > lo and values.shape[1] else 0.0

    def at(self, curve: str, seconds: float) -> float:
        """How strongly ``curve`` ("pulse", "beat" or "harmony") repeats with a period of ``seconds`` (0 beyond its
        lags)."""
        values = getattr(self, curve)
        lag = int(round(seconds * ANALYSIS_RATE / (CHROMA_HOP if curve == "harmony" else HOP)))
        if lag >= values.shape[0] - 1 or lag < 1:
            return 0.0
        return self._peak(values, lag)

    def curve(self, curve: str) -> np.ndarray:
        """:meth:`at` for ``curve`` ("pulse" or "beat") at every lag: (lags,)."""
        values = getattr(self, curve)
        return np.array([self._peak(values, lag) if lag else 0.0 for lag in range(values.shape[0])])


def _periodicity(f: _Features) -> _Periodicity:
    width = round(DETREND_S * ANALYSIS_RATE / HOP)
    onset = np.maximum(_detrend(f.onset, width), 0.0)
    change = _detrend(f.change, round(4.0 * ANALYSIS_RATE / CHROMA_HOP))  # a phrase-long trend is not a rhythm
    pulse, harmony = _tempogram(onset, HOP, ONSET_WINDOW_S), _tempogram(change, CHROMA_HOP, HARMONY_WINDOW_S)
    if not len(f.beat):
        return _Periodicity(pulse, harmony)
    # The level choice reads the activation as it is (as it was chosen on valid renders); the test for a beat reads it
    # less its slow level, which a noise floor or a held chord lifts without any rhythm.
    beat_onsets = np.maximum(_detrend(f.beat, width), 0.0)
    return _Periodicity(
        pulse, harmony, _tempogram(f.beat, HOP, ONSET_WINDOW_S), _tempogram(beat_onsets, HOP, ONSET_WINDOW_S)
    )


def _log_prior(bpm: float | np.ndarray) -> float | np.ndarray:
    return -0.5 * ((np.log2(bpm) - np.log2(PRIOR_BPM)) / PRIOR_OCTAVES) ** 2


def _choose_level(p: _Periodicity, bpms: np.ndarray, in_range: np.ndarray) -> tuple[float, float]:
    """(BPM, level margin): the first guess, then the best of its :data:`LEVELS`, with the beat network's periodicity
    weighted by :data:`NET_LEVEL_WEIGHT` (without the network: the flux and the chords alone)."""
    net_weight = NET_LEVEL_WEIGHT if p.beat.size else 0.0
    periodic = p.curve("pulse") + (net_weight * p.curve("beat") if net_weight else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        guess = float(bpms[int(np.argmax(np.where(in_range, periodic * np.exp(_log_prior(bpms)), -np.inf)))])
    scored = []
    for ratio in LEVELS:
        bpm = guess * ratio
        if not MIN_BPM <= bpm <= MAX_BPM:
            continue
        beat = 60.0 / bpm
        bar = max(p.at("harmony", 4 * beat), p.at("harmony", 3 * beat))
        score = (
            p.at("pulse", beat)
            + (net_weight * p.at("beat", beat) if net_weight else 0.0)
            + BAR_WEIGHT * bar
            - BEAT_CHANGE_WEIGHT * p.at("harmony", beat)
            + PRIOR_WEIGHT * float(_log_prior(bpm))
        )
        scored.append((score, bpm))
    scored.sort(reverse=True)
    return scored[0][1], scored[0][0] - scored[1][0] if len(scored) > 1 else 0.0


def _choose_tempo(p: _Periodicity, duration: float) -> tuple[float, float, float]:
    """(BPM, beat strength, level margin). The strength is how far the beat network's activation (the onset envelope
    without the network) repeats at the beat period more than at its median period in range, over the threshold for
    a beat (:data:`NET_BEAT_FLOOR`, :data:`NET_BEAT_1S`; :data:`BEAT_CONTRAST_1S`): about 0 for noise, whose
    autocorrelation is flat, 1 at the threshold. The margin is how far the chosen level's score leads the next-best
    level's."""
    import librosa

    bpms = librosa.tempo_frequencies(p.pulse.shape[0], sr=ANALYSIS_RATE, hop_length=HOP)
    in_range = (bpms >= MIN_BPM) & (bpms <= MAX_BPM)
    if not in_range.any():  # shorter than one slow beat
        return PRIOR_BPM, 0.0, 0.0
    bpm, margin = _choose_level(p, bpms, in_range)
    root = math.sqrt(max(duration, 1.0))
    if p.beat.size:
        values, threshold = p.beat_onsets, NET_BEAT_FLOOR + NET_BEAT_1S / root
    else:
        values, threshold = p.pulse, BEAT_CONTRAST_1S / root
    mean = values.mean(axis=1) if values.shape[1] else np.zeros(values.shape[0])
    lag = int(round(60.0 / bpm * ONSET_RATE))
    contrast = float(mean[max(lag - 1, 0) : lag + 2].max()) - float(np.median(mean[in_range]))
    return bpm, contrast / threshold, margin


def _pulse(f: _Features) -> np.ndarray:
    """What the beats are tracked on: the beat network's activation, or the onset envelope without the network."""
    return f.beat if len(f.beat) else f.onset


def _track_beats(f: _Features, bpm: float) -> np.ndarray:
    """Beat times (s): librosa's dynamic programme at ``bpm`` on the beat network's activation (on the onset envelope
    without the network), then each beat moved to the strongest attack within :data:`REFINE_S` in the fine envelope,
    since the tracker's 11.6 ms frames and 46 ms windows put a beat up to 20 ms before the attack it follows."""
    import librosa

    _, frames = librosa.beat.beat_track(
        onset_envelope=_pulse(f),
        sr=ANALYSIS_RATE,
        hop_length=HOP,
        bpm=bpm,
        tightness=TIGHTNESS,
        units="frames",
    )
    reach = round(REFINE_S * ANALYSIS_RATE / FINE_HOP)
    times = []
    for k in np.asarray(frames, dtype=int):
        centre = round(k * HOP / FINE_HOP)
        lo, hi = max(centre - reach, 0), min(centre + reach + 1, len(f.fine))
        times.append((lo + int(np.argmax(f.fine[lo:hi])) if hi > lo else centre) * FINE_HOP / ANALYSIS_RATE)
    return np.unique(np.asarray(times, dtype=np.float64))


# ------------------------------------------------------------------------------------------------------ downbeats


def _zscore(x: np.ndarray) -> np.ndarray:
    """Standardised, and clipped at ±3 so that one odd beat (a crash, the song's last chord) cannot outvote bars."""
    sd = float(x.std())
    return np.clip((x - x.mean()) / sd, -3.0, 3.0) if sd > 0 else np.zeros_like(x)


def _beat_evidence(f: _Features, beats: np.ndarray) -> np.ndarray:
    """Per beat, how much it sounds like the start of a bar: (N,). A weighted sum of three z-scored cues: the chords
    changing there (cosine distance between the chroma of the beat that ends there and of the beat that starts there),
    the low band's onset (bass note, kick drum) and the full band's onset."""
    n_onset, n_chroma = len(f.onset), f.chroma.shape[1]
    frames = np.clip(np.round(beats * ANALYSIS_RATE / HOP).astype(int), 0, n_onset - 1)

    def near(env: np.ndarray) -> np.ndarray:  # the envelope's peak within a frame of each beat
        return np.array([env[max(k - 1, 0) : k + 2].max() for k in frames])

    ends = np.append(beats, beats[-1] + np.median(np.diff(beats)))  # the last beat lasts one beat, not to the end
    edges = np.clip(np.round(ends * ANALYSIS_RATE / CHROMA_HOP).astype(int), 0, n_chroma)
    total = np.concatenate([np.zeros((12, 1)), np.cumsum(f.chroma, axis=1)], axis=1)
    per_beat = (total[:, edges[1:]] - total[:, edges[:-1]]).T  # (N, 12) chroma summed over each beat
    unit = per_beat / np.maximum(np.linalg.norm(per_beat, axis=1, keepdims=True), 1e-12)
    change = np.zeros(len(beats))
    change[1:] = 1.0 - (unit[1:] * unit[:-1]).sum(axis=1)
    w_change, w_low, w_onset = DOWNBEAT_WEIGHTS
    return w_change * _zscore(change) + w_low * _zscore(near(f.low)) + w_onset * _zscore(near(f.onset))


def _bar_scores(evidence: np.ndarray, per_bar: int) -> np.ndarray:
    """For each phase p < per_bar: mean evidence on beats p, p + per_bar, ... minus the mean on the others."""
    scores = np.zeros(per_bar)
    for p in range(per_bar):
        on = np.zeros(len(evidence), dtype=bool)
        on[p::per_bar] = True
        if on.all() or not on.any():
            continue
        scores[p] = evidence[on].mean() - evidence[~on].mean()
    return scores


def _bar_positions(evidence: np.ndarray, per_bar: int) -> np.ndarray:
    """Position in the bar (0 = downbeat) of every beat: the Viterbi path that collects the most evidence on its
    downbeats, where a bar may end early at a cost of :data:`BAR_RESTART_COST` (a 2/4 bar, a pickup, an edit) but
    never runs long, since a long bar is an early restart of the next one."""
    n = len(evidence)
    score = np.full((n, per_bar), -np.inf)
    back = np.zeros((n, per_bar), dtype=int)
    score[0] = 0.0
    score[0, 0] = evidence[0]
    for i in range(1, n):
        prev = score[i - 1]
        score[i, 1:] = prev[:-1]  # the bar goes on
        back[i, 1:] = np.arange(per_bar - 1)
        restart = prev - BAR_RESTART_COST
        restart[-1] = prev[-1]  # a full bar ends for free
        back[i, 0] = int(np.argmax(restart))
        score[i, 0] = restart[back[i, 0]] + evidence[i]
    path = np.zeros(n, dtype=int)
    path[-1] = int(np.argmax(score[-1]))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _downbeats(f: _Features, p: _Periodicity, beats: np.ndarray) -> tuple[np.ndarray, int, float]:
    """(downbeats, beats per bar, confidence). The meter is the one whose bar the chords repeat with more (3 or 4 beats,
    and their doubles) plus whose best fixed phase stands out more; the downbeats then follow the evidence through
    :func:`_bar_positions`. The confidence is how much more evidence the downbeats hold than the other beats, over
    :data:`DOWNBEAT_FULL_CONTRAST`; on valid renders it tracked the downbeat F-measure (r = 0.37) where the fixed
    phase's margin over the runner-up did not (r = -0.15)."""
    if len(beats) < 2:
        return beats[:0], 4, 0.0
    evidence = _beat_evidence(f, beats)
    beat = float(np.median(np.diff(beats)))
    meters = {}
    for per_bar in (3, 4):
        harmony = p.at("harmony", per_bar * beat) + p.at("harmony", 2 * per_bar * beat)
        meters[per_bar] = METER_HARMONY_WEIGHT * harmony + _bar_scores(evidence, per_bar).max()
    per_bar = 3 if meters[3] > meters[4] else 4
    down = _bar_positions(evidence, per_bar) == 0
    contrast = float(evidence[down].mean() - evidence[~down].mean()) if (~down).any() else 0.0
    return beats[down], per_bar, float(np.clip(contrast / DOWNBEAT_FULL_CONTRAST, 0.0, 1.0))


# -------------------------------------------------------------------------------------------------------- analyze


def analyze(audio: np.ndarray | torch.Tensor, sample_rate: int) -> Analysis:
    """Tempo, beats, downbeats, meter and key of ``audio`` (T,) or (channels, T) at ``sample_rate``, mixed to mono.

    Beats: librosa's dynamic-programming tracker (Ellis 2007) on the beat network's activation, at a tempo chosen
    from the onset, activation and chord-change periodicities; none when the activation's pulse stands out no more
    than it does for noise, ambience or speech (:data:`NET_BEAT_FLOOR`; without the network, the onsets' pulse and
    :data:`BEAT_CONTRAST_1S`).
    """
    y = _mono(audio, sample_rate)
    duration = len(y) / ANALYSIS_RATE
    with warnings.catch_warnings():  # librosa warns about clips shorter than a window and silent tuning estimates
        warnings.simplefilter("ignore")
        f = _features(y)
    key, key_confidence = _key_from_chroma(f.chroma.sum(axis=1))
    periodicity = _periodicity(f)
    bpm, strength, margin = _choose_tempo(periodicity, duration)
    beat_confidence = float(np.clip(0.5 * strength, 0.0, 1.0))  # 0.5 at the threshold
    beats = _track_beats(f, bpm) if strength >= 1.0 else np.zeros(0)
    sound = sounding(y, ANALYSIS_RATE)
    if len(beats) < 2:
        none = np.zeros(0)
        return Analysis(duration, None, 0.0, none, beat_confidence, none, 4, 0.0, key, key_confidence, _pulse(f), sound)
    downbeats, per_bar, downbeat_confidence = _downbeats(f, periodicity, beats)
    return Analysis(
        duration=duration,
        tempo=60.0 / float(np.median(np.diff(beats))),
        tempo_confidence=float(np.clip(margin / LEVEL_MARGIN, 0.0, 1.0)),
        beats=beats,
        beat_confidence=beat_confidence,
        downbeats=downbeats,
        beats_per_bar=per_bar,
        downbeat_confidence=downbeat_confidence,
        key=key,
        key_confidence=key_confidence,
        pulse=_pulse(f),
        sound=sound,
    )


SOUND_FRAME_S = 0.05  # the frames whose level says whether anything sounds
SOUND_FLOOR_DB = 30.0  # a frame sounds when it is within this much of the loudest frames (their 95th percentile)


def sounding(y: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(first, last) second of sound in mono ``y``: the start of the first and the end of the last
    :data:`SOUND_FRAME_S` frame whose mean square is within :data:`SOUND_FLOOR_DB` of the loudest frames'. A song
    that opens with silence (or a hiss far below its music) starts where its music does. (0, duration) for silence."""
    hop = max(1, int(SOUND_FRAME_S * sample_rate))
    n = len(y) // hop
    if n == 0:
        return 0.0, len(y) / sample_rate
    power = np.square(y[: n * hop].astype(np.float64)).reshape(n, hop).mean(axis=1)
    level = 10 * np.log10(power + 1e-20)
    loud = np.percentile(level, 95)
    on = np.nonzero(level > loud - SOUND_FLOOR_DB)[0]
    if loud < -190 or len(on) == 0:  # digital silence
        return 0.0, len(y) / sample_rate
    end = len(y) if on[-1] == n - 1 else (on[-1] + 1) * hop  # sounding to its last whole frame: to its end
    return float(on[0] * hop / sample_rate), float(end / sample_rate)


# ----------------------------------------------------------------------------------------------------------- keys


def parse_key(key: str) -> tuple[int, str]:
    """``"F# minor"`` / ``"Db major"`` (mir_eval format) -> (tonic pitch class 0..11, mode)."""
    parts = key.strip().split()
    if len(parts) == 2 and parts[1].lower() in MODES and parts[0] and parts[0][0].lower() in _PITCH_CLASS:
        tonic = _PITCH_CLASS[parts[0][0].lower()]
        accidentals = parts[0][1:]
        if all(a in "#b" for a in accidentals) and len(accidentals) <= 1:
            tonic += accidentals.count("#") - accidentals.count("b")
            return tonic % 12, parts[1].lower()
    raise InputError(f"{key!r} is not a key; write a tonic and a mode like 'C major' or 'F# minor'")


def format_key(tonic: int, mode: str) -> str:
    return f"{PITCH_NAMES[tonic % 12]} {mode}"


def transpose_key(key: str, semitones: int) -> str:
    """``key`` moved by ``semitones`` (mode kept, tonic spelled with sharps)."""
    tonic, mode = parse_key(key)
    return format_key(tonic + semitones, mode)


def key_relation(a: str, b: str) -> str | None:
    """How key ``b`` sits with key ``a`` for mixing: "same"; "relative" (C major / A minor: the same notes);
    "fifth" (same mode, tonics a fifth apart either way: one accidental apart); None for anything else."""
    (ta, ma), (tb, mb) = parse_key(a), parse_key(b)
    if ma == mb:
        if ta == tb:
            return "same"
        return "fifth" if (tb - ta) % 12 in (5, 7) else None
    major, minor = (ta, tb) if ma == "major" else (tb, ta)
    return "relative" if (major - minor) % 12 == 3 else None


def compatible_shift(a: str, b: str, max_shift: int = 6) -> int:
    """The semitone shift ``s`` with the smallest ``|s|`` that makes ``transpose_key(b, s)`` relate to ``a``
    (:func:`key_relation` not None); 0 when it already does. On a tie the downward shift wins, since pitching a
    track down shifts its formants and cymbals less audibly than pitching it up. Some shift of at most 6 always
    exists; a smaller ``max_shift`` that none fits raises InputError."""
    parse_key(a)
    for size in range(max_shift + 1):
        for s in (-size, size) if size else (0,):
            if key_relation(a, transpose_key(b, s)) is not None:
                return s
    raise InputError(f"no shift within ±{max_shift} semitones makes {b} compatible with {a}; allow a larger shift")


def _key_scores(chroma: np.ndarray, profiles: str) -> np.ndarray:
    """Pearson correlation of a 12-bin pitch-class distribution with every key's profile: (2, 12), [mode, tonic].
    All zeros for a flat distribution (silence), which favours no key."""
    x = chroma - chroma.mean()
    if not np.any(x):
        return np.zeros((2, 12))
    x = x / np.linalg.norm(x)
    out = np.zeros((2, 12))
    for m, profile in enumerate(PROFILES[profiles]):
        p = np.asarray(profile) - np.mean(profile)
        p = p / np.linalg.norm(p)
        out[m] = [float(x @ np.roll(p, tonic)) for tonic in range(12)]
    return out


def _key_from_chroma(chroma: np.ndarray) -> tuple[str, float]:
    """Best key of a (12,) pitch-class distribution, and its margin over the runner-up as a share of its lead over
    the median key (0: a tie; 1: the runner-up is no better than a typical wrong key)."""
    scores = _key_scores(chroma, KEY_PROFILES)
    order = np.argsort(-scores, axis=None, kind="stable")  # a tie goes to the first key: C major
    best, second = scores.flat[order[0]], scores.flat[order[1]]
    lead = best - float(np.median(scores))
    confidence = 0.0 if lead <= 0 else float(np.clip((best - second) / lead, 0.0, 1.0))
    mode, tonic = np.unravel_index(order[0], scores.shape)
    return format_key(int(tonic), MODES[int(mode)]), confidence


def _song_chroma(y: np.ndarray) -> np.ndarray:
    """CQT chroma (12, frames) of mono ``y`` at :data:`ANALYSIS_RATE`."""
    import librosa

    # Each frame scaled to its loudest pitch class (librosa's default): loud passages would otherwise outvote the
    # rest, and on valid renders this scored 0.836 against 0.804 unscaled (KK profiles).
    return librosa.feature.chroma_cqt(y=y, sr=ANALYSIS_RATE, hop_length=CHROMA_HOP)


def estimate_key(audio: np.ndarray | torch.Tensor, sample_rate: int) -> tuple[str, float]:
    """(key, confidence) of ``audio`` (T,) or (channels, T): its chroma summed over time against the key profiles."""
    y = _mono(audio, sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chroma = _song_chroma(y)
    return _key_from_chroma(chroma.sum(axis=1))


# ---------------------------------------------------------------------------------------------------------- audio


def _mono(audio: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
    """Mono float32 at :data:`ANALYSIS_RATE` from (T,) or (channels, T)."""
    import librosa

    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to(torch.float32).cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if audio.ndim != 1 or audio.size == 0:
        raise InputError(
            f"expected audio shaped (T,) or (channels, T) with samples, got {audio.shape}; pass a waveform"
        )
    if not np.isfinite(audio).all():
        raise InputError("the audio contains NaN or infinite samples; repair or re-export it")
    if sample_rate <= 0:
        raise InputError(f"sample rate {sample_rate} must be positive; pass the audio's rate in Hz")
    if sample_rate != ANALYSIS_RATE:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=ANALYSIS_RATE)
    return audio
