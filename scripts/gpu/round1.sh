#!/usr/bin/env bash
# Round 1 on a lent GPU machine (run through the device tool with .whl and .carry in `carry`):
# the VAE, the PaSST-style classifier and both symbolic models train side by side on one GPU.
# Results come back as one tarball per model under $OUT.
set -uo pipefail
MINUTES=${MINUTES:-8}
source scripts/gpu/device_env.sh
export OMP_NUM_THREADS=4
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, torchaudio, auraloss, soundfile; print('torch', torch.__version__, torch.cuda.is_available())"
D=.carry/round1; R=/tmp/runs; mkdir -p $R
BIG=1000000  # the LR cosine then anneals over the wall-clock budget (TrainConfig.max_minutes)

python3 -m vae.train --preset small --data $D/vae --out $R/vae --steps $BIG --max-minutes $MINUTES \
    --batch-size 64 --mixed-precision bf16 --num-workers 6 --no-progress > $R/vae.log 2>&1 &
python3 -m guidance.train_classifier --preset small --data $D/cls_train --valid $D/cls_valid --out $R/classifier \
    --steps $BIG --max-minutes $MINUTES --mixed-precision bf16 --num-workers 4 --no-progress > $R/classifier.log 2>&1 &
python3 -m symbolic.train_fgg --preset small --data $D/symbolic.safetensors --out $R/fgg --steps $BIG \
    --max-minutes $MINUTES --mixed-precision bf16 --num-workers 2 --no-progress > $R/fgg.log 2>&1 &
python3 -m symbolic.train_binomial --preset small --data $D/symbolic.safetensors --out $R/binomial --steps $BIG \
    --max-minutes $MINUTES --mixed-precision bf16 --num-workers 2 --no-progress > $R/binomial.log 2>&1 &
wait
nvidia-smi --query-gpu=memory.used --format=csv,noheader
for m in vae classifier fgg binomial; do
    echo "== $m: $(wc -l < $R/$m/losses.jsonl 2>/dev/null) steps; last: $(tail -n 1 $R/$m/losses.jsonl 2>/dev/null)"
    tail -n 5 $R/$m.log
    (cd $R && tar czf $OUT/$m.tgz $m.log $m/final $m/losses.jsonl $m/*.json 2>/dev/null)
done
ls -la $OUT
