#!/usr/bin/env bash
# The third CPU session's runs (no GPU was lent): the binomial model, retrained after it learned to predict
# a residual on the independent-bit posterior (symbolic/binomial.py), then the FGG model resumed from the
# second session's run for a second budget (a warm restart of the cosine at the same peak LR).
# One job at a time on the 2-core machine; budgets are wall-clock minutes and the LR anneals over them.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-.carry/round1/symbolic.safetensors}  # python -m symbolic.data --pop909 ../shared/data/pop909 --out ...
mkdir -p runs runs/explore
python -m symbolic.train_binomial --preset small --data $DATA --out runs/binomial3 --steps 1000000 \
    --max-minutes 40 --batch-size 32 --lr 5e-4 --warmup-steps 50 --ema-decay 0.995 --num-workers 0 --no-progress --cpu > runs/binomial3.log 2>&1
python -m symbolic.evaluate_binomial --checkpoint runs/binomial3/final --data $DATA --num-samples 100 --batch-size 25 \
    --threads 2 --out runs/binomial3/eval.json > runs/binomial3_eval.log 2>&1
# FGG: continue session 2's run (runs/fgg2/state.pt, 932 steps) in a copy
[ -e runs/fgg3/state.pt ] || { mkdir -p runs/fgg3 && cp runs/fgg2/state.pt runs/fgg2/losses.jsonl runs/fgg3/; }
python -m symbolic.train_fgg --preset small --data $DATA --out runs/fgg3 --steps 1000000 \
    --max-minutes 50 --batch-size 32 --lr 4e-4 --warmup-steps 100 --ema-decay 0.995 --num-workers 0 --no-progress --cpu > runs/fgg3.log 2>&1
# the binomial floor: the same network with its residual at zero (independent notes at the data's density)
python -m symbolic.evaluate_binomial --checkpoint runs/binomial3/final --data $DATA --num-samples 100 --batch-size 25 \
    --tasks harmonize --untrained --threads 2 --out runs/binomial_untrained_eval.json
# FGG: pick the CFG scale on 50 valid-split slices, then score the test split once at the chosen scale (and at the paper's)
for g in 1.0 2.0 3.0 7.5; do
    python -m symbolic.evaluate --checkpoint runs/fgg3/final --data $DATA --split valid --num-samples 50 --batch-size 25 \
        --steps 10 --guidance-scale $g --threads 2 --out runs/explore/fgg3_valid_g$g.json
done
for g in 1.0 7.5; do
    python -m symbolic.evaluate --checkpoint runs/fgg3/final --data $DATA --num-samples 500 --batch-size 50 --steps 10 \
        --guidance-scale $g --threads 2 --out runs/fgg3/eval_test_g$g.json
done
