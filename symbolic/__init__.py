"""Symbolic (piano-roll) music generation.

* :mod:`symbolic.data` — POP909 → compact training file → 4-bar slices ``(2, 64, 64)`` with chord / rhythm / melody
  conditions.
* :mod:`symbolic.chords` — chord symbols, chroma and the chord → allowed-scale table.
* :mod:`symbolic.fgg` — the ε-prediction U-Net of Zhu et al. 2024 (presets tiny / small / paper) and its loss.
* :mod:`symbolic.fgg_correction` — the fine-grained x̂0 correction (hard, soft λ, top-k onsets, user scales).
* :mod:`symbolic.generate` — FGG sampling through ``guidance.sampler.sample``; long form by autoregressive inpainting.
* :mod:`symbolic.binomial` — binomial diffusion (Atassi): completion, infill, harmonisation, variation.
* :mod:`symbolic.metrics` — out-of-key rate, chord accuracy, chord similarity, roll IoU.
* :mod:`symbolic.roll` / :mod:`symbolic.pipeline` — roll ↔ MIDI, rendering, and the CLI tasks.
"""
