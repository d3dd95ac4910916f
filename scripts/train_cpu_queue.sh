#!/usr/bin/env bash
# The shipped classifier and symbolic checkpoints, trained one after another on one CPU core
# (this session had no GPU). Budgets are wall-clock minutes; the LR anneals over them.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
python -m guidance.train_classifier --preset small --data build/gpu/cls_train_flac --valid build/gpu/cls_valid_flac \
    --out runs/classifier --steps 1000000 --max-minutes ${CLS_MINUTES:-12} --batch-size 16 --num-workers 0 --no-progress --cpu > runs/classifier.log 2>&1
python -m symbolic.train_fgg --preset small --data .carry/round1/symbolic.safetensors --out runs/fgg --steps 1000000 \
    --max-minutes ${FGG_MINUTES:-10} --batch-size 32 --num-workers 0 --no-progress --cpu > runs/fgg.log 2>&1
python -m symbolic.train_binomial --preset small --data .carry/round1/symbolic.safetensors --out runs/binomial --steps 1000000 \
    --max-minutes ${BIN_MINUTES:-8} --batch-size 32 --num-workers 0 --no-progress --cpu > runs/binomial.log 2>&1
