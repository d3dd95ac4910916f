"""Audio without a steady beat: how often the analysis (``musicprod_common.analysis``) finds one anyway.

    python benchmarks/no_beat.py [--seconds 10,30,90] [--seeds 8] [--first-seed 8] [--kinds white,speech,...] \
        [--out runs/no_beat.jsonl] [--set NAME=VALUE ...]

``has_beat`` must be False for noise, ambience and speech, and each of them must get the plain crossfade in a
transition. This generates such signals, seeded, and analyses each one:

* ``white``, ``pink``, ``brown``: noise with a flat, 1/f and 1/f² power spectrum;
* ``ambience``: pink noise through a slowly moving band-pass, its level drifting over seconds;
* ``rain``: random drops (short decaying noise bursts) at a Poisson rate, over a soft noise bed;
* ``bursts``: speech-like band-passed noise and gliding tones of 80-300 ms at random gaps, with pauses;
* ``syllables``: a second speech-like generator, with syllables of 80-300 ms, gaps of 30-250 ms and a pause now and
  then;
* ``speech``: sentences spoken by ``espeak-ng`` (Debian's ``espeak-ng``) in several voices, rates and pitches, with
  pauses between them; skipped with a notice where it is not installed;
* ``speech+ambience``: the same speech over the ambience, 12 dB below it.

The analysis's thresholds for a beat were set on seeds 0-7 (``--first-seed 0``); the default, seeds 8-15, checks
them on signals they were not set on. Prints, per kind, how many signals got a beat and the largest beat confidence
(0.5 is the threshold); writes one JSON line per signal with ``--out``. ``--set NAME=VALUE`` overrides a setting of
the analysis (``--set BEAT_NET=False``: the spectral flux's test alone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.analysis import parse_settings  # noqa: E402
from musicprod_common import analysis  # noqa: E402
from musicprod_common.errors import InputError  # noqa: E402

RATE = 22050
KINDS = ("white", "pink", "brown", "ambience", "rain", "bursts", "syllables", "speech", "speech+ambience")

# Plain sentences for the speech kinds, in English, German, French and Spanish, read in a seeded random order.
SENTENCES = {
    "en": (
        "The morning train was late again, so we walked along the river instead.",
        "Could you tell me where the nearest post office is, please?",
        "Nobody expected the meeting to last for more than three hours.",
        "She painted the kitchen a pale shade of green last weekend.",
        "If the weather holds, the harvest will begin on Thursday.",
        "I have never understood why the library closes so early on Fridays.",
        "The children counted the boats in the harbour and lost track at forty.",
        "Please remember to switch off the lights when you leave the studio.",
    ),
    "de": (
        "Der Zug hatte wieder Verspätung, also sind wir am Fluss entlang gegangen.",
        "Am Wochenende regnet es wahrscheinlich, aber am Montag wird es wärmer.",
        "Die Bibliothek schließt heute schon um vier Uhr.",
    ),
    "fr": (
        "Le marché ouvre tôt le samedi, et les meilleurs fruits partent vite.",
        "Nous avons attendu le bus pendant une demi-heure sous la pluie.",
        "Elle lit un roman policier chaque soir avant de dormir.",
    ),
    "es": (
        "Mañana vamos a visitar a mis abuelos en el pueblo.",
        "El restaurante de la esquina cierra los lunes por la tarde.",
        "No encuentro las llaves del coche en ningún sitio.",
    ),
}


def _coloured(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1 / f**exponent (0 white, 1 pink, 2 brown), unit peak."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    spectrum[1:] /= f[1:] ** (exponent / 2)
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return x / np.abs(x).max()


def _slow(rng: np.random.Generator, n: int, seconds: float, lo: float, hi: float) -> np.ndarray:
    """A smooth random curve between ``lo`` and ``hi`` that moves over about ``seconds``: (n,)."""
    knots = max(2, int(n / RATE / seconds) + 2)
    return np.interp(np.arange(n), np.linspace(0, n, knots), rng.uniform(lo, hi, knots))


def _bandpass(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(2, [lo, hi], btype="band", fs=RATE, output="sos"), x)


def _ambience(rng: np.random.Generator, n: int) -> np.ndarray:
    x = _coloured(rng, n, 1.0)
    # Two overlapping bands whose balance drifts, standing in for a band-pass that moves.
    mix = _slow(rng, n, 6.0, 0.0, 1.0)
    x = mix * _bandpass(x, 100, 800) + (1 - mix) * _bandpass(x, 600, 4000)
    return x * 10 ** (_slow(rng, n, 4.0, -12, 0) / 20)


def _rain(rng: np.random.Generator, n: int) -> np.ndarray:
    x = 0.05 * _coloured(rng, n, 1.0)
    drop = np.exp(-np.arange(int(0.03 * RATE)) / (0.004 * RATE))
    for start in np.cumsum(rng.exponential(RATE / 12.0, size=int(n / RATE * 14))).astype(int):
        if start + len(drop) >= n:
            break
        x[start : start + len(drop)] += rng.uniform(0.05, 1.0) * drop * rng.standard_normal(len(drop))
    return x


def _bursts(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.zeros(n)
    t = 0
    while t < n:
        length = int(rng.uniform(0.08, 0.3) * RATE)
        env = np.hanning(length)
        if rng.random() < 0.5:
            lo = rng.uniform(200, 1500)
            burst = _bandpass(rng.standard_normal(length), lo, lo * rng.uniform(1.5, 3.0))
        else:  # a gliding voiced tone with two harmonics
            f0 = np.linspace(rng.uniform(100, 250), rng.uniform(100, 250), length)
            phase = 2 * np.pi * np.cumsum(f0) / RATE
            burst = np.sin(phase) + 0.5 * np.sin(2 * phase)
        end = min(n, t + length)
        x[t:end] += (env * burst / (np.abs(burst).max() + 1e-9))[: end - t] * rng.uniform(0.3, 1.0)
        t = end + int(rng.uniform(0.02, 0.4) * RATE)
        if rng.random() < 0.08:
            t += int(rng.uniform(0.5, 2.0) * RATE)
    return x


def _syllables(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.zeros(n)
    t = int(rng.uniform(0, 0.3) * RATE)
    f0 = rng.uniform(110, 220)
    while t < n:
        length = int(rng.uniform(0.08, 0.3) * RATE)
        end = min(n, t + length)
        f0 = float(np.clip(f0 * np.exp(rng.normal(0, 0.08)), 90, 300))
        k = np.arange(end - t)
        phase = 2 * np.pi * f0 * k / RATE
        voiced = sum(np.sin(h * phase) / h for h in range(1, 6))
        x[t:end] += np.sin(np.pi * k / length) ** 2 * voiced * rng.uniform(0.4, 1.0)
        if rng.random() < 0.4:  # a consonant: a short noise burst before the vowel
            c = min(int(0.04 * RATE), t)
            x[t - c : t] += 0.3 * _bandpass(rng.standard_normal(c), 2000, 6000) if c > 30 else 0.0
        t = end + int(rng.uniform(0.03, 0.25) * RATE)
        if rng.random() < 0.07:
            t += int(rng.uniform(0.4, 1.5) * RATE)
    return x


def _speech(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sentences spoken by espeak-ng, each in a random voice, rate and pitch, with 0.2-1.2 s between them."""
    import soundfile as sf

    x = np.zeros(n)
    t = int(rng.uniform(0, 0.5) * RATE)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        while t < n:
            lang = str(rng.choice(list(SENTENCES)))
            text = str(rng.choice(SENTENCES[lang]))
            voice = lang if lang != "en" else str(rng.choice(["en", "en-us", "en-gb-x-rp"]))
            rate, pitch = int(rng.uniform(130, 200)), int(rng.uniform(25, 75))
            cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(wav), text]
            subprocess.run(cmd, check=True, capture_output=True)
            y, sr = sf.read(str(wav), dtype="float64")
            if sr != RATE:
                import librosa

                y = librosa.resample(y, orig_sr=sr, target_sr=RATE)
            end = min(n, t + len(y))
            x[t:end] += y[: end - t]
            t = end + int(rng.uniform(0.2, 1.2) * RATE)
    return x


