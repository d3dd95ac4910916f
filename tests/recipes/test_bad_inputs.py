"""The bad-input sweep: every ``musicprod`` subcommand × every kind of bad input.

Each case must end with exit code 2 and exactly one line on stderr (no traceback), write nothing under the
output folder, and leave every input file byte-identical. The one exception is 8 kHz audio given to a
command that takes audio: other rates are resampled (VAE issue), so it must *work* and keep its rate.

Cases that have no meaning for a command (``--steps`` for ``render``, which has none) are listed in
``NOT_APPLICABLE`` with the reason; the nearest analogue is used where there is one (``--style`` stands in for
``--model`` where a command has styles but no model choice, ``--fade 0`` for "start ≥ end" in ``transition``,
``--bars 0`` in ``transition-stems``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from recipes_testutils import write_song

from recipes.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SONG = REPO / "examples" / "pop909" / "001"
EXAMPLE_MIDI = EXAMPLE_SONG / "001.mid"

CASES = (
    "missing",
    "directory",
    "zero_length",
    "8_channels",
    "8_khz",
    "nan",
    "start_ge_end",
    "region_outside",
    "steps_zero",
    "steps_negative",
    "unknown_model",
    "unwritable_output",
)
AUDIO_CASES = {
    "missing": "missing",
    "directory": "adir",
    "zero_length": "zero",
    "8_channels": "ch8",
    "8_khz": "k8",
    "nan": "nan",
}
AUDIO_COMMANDS = {
    "inpaint",
    "regenerate",
    "style",
    "inpaint-batch",
    "continue",
    "transition",
    "transition-stems",
}  # 8 kHz works

NOT_APPLICABLE = {
    # (command, case): why
    **{("render", c): "render has no sampling steps" for c in ("steps_zero", "steps_negative")},
    **{
        ("harmonize", c): "harmonize has no --steps (binomial diffusion runs its trained step count)"
        for c in ("steps_zero", "steps_negative")
    },
    **{("infill-midi", c): "infill-midi has no --steps" for c in ("steps_zero", "steps_negative")},
    **{
        ("demo", c): "demo takes no input file: it uses the bundled clip"
        for c in (*AUDIO_CASES, "start_ge_end", "region_outside")
    },
    ("accompany", "region_outside"): "accompany generates from chords; it has no region",
    **{
        ("analyze", c): "analyze only reads one audio file: no region, model, steps or output"
        for c in (
            "start_ge_end",
            "region_outside",
            "steps_zero",
            "steps_negative",
            "unknown_model",
            "unwritable_output",
        )
    },
    (
        "analyze",
        "8_khz",
    ): "analyze writes nothing to check; 8 kHz input is analysed (tests/recipes/test_analyze_cmd.py)",
    ("harmonize", "region_outside"): "harmonize has no region",
}


@dataclass
class Files:
    root: Path
    out: Path  # everything a command may write goes under here

    def __getattr__(self, name: str) -> Path:  # inputs by name: good, k8, zero, ch8, nan, missing, adir, afile...
        return self.root / {"missing": "nope.wav", "adir": "a_folder", "afile": "a_file.txt"}.get(name, f"{name}.wav")

    def stems(self, kind: str) -> Path:
        return self.root / f"stems_{kind}"

    def batch(self, kind: str) -> Path:
        return self.root / f"batch_{kind}"


def _make_inputs(root: Path) -> None:
    root.mkdir()
    write_song(root / "good.wav", 2.0, subtype="PCM_16")
    write_song(root / "k8.wav", 2.0, 8000, 1, "PCM_16")
    sf.write(str(root / "zero.wav"), np.zeros((0, 2), np.float32), 44100)
    sf.write(str(root / "ch8.wav"), np.zeros((44100, 8), np.float32), 44100)
    nan = np.full((44100, 2), 0.1, np.float32)
    nan[1000:1010] = np.nan
    sf.write(str(root / "nan.wav"), nan, 44100, subtype="FLOAT")
    (root / "a_folder").mkdir()
    (root / "a_file.txt").write_text("not a folder")
    for kind in ("good", "zero", "ch8", "k8", "nan"):
        for stem in ("PIANO", "MELODY"):
            (root / f"stems_{kind}").mkdir(exist_ok=True)
            shutil.copy(root / f"{kind}.wav", root / f"stems_{kind}" / f"{stem}.wav")
        (root / f"batch_{kind}").mkdir()
        shutil.copy(root / f"{kind}.wav", root / f"batch_{kind}" / f"{kind}.wav")


def _audio_in(case: str, f: Files) -> Path:
    return getattr(f, AUDIO_CASES.get(case, "good"))


def _model_opts(case: str, *, model_flag: str = "--model", model: str = "latent") -> list[str]:
    steps = {"steps_zero": "0", "steps_negative": "-3"}.get(case, "1")
    return ["--steps", steps, model_flag, "nope" if case == "unknown_model" else model]


def _out(case: str, f: Files, name: str) -> str:
    return str(f.afile / name if case == "unwritable_output" else f.out / name)


def _region(case: str, start: float = 0.5, end: float = 0.6) -> list[str]:
    start, end = {"start_ge_end": (end, start), "region_outside": (10.0, 11.0)}.get(case, (start, end))
    return ["--start", str(start), "--end", str(end)]


def _region_cmd(name: str):
    return lambda case, f: [
        name,
        str(_audio_in(case, f)),
        *_region(case),
        "-o",
        _out(case, f, "out.wav"),
        *_model_opts(case),
    ]


def _batch(case: str, f: Files) -> list[str]:
    src = {"missing": f.missing, "directory": f.adir}.get(case) or f.batch(
        AUDIO_CASES.get(case, "good").replace("adir", "good")
    )
    return ["inpaint-batch", str(src), *_region(case), "-o", _out(case, f, "batch"), *_model_opts(case)]


def _continue(case: str, f: Files) -> list[str]:
    context = {"start_ge_end": "0", "region_outside": "100"}.get(case, "0.1")  # empty context; more than the file
    return [
        "continue",
        str(_audio_in(case, f)),
        "--context",
        context,
        "-o",
        _out(case, f, "out.wav"),
        *_model_opts(case),
    ]


def _transition(case: str, f: Files) -> list[str]:
    fade = {"start_ge_end": "0", "region_outside": "10"}.get(case, "0.1")  # empty fade; longer than both files
    bars = "0" if case == "start_ge_end" else "1"  # an empty overlap; the inputs are 2 s, with a note every 0.25 s
    return [
        "transition",
        str(_audio_in(case, f)),
        str(f.good),
        "--fade",
        fade,
        "--bars",
        bars,
        "-o",
        _out(case, f, "out.wav"),
        *_model_opts(case),
    ]


def _transition_stems(case: str, f: Files) -> list[str]:
    src = {"missing": f.missing, "directory": f.adir}.get(case) or f.stems(AUDIO_CASES.get(case, "good"))
    at, bars = {"start_ge_end": ("0.5", "0"), "region_outside": ("100", "1")}.get(case, ("0.5", "1"))
    return [
        "transition-stems",
        str(src),
        str(f.stems("good")),
        "--at",
        at,
        "--bars",
        bars,
        "--fade",
        "0.1",
        "-o",
        _out(case, f, "stems_out"),
        *_model_opts(case),
    ]


def _render(case: str, f: Files) -> list[str]:
    src = _audio_in(case, f) if case in AUDIO_CASES else EXAMPLE_SONG
    window = {"start_ge_end": ["--start", "5", "--end", "5"], "region_outside": ["--start", "5000"]}.get(
        case, ["--end", "1"]
    )
    return [
        "render",
        str(src),
        *window,
        "-o",
        _out(case, f, "render"),
        "--style",
        "nope" if case == "unknown_model" else "piano",
    ]


def _demo(case: str, f: Files) -> list[str]:
    return ["demo", "-o", _out(case, f, "demo"), *_model_opts(case)]


def _midi_in(case: str, f: Files) -> Path:
    return _audio_in(case, f) if case in AUDIO_CASES else EXAMPLE_MIDI  # an audio file where MIDI is expected


def _symbolic_model(case: str, f: Files) -> list[str]:
    return ["--checkpoint", str(f.root / "no_such_model")] if case == "unknown_model" else []


def _accompany(case: str, f: Files) -> list[str]:
    bars = "0" if case == "start_ge_end" else "4"  # an empty piece
    steps = {"steps_zero": "0", "steps_negative": "-3"}.get(case, "1")
    melody = ["--melody", str(_midi_in(case, f))] if case in AUDIO_CASES else []  # optional: only to pass a bad file
    return [
        "accompany",
        "--chords",
        "C G Am F",
        *melody,
        "--bars",
        bars,
        "--steps",
        steps,
        "-o",
        _out(case, f, "out.mid"),
        *_symbolic_model(case, f),
    ]


def _harmonize(case: str, f: Files) -> list[str]:
    bars = ["--bars", "0"] if case == "start_ge_end" else []
    return [
        "harmonize",
        "--melody",
        str(_midi_in(case, f)),
        *bars,
        "-o",
        _out(case, f, "out.mid"),
        *_symbolic_model(case, f),
    ]


def _infill_midi(case: str, f: Files) -> list[str]:
    bars = {"start_ge_end": ("3", "2"), "region_outside": ("1000", "1001")}.get(case, ("2", "3"))
    return [
        "infill-midi",
        str(_midi_in(case, f)),
        "--start-bar",
        bars[0],
        "--end-bar",
        bars[1],
        "-o",
        _out(case, f, "out.mid"),
        *_symbolic_model(case, f),
    ]


def _analyze(case: str, f: Files) -> list[str]:
    return ["analyze", str(_audio_in(case, f))]


BUILDERS = {
    "analyze": _analyze,
    "inpaint": _region_cmd("inpaint"),
    "regenerate": _region_cmd("regenerate"),
    "style": lambda case, f: [*_region_cmd("style")(case, f), "--to", "strings"],
    "inpaint-batch": _batch,
    "continue": _continue,
    "transition": _transition,
    "transition-stems": _transition_stems,
    "render": _render,
    "demo": _demo,
    "accompany": _accompany,
    "harmonize": _harmonize,
    "infill-midi": _infill_midi,
}


def _registered_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


# A server rather than a one-shot command: the page's bad uploads and regions are tested over HTTP (test_app.py).
TESTED_ELSEWHERE = {"app"}


def test_every_subcommand_is_in_the_sweep():
    assert _registered_commands() - TESTED_ELSEWHERE == set(BUILDERS), (
        "add a builder (or NOT_APPLICABLE entries) for every new subcommand"
    )


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep") / "inputs"
    _make_inputs(root)
    return root


SWEEP = [(cmd, case) for cmd in BUILDERS for case in CASES if (cmd, case) not in NOT_APPLICABLE]


@pytest.mark.parametrize("command, case", SWEEP, ids=[f"{c}-{k}" for c, k in SWEEP])
def test_bad_input(command, case, inputs, tmp_path, tiny_checkpoints, monkeypatch, capsys):
    monkeypatch.setenv("MUSICPROD_CHECKPOINTS", str(tiny_checkpoints))
    monkeypatch.chdir(tmp_path)  # anything written to a relative default path lands here, and is checked
    files = Files(inputs, tmp_path / "out")
    files.out.mkdir()
    argv = BUILDERS[command](case, files)
    before, cwd_before = _snapshot(inputs), set(os.listdir(tmp_path))
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    captured = capsys.readouterr()
    assert _snapshot(inputs) == before, "an input file was changed or a stray file was left among the inputs"
    if case == "8_khz" and command in AUDIO_COMMANDS:
        assert rc == 0, f"{argv}: 8 kHz audio should be resampled and work, got: {captured.err.strip()[-300:]}"
        written = [p for p in files.out.rglob("*") if p.is_file() and p.suffix == ".wav"]
        assert written, "nothing written"
        if command in {"inpaint", "regenerate", "style", "continue", "transition", "inpaint-batch"}:
            assert all(sf.info(str(p)).samplerate == 8000 for p in written), "the output must keep the input's rate"
        return
    err_lines = [line for line in captured.err.splitlines() if line.strip()]
    assert rc == 2, f"{argv}: exit code {rc}, stderr: {captured.err.strip()[-500:]}"
    assert len(err_lines) == 1, f"{argv}: expected one error line, got {err_lines}"
    assert "Traceback" not in captured.err and "error" in err_lines[0]
    assert "unrecognized arguments" not in err_lines[0], f"the sweep's own argv is wrong: {err_lines[0]}"
    assert not any(files.out.iterdir()), f"{argv}: left output behind: {list(files.out.rglob('*'))}"
    assert set(os.listdir(tmp_path)) == cwd_before, f"{argv}: wrote into the working directory"
