#!/usr/bin/env bash
# Round 1 of the shipped checkpoints: render the audio that travels to the GPU machine.
# VAE: train split, every style but the held-out one. Classifier: train + valid split, all styles.
set -euo pipefail
cd "$(dirname "$0")/../.."
POP909=${POP909:-../shared/data/pop909}
BUILD=build/gpu; CARRY=.carry/round1
mkdir -p $BUILD $CARRY
ALL_STYLES=$(python -c "from musicprod_common.styles import STYLE_NAMES; print(','.join(STYLE_NAMES))")
python -m musicprod_common.prerender --pop909 $POP909 --split train --seconds 6 --count ${VAE_CLIPS:-150} --seed 11 --out $BUILD/vae_flac --workers 2
python -m musicprod_common.prerender --pop909 $POP909 --split train --seconds 6 --count ${CLS_CLIPS:-250} --seed 12 --styles "$ALL_STYLES" --out $BUILD/cls_train_flac --workers 2
python -m musicprod_common.prerender --pop909 $POP909 --split valid --seconds 6 --count ${CLS_VALID_CLIPS:-60} --seed 13 --styles "$ALL_STYLES" --out $BUILD/cls_valid_flac --workers 2
python scripts/gpu/compact_audio.py $BUILD/vae_flac $CARRY/vae --compression 0.2
python scripts/gpu/compact_audio.py $BUILD/cls_train_flac $CARRY/cls_train --mono --sample-rate 32000 --compression 0.4
python scripts/gpu/compact_audio.py $BUILD/cls_valid_flac $CARRY/cls_valid --mono --sample-rate 32000 --compression 0.4
