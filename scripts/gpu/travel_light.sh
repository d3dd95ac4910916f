#!/usr/bin/env bash
# The device tool sends the tracked files with every call, and the shipped checkpoints alone (73 MB) are
# over the 64 MiB a call may carry. Before a GPU call, leave behind every checkpoint folder
# the call does not need; afterwards, put them back. Nothing on disk moves: the folders only leave git's
# index and are ignored through .git/info/exclude, so do not commit in between.
#
#   bash scripts/gpu/travel_light.sh vae        # only checkpoints/vae travels (plus code, .whl and carried data)
#   bash scripts/gpu/travel_light.sh dit        # only checkpoints/dit
#   bash scripts/gpu/travel_light.sh --restore  # back to normal
set -euo pipefail
cd "$(dirname "$0")/../.."
exclude=.git/info/exclude
mkdir -p .git/info && touch $exclude
sed -i "\#^/checkpoints/[^/]*/\$#d" $exclude  # this script's lines from a previous run
git reset -q -- checkpoints  # every run starts from the committed index
if [ "${1:-}" = "--restore" ]; then
    echo "checkpoints tracked again"
    exit 0
fi
for dir in checkpoints/*/; do
    name=$(basename "$dir")
    case " $* " in *" $name "*) continue ;; esac
    git rm -r -q --cached --ignore-unmatch "checkpoints/$name"
    echo "/checkpoints/$name/" >> $exclude
done
bytes=$( (git ls-files; git ls-files --others --exclude-standard) | tr '\n' '\0' | du -cb --files0-from=- | tail -1 | cut -f1)
echo "the working tree now sends $((bytes / 1048576)) MiB (plus what carry names); limit 64 MiB"
