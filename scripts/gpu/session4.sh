#!/usr/bin/env bash
# The fourth session's GPU runs on one lent H100, in two back-to-back calls on the same warm machine
# (run through the device tool; the runs under runs/gpu4 stay on the machine between the calls):
#
#   1st call (carry .whl .carry/s4a): start the VAE, the waveform U-Net, FGG and the binomial model side by
#            side on the first batch of FLAC renders; SIGTERM before the call's limit checkpoints them;
#   2nd call (carry .whl .carry/s4b): the same command resumes all four on both batches together until the
#            whole-run budget (--max-minutes, summed over both calls) is spent and the LR has annealed.
#
# Only 64 MiB travel per call and FLAC is the one format the VAE may learn from (Vorbis drops the quiet top
# octave that the mel distance measures), so the audio comes in two batches of about 53 MB.
# Each call leaves one tarball per model (final/ weights, losses, log) under $OUT.
set -uo pipefail
BUDGET=${BUDGET:-15.5}   # minutes of training per model, over both calls
SEGMENT=${SEGMENT:-500}  # seconds before SIGTERM in this call
source scripts/gpu/device_env.sh
export OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
R=runs/gpu4; mkdir -p $R

# every batch of audio still on the machine, joined into one folder of links
python3 - <<'EOF'
import json, os
from pathlib import Path
out = Path("runs/gpu4/audio"); out.mkdir(parents=True, exist_ok=True)
rows = []
for src in sorted(Path(".carry").glob("s4*/vae")):
    for line in (src / "manifest.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line); name = f"{src.parent.name}_{row['file']}"
            if not (out / name).exists():
                os.symlink((src / row["file"]).resolve(), out / name)
            rows.append({**row, "file": name})
(out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
print(f"{len(rows)} clips in {out}")
EOF
[ -f $R/symbolic.safetensors ] || gunzip -c .carry/s4a/symbolic.safetensors.gz > $R/symbolic.safetensors

COMMON="--steps 1000000 --max-minutes $BUDGET --mixed-precision bf16 --no-progress"
run() {  # name, module, args...: this call's segment of a trainer's run
    local name=$1; shift
    run_until $SEGMENT $R/$name.log python3 -m "$@" --out $R/$name $COMMON
}
run vae vae.train --preset small --data $R/audio --batch-size 64 --num-workers 6 &
run unet waveform_diffusion.train --preset small --data $R/audio --batch-size 32 --num-workers 4 &
run fgg symbolic.train_fgg --preset small --data $R/symbolic.safetensors --batch-size 64 --lr 4e-4 --num-workers 2 &
run binomial symbolic.train_binomial --preset small --data $R/symbolic.safetensors --batch-size 64 --lr 5e-4 --num-workers 2 &
sleep 120; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
wait
for m in vae unet fgg binomial; do
    echo "== $m: $(wc -l < $R/$m/losses.jsonl) steps; last: $(tail -n 1 $R/$m/losses.jsonl)"
    tail -n 3 $R/$m.log
    tar czf $OUT/$m.tgz -C $R $m.log $m/final $m/losses.jsonl
done
ls -la $OUT
