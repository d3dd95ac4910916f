"""The passage finder and the splicer: exact repeats come back exactly, nothing is copied from where it may not be."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicprod_common.errors import InputError
from musicprod_common.passages import CONTEXT_S, align, calibrated, features, find_passages
from musicprod_common.splice import Piece, SplicePlan, fade_gains, plan_fill, render

SR = 22050


def loop_song(bars: int = 4, repeats: int = 5, seed: int = 0, sr: int = SR) -> torch.Tensor:
    """A stereo 'song' ``(2, T)``: one 4-bar loop at 120 BPM (8 s) of decaying notes and hi-hat noise, played
    ``repeats`` times, so sample t and t + 8 s are identical."""
    rng = np.random.default_rng(seed)
    n = int(bars * 2.0 * sr)
    t = np.arange(n) / sr
    loop = np.zeros(n)
    for k in range(bars * 8):  # eighth notes
        i0 = int(k * 0.25 * sr)
        f0 = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        tt = t[: n - i0]
        loop[i0:] += 0.2 * np.exp(-5 * tt) * np.sin(2 * np.pi * f0 * tt)
        loop[i0 : i0 + 400] += 0.05 * rng.standard_normal(min(400, n - i0))
    song = np.tile(loop, repeats)
    return torch.from_numpy(np.stack([song, 0.9 * song]).astype(np.float32))


def noise(seconds: float, seed: int = 1, sr: int = SR) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(2, int(seconds * sr), generator=g)


def with_gap(song: torch.Tensor, start: float, end: float, sr: int = SR) -> torch.Tensor:
    """The song with [start, end) s silenced, as a dropout leaves it."""
    out = song.clone()
    out[:, int(round(start * sr)) : int(round(end * sr))] = 0.0
    return out


def splice_best(song: torch.Tensor, region: tuple[float, float], references=(), exclude=(), margin: float = 0.05):
    matches = find_passages(song, SR, region, references=references, exclude=exclude)
    plan = plan_fill(song, [song, *references], matches[0], int(margin * SR), sample_rate=SR)
    return matches[0], render(song, [song, *references], plan)


def test_golden_loop_fill_equals_the_removed_audio():
    song = loop_song()
    region = (17.3, 19.3)  # inside the third loop
    match, out = splice_best(with_gap(song, *region), region)
    assert match.source == 0
    assert match.shift % int(8 * SR) == 0, "the copy must come from the same point of another loop, to the sample"
    assert match.score > 0.9 and match.correlation > 0.999
    torch.testing.assert_close(out, song, atol=1e-6, rtol=0)


@pytest.mark.parametrize("region", [(0.0, 1.5), (62.5, 64.0), (12.0, 12.05), (5.0, 20.0)])
def test_gaps_at_the_ends_tiny_and_long(region):
    """One-sided context at the song's start and end, a 50 ms gap, and a gap longer than a loop."""
    song = loop_song(repeats=8)
    match, out = splice_best(with_gap(song, *region), region)
    assert (match.left is None) == (region[0] == 0.0) and (match.right is None) == (region[1] == 64.0)
    torch.testing.assert_close(out, song, atol=1e-6, rtol=0)


def test_every_sample_beyond_the_margin_is_the_input():
    song = loop_song()
    damaged = with_gap(song, 17.3, 19.3)
    damaged[:, int(17.3 * SR) : int(19.3 * SR)] = 0.3  # not silence: the fill must replace it
    _, out = splice_best(damaged, (17.3, 19.3), margin=0.05)
    lo, hi = int(round(17.25 * SR)), int(round(19.35 * SR))
    assert torch.equal(out[:, :lo], damaged[:, :lo]) and torch.equal(out[:, hi:], damaged[:, hi:])
    assert not torch.equal(out[:, lo:hi], damaged[:, lo:hi])


@pytest.mark.parametrize("signal", ["noise", "sweep"])
def test_no_repeat_scores_below_the_threshold(signal):
    from musicprod_common.passages import THRESHOLD

    if signal == "noise":
        x = noise(40.0)
    else:  # one slow linear sweep from 100 Hz to 3 kHz: no stretch of it ever comes back
        t = np.arange(int(40 * SR)) / SR
        x = torch.from_numpy(np.tile(0.3 * np.sin(2 * np.pi * (100 * t + 2900 / 80 * t**2)), (2, 1)).astype(np.float32))
    matches = find_passages(x, SR, (20.0, 22.0))
    assert matches and all(m.score < THRESHOLD for m in matches), [round(m.score, 3) for m in matches]


def test_exclusions_and_references_are_respected():
    loop = loop_song(repeats=1)
    song = torch.cat([loop, noise(10.0), loop], dim=1)  # the loop at 0-8 s and 18-26 s
    region = (20.0, 22.0)
    m_song, _ = splice_best(with_gap(song, *region), region)
    assert m_song.source == 0 and abs(m_song.start_s - 2.0) < 1e-3, "the one repeat is at 2.0 s"
    excluded = find_passages(with_gap(song, *region), SR, region, exclude=[(0.0, 8.0)])
    assert all(m.offset < 0 or m.offset >= 8 * SR or m.source != 0 for m in excluded)
    assert all(m.score < 0.5 for m in excluded), "with the repeat excluded nothing else matches"
    # the song alone holds no repeat; another take does
    take = torch.cat([noise(5.0, seed=3), loop], dim=1)
    lone = torch.cat([noise(10.0, seed=4), loop, noise(10.0, seed=5)], dim=1)
    region = (12.0, 14.0)
    gapped = with_gap(lone, *region)
    match, out = splice_best(gapped, region, references=[take])
    assert match.source == 1 and match.offset == int(round((5.0 + 2.0) * SR))
    torch.testing.assert_close(out, lone, atol=1e-6, rtol=0)


