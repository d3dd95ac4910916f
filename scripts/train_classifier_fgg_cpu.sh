#!/usr/bin/env bash
# CPU training of the PaSST style classifier (the shipped one), then an FGG model, on a machine with no GPU.
# One job at a time on the 2-core machine; budgets are wall-clock minutes and the LR anneals over them.
set -euo pipefail
cd "$(dirname "$0")/.."
POP909=${POP909:-../shared/data/pop909}
ALL_STYLES=$(python -c "from musicprod_common.styles import STYLE_NAMES; print(','.join(STYLE_NAMES))")
mkdir -p runs build/cls
# classifier data: 1500 train-split and 200 test-split clips of 6 s in all ten styles (about 3.5 min);
# validation reuses round 1's 60 valid-split clips (scripts/gpu/prepare_round1.sh)
python -m musicprod_common.prerender --pop909 $POP909 --split train --seconds 6 --count 1500 --seed 101 --styles "$ALL_STYLES" --out build/cls/train --workers 2
python -m musicprod_common.prerender --pop909 $POP909 --split test --seconds 6 --count 200 --seed 132 --styles "$ALL_STYLES" --out build/cls/test --workers 2
python -m guidance.train_classifier --preset small --data build/cls/train --valid build/gpu/cls_valid_flac --out runs/cls2 \
    --steps 1000000 --max-minutes 40 --batch-size 32 --lr 6e-4 --warmup-steps 100 --ema-decay 0.995 \
    --preload --num-workers 0 --no-progress --cpu > runs/cls2.log 2>&1
python -m guidance.evaluate_classifier --model runs/cls2/final --data build/cls/test --out runs/cls2/test_metrics.json --cpu --num-workers 0
# FGG: the compact piano-roll file of round 1 (python -m symbolic.data --pop909 $POP909 --out ...)
python -m symbolic.train_fgg --preset small --data .carry/round1/symbolic.safetensors --out runs/fgg2 --steps 1000000 \
    --max-minutes 45 --batch-size 32 --lr 4e-4 --warmup-steps 100 --ema-decay 0.995 --num-workers 0 --no-progress --cpu > runs/fgg2.log 2>&1
