#!/usr/bin/env bash
# Install musicprod and what it needs: FluidSynth with the General MIDI soundfont, Rubber Band and Chromium (Debian
# packages), then the Python package in editable mode with its test extras. Re-running it is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SOUNDFONT=/usr/share/sounds/sf2/FluidR3_GM.sf2

# Rubber Band's command-line tool time-stretches songs for beat-matched transitions (musicprod_common.stretch).
# Chromium is the browser the web page's tests drive (through Playwright, pointed at /usr/bin/chromium, so Playwright's
# own browser download is never needed).
if ! ldconfig -p 2>/dev/null | grep -q libfluidsynth || [ ! -f "$SOUNDFONT" ] || ! command -v rubberband >/dev/null \
    || ! command -v chromium >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing fluidsynth, fluid-soundfont-gm, rubberband-cli and chromium" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fluidsynth fluid-soundfont-gm rubberband-cli chromium >/dev/null
fi

# Already-satisfied requirements make this a few seconds; the first time, torch takes minutes.
$PYTHON -m pip install -q --disable-pip-version-check -e ".[test]"
