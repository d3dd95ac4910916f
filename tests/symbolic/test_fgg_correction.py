"""The chord → scale table and the fine-grained correction (Zhu et al. 2024)."""

from __future__ import annotations

import pytest
import torch

from musicprod_common.errors import InputError
from symbolic.chords import (
    QUALITIES,
    SCALES,
    Chord,
    mask_from_pcs,
    parse_harte,
    parse_progression,
    parse_scale,
    parse_symbol,
    pcs_from_mask,
    rotate_mask,
)
from symbolic.fgg_correction import FineGrainedCorrection, allowed_from_masks, pitch_edit, rhythm_edit, scale_allowed
from symbolic.metrics import out_of_key_rate


def test_scale_table():
    # the table of the issue, on concrete roots
    assert pcs_from_mask(parse_harte("C:maj").scale_mask) == [0, 2, 4, 5, 7, 9, 11]  # major scale
    assert pcs_from_mask(parse_harte("A:min").scale_mask) == sorted(
        {9, 11, 0, 2, 4, 5, 7, 8}
    )  # natural + harmonic (G#)
    assert pcs_from_mask(parse_harte("G:7").scale_mask) == sorted({7, 9, 11, 0, 2, 4, 5})  # G mixolydian (F natural)
    assert pcs_from_mask(parse_harte("D:min7").scale_mask) == sorted({2, 4, 5, 7, 9, 10, 0})  # D aeolian (Bb)
    assert pcs_from_mask(parse_harte("B:dim").scale_mask) == [2, 5, 11]  # chord tones only
    assert pcs_from_mask(parse_harte("C:aug").scale_mask) == [0, 4, 8]
    assert parse_harte("N").scale_mask == 0xFFF and parse_harte("N").chroma_mask == 0


@pytest.mark.parametrize("quality", sorted(QUALITIES))
def test_chord_tones_always_allowed(quality):
    for root in range(12):
        chord = Chord(root, quality, bass=(root + 4) % 12)
        assert chord.chroma_mask & ~chord.scale_mask == 0


def test_parsing():
    assert parse_harte("Bb:min7/b7") == Chord(10, "min7", 8)
    assert [c.root for c in parse_progression("C G Am F")] == [0, 7, 9, 5]
    assert parse_symbol("F#m7").quality == "min7" and parse_symbol("F#m7").root == 6
    assert parse_symbol("C/E").bass == 4
    assert rotate_mask(mask_from_pcs([0, 4, 7]), 2) == mask_from_pcs([2, 6, 9])
    assert pcs_from_mask(parse_scale("D:dorian")) == sorted((2 + i) % 12 for i in SCALES["dorian"])
    for bad in ("H", "Cxyz", ""):
        with pytest.raises(InputError):
            parse_progression(bad) if bad == "" else parse_symbol(bad)
    with pytest.raises(InputError, match="choose one of"):
        parse_scale("C:nonsense")


def _random_case(seed: int):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(4, 2, 64, 64, generator=g) * 1.4 - 0.2  # values on both sides of 0.5
    masks = torch.randint(0, 4096, (4, 64), generator=g)
    return x0, allowed_from_masks(masks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_correction_zero_out_of_key(seed):
    x0, allowed = _random_case(seed)
    assert out_of_key_rate(x0, allowed) > 0.5  # random x̂0 is mostly out of key
    edited = FineGrainedCorrection(allowed)(x0, torch.zeros(4))
    assert out_of_key_rate(edited, allowed) == 0.0
    assert torch.equal(edited[allowed[:, None].expand_as(x0)], x0[allowed[:, None].expand_as(x0)])  # allowed untouched
    assert torch.equal(
        torch.minimum(x0, torch.tensor(0.5)),
        torch.where(allowed[:, None], torch.minimum(x0, torch.tensor(0.5)), edited),
    )


def test_soft_variant_interpolates():
    x0, allowed = _random_case(3)
    hard = pitch_edit(x0, allowed, strength=1.0)
    none = pitch_edit(x0, allowed, strength=0.0)
    half = pitch_edit(x0, allowed, strength=0.5)
    assert torch.equal(none, x0)
    assert torch.allclose(half, 0.5 * (hard + x0))
    assert out_of_key_rate(half, allowed) > 0  # λ < 1 only weakens
    assert (half <= x0).all() and (half >= hard).all()
    with pytest.raises(ValueError):
        pitch_edit(x0, allowed, strength=1.5)


def test_rhythm_edit_keeps_top_k():
    x0, _ = _random_case(4)
    out = rhythm_edit(x0, 2)
    assert ((out[:, 0] > 0.5).sum(-1) <= 2).all()
    assert torch.equal(out[:, 1], x0[:, 1])
    k = torch.randint(0, 5, (4, 64), generator=torch.Generator().manual_seed(0))
    out = rhythm_edit(x0, k)
    assert ((out[:, 0] > 0.5).sum(-1) == torch.minimum(k, (x0[:, 0] > 0.5).sum(-1))).all()


def test_user_scale_mask():
    allowed = scale_allowed(parse_scale("A:minor_pentatonic"), steps=64)
    pcs = {(p + 33) % 12 for p in torch.nonzero(allowed[0, 0]).flatten().tolist()}
    assert pcs == {9, 0, 2, 4, 7}
