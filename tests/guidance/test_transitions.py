"""Beat-matched transitions: the plan (cues on downbeats and phrases, tempo and key matching, refusals), the mix on one
grid (bass swapped, highs crossfaded, A kept bit for bit), and click tracks end to end."""

from __future__ import annotations

import dataclasses
import math

import mir_eval
import numpy as np
import pytest
import torch

from guidance.tasks import DEFAULT_MARGIN
from guidance.transitions import (
    MAX_GAIN_DB,
    MAX_STRETCH,
    PHRASE_BARS,
    Handover,
    _keep_attacks,
    _keep_level,
    loudness_gain,
    plan_songs,
    plan_transition,
    render_transition,
    stem_handovers,
)
from musicprod_common.analysis import ONSET_RATE, Analysis, analyze
from musicprod_common.errors import InputError

SR = 22050


def grid(bpm: float, duration: float, key: str = "C major", offset: float = 0.5, per_bar: int = 4) -> Analysis:
    """An analysis with a perfect beat grid: what a song at ``bpm`` whose first downbeat is at ``offset`` s has."""
    beats = np.arange(offset, duration, 60.0 / bpm)
    return Analysis(duration, bpm, 1.0, beats, 1.0, beats[::per_bar], per_bar, 1.0, key, 1.0)


def no_beat(duration: float) -> Analysis:
    return Analysis(duration, None, 0.0, np.zeros(0), 0.0, np.zeros(0), 4, 0.0, "C major", 0.2)


