"""An installed copy (``pip install .``, not editable) carries the checkpoints and the demo's song, and finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from musicprod_common import resources

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_shipped_checkpoint_and_the_demo_song(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("musicprod-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = {n.split("/share/musicprod/", 1)[1] for n in names if "/share/musicprod/" in n}
    for folder in sorted(p for p in (REPO / "checkpoints").iterdir() if p.is_dir()):
        for name in ("config.json", "model.safetensors", "README.md"):
            assert f"checkpoints/{folder.name}/{name}" in data, f"the wheel lacks checkpoints/{folder.name}/{name}"
    assert {f"examples/pop909/001/{p.name}" for p in (REPO / "examples/pop909/001").iterdir()} <= data
    assert any(n.startswith("recipes/") for n in names) and any(n.startswith("musicprod_common/") for n in names)
    assert "recipes/static/app.html" in names  # the page `musicprod app` serves


def test_an_installed_copy_looks_under_its_share_folder(tmp_path, monkeypatch):
    prefix = tmp_path / "venv"
    (prefix / "share/musicprod/checkpoints").mkdir(parents=True)
    monkeypatch.setattr(resources, "SOURCE_TREE", tmp_path / "site-packages")  # no checkout beside the packages
    monkeypatch.setattr(sys, "prefix", str(prefix))
    assert resources.shipped("checkpoints") == prefix / "share/musicprod/checkpoints"
    assert (
        resources.shipped("examples/pop909/001") == tmp_path / "site-packages/examples/pop909/001"
    )  # named, though absent


def test_a_checkout_uses_its_own_files():
    assert resources.shipped("checkpoints") == REPO / "checkpoints"
