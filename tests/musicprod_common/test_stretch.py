"""Rubber Band through ``musicprod_common.stretch``: exact lengths, beats that land where the speed puts them, pitch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprod_common.errors import InputError
from musicprod_common.stretch import output_time, stretch

SR = 22050


def clicks(times: np.ndarray, seconds: float) -> torch.Tensor:
    x = np.zeros(int(seconds * SR))
    n = int(0.01 * SR)
    burst = np.hanning(n) * np.sin(2 * np.pi * 2000 * np.arange(n) / SR)
    for t in times:
        x[int(t * SR) : int(t * SR) + n] += burst
    return torch.from_numpy(np.stack([x, x])).float()


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_the_output_has_the_exact_length_and_its_clicks_move_by_the_speed(speed):
    times = np.arange(0.5, 7.5, 0.5)
    out = stretch(clicks(times, 8.0), SR, speed=speed)
    assert out.shape == (2, round(8.0 * SR / speed))
    env = out[0].abs().numpy()
    for t in times:
        centre = (t + 0.005) / speed  # the burst's middle, moved
        lo = int((centre - 0.05) * SR)
        found = (lo + np.argmax(env[lo : lo + int(0.1 * SR)])) / SR
        assert abs(found - centre) < 0.006, (t, found, centre)


def test_a_time_map_puts_every_click_where_the_map_says():
    times = np.arange(0.25, 11.5, 0.5)
    keys = [(2.0, 1.9), (4.0, 3.8), (6.0, 5.75), (8.0, 7.6)]  # bars a few percent apart, as a drifting song's are
    out = stretch(clicks(times, 12.0), SR, speed=1.05, timemap=keys)
    assert out.shape == (2, round(output_time(12.0, 1.05, keys) * SR))
    assert output_time(10.0, 1.05, keys) == pytest.approx(7.6 + 2.0 / 1.05)  # at the speed after the last pair
    env = out[0].abs().numpy()
    for t in times:
        centre = output_time(t + 0.005, 1.05, keys)
        lo = int((centre - 0.05) * SR)
        found = (lo + np.argmax(env[lo : lo + int(0.1 * SR)])) / SR
        assert abs(found - centre) < 0.006, (t, found, centre)
    with pytest.raises(InputError, match="increase"):
        stretch(clicks(times, 12.0), SR, timemap=[(2.0, 1.9), (1.5, 2.5)])


def test_a_pitch_shift_moves_a_tone_by_the_semitones():
    t = np.arange(3 * SR) / SR
    tone = torch.from_numpy(np.stack([np.sin(2 * np.pi * 440 * t)] * 2)).float()
    out = stretch(tone, SR, semitones=2).numpy()[0, SR : 2 * SR]
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert abs(np.argmax(spectrum) * SR / len(out) - 440 * 2 ** (2 / 12)) < 3


def test_no_change_is_the_input_and_a_bad_speed_is_refused():
    x = torch.randn(2, 1000)
    assert torch.equal(stretch(x, SR), x)
    with pytest.raises(InputError):
        stretch(x, SR, speed=0.0)