def test_candidates_never_overlap_the_region_or_its_context():
    song = loop_song(repeats=3)  # 24 s: with 2 s of context the only clean candidates are whole loops away
    region = (10.0, 12.0)
    for m in find_passages(song, SR, region, top=10):
        lo, hi = m.offset - CONTEXT_S * SR, m.offset + 2 * SR + CONTEXT_S * SR
        assert hi <= (10.0 - CONTEXT_S) * SR or lo >= (12.0 + CONTEXT_S) * SR


def test_region_outside_the_audio_is_refused():
    with pytest.raises(InputError, match="outside"):
        find_passages(noise(5.0), SR, (6.0, 7.0))


def test_align_recovers_a_known_shift():
    x = noise(6.0)
    song = x[:, : int(4 * SR)]
    source = x[:, 123:]  # source sample t + shift == song sample t for shift = -123
    shift, corr = align(song, source, (int(1.5 * SR), int(2.5 * SR)), -100, sample_rate=SR, reach=50)
    assert shift == -123 and corr > 0.999


def test_fade_gains_keep_power_for_the_correlation_given():
    g_out, g_in = fade_gains(1000, 0.0)
    np.testing.assert_allclose(g_out**2 + g_in**2, 1.0, atol=1e-12)  # unrelated signals: equal power
    g_out, g_in = fade_gains(1000, 1.0)
    np.testing.assert_allclose(g_out + g_in, 1.0, atol=1e-12)  # identical signals: equal gain
    rho = 0.4
    g_out, g_in = fade_gains(1000, rho)
    np.testing.assert_allclose(g_out**2 + g_in**2 + 2 * rho * g_out * g_in, 1.0, atol=1e-12)
    assert g_out[0] > 0.99 and g_in[-1] > 0.99 and np.all(np.diff(g_in) >= 0)


def test_level_is_matched_to_the_song():
    loop = loop_song(repeats=1)
    song = torch.cat([loop, 0.5 * loop], dim=1)  # the repeat is 6 dB quieter
    region = (10.0, 12.0)
    match, out = splice_best(with_gap(song, *region), region)
    assert match.start_s == pytest.approx(2.0, abs=1e-3)
    piece = plan_fill(with_gap(song, *region), [song], match, int(0.05 * SR), sample_rate=SR).pieces[0]
    assert 20 * math.log10(piece.gain) == pytest.approx(-6.02, abs=0.05)
    torch.testing.assert_close(
        out[:, int(10 * SR) : int(12 * SR)], song[:, int(10 * SR) : int(12 * SR)], atol=1e-5, rtol=0
    )


def test_calibration_is_monotone():
    assert calibrated(0.2) < calibrated(0.5) < calibrated(0.9)


def test_render_checks_the_plan():
    song = noise(2.0)
    plan = SplicePlan((100, 200), [Piece(0, 1000)], [], SR)
    with pytest.raises(InputError, match="one seam between"):
        render(song, [song], plan)


def test_features_of_a_song_match_themselves():
    x = loop_song(repeats=1)
    f = features(x, SR)
    norms = f.frames.norm(dim=0)
    assert torch.allclose(norms[norms > 0], torch.ones(()), atol=1e-5)


def test_a_long_gap_no_repeat_spans_chains_two_passages():
    """Sections of 4 s: A B C D E F | A B X Y G | H Y E F. The gap C D (8 s) has no twin with both its contexts, but
    the bars after the second A B (X Y) follow its left context and those before the second E F (H Y) lead into its
    right context; both play Y in the gap's second half, where they join. The fill is X Y, exactly."""
    from musicprod_common.passages import find_chain

    sec = {name: loop_song(bars=2, repeats=1, seed=i) for i, name in enumerate("ABCDEFGHXY")}  # 4 s each
    order = "ABCDEF" + "ABXYG" + "HYEF"
    song = torch.cat([sec[c] for c in order], dim=1)
    region = (8.0, 16.0)
    damaged = with_gap(song, *region)
    single = find_passages(damaged, SR, region, top=1)[0]
    left, right = find_chain(damaged, SR, region)
    assert left.score > single.score
    assert left.offset == int(round(32.0 * SR)) and right.offset == int(round(44.0 * SR))
    plan = plan_fill(damaged, [damaged], left, int(0.05 * SR), sample_rate=SR, right=right)
    assert len(plan.pieces) == 2 and 12.0 * SR <= plan.seams[1].at < 16.0 * SR, "the pieces join where both play Y"
    out = render(damaged, [damaged], plan)
    expected = torch.cat([sec["X"], sec["Y"]], dim=1)
    torch.testing.assert_close(out[:, int(8 * SR) : int(16 * SR)], expected, atol=1e-6, rtol=0)