def clicks(bpm: float, seconds: float, sr: int = SR, offset: float = 0.5, pitch: float = 1000.0) -> torch.Tensor:
    """A stereo click track in 4/4: a click and a low thump on every beat, the downbeats louder and lower, over a soft
    held tone that changes pitch with every bar, as the harmony of a song does."""
    x = np.zeros(int(seconds * sr))
    n = int(0.03 * sr)
    env = np.exp(-np.arange(n) / (0.006 * sr))
    beat = 60.0 / bpm
    for i, t in enumerate(np.arange(offset, seconds - 0.05, beat)):
        down = i % 4 == 0
        f = pitch * (0.5 if down else 1.0)
        burst = (1.0 if down else 0.5) * env * np.sin(2 * np.pi * f * np.arange(n) / sr)
        burst += (0.8 if down else 0.3) * env * np.sin(2 * np.pi * 60.0 * np.arange(n) / sr)
        s = int(t * sr)
        x[s : s + n] += burst[: len(x) - s]
        if down:  # the bar's chord: A, C, E, G in turn
            held = np.arange(min(int(4 * beat * sr), len(x) - s))
            tone = 220.0 * 2 ** ((0, 3, 7, 10)[(i // 4) % 4] / 12)
            x[s : s + len(held)] += 0.1 * np.sin(2 * np.pi * tone * held / sr) * np.minimum(1.0, held / (0.01 * sr))
    return torch.from_numpy(np.stack([x, x])).float()


def test_cues_fall_on_downbeats_at_phrase_boundaries_and_snap():
    a, b = grid(120, 120.0), grid(120, 90.0, offset=0.8)
    plan = plan_transition(a, b, bars=8)
    bar = 2.0  # 4 beats at 120 BPM
    assert plan.length == pytest.approx(8 * bar)
    index = int(round((plan.cue_out - 0.5) / bar))
    assert index % PHRASE_BARS == 0 and plan.cue_out + plan.length <= a.duration  # the last phrase that fits
    assert plan.cue_out + PHRASE_BARS * bar + plan.length > a.duration
    assert plan.cue_in == pytest.approx(0.8)  # B's first downbeat
    assert plan.speed == 1.0 and plan.swap == pytest.approx(4 * bar)  # the middle downbeat
    snapped = plan_transition(a, b, at=31.3, b_start=10.1, bars=4)
    assert snapped.cue_out == pytest.approx(30.5) and snapped.cue_in == pytest.approx(10.8)
    exact = plan_transition(a, b, at=31.3, b_start=10.1, bars=4, snap=False)
    assert exact.cue_out == pytest.approx(31.3) and exact.cue_in == pytest.approx(10.1)


def test_tempo_is_matched_with_double_and_half_time_and_refused_beyond_a_sane_stretch():
    a = grid(140, 100.0)
    assert plan_transition(a, grid(126, 100.0)).speed == pytest.approx(140 / 126)
    half = plan_transition(a, grid(72, 100.0))  # B's eighth notes at 144
    assert half.speed == pytest.approx(140 / 144) and any("double" in n for n in half.notices)
    far = plan_transition(grid(100, 100.0), grid(100 * MAX_STRETCH * 1.1, 100.0))
    assert far.speed == 1.0 and any("beyond" in n for n in far.notices)


def test_match_key_shifts_b_to_a_compatible_key():
    a = grid(120, 60.0, key="C major")
    plan = plan_transition(a, grid(120, 60.0, key="C# major"), bars=4, match_key=True)
    assert plan.semitones == -1 and "(same)" in plan.describe()
    assert plan_transition(a, grid(120, 60.0, key="A minor"), bars=4, match_key=True).semitones == 0
    clash = plan_transition(a, grid(120, 60.0, key="F# major"), bars=4)
    assert clash.semitones == 0 and "keys clash" in clash.describe()


def test_impossible_requests_are_refused():
    a, b = grid(120, 30.0), grid(120, 30.0)
    with pytest.raises(InputError, match="--bars"):
        plan_transition(a, b, bars=20)  # 40 s in a 30 s song
    with pytest.raises(InputError, match="--at"):
        plan_transition(a, b, at=31.0)
    with pytest.raises(InputError, match="past the end of song A"):
        plan_transition(a, b, at=26.0, bars=4)
    with pytest.raises(InputError, match="--b-start"):
        plan_transition(a, b, b_start=24.0, bars=4)


def test_no_beat_plans_a_plain_crossfade_with_a_notice():
    plan = plan_transition(no_beat(20.0), grid(120, 30.0), fade=2.5)
    assert not plan.beat_matched and plan.swap is None and plan.speed == 1.0
    assert plan.cue_out == pytest.approx(17.5) and plan.cue_in == 0.0 and plan.length == 2.5
    assert any("no steady beat" in n for n in plan.notices)
    # Files that open and close with silence: the crossfade runs from A's last sound into B's first.
    quiet_ends = dataclasses.replace(no_beat(20.0), sound=(0.4, 16.0))
    late_start = dataclasses.replace(grid(120, 30.0), sound=(12.0, 30.0))
    plan = plan_transition(quiet_ends, late_start, fade=2.5)
    assert plan.cue_out == pytest.approx(13.5) and plan.cue_in == pytest.approx(12.0)
    plan = plan_transition(quiet_ends, late_start, fade=2.5, at=5.0, b_start=1.0)  # given cues stay
    assert (plan.cue_out, plan.cue_in) == (5.0, 1.0)


def test_mix_keeps_a_to_the_cue_swaps_the_bass_and_crossfades_the_rest():
    sr, seconds = SR, 24.0
    t = torch.arange(int(seconds * sr)) / sr
    bass_a, high_a = torch.sin(2 * math.pi * 50 * t), torch.sin(2 * math.pi * 2000 * t)
    bass_b, high_b = torch.sin(2 * math.pi * 70 * t), torch.sin(2 * math.pi * 3000 * t)
    a, b = torch.stack([bass_a + high_a] * 2), torch.stack([bass_b + high_b] * 2)
    plan = plan_transition(grid(120, seconds), grid(120, seconds), at=4.5, b_start=0.5, bars=4)
    out = render_transition(None, a, b, sr, plan)
    o0 = int(round(plan.cue_out * sr))
    assert torch.equal(out[:, :o0], a[:, :o0])
    swap = o0 + int(round(plan.swap * sr))
    before = out[0, swap - sr // 2 : swap - sr // 8].numpy()
    after = out[0, swap + sr // 8 : swap + sr // 2].numpy()

    def level(x: np.ndarray, f: float) -> float:
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        return float(spec[int(round(f * len(x) / sr))])

    assert level(before, 50) > 20 * level(before, 70) and level(after, 70) > 20 * level(after, 50)  # one bass at once
    assert level(before, 2000) > 0.3 * level(before, 3000) and level(after, 3000) > 0.3 * level(after, 2000)  # both
    i0 = int(round(plan.cue_in * sr))
    n = int(round(plan.length * sr))
    torch.testing.assert_close(out[:, o0 + n :], b[:, i0 + n : i0 + n + out.shape[-1] - o0 - n])


def beats_at(times: np.ndarray, duration: float, onsets: np.ndarray | None = None) -> Analysis:
    """An analysis with these beats (bars of 4 from the first), and its pulse peaking at ``onsets`` when given."""
    tempo = 60.0 / float(np.median(np.diff(times)))
    env = np.zeros(0)
    if onsets is not None:
        frames = np.arange(int(duration * ONSET_RATE)) / ONSET_RATE
        env = np.exp(-0.5 * ((frames[:, None] - onsets[None]) / 0.01) ** 2).sum(1)
    return Analysis(duration, tempo, 1.0, times, 1.0, times[::4], 4, 1.0, "C major", 1.0, env)


def test_bars_of_a_drifting_song_are_pinned_to_a_unless_a_bar_is_miscounted():
    a = grid(120, 60.0)
    intervals = 60.0 / 126 * (1 + 0.03 * np.sin(np.arange(120) / 6))  # B's tempo wanders ±3 % around 126 BPM
    b = beats_at(0.5 + np.concatenate([[0], np.cumsum(intervals)]), 60.0)
    plan = plan_transition(a, b, at=20.5, bars=4)
    assert plan.timemap and "pinned" in plan.describe()
    b_beats = b.beats[b.beats >= plan.cue_in - 1e-9][:17]
    a_beats = a.beats[a.beats >= plan.cue_out - 1e-9][:17]
    np.testing.assert_allclose(plan.b_to_output(b_beats[::4]), a_beats[::4], atol=1e-9)  # every bar on A's
    assert np.abs(plan.b_to_output(b_beats) - a_beats).max() < 0.01  # and the beats between them nearly
    unpinned = plan.cue_out + (b_beats - plan.cue_in) / plan.speed  # at the plan's speed alone they slide apart
    assert np.abs(unpinned - a_beats).max() > 0.03
    extra = np.sort(np.concatenate([b.beats, [b.beats[9] + 0.2]]))  # a beat the analysis added inside the overlap
    assert not plan_transition(a, beats_at(extra, 60.0), at=20.5, bars=4).timemap


def test_b_is_moved_so_that_its_attacks_land_on_as():
    beat = 0.5
    a_beats = np.arange(0.5, 60.0, beat)
    a = beats_at(a_beats, 60.0, onsets=a_beats)
    b_beats = np.arange(0.5, 60.0, 60 / 126)
    b = beats_at(b_beats, 60.0, onsets=b_beats + 0.13)  # its beats analysed a quarter beat early
    plan = plan_transition(a, b, at=20.5, bars=4)
    attacks = plan.b_to_output(b_beats[(b_beats > plan.cue_in) & (b_beats < plan.cue_in + 7.0)] + 0.13)
    assert np.abs(attacks[:, None] - a_beats[None]).min(1).max() < 0.012
    assert abs(plan.cue_in - 8.0 * 60 / 126) > 0.1  # B no longer enters on its analysed downbeat
    assert plan_transition(a, b, at=20.5, bars=4, snap=False).cue_in == pytest.approx(0.5)  # exact cues stay


def test_loudness_gain_levels_b_to_a():
    a = clicks(120, 6.0)
    assert loudness_gain(a, 0.5 * a, SR) == pytest.approx(20 * math.log10(2), abs=0.05)
    assert loudness_gain(a, torch.zeros_like(a), SR) == 0.0


def test_planning_from_audio_reports_each_song_s_analysis():
    a, b = clicks(120, 12.0), clicks(126, 12.0, offset=0.3, pitch=1500.0)
    calls: list[int] = []
    plan = plan_songs(a, b, SR, bars=2, progress=calls.append)
    assert calls == [1, 1]
    quiet = plan_songs(a, b, SR, bars=2)
    assert (plan.cue_out, plan.cue_in, plan.speed) == (quiet.cue_out, quiet.cue_in, quiet.speed)
    assert plan.speed == pytest.approx(120 / 126, rel=0.01)


def test_a_bridge_keeps_the_level_of_the_mix_it_replaces():
    """A model that returns the bridge 10 dB down is brought back to the mix's level inside the bridge; beyond the
    margins nothing changes, bit for bit; and the gain is capped."""
    old = clicks(120, 6.0)
    new = old.clone()
    s0, e0, m = 2 * SR, 4 * SR, SR // 4
    new[:, s0 - m : e0 + m] *= 0.3

    def rms(x: torch.Tensor) -> float:
        return float(x[:, s0:e0].pow(2).mean().sqrt())

    kept = _keep_level(new, old, SR, 2.0, 4.0, 0.25)
    assert rms(kept) == pytest.approx(rms(old), rel=1e-4)
    assert torch.equal(kept[:, : s0 - m], old[:, : s0 - m]) and torch.equal(kept[:, e0 + m :], old[:, e0 + m :])
    silent = old.clone()
    silent[:, s0:e0] *= 1e-3  # 60 dB down: only MAX_GAIN_DB of it is made up
    capped = _keep_level(silent, old, SR, 2.0, 4.0, 0.25)
    assert 20 * math.log10(rms(capped) / rms(silent)) == pytest.approx(MAX_GAIN_DB, abs=1e-3)


def test_a_bridge_gets_the_mix_s_attacks_back():
    """A bridge that lost the mix's clicks but kept its tone gets the clicks back inside the bridge; beyond the
    margins nothing changes, bit for bit."""
    t = torch.arange(6 * SR) / SR
    tone = (0.2 * torch.sin(2 * math.pi * 440 * t)).repeat(2, 1)
    old = tone + clicks(120, 6.0)
    new = tone.clone()
    kept = _keep_attacks(new, old, SR, 2.0, 4.0, 0.25)
    lo, hi = int(1.5 * SR), int(4.5 * SR)
    assert torch.equal(kept[:, :lo], new[:, :lo]) and torch.equal(kept[:, hi:], new[:, hi:])

    def attack(x: torch.Tensor, at: float) -> float:  # energy of the first 10 ms after a click, tone removed
        i = int(at * SR)
        return float((x - tone)[:, i : i + SR // 100].pow(2).sum())

    for at in (2.5, 3.0, 3.5):  # clicks inside the bridge: back to within a few dB of the mix's
        assert attack(kept, at) > 0.25 * attack(old, at)
    assert attack(kept, 1.0) == attack(new, 1.0) == 0.0  # before the margins: untouched


def test_click_tracks_at_120_and_126_bpm_stay_on_one_grid():
    a, b = clicks(120, 40.0), clicks(126, 40.0, offset=0.3, pitch=1500.0)
    an_a, an_b = analyze(a, SR), analyze(b, SR)
    assert an_a.tempo == pytest.approx(120, abs=1) and an_b.tempo == pytest.approx(126, abs=1)
    plan = plan_transition(an_a, an_b, bars=4)
    assert plan.speed == pytest.approx(120 / 126, rel=0.01)
    out = render_transition(None, a, b, SR, plan)
    lo, hi = plan.cue_out - 6.0, plan.cue_out + plan.length + 6.0
    found = analyze(out[:, int(lo * SR) : int(hi * SR)], SR).beats + lo
    a_grid, b_grid = plan.grids()
    middle = plan.cue_out + plan.length / 2
    planned = np.concatenate([a_grid[a_grid < middle], b_grid[b_grid >= middle]])
    planned = planned[(planned >= lo) & (planned < hi)]
    _, cmlt, _, _ = mir_eval.beat.continuity(planned, found)
    assert cmlt >= 0.9
    assert np.abs(np.diff(found)).max() < 60 / 120 * 1.1  # no doubled or dropped beat at the joint


def test_stem_handovers_keep_drums_on_the_grid_and_swap_the_bass():
    plan = plan_transition(grid(120, 60.0), grid(120, 60.0), at=20.5, bars=8)
    how = stem_handovers(["BASS", "DRUMS", "MELODY", "PIANO"], plan, fade=2.0)
    assert how["DRUMS"] == Handover("crossfade", plan.cue_out + plan.length / 2)
    assert how["BASS"] == Handover("swap", plan.cue_out + plan.swap)
    assert how["PIANO"].kind == how["MELODY"].kind == "regenerated" and how["PIANO"].at < how["MELODY"].at
    beats = plan.a.beats
    assert np.min(np.abs(beats - how["MELODY"].at)) < 1e-9  # on a beat of A
    assert all(h.kind != "regenerated" for h in stem_handovers(["PIANO"], plan, fade=0.0).values())


def test_a_stem_s_regenerated_fade_keeps_the_level_of_its_crossfade(monkeypatch):
    """A model that returns each stem's fade 10 dB down: the fade is brought back to the level of the stems' own
    equal-power crossfade there; A's part before the fade's margin is untouched."""
    import types

    import guidance.transitions as transitions

    def quiet_transition(model, a, b, sample_rate, *, fade, **_):
        f = int(round(fade * sample_rate))
        u = (torch.arange(f, dtype=torch.float64) + 0.5) / f
        mid = a[:, -f:] * torch.cos(0.5 * math.pi * u) + b[:, :f] * torch.sin(0.5 * math.pi * u)
        return torch.cat([a[:, :-f], 0.3 * mid.to(a.dtype), b[:, f:]], dim=-1)

    monkeypatch.setattr(transitions, "transition", quiet_transition)
    model = types.SimpleNamespace(window=4 * SR, sample_rate=SR)
    a = clicks(120, 12.0)
    b = clicks(120, 12.0, pitch=700.0)
    plan = plan_transition(grid(120, 12.0), grid(120, 12.0), at=4.5, bars=2)
    stems, handovers = transitions.transition_stems(model, {"PIANO": a}, {"PIANO": b}, SR, plan, fade=1.0)
    assert handovers["PIANO"].kind == "regenerated"
    start = handovers["PIANO"].at - 0.5
    s0, e0 = int(start * SR), int((start + 1.0) * SR)
    piano = stems["PIANO"]
    plain = quiet_transition(None, a[:, :e0], b[:, int((start - plan.cue_out + plan.cue_in) * SR) :], SR, fade=1.0)

    def rms(x: torch.Tensor) -> float:
        return float(x[:, s0:e0].pow(2).mean().sqrt())

    assert rms(piano) == pytest.approx(rms(plain) / 0.3, rel=0.05)
    keep = s0 - int(DEFAULT_MARGIN * SR) - 1
    assert torch.equal(piano[:, :keep], a[:, :keep])
