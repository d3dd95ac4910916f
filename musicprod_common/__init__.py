"""Shared plumbing for musicprod: audio I/O, POP909 and MIDI rendering, datasets, checkpoints, training."""
