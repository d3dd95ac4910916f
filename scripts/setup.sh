#!/usr/bin/env bash
# Install musicprod and what it needs: FluidSynth with the General MIDI soundfont (Debian packages),
# then the Python package in editable mode with its test extras. Re-running it is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SOUNDFONT=/usr/share/sounds/sf2/FluidR3_GM.sf2

if ! ldconfig -p 2>/dev/null | grep -q libfluidsynth || [ ! -f "$SOUNDFONT" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing fluidsynth and fluid-soundfont-gm" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fluidsynth fluid-soundfont-gm >/dev/null
fi

# Already-satisfied requirements make this a few seconds; the first time, torch takes minutes.
$PYTHON -m pip install -q --disable-pip-version-check -e ".[test]"