def signal(kind: str, seconds: float, seed: int) -> np.ndarray:
    """The ``kind`` signal of ``seconds`` at :data:`RATE`, peak 0.5."""
    rng = np.random.default_rng([seed, KINDS.index(kind), int(seconds * 1000)])
    n = int(seconds * RATE)
    if kind in ("white", "pink", "brown"):
        x = _coloured(rng, n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind])
    elif kind == "ambience":
        x = _ambience(rng, n)
    elif kind == "rain":
        x = _rain(rng, n)
    elif kind == "bursts":
        x = _bursts(rng, n)
    elif kind == "syllables":
        x = _syllables(rng, n)
    elif kind == "speech":
        x = _speech(rng, n)
    elif kind == "speech+ambience":
        speech, amb = _speech(rng, n), _ambience(rng, n)
        x = speech / (np.abs(speech).max() + 1e-9) + 0.25 * amb / (np.abs(amb).max() + 1e-9)
    else:
        raise InputError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    return (0.5 * x / (np.abs(x).max() + 1e-9)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", default="10,30,90", help="comma-separated signal lengths (default 10,30,90)")
    p.add_argument("--seeds", type=int, default=8, help="signals per kind and length (default 8)")
    p.add_argument("--first-seed", type=int, default=8, help="seed of the first signal of each (default 8)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    p.add_argument("--out", help="also write one JSON line per signal here")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a setting of the analysis")
    args = p.parse_args(argv)
    try:
        for name, value in parse_settings(args.set or []).items():
            setattr(analysis, name, value)
        kinds = [k for k in args.kinds.split(",") if k]
        if any(k not in KINDS for k in kinds):
            raise InputError(f"--kinds {args.kinds}: valid kinds are {', '.join(KINDS)}")
        if shutil.which("espeak-ng") is None and any(k.startswith("speech") for k in kinds):
            print("no_beat: espeak-ng is not installed (apt install espeak-ng); the speech kinds are skipped")
            kinds = [k for k in kinds if not k.startswith("speech")]
        lengths = [float(s) for s in args.seconds.split(",") if s]
    except (InputError, ValueError) as err:
        print(f"no_beat: error: {err}", file=sys.stderr)
        return 2
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(k, s, seed) for k in kinds for s in lengths for seed in seeds]
    rows = []
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") if args.out else contextlib.nullcontext() as out:
        for kind, seconds, seed in tqdm(jobs, desc="analysing", unit="signal"):
            result = analysis.analyze(signal(kind, seconds, seed), RATE)
            row = {
                "kind": kind,
                "seconds": seconds,
                "seed": seed,
                "has_beat": result.has_beat,
                "beat_confidence": round(result.beat_confidence, 3),
                "tempo": None if result.tempo is None else round(result.tempo, 1),
            }
            rows.append(row)
            if out is not None:
                out.write(json.dumps(row) + "\n")
    print("| kind | signals | beat found | largest beat confidence |")
    print("|---|---|---|---|")
    for kind in kinds:
        sel = [r for r in rows if r["kind"] == kind]
        found = [r for r in sel if r["has_beat"]]
        print(f"| {kind} | {len(sel)} | {len(found)} | {max(r['beat_confidence'] for r in sel):.2f} |")
    total = sum(r["has_beat"] for r in rows)
    print(f"beat found in {total} of {len(rows)} signals")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
